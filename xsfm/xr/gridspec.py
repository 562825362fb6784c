"""Grid specs of model cards: parse them once, build their coordinates, refine them.

Grid spec (how a model card describes a grid)
---------------------------------------------
A dict with one entry per horizontal axis, ``"y"`` and ``"x"`` (``"lat"``/``"lon"`` and
``"latitude"``/``"longitude"`` are accepted as keys for geographic grids)::

    {"y": {"name": "y", "size": 16, "start": 0.0, "step": 1000.0, "units": "m",
           "standard_name": "projection_y_coordinate", "long_name": "y coordinate"},
     "x": {"name": "x", "size": 16, "start": 0.0, "step": 1000.0, "units": "m",
           "standard_name": "projection_x_coordinate", "long_name": "x coordinate"}}

    {"y": {"name": "lat", "size": 36, "start": 19.25, "step": 0.25, "units": "degrees_north",
           "standard_name": "latitude"},
     "x": {"name": "lon", "size": 41, "start": 116.0, "step": 0.25, "units": "degrees_east",
           "standard_name": "longitude"}}

Per axis: ``size`` (number of points), ``start`` (first, smallest coordinate value: grids are always
ascending), ``step`` (> 0, regular spacing); or ``values`` (a regular, ascending list) instead of
the three. Optional: ``name`` (coordinate and dimension name in outputs; default ``"y"``/``"x"``,
or ``"lat"``/``"lon"`` for geographic grids), ``units`` (of the coordinate; input coordinates in
other compatible units, e.g. km, are converted), ``standard_name`` (``latitude``/``longitude``
make the grid geographic, anything else is a projection grid), ``long_name``. Coordinates are cell
centres. A geographic spec's longitude range fixes the longitude convention of the inputs: any
value above 180 means 0..360, any value below 0 means -180..180 (:func:`longitude_convention`).
:func:`normalise_grid_spec` checks a spec; :func:`grid_spec_coords` builds its CF coordinates.

A spec may carry optional top-level keys such as ``periodic``. A card's fine grid may instead be a
*rule*, ``{"rule": "factor", "factor": 4}``: the fine grid refines whatever coarse grid it is given
with cell centres preserved (the geometry of bilinear upsampling with ``align_corners=False``;
:func:`refine_axis`, :func:`refine_coord`).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any, Literal

import numpy as np
import xarray as xr

from xsfm.xr.grid import _GEO_STANDARD_NAMES, find_spatial_grid

__all__ = [
    "LongitudeConvention",
    "axis_spec",
    "grid_spec_coords",
    "grid_spec_from_dataarray",
    "longitude_convention",
    "normalise_grid_spec",
    "refine_axis",
    "refine_coord",
]

_GEO_KEYS = {"lat": "y", "latitude": "y", "lon": "x", "longitude": "x"}
_AXIS_ATTRS = ("units", "standard_name", "long_name")

LongitudeConvention = Literal["0..360", "-180..180"]


def normalise_grid_spec(spec: Mapping[str, Any]) -> dict[str, Any]:
    """Check a card grid spec and return it as ``{"y": {...}, "x": {...}, "geographic": bool}``.

    Each axis gets ``name``, ``size``, ``start``, ``step`` and whatever optional keys were given
    (``units``, ``standard_name``, ``long_name``). See the module docstring for the format.

    Raises
    ------
    ValueError
        A malformed spec (a card bug): the message names the axis and the missing or bad key.

    Examples
    --------
    >>> norm = normalise_grid_spec({"lat": {"values": [0.0, 0.5, 1.0]},
    ...                             "lon": {"size": 2, "start": 10.0, "step": 0.5}})
    >>> norm["y"]["name"], norm["y"]["size"], norm["y"]["step"], norm["geographic"]
    ('lat', 3, 0.5, True)
    """
    axes: dict[str, dict[str, Any]] = {}
    geographic = False
    for key, value in spec.items():
        if key in ("y", "x"):
            role, default = key, key
        elif key in _GEO_KEYS:
            role, geographic = _GEO_KEYS[key], True
            default = "lat" if role == "y" else "lon"
        else:
            continue
        if role in axes:
            raise ValueError(f"grid spec gives the {role} axis twice (keys {list(spec)})")
        if not isinstance(value, Mapping):
            raise ValueError(f"grid spec axis {key!r} must be a dict, got {value!r}")
        axis = dict(value)
        axis.setdefault("name", default)
        if "values" in axis:
            values = np.asarray(axis["values"], dtype=np.float64)
            if values.ndim != 1 or values.size < 1:
                raise ValueError(f"grid spec axis {key!r}: 'values' must be a non-empty list")
            steps = np.diff(values)
            step = float(steps.mean()) if steps.size else float(axis.get("step", 1.0))
            if steps.size and ((steps <= 0).any() or np.abs(steps - step).max() > 1e-6 * abs(step)):
                raise ValueError(f"grid spec axis {key!r}: 'values' must be regular and ascending")
            axis.update(size=int(values.size), start=float(values[0]), step=step)
        missing = [k for k in ("size", "start", "step") if k not in axis]
        if missing:
            raise ValueError(
                f"grid spec axis {key!r} lacks {missing}; give size, start and step (or values)"
            )
        axis["size"], axis["start"], axis["step"] = (
            int(axis["size"]),
            float(axis["start"]),
            float(axis["step"]),
        )
        if axis["size"] < 1 or not axis["step"] > 0:
            raise ValueError(
                f"grid spec axis {key!r} needs size >= 1 and step > 0 (ascending), got "
                f"size {axis['size']}, step {axis['step']}"
            )
        if axis.get("standard_name") in _GEO_STANDARD_NAMES:
            geographic = True
        axes[role] = axis
    if set(axes) != {"y", "x"}:
        raise ValueError(
            f"grid spec needs a 'y' and an 'x' axis (or 'lat' and 'lon'), got keys {list(spec)}"
        )
    if geographic:
        axes["y"].setdefault("standard_name", "latitude")
        axes["x"].setdefault("standard_name", "longitude")
        axes["y"].setdefault("units", "degrees_north")
        axes["x"].setdefault("units", "degrees_east")
    return {"y": axes["y"], "x": axes["x"], "geographic": geographic}


def grid_spec_coords(spec: Mapping[str, Any]) -> dict[str, xr.DataArray]:
    """Build the 1-D CF coordinates of a card grid spec, ``{name: DataArray}`` in (y, x) order.

    Examples
    --------
    >>> coords = grid_spec_coords({"y": {"size": 3, "start": 0.0, "step": 500.0, "units": "m",
    ...                                  "standard_name": "projection_y_coordinate"},
    ...                            "x": {"size": 2, "start": 0.0, "step": 500.0, "units": "m",
    ...                                  "standard_name": "projection_x_coordinate"}})
    >>> coords["y"].values, coords["y"].attrs["axis"]
    (array([   0.,  500., 1000.]), 'Y')
    """
    norm = normalise_grid_spec(spec)
    out = {}
    for role in ("y", "x"):
        axis = norm[role]
        values = axis["start"] + axis["step"] * np.arange(axis["size"], dtype=np.float64)
        attrs = {"axis": role.upper()}
        for key in ("standard_name", "long_name", "units"):
            if axis.get(key) is not None:
                attrs[key] = axis[key]
        out[axis["name"]] = xr.DataArray(values, dims=axis["name"], attrs=attrs)
    return out


def longitude_convention(spec: Mapping[str, Any] | None) -> LongitudeConvention | None:
    """The longitude convention a card grid spec implies: ``"0..360"``, ``"-180..180"`` or None.

    Examples
    --------
    >>> longitude_convention({"lat": {"size": 2, "start": 0, "step": 1},
    ...                       "lon": {"size": 4, "start": 350.0, "step": 5.0}})
    '0..360'
    >>> longitude_convention({"y": {"size": 2, "start": 0, "step": 1, "standard_name": "latitude"},
    ...                       "x": {"size": 3, "start": -10.0, "step": 5.0,
    ...                             "standard_name": "longitude"}})
    '-180..180'
    """
    if spec is None:
        return None
    norm = normalise_grid_spec(spec)
    if not norm["geographic"]:
        return None
    x = norm["x"]
    lo, hi = x["start"], x["start"] + x["step"] * (x["size"] - 1)
    if hi > 180.0:
        return "0..360"
    if lo < 0.0:
        return "-180..180"
    return None


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
