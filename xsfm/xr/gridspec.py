"""Grid specs of model cards: building them from coordinates and refining them.

The format is defined (and validated) in :mod:`xsfm.xr.cf`: ``{"y": {name, size, start, step, units,
standard_name, long_name}, "x": {...}}`` plus optional top-level keys such as ``periodic``. A card's fine
grid may instead be a *rule*, ``{"rule": "factor", "factor": 4}``: the fine grid refines whatever coarse
grid it is given with cell centres preserved (the geometry of bilinear upsampling with
``align_corners=False``).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

import numpy as np
import xarray as xr

__all__ = ["axis_spec", "grid_spec_from_dataarray", "refine_axis", "refine_coord"]

_AXIS_ATTRS = ("units", "standard_name", "long_name")


def axis_spec(
    name: Hashable, values: np.ndarray, attrs: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Grid-spec entry of a regular ascending 1-D coordinate.

    Examples
    --------
    >>> axis_spec("x", np.array([1.0, 2.0, 3.0]), {"units": "m"})
    {'name': 'x', 'size': 3, 'start': 1.0, 'step': 1.0, 'units': 'm'}
    """
    values = np.asarray(values, dtype=np.float64)
    step = float((values[-1] - values[0]) / (values.size - 1)) if values.size > 1 else 1.0
    spec: dict[str, Any] = {
        "name": str(name),
        "size": int(values.size),
        "start": float(values[0]),
        "step": step,
    }
    spec.update({k: (attrs or {})[k] for k in _AXIS_ATTRS if k in (attrs or {})})
    return spec


def grid_spec_from_dataarray(da: xr.DataArray, periodic: bool = False) -> dict[str, Any]:
    """Grid spec of ``da``'s (standardised, ascending) spatial grid.

    Examples
    --------
    >>> da = xr.DataArray(np.zeros((2, 3)), dims=("y", "x"),
    ...                   coords={"y": ("y", [0.0, 1.0], {"axis": "Y"}), "x": ("x", [0.0, 2.0, 4.0], {"axis": "X"})})
    >>> grid_spec_from_dataarray(da)["x"]["step"]
    2.0
    """
    from xsfm.xr.cf import find_spatial_grid

    grid = find_spatial_grid(da)
    spec: dict[str, Any] = {}
    for role, dim in (("y", grid.y_dim), ("x", grid.x_dim)):
        coord = da.coords.get(dim)
        values = np.arange(da.sizes[dim], dtype=np.float64) if coord is None else coord.values
        spec[role] = axis_spec(dim, values, {} if coord is None else coord.attrs)
    spec["periodic"] = bool(periodic)
    return spec


def refine_axis(axis: Mapping[str, Any], factor: int) -> dict[str, Any]:
    """Fine axis with ``factor`` cells per coarse cell, cell centres preserved.

    Examples
    --------
    >>> refine_axis({"name": "x", "start": 0.5, "step": 1.0, "size": 2}, 2)["start"]
    0.25
    """
    step = float(axis["step"]) / factor
    start = float(axis["start"]) - float(axis["step"]) / 2 + step / 2
    return {**axis, "start": start, "step": step, "size": int(axis["size"]) * factor}


def refine_coord(
    coord: xr.DataArray | None, size: int, factor: int
) -> tuple[np.ndarray, dict[str, Any]]:
    """Values and attrs of a refined 1-D coordinate (grid index when there is no coordinate)."""
    if coord is None:
        values, attrs = np.arange(size, dtype=np.float64), {}
    else:
        values, attrs = np.asarray(coord.values, dtype=np.float64), dict(coord.attrs)
    step = float(values[1] - values[0]) if values.size > 1 else 1.0
    fine = refine_axis({"start": float(values[0]), "step": step, "size": values.size}, factor)
    return fine["start"] + fine["step"] * np.arange(fine["size"]), attrs
