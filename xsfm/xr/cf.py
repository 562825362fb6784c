"""Deprecated alias of the xarray layer's old ``cf`` module; import from the modules named below.

Kept only while :mod:`xsfm.training.fit` and :mod:`xsfm.testing.assertions` still import from here.
The code lives in :mod:`xsfm.xr.grid`, :mod:`xsfm.xr.gridspec`, :mod:`xsfm.xr.variables`,
:mod:`xsfm.xr.standardise`, :mod:`xsfm.xr.regrid` and :mod:`xsfm.xr.prepare` (``prepare_inputs`` of this
module is :func:`xsfm.xr.prepare.prepare_fields` there).
"""

from __future__ import annotations

from xsfm.xr.grid import SpatialGrid, find_spatial_grid
from xsfm.xr.gridspec import grid_spec_coords, longitude_convention, normalise_grid_spec
from xsfm.xr.prepare import PreparedFields as PreparedInputs
from xsfm.xr.prepare import prepare_fields as prepare_inputs
from xsfm.xr.regrid import MatchedGrid, match_grid
from xsfm.xr.standardise import check_finite, standardise_grid
from xsfm.xr.variables import select_inputs

__all__ = [
    "MatchedGrid",
    "PreparedInputs",
    "SpatialGrid",
    "check_finite",
    "find_spatial_grid",
    "grid_spec_coords",
    "longitude_convention",
    "match_grid",
    "normalise_grid_spec",
    "prepare_inputs",
    "select_inputs",
    "standardise_grid",
]
