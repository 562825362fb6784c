"""Training: ``fit_downscaler`` (SFM and baselines) and ``fit_assimilator`` (FlowDAS) on xarray data.

Examples
--------
>>> import xsfm
>>> callable(xsfm.training.fit_downscaler)
True
"""

from __future__ import annotations

from typing import Any

__all__ = ["fit_assimilator", "fit_downscaler"]


def fit_downscaler(*args: Any, **kwargs: Any) -> Any:
    """Train a downscaling model on coarse/fine xarray pairs; see :func:`xsfm.training.fit.fit_downscaler`."""
    from xsfm.training.fit import fit_downscaler as _fit

    return _fit(*args, **kwargs)


def fit_assimilator(*args: Any, **kwargs: Any) -> Any:
    """Train a FlowDAS model on trajectories; see :func:`xsfm.training.fit.fit_assimilator`."""
    from xsfm.training.fit import fit_assimilator as _fit

    return _fit(*args, **kwargs)
