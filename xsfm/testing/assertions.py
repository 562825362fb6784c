"""Assertions on xarray objects: equal units, CF attributes, and objects left unchanged by a call."""

from __future__ import annotations

import contextlib
from collections.abc import Hashable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr


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
        Also check that :func:`xsfm.xr.grid.find_spatial_grid` finds the grid and that its 1-D
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
    from xsfm.xr.grid import find_spatial_grid
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
