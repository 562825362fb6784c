"""Testing helpers for xsfm and for code built on it: hypothesis strategies and assertions.

Strategies (they need hypothesis, imported only when a strategy is built):

* :func:`cf_dataarrays` -- CF-annotated DataArrays on projection x/y, 1-D or 2-D
  latitude/longitude grids, with ``units``, ``standard_name``, ``long_name`` and optional
  pass-through dims (time, ...);
* :func:`cf_datasets` -- several such variables on one grid.

Both are built on :mod:`xarray.testing.strategies` (``dimension_sizes`` for the pass-through dims,
``variables`` for the data, ``attrs`` for optional extra attributes).

Assertions: :func:`assert_units_equal`, :func:`assert_cf_attrs`, :func:`assert_unchanged` and the
context manager :func:`unchanged`.

Examples
--------
>>> import numpy as np, xarray as xr
>>> da = xr.DataArray(np.zeros(2), dims="x", attrs={"units": "m/s"})
>>> assert_units_equal(da, "m s-1")
>>> with unchanged(da):
...     _ = da + 1
"""

from __future__ import annotations

import contextlib
from collections.abc import Hashable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

__all__ = [
    "CF_VARIABLES",
    "assert_cf_attrs",
    "assert_unchanged",
    "assert_units_equal",
    "cf_dataarrays",
    "cf_datasets",
    "unchanged",
]

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


# --------------------------------------------------------------------------------------------
# assertions
# --------------------------------------------------------------------------------------------


def _units_of(obj: Any) -> Any:
    from xsfm.xr.units import units_of

    if isinstance(obj, xr.DataArray):
        return units_of(obj)
    if hasattr(obj, "units") and hasattr(obj, "magnitude"):
        return str(obj.units)
    return obj


def assert_units_equal(a: Any, b: Any) -> None:
    """Assert that two objects have equal units (as units, not as strings: ``m/s`` == ``m s-1``).

    Each of ``a``/``b`` is a unit string, a pint quantity, a DataArray (its quantified data's units
    or its ``units`` attribute) or a Dataset (compared variable by variable, ``b`` then must be a
    Dataset with the same data variables).

    Examples
    --------
    >>> assert_units_equal("m**2 s**-2", "m2 s-2")
    >>> assert_units_equal("K", "degC")
    Traceback (most recent call last):
    ...
    AssertionError: units differ: 'K' (kelvin) != 'degC' (degree_Celsius)
    """
    from xsfm.xr.units import parse_units

    if isinstance(a, xr.Dataset) or isinstance(b, xr.Dataset):
        if not (isinstance(a, xr.Dataset) and isinstance(b, xr.Dataset)):
            raise AssertionError("compare a Dataset with a Dataset")
        assert set(a.data_vars) == set(b.data_vars), (
            f"data variables differ: {sorted(map(str, a.data_vars))} != "
            f"{sorted(map(str, b.data_vars))}"
        )
        for name in a.data_vars:
            try:
                assert_units_equal(a[name], b[name])
            except AssertionError as err:
                raise AssertionError(f"variable {name!r}: {err}") from None
        return
    ua, ub = _units_of(a), _units_of(b)
    if ua is None or ub is None:
        if ua is None and ub is None:
            return
        raise AssertionError(f"units differ: {ua!r} != {ub!r}")
    pa, pb = parse_units(ua), parse_units(ub)
    if pa != pb:
        raise AssertionError(f"units differ: {ua!r} ({pa}) != {ub!r} ({pb})")


def assert_cf_attrs(
    obj: xr.DataArray | xr.Dataset,
    required: Sequence[str] = ("units", "standard_name", "long_name"),
    grid: bool = True,
) -> None:
    """Assert that variables carry CF attributes and that their grid can be found.

    Parameters
    ----------
    obj
        A DataArray, or a Dataset (every data variable is checked).
    required
        Attributes every data variable must have (``units`` must also parse).
    grid
        Also check that :func:`xsfm.xr.cf.find_spatial_grid` finds the grid and that its 1-D
        coordinates have ``units`` and ``standard_name``.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> da = xr.DataArray(np.zeros(2), dims="x", attrs={"units": "K"})
    >>> assert_cf_attrs(da, grid=False)
    Traceback (most recent call last):
    ...
    AssertionError: variable None lacks attributes ['standard_name', 'long_name']
    """
    from xsfm.xr.cf import find_spatial_grid
    from xsfm.xr.units import parse_units

    arrays = [obj[v] for v in obj.data_vars] if isinstance(obj, xr.Dataset) else [obj]
    for da in arrays:
        missing = [key for key in required if da.attrs.get(key) in (None, "")]
        if missing:
            raise AssertionError(f"variable {da.name!r} lacks attributes {missing}")
        if "units" in required:
            try:
                parse_units(da.attrs["units"])
            except Exception as err:
                raise AssertionError(
                    f"variable {da.name!r} has unparseable units {da.attrs['units']!r}: {err}"
                ) from None
    if not grid:
        return
    found = find_spatial_grid(obj)
    for name in (found.y_name, found.x_name, found.lat_name, found.lon_name):
        if name is None:
            continue
        attrs = obj[name].attrs
        lacking = [k for k in ("units", "standard_name") if k not in attrs]
        if lacking and not (name in (found.y_name, found.x_name) and "axis" in attrs):
            raise AssertionError(f"coordinate {name!r} lacks attributes {lacking}")


def _deep_equal(a: Any, b: Any) -> bool:
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return set(a) == set(b) and all(_deep_equal(a[k], b[k]) for k in a)
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a_arr, b_arr = np.asarray(a), np.asarray(b)
        if a_arr.dtype != b_arr.dtype or a_arr.shape != b_arr.shape:
            return False
        if a_arr.dtype.kind in "fcmM":
            return bool(np.array_equal(a_arr, b_arr, equal_nan=True))
        return bool(np.array_equal(a_arr, b_arr))
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(_deep_equal, a, b))
    if isinstance(a, float) and isinstance(b, float) and np.isnan(a) and np.isnan(b):
        return True
    if type(a) is not type(b):
        return False
    try:
        return bool(a == b)
    except Exception:
        return a is b


def _variables(obj: xr.DataArray | xr.Dataset) -> dict[Hashable, xr.Variable]:
    if isinstance(obj, xr.Dataset):
        return dict(obj.variables)
    out = {name: coord.variable for name, coord in obj.coords.items()}
    out[("<data>", obj.name)] = obj.variable
    return out


def assert_unchanged(before: xr.DataArray | xr.Dataset, after: xr.DataArray | xr.Dataset) -> None:
    """Assert that an object equals its snapshot: values, dtypes, dims, coords, attrs, encoding.

    Take the snapshot with ``obj.copy(deep=True)`` before the call that must not mutate ``obj``,
    or use :func:`unchanged`.

    Examples
    --------
    >>> import xarray as xr
    >>> da = xr.DataArray([1.0, 2.0], dims="x", attrs={"units": "K"})
    >>> before = da.copy(deep=True)
    >>> da.attrs["units"] = "degC"
    >>> assert_unchanged(before, da)
    Traceback (most recent call last):
    ...
    AssertionError: attrs of ('<data>', None) changed: {'units': 'K'} -> {'units': 'degC'}
    """
    if type(before) is not type(after):
        raise AssertionError(f"type changed: {type(before).__name__} -> {type(after).__name__}")
    vb, va = _variables(before), _variables(after)
    if set(vb) != set(va):
        raise AssertionError(f"variables changed: {sorted(map(str, vb))} -> {sorted(map(str, va))}")
    for name, var in vb.items():
        other = va[name]
        if not _deep_equal(dict(var.attrs), dict(other.attrs)):
            raise AssertionError(f"attrs of {name!r} changed: {var.attrs} -> {other.attrs}")
        if not _deep_equal(dict(var.encoding), dict(other.encoding)):
            raise AssertionError(
                f"encoding of {name!r} changed: {var.encoding} -> {other.encoding}"
            )
        if var.dtype != other.dtype:
            raise AssertionError(f"dtype of {name!r} changed: {var.dtype} -> {other.dtype}")
        if var.dims != other.dims:
            raise AssertionError(f"dims of {name!r} changed: {var.dims} -> {other.dims}")
    if not _deep_equal(dict(before.attrs), dict(after.attrs)):
        raise AssertionError(f"attrs changed: {before.attrs} -> {after.attrs}")
    # attrs were compared above (xarray's own comparison fails on arrays nested in dicts)
    xr.testing.assert_identical(before.drop_attrs(), after.drop_attrs())


@contextlib.contextmanager
def unchanged(obj: xr.DataArray | xr.Dataset) -> Iterator[None]:
    """Context manager asserting that ``obj`` is deeply unchanged by the code inside it.

    Examples
    --------
    >>> import xarray as xr
    >>> da = xr.DataArray([1.0], dims="x", attrs={"units": "K"})
    >>> with unchanged(da):
    ...     da2 = da.assign_attrs(units="degC")
    """
    snapshot = obj.copy(deep=True)
    yield
    assert_unchanged(snapshot, obj)
