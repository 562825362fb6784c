"""CF hygiene of the Datasets xsfm returns, so that ``to_netcdf`` writes CF-1.8 files.

:func:`cf_tidy` is the last step of every labelled output (:mod:`xsfm.xr.label`). It never touches
values or computes dask data; it only adjusts attributes and on-disk encodings:

* integer variables that CF 1.8 does not allow (64-bit and unsigned) are written as 32-bit integers
  when their values fit (``encoding["dtype"]``; in memory they keep their dtype), and times as
  ``float64`` or ``int32`` offsets instead of xarray's default ``int64``;
* coordinates get no ``_FillValue`` (``encoding["_FillValue"] = None``, the attribute dropped),
  and string labels are written as character arrays (a coordinate variable must be numeric);
* statistics attributes (``actual_range``, ``valid_min``, ...) are dropped from generated data
  variables and from coordinates whose values they no longer describe;
* references to variables the Dataset lacks (``bounds``, ``grid_mapping``, ``cell_measures``,
  ``ancillary_variables``, ``climatology``) are dropped;
* a datetime coordinate without ``standard_name`` gets ``standard_name: time``, cfgrib's
  ``standard_name: unknown`` is dropped, and a variable with neither ``standard_name`` nor
  ``long_name`` gets its name as ``long_name``;
* the global ``Conventions`` attribute is ``"CF-1.8"``.

:func:`interpolate_latlon` carries 2-D latitude/longitude auxiliary coordinates of the input's grid
onto a finer grid in the same projection.

Examples
--------
>>> import numpy as np, xarray as xr
>>> ds = xr.Dataset(
...     {"t": ("x", np.zeros(3, "f4"), {"units": "K", "actual_range": [250.0, 300.0]})},
...     coords={"x": ("x", np.arange(3), {"units": "m", "bounds": "x_bnds"})})
>>> out = cf_tidy(ds)
>>> out.attrs["Conventions"], out["x"].encoding["dtype"], out["x"].encoding["_FillValue"]
('CF-1.8', dtype('int32'), None)
>>> "actual_range" in out["t"].attrs, "bounds" in out["x"].attrs, out["x"].dtype
(False, False, dtype('int64'))
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

import numpy as np
import xarray as xr

__all__ = ["CONVENTIONS", "STATISTICS_ATTRS", "cf_tidy", "interpolate_latlon"]

CONVENTIONS = "CF-1.8"
STATISTICS_ATTRS = (
    "actual_range",
    "actual_min",
    "actual_max",
    "valid_range",
    "valid_min",
    "valid_max",
)
"""Attributes that state the range of a variable's values: stale once the values are new."""

_CF_INT_DTYPES = {np.dtype(t) for t in ("int8", "int16", "int32")}
_INT32 = np.iinfo(np.int32)
_MISSING_ATTRS = ("_FillValue", "missing_value")
_LON_UNITS = {"degrees_east", "degree_east", "degrees_e", "degree_e", "degreese", "degreee"}


def cf_tidy(ds: xr.Dataset) -> xr.Dataset:
    """``ds`` with the attributes and encodings of a CF-1.8 file (see the module docstring).

    Returns a shallow copy: ``ds`` and the variables it shares with other objects are not modified;
    values, dtypes and dask graphs are unchanged.
    """
    out = ds.copy(deep=False)
    coords = set(out.coords)
    names = set(out.variables)
    for name, var in out.variables.items():
        # a shallow copy shares the attrs/encoding dicts' contents, not the dicts: replace them
        var.attrs = dict(var.attrs)
        var.encoding = dict(var.encoding)
        _encode_dtype(var)
        if name in coords:
            _tidy_coordinate(var)
        else:
            for key in STATISTICS_ATTRS:
                var.attrs.pop(key, None)
        _drop_dangling_references(var, names)
        if var.attrs.get("standard_name") == "unknown":  # cfgrib's placeholder, never CF
            del var.attrs["standard_name"]
        if not {"standard_name", "long_name", "grid_mapping_name"} & set(var.attrs):
            var.attrs["long_name"] = str(name)
    _coordinates_encoding(out)
    out.attrs = {**out.attrs, "Conventions": CONVENTIONS}
    return out


_REFERENCE_ATTRS = ("bounds", "climatology", "grid_mapping", "cell_measures", "ancillary_variables")


def _vertical(var: xr.Variable) -> bool:
    return var.attrs.get("axis") == "Z" or "positive" in var.attrs


def _coordinates_encoding(ds: xr.Dataset) -> None:
    """The ``coordinates`` each data variable lists on disk, where xarray's default is not CF.

    xarray lists every non-dim coordinate whose dims the variable has; that includes a grid-mapping
    or bounds variable kept as a coordinate (referenced by an attribute, not a coordinate) and a
    scalar vertical coordinate of another variable (a second Z axis beside a vertical dim).
    """
    referenced = {
        token.rstrip(":")
        for var in ds.variables.values()
        for key in _REFERENCE_ATTRS
        if isinstance(var.attrs.get(key), str)
        for token in var.attrs[key].split()
    }
    non_dim = sorted((c for c in ds.coords if c not in ds.dims), key=str)
    for var in ds.data_vars.values():
        var = var.variable
        if "coordinates" in var.encoding or "coordinates" in var.attrs:
            continue
        default = [c for c in non_dim if set(ds.variables[c].dims) <= set(var.dims)]
        z_dim = any(d in ds.coords and _vertical(ds.variables[d]) for d in var.dims)
        listed = [
            c
            for c in default
            if c not in referenced
            and not (z_dim and ds.variables[c].ndim == 0 and _vertical(ds.variables[c]))
        ]
        if listed != default:
            var.encoding["coordinates"] = " ".join(map(str, listed)) or None


def _numpy_values(var: xr.Variable) -> np.ndarray | None:
    """The variable's values when they are in memory as numpy (never computes dask data)."""
    data = var.data
    return data if isinstance(data, np.ndarray) else None


def _encode_dtype(var: xr.Variable) -> None:
    """Set ``encoding["dtype"]`` to a CF-1.8 type where xarray would write int64 or unsigned."""
    dtype = var.dtype
    wanted = var.encoding.get("dtype")
    if wanted is not None and np.dtype(wanted) in _CF_INT_DTYPES | {
        np.dtype("float32"),
        np.dtype("float64"),
    }:
        return
    if dtype.kind in "Mm":
        # xarray writes times as int64 offsets by default; float64 offsets are exact enough
        var.encoding["dtype"] = np.dtype("float64")
        return
    if dtype.kind not in "iu" or dtype in _CF_INT_DTYPES:
        if wanted is not None and np.dtype(wanted).kind in "iu" and np.dtype(wanted).itemsize == 8:
            var.encoding.pop("dtype")  # e.g. read from an int64 file: write the in-memory dtype
        return
    values = _numpy_values(var)
    if values is None:
        return
    if values.size == 0 or (_INT32.min <= values.min() and values.max() <= _INT32.max):
        var.encoding["dtype"] = np.dtype("int32")
    elif np.abs(values).max() < 2**53:
        var.encoding["dtype"] = np.dtype("float64")


def _tidy_coordinate(var: xr.Variable) -> None:
    """No fill value on a coordinate; statistics attributes only where they still hold."""
    var.encoding["_FillValue"] = None
    var.encoding.pop("missing_value", None)
    values = _numpy_values(var)
    if "dtype" not in var.encoding and values is not None and _is_text(values):
        # a coordinate variable must be numeric: labels go to disk as a character array (CF 6.1)
        var.encoding["dtype"] = "S1"
    for key in _MISSING_ATTRS:
        var.attrs.pop(key, None)
    for key in STATISTICS_ATTRS:
        if key in var.attrs and not _statistic_holds(key, var.attrs[key], values):
            del var.attrs[key]
    if var.dtype.kind == "M" and "standard_name" not in var.attrs:
        var.attrs["standard_name"] = "time"


def _is_text(values: np.ndarray) -> bool:
    if values.dtype.kind == "U":
        return True
    return (
        values.dtype.kind == "O"
        and values.size > 0
        and all(isinstance(v, str) for v in values.ravel())
    )


def _statistic_holds(key: str, value: Any, values: np.ndarray | None) -> bool:
    """Whether a statistics attribute describes ``values`` (False when they are not at hand)."""
    if values is None or values.dtype.kind not in "iuf" or values.size == 0:
        return False
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return False
    lo, hi = float(finite.min()), float(finite.max())
    try:
        stat = np.asarray(value, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        return False
    close = np.isclose
    if key == "actual_range":
        return stat.size == 2 and bool(close(stat[0], lo) and close(stat[1], hi))
    if key == "actual_min":
        return stat.size == 1 and bool(close(stat[0], lo))
    if key == "actual_max":
        return stat.size == 1 and bool(close(stat[0], hi))
    if key == "valid_range":
        return stat.size == 2 and bool(stat[0] <= lo and hi <= stat[1])
    if key == "valid_min":
        return stat.size == 1 and bool(stat[0] <= lo)
    return stat.size == 1 and bool(hi <= stat[0])  # valid_max


def _drop_dangling_references(var: xr.Variable, names: set[Hashable]) -> None:
    """Drop attributes that name variables the Dataset does not hold."""
    for key in ("bounds", "climatology"):
        if key in var.attrs and var.attrs[key] not in names:
            del var.attrs[key]
    if isinstance(var.attrs.get("grid_mapping"), str):
        tokens = var.attrs["grid_mapping"].split()
        # "crs" or the extended form "crs: x y crs2: lat lon"
        refs = [t.rstrip(":") for t in tokens if t.endswith(":")] or tokens
        if not refs or any(ref not in names for ref in refs):
            del var.attrs["grid_mapping"]
    if isinstance(var.attrs.get("cell_measures"), str):
        refs = [t for t in var.attrs["cell_measures"].split() if not t.endswith(":")]
        if not refs or any(ref not in names for ref in refs):
            del var.attrs["cell_measures"]
    if isinstance(var.attrs.get("ancillary_variables"), str):
        kept = [n for n in var.attrs["ancillary_variables"].split() if n in names]
        if kept:
            var.attrs["ancillary_variables"] = " ".join(kept)
        else:
            del var.attrs["ancillary_variables"]


def interpolate_latlon(
    coord: xr.DataArray,
    positions: Mapping[Hashable, np.ndarray],
    new_dims: Mapping[Hashable, Hashable],
) -> xr.DataArray | None:
    """A 2-D latitude or longitude coordinate at fractional grid positions (bilinear).

    Parameters
    ----------
    coord
        The input's 2-D latitude or longitude, dims ``(y, x)``, numpy-backed.
    positions
        ``{input_dim: fractional indices of the new points along it}``; up to one cell beyond the
        input's first and last points is extrapolated linearly (a refined grid's outer cells).
    new_dims
        ``{input_dim: output_dim}``.

    Returns
    -------
    DataArray or None
        On the new dims with the input's CF attributes (statistics dropped); None when the points
        reach further than one cell outside the input grid or the values are not in memory.

    Examples
    --------
    >>> lat = xr.DataArray([[10.0, 10.0], [12.0, 12.0]], dims=("y", "x"),
    ...                    attrs={"standard_name": "latitude", "units": "degrees_north"})
    >>> fine = interpolate_latlon(lat, {"y": np.array([-0.25, 0.25, 0.75, 1.25]),
    ...                                 "x": np.array([0.0, 1.0])}, {"y": "y", "x": "x"})
    >>> fine.values[:, 0].tolist()
    [9.5, 10.5, 11.5, 12.5]
    """
    values = coord.data
    if not isinstance(values, np.ndarray) or coord.ndim != 2:
        return None
    dims = list(coord.dims)
    is_lon = (
        coord.attrs.get("standard_name") == "longitude"
        or str(coord.attrs.get("units", "")).lower() in _LON_UNITS
    )
    out = np.asarray(values, dtype=np.float64)
    if is_lon:
        out = np.unwrap(np.unwrap(out, period=360.0, axis=0), period=360.0, axis=1)
    for axis, dim in enumerate(dims):
        pos = np.asarray(positions[dim], dtype=np.float64)
        n = out.shape[axis]
        if pos.size and (pos.min() < -1.0 or pos.max() > n):
            return None
        out = _interp_axis(out, pos, axis)
    if is_lon:
        lo = float(np.nanmin(values))
        out = np.mod(out + 180.0, 360.0) - 180.0 if lo < 0 else np.mod(out, 360.0)
    else:
        out = np.clip(out, -90.0, 90.0)
    attrs = {k: v for k, v in coord.attrs.items() if k not in (*STATISTICS_ATTRS, "bounds")}
    return xr.DataArray(out, dims=[new_dims[d] for d in dims], attrs=attrs)


def _interp_axis(values: np.ndarray, pos: np.ndarray, axis: int) -> np.ndarray:
    """Linear interpolation (and extrapolation) along ``axis`` at fractional indices ``pos``."""
    n = values.shape[axis]
    if n == 1:
        return np.repeat(values, pos.size, axis=axis)
    i0 = np.clip(np.floor(pos).astype(np.intp), 0, n - 2)
    w = pos - i0
    a = np.take(values, i0, axis=axis)
    b = np.take(values, i0 + 1, axis=axis)
    shape = [1] * values.ndim
    shape[axis] = pos.size
    w = w.reshape(shape)
    return (1.0 - w) * a + w * b
