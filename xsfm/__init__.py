"""xsfm: xarray-native generative downscaling (Stochastic Flow Matching) and data assimilation (FlowDAS).

Importing xsfm registers the ``.sfm`` accessor on :class:`xarray.DataArray` and :class:`xarray.Dataset`
and stays light: torch and cupy are imported only when a model runs.

Examples
--------
>>> import xsfm
>>> "interpolation" in xsfm.list_models()
True
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from xsfm import accessor as _accessor  # registers .sfm
from xsfm._version import __version__
from xsfm.model import Model, load_model
from xsfm.models.card import ModelCard
from xsfm.models.registry import list_models, register_model

__all__ = [
    "Model",
    "ModelCard",
    "__version__",
    "assimilation",
    "datasets",
    "list_models",
    "load_model",
    "metrics",
    "register_model",
    "show_versions",
    "testing",
    "training",
]

_LAZY_SUBMODULES = {
    "metrics",
    "datasets",
    "training",
    "assimilation",
    "testing",
    "plot",
    "observations",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY_SUBMODULES:
        return import_module(f"xsfm.{name}")
    raise AttributeError(f"module 'xsfm' has no attribute {name!r}")


def show_versions() -> None:
    """Print the versions of xsfm, Python and the libraries it uses (paste this into bug reports)."""
    from xsfm._versions import show_versions as _show

    _show()


del _accessor
