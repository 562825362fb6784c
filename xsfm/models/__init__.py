"""Models: cards, safetensors files, the registry and the networks behind them."""

from __future__ import annotations

from xsfm.models.base import Model, load_model
from xsfm.models.card import ModelCard
from xsfm.models.registry import list_models, register_model

__all__ = ["Model", "ModelCard", "list_models", "load_model", "register_model"]
