"""Training on xarray data: ``fit_downscaler``, ``fit_assimilator`` and ``calibrate_spread``.

``fit_downscaler`` trains SFM and its baselines, ``fit_assimilator`` FlowDAS, ``calibrate_spread``
sets an SFM model's base-noise scale on held-out pairs. The names resolve to the real functions
(with their signatures) on first access, so ``import xsfm.training`` stays light.

Examples
--------
>>> import inspect, xsfm
>>> "state_dims" in inspect.signature(xsfm.training.fit_assimilator).parameters
True
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from xsfm.training.assimilator import fit_assimilator
    from xsfm.training.calibration import calibrate_spread
    from xsfm.training.fit import fit_downscaler

__all__ = ["calibrate_spread", "fit_assimilator", "fit_downscaler"]

_LAZY = {
    "calibrate_spread": "xsfm.training.calibration",
    "fit_assimilator": "xsfm.training.assimilator",
    "fit_downscaler": "xsfm.training.fit",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'xsfm.training' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
