"""Hypothesis strategies for CF-annotated DataArrays and Datasets (hypothesis imported on use).

* :func:`cf_dataarrays` -- CF-annotated DataArrays on projection x/y, 1-D or 2-D
  latitude/longitude grids, with ``units``, ``standard_name``, ``long_name`` and optional
  pass-through dims (time, ...);
* :func:`cf_datasets` -- several such variables on one grid.

Both are built on :mod:`xarray.testing.strategies` (``dimension_sizes`` for the pass-through dims,
``variables`` for the data, ``attrs`` for optional extra attributes).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

#: Variables the strategies draw from: card-like specs plus a plausible value range.
CF_VARIABLES: tuple[dict[str, Any], ...] = (
    {
        "name": "t",
        "standard_name": "air_temperature",
        "units": "K",
        "long_name": "air temperature",
        "range": (200.0, 320.0),
    },
    {
        "name": "u",
        "standard_name": "eastward_wind",
        "units": "m s-1",
        "long_name": "eastward wind",
        "range": (-40.0, 40.0),
    },
    {
        "name": "v",
        "standard_name": "northward_wind",
        "units": "m s-1",
        "long_name": "northward wind",
        "range": (-40.0, 40.0),
    },
    {
        "name": "zeta",
        "standard_name": "atmosphere_relative_vorticity",
        "units": "s-1",
        "long_name": "relative vorticity",
        "range": (-1e-3, 1e-3),
    },
    {
        "name": "z",
        "standard_name": "geopotential",
        "units": "m2 s-2",
        "long_name": "geopotential",
        "range": (0.0, 6e4),
    },
    {
        "name": "hur",
        "standard_name": "relative_humidity",
        "units": "%",
        "long_name": "relative humidity",
        "range": (0.0, 100.0),
    },
)

_KINDS = ("projection", "latlon1d", "latlon2d")
_EXTRA = {
    "time": {"standard_name": "time", "long_name": "time", "axis": "T"},
    "level": {
        "standard_name": "air_pressure",
        "long_name": "pressure",
        "units": "hPa",
        "positive": "down",
        "axis": "Z",
    },
    "case": {"long_name": "case number"},
}
_LEVELS = np.array([1000.0, 850.0, 700.0, 500.0, 300.0, 250.0, 200.0])


def _hypothesis() -> tuple[Any, Any, Any]:
    try:
        import hypothesis.extra.numpy as npst
        import hypothesis.strategies as st
        import xarray.testing.strategies as xrst
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "xsfm.testing strategies need hypothesis: pip install hypothesis"
        ) from err
    return st, npst, xrst


def _as_tuple(value: str | Sequence[str] | None, default: Sequence[str]) -> tuple[str, ...]:
    if value is None:
        return tuple(default)
    return (value,) if isinstance(value, str) else tuple(value)


def _grid(draw: Any, st: Any, kind: str, min_side: int, max_side: int, descending: bool) -> dict:
    """Draw a horizontal grid: ``{"dims": (ydim, xdim), "sizes": ..., "coords": {...}}``."""
    ny = draw(st.integers(min_side, max_side), label="ny")
    nx = draw(st.integers(min_side, max_side), label="nx")
    flip = descending and draw(st.booleans(), label="descending")
    coords: dict[Hashable, xr.Variable] = {}
    if kind == "projection":
        step = draw(st.sampled_from([250.0, 1000.0, 2000.0, 25000.0]), label="step")
        y0 = draw(st.integers(-50, 50), label="y0") * step
        x0 = draw(st.integers(-50, 50), label="x0") * step
        y = y0 + step * np.arange(ny)
        x = x0 + step * np.arange(nx)
        dims = ("y", "x")
        yattrs = {"standard_name": "projection_y_coordinate", "units": "m", "axis": "Y"}
        xattrs = {"standard_name": "projection_x_coordinate", "units": "m", "axis": "X"}
        coords["y"] = xr.Variable("y", y[::-1] if flip else y, {**yattrs, "long_name": "y"})
        coords["x"] = xr.Variable("x", x, {**xattrs, "long_name": "x"})
    elif kind == "latlon1d":
        step = draw(st.sampled_from([0.25, 0.5, 1.0, 2.5]), label="step")
        lat0 = draw(st.integers(-60, 60 - int(step * max_side)), label="lat0") * 1.0
        lon0 = draw(st.integers(-180, 170 - int(step * max_side)), label="lon0") * 1.0
        lat = lat0 + step * np.arange(ny)
        lon = lon0 + step * np.arange(nx)
        dims = ("lat", "lon")
        coords["lat"] = xr.Variable(
            "lat",
            lat[::-1] if flip else lat,
            {"standard_name": "latitude", "units": "degrees_north", "long_name": "latitude"},
        )
        coords["lon"] = xr.Variable(
            "lon",
            lon,
            {"standard_name": "longitude", "units": "degrees_east", "long_name": "longitude"},
        )
    else:  # latlon2d: curvilinear, WRF-like: dims without 1-D coordinates
        step = draw(st.sampled_from([0.05, 0.1, 0.25]), label="step")
        lat0 = draw(st.integers(-50, 50), label="lat0") * 1.0
        lon0 = draw(st.integers(-170, 160), label="lon0") * 1.0
        j, i = np.meshgrid(np.arange(nx), np.arange(ny))
        lat = lat0 + step * (i + 0.1 * j)
        lon = lon0 + step * (j - 0.1 * i)
        dims = ("y", "x")
        coords["lat"] = xr.Variable(
            dims, lat, {"standard_name": "latitude", "units": "degrees_north"}
        )
        coords["lon"] = xr.Variable(
            dims, lon, {"standard_name": "longitude", "units": "degrees_east"}
        )
    return {"dims": dims, "sizes": {dims[0]: ny, dims[1]: nx}, "coords": coords}


def _extra_coords(sizes: Mapping[Hashable, int]) -> dict[Hashable, xr.Variable]:
    coords: dict[Hashable, xr.Variable] = {}
    for dim, n in sizes.items():
        attrs = dict(_EXTRA.get(str(dim), {}))
        if dim == "time":
            values = np.datetime64("2000-01-01T00", "ns") + np.arange(n) * np.timedelta64(6, "h")
        elif dim == "level":
            values = _LEVELS[:n]
        else:
            values = np.arange(n)
        coords[dim] = xr.Variable(dim, values, attrs)
    return coords


def _data(draw: Any, spec: Mapping[str, Any], sizes: Mapping, dtype: np.dtype, attrs) -> Any:
    st, npst, xrst = _hypothesis()
    lo, hi = spec.get("range", (-1e3, 1e3))
    width = 32 if np.dtype(dtype) == np.float32 else 64

    def arrays(*, shape: tuple[int, ...], dtype: np.dtype) -> Any:
        elements = st.floats(
            np.float32(lo).item() if width == 32 else lo,
            np.float32(hi).item() if width == 32 else hi,
            width=width,
            allow_nan=False,
            allow_infinity=False,
        )
        return npst.arrays(dtype=dtype, shape=shape, elements=elements)

    return draw(
        xrst.variables(
            array_strategy_fn=arrays,
            dims=st.just(dict(sizes)),
            dtype=st.just(np.dtype(dtype)),
            attrs=attrs,
        )
    )


def _cf_attrs(spec: Mapping[str, Any]) -> dict[str, Any]:
    return {k: spec[k] for k in ("standard_name", "units", "long_name") if k in spec}


def _extra_attrs(draw: Any, st: Any, xrst: Any, enabled: bool) -> dict[Hashable, Any]:
    if not enabled:
        return {}
    extra = draw(xrst.attrs(), label="extra attrs")
    return {
        f"x_{k}": v
        for k, v in extra.items()
        if isinstance(k, str) and f"x_{k}" not in ("standard_name", "units", "long_name")
    }


def _assemble(
    draw: Any, grid: dict, chosen: Sequence[Mapping[str, Any]], dt: np.dtype, options: dict
) -> xr.Dataset:
    """Draw pass-through dims and data for the chosen variables on a drawn grid."""
    st, _, xrst = _hypothesis()
    extra_dims, max_extra = options["extra_dims"], options["max_extra_dims"]
    extra = (
        draw(
            xrst.dimension_sizes(
                dim_names=st.sampled_from(list(extra_dims)),
                min_dims=0,
                max_dims=max_extra,
                min_side=1,
                max_side=3,
            ),
            label="extra dims",
        )
        if extra_dims and max_extra
        else {}
    )
    sizes = {**extra, **grid["sizes"]}
    order = list(sizes)
    if options["transpose"]:
        order = draw(st.permutations(order), label="dim order")
    sizes = {d: sizes[d] for d in order}
    coords = {**_extra_coords(extra), **grid["coords"]}
    data_vars = {}
    for spec in chosen:
        attrs = {**_cf_attrs(spec), **_extra_attrs(draw, st, xrst, options["extra_attrs"])}
        data_vars[spec["name"]] = _data(draw, spec, sizes, dt, st.just(attrs))
    ds = xr.Dataset(data_vars, coords=coords)
    return ds.chunk() if options["chunked"] else ds


def cf_dataarrays(
    *,
    kind: str | Sequence[str] | None = None,
    dtype: Any = None,
    variables: Sequence[Mapping[str, Any]] | None = None,
    extra_dims: Sequence[str] = ("time", "case"),
    max_extra_dims: int = 2,
    min_side: int = 2,
    max_side: int = 6,
    descending: bool = False,
    transpose: bool = False,
    extra_attrs: bool = False,
    chunked: bool = False,
) -> Any:
    """Hypothesis strategy for CF-annotated DataArrays.

    Parameters
    ----------
    kind
        Grid kind(s) to draw from: ``"projection"`` (1-D x/y in m with CF attrs), ``"latlon1d"``
        (1-D latitude/longitude), ``"latlon2d"`` (dims y/x with 2-D latitude/longitude, WRF-like).
        Default: all three.
    dtype
        numpy dtype(s) of the data; default float32 and float64.
    variables
        Card-like specs ``{name, standard_name, units, long_name, [range]}`` to draw the variable
        from; default :data:`CF_VARIABLES`.
    extra_dims
        Names of pass-through dims that may be added in front (``time``, ``level``, ``case``; any
        other name gets an integer coordinate). ``level`` is a pressure coordinate in hPa.
    max_extra_dims
        At most this many of them (drawn with ``xarray.testing.strategies.dimension_sizes``).
    min_side, max_side
        Range of the spatial sizes (pass-through dims have 1 to 3 points).
    descending
        Allow descending latitudes / projection y.
    transpose
        Draw an arbitrary order of the dims (else pass-through dims first, then y, x).
    extra_attrs
        Add arbitrary extra attributes (``xarray.testing.strategies.attrs``, keys prefixed ``x_``).
    chunked
        Return dask-backed data (one chunk).

    Returns
    -------
    hypothesis.strategies.SearchStrategy
        of :class:`xarray.DataArray`, named after the variable, values finite within the
        variable's range.

    Examples
    --------
    >>> da = cf_dataarrays(kind="projection").example()  # doctest: +SKIP
    >>> da.attrs["units"]  # doctest: +SKIP
    'm s-1'
    """
    st, _, _ = _hypothesis()
    kinds = _as_tuple(kind, _KINDS)
    dtypes = [np.dtype(d) for d in (_as_tuple(dtype, ("float32", "float64")))]
    specs = list(variables or CF_VARIABLES)
    options = {
        "extra_dims": tuple(extra_dims),
        "max_extra_dims": max_extra_dims,
        "transpose": transpose,
        "extra_attrs": extra_attrs,
        "chunked": chunked,
    }

    @st.composite
    def strategy(draw: Any) -> xr.DataArray:
        grid_kind = draw(st.sampled_from(kinds), label="kind")
        grid = _grid(draw, st, grid_kind, min_side, max_side, descending)
        spec = draw(st.sampled_from(specs), label="variable")
        dt = draw(st.sampled_from(dtypes), label="dtype")
        return _assemble(draw, grid, [spec], dt, options)[spec["name"]]

    return strategy()


def cf_datasets(
    *,
    kind: str | Sequence[str] | None = None,
    dtype: Any = None,
    variables: Sequence[Mapping[str, Any]] | None = None,
    min_vars: int = 1,
    max_vars: int = 3,
    extra_dims: Sequence[str] = ("time", "case"),
    max_extra_dims: int = 2,
    min_side: int = 2,
    max_side: int = 6,
    descending: bool = False,
    transpose: bool = False,
    extra_attrs: bool = False,
    chunked: bool = False,
) -> Any:
    """Hypothesis strategy for Datasets of CF-annotated variables sharing one grid.

    Parameters are those of :func:`cf_dataarrays`, plus ``min_vars``/``max_vars``: how many
    distinct variables (distinct standard names) the Dataset holds.

    Examples
    --------
    >>> ds = cf_datasets(kind="latlon1d", max_vars=2).example()  # doctest: +SKIP
    >>> sorted(ds.cf.standard_names)  # doctest: +SKIP
    ['air_temperature', 'latitude', 'longitude']
    """
    st, _, _ = _hypothesis()
    specs = list(variables or CF_VARIABLES)
    if not 1 <= min_vars <= max_vars <= len(specs):
        raise ValueError(f"need 1 <= min_vars <= max_vars <= {len(specs)} (number of variables)")
    kinds = _as_tuple(kind, _KINDS)
    dtypes = [np.dtype(d) for d in (_as_tuple(dtype, ("float32", "float64")))]
    options = {
        "extra_dims": tuple(extra_dims),
        "max_extra_dims": max_extra_dims,
        "transpose": transpose,
        "extra_attrs": extra_attrs,
        "chunked": chunked,
    }

    @st.composite
    def strategy(draw: Any) -> xr.Dataset:
        grid_kind = draw(st.sampled_from(kinds), label="kind")
        grid = _grid(draw, st, grid_kind, min_side, max_side, descending)
        chosen = draw(
            st.lists(
                st.sampled_from(specs),
                min_size=min_vars,
                max_size=max_vars,
                unique_by=lambda s: s["standard_name"],
            ),
            label="variables",
        )
        dt = draw(st.sampled_from(dtypes), label="dtype")
        return _assemble(draw, grid, chosen, dt, options)

    return strategy()
