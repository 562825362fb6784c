"""Models: cards, safetensors files, the registry and the networks behind them (the tensor core).

The model handle a user holds, :class:`xsfm.Model`, lives in :mod:`xsfm.model` (it also builds example
input Datasets, so it sits with the faces above the xarray layer).
"""

from __future__ import annotations

from xsfm.models.card import ModelCard
from xsfm.models.registry import list_models, register_model

__all__ = ["ModelCard", "list_models", "register_model"]
