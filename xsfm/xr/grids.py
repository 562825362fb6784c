"""Deprecated alias of :mod:`xsfm.xr.gridspec`; kept only while :mod:`xsfm.training.fit` imports from here."""

from __future__ import annotations

from xsfm.xr.gridspec import axis_spec, grid_spec_from_dataarray, refine_axis, refine_coord

__all__ = ["axis_spec", "grid_spec_from_dataarray", "refine_axis", "refine_coord"]
