"""Data assimilation: FlowDAS through xarray (``api``) and classical baselines (``baselines``)."""

from __future__ import annotations

from xsfm.assimilation import api
from xsfm.assimilation.api import assimilate, forecast
from xsfm.assimilation.baselines import (
    FilterResult,
    bootstrap_particle_filter,
    ensemble_kalman_filter,
)

__all__ = [
    "FilterResult",
    "api",
    "assimilate",
    "bootstrap_particle_filter",
    "ensemble_kalman_filter",
    "forecast",
]
