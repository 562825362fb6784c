"""Verification metrics for ensembles and fields held in xarray objects.

Every function takes :class:`xarray.DataArray` or :class:`xarray.Dataset` input (a Dataset is
scored variable by variable and gives a Dataset back), works lazily on dask-backed data (nothing is
computed until the result is) and never modifies its input. The ensemble dimension is ``member``
unless told otherwise; ``dim=None`` reduces over every dimension of ``ens`` and ``truth`` other than
the member dimension, ``dim=[]`` keeps them all (point-wise scores). NaNs are skipped in the
reductions over ``dim`` (xarray's default); a point where the truth or a member is NaN has a NaN
point-wise score.

Scores in the units of the variable (RMSE, MAE, CRPS) carry its ``units``; ratios and counts
(spread-skill ratio, rank histogram, spectral error) are dimensionless (``units: "1"``). The truth
is aligned with the ensemble on their shared coordinates by label: they must hold the same labels
(in any order: the truth is reordered to the ensemble's), equal up to floating-point round-off (the
ensemble's coordinates are then kept).

The package is pure numpy/xarray (``scoringrules`` is used for the CRPS); it never imports torch.
"""

from __future__ import annotations

from xsfm.metrics.deterministic import mae, rmse, single_member_rmse
from xsfm.metrics.octaves import spectrum_error_by_octave, spread_skill_by_octave
from xsfm.metrics.probabilistic import CRPS_ESTIMATORS as CRPS_ESTIMATORS
from xsfm.metrics.probabilistic import crps, rank_histogram, spread_skill_ratio
from xsfm.metrics.spectra import power_spectrum

__all__ = [
    "crps",
    "mae",
    "power_spectrum",
    "rank_histogram",
    "rmse",
    "single_member_rmse",
    "spectrum_error_by_octave",
    "spread_skill_by_octave",
    "spread_skill_ratio",
]
