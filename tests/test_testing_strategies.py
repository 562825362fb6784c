from __future__ import annotations

import subprocess
import sys

import dask.array
import numpy as np
import pytest
import xarray as xr
from hypothesis import given

from xsfm.testing import (
    assert_cf_attrs,
    assert_unchanged,
    assert_units_equal,
    cf_dataarrays,
    cf_datasets,
    unchanged,
)
from xsfm.xr.grid import find_spatial_grid


@given(cf_dataarrays(transpose=True, extra_dims=("time", "level", "case")))
def test_cf_dataarrays_are_cf(da):
    assert isinstance(da, xr.DataArray)
    assert_cf_attrs(da)
    grid = find_spatial_grid(da)
    assert grid.kind in ("projection", "latlon1d", "latlon2d")
    assert all(2 <= n <= 6 for n in grid.sizes.values())
    assert np.isfinite(da.values).all()
    assert da.dtype in (np.float32, np.float64)
    assert set(da.dims) - set(grid.dims) <= {"time", "level", "case"}


@given(cf_dataarrays(kind="latlon2d", dtype="float32"))
def test_cf_dataarrays_options(da):
    assert find_spatial_grid(da).kind == "latlon2d"
    assert da.dtype == np.float32


@given(cf_dataarrays(kind="projection", chunked=True, max_extra_dims=0))
def test_cf_dataarrays_chunked(da):
    assert isinstance(da.data, dask.array.Array)
    assert da.dims == ("y", "x")


@given(cf_datasets(min_vars=2, max_vars=3))
def test_cf_datasets_share_a_grid(ds):
    assert 2 <= len(ds.data_vars) <= 3
    names = [ds[v].attrs["standard_name"] for v in ds.data_vars]
    assert len(set(names)) == len(names)
    assert_cf_attrs(ds)
    dims = {ds[v].dims for v in ds.data_vars}
    assert len(dims) == 1


def test_cf_datasets_bad_bounds():
    with pytest.raises(ValueError, match="min_vars"):
        cf_datasets(min_vars=0)


def test_assert_units_equal():
    assert_units_equal("m/s", "m s-1")
    assert_units_equal(xr.DataArray([1.0], attrs={"units": "degK"}), "K")
    assert_units_equal(None, None)
    with pytest.raises(AssertionError, match="units differ"):
        assert_units_equal("m", "km")
    with pytest.raises(AssertionError, match="units differ"):
        assert_units_equal(xr.DataArray([1.0]), "K")
    a = xr.Dataset({"t": ("x", [1.0], {"units": "K"})})
    b = xr.Dataset({"t": ("x", [1.0], {"units": "degK"})})
    assert_units_equal(a, b)
    with pytest.raises(AssertionError, match="variable 't'"):
        assert_units_equal(a, b.assign(t=b.t.assign_attrs(units="degC")))


def test_assert_cf_attrs_failures():
    da = xr.DataArray(
        np.zeros((2, 2)),
        dims=("lat", "lon"),
        coords={"lat": [0.0, 1.0], "lon": [0.0, 1.0]},
        attrs={"units": "K", "standard_name": "air_temperature", "long_name": "t"},
    )
    with pytest.raises(AssertionError, match="coordinate 'lat' lacks"):
        assert_cf_attrs(da)
    with pytest.raises(AssertionError, match="unparseable units"):
        assert_cf_attrs(da.assign_attrs(units="blorp"), grid=False)


def _base():
    return xr.Dataset(
        {"t": (("x",), np.array([1.0, 2.0]), {"units": "K", "nested": {"a": np.arange(2)}})},
        coords={"x": ("x", [0.0, 1.0], {"units": "m"})},
    )


@pytest.mark.parametrize(
    "mutate",
    [
        lambda ds: ds.t.attrs.update(units="degC"),
        lambda ds: ds.t.attrs["nested"]["a"].__setitem__(0, 5),
        lambda ds: ds.t.encoding.update(dtype="int16"),
        lambda ds: ds.x.attrs.update(units="km"),
        lambda ds: ds.t.values.__setitem__(0, 9.0),
        lambda ds: ds.attrs.update(history="x"),
    ],
)
def test_assert_unchanged_detects_mutation(mutate):
    ds = _base()
    before = ds.copy(deep=True)
    mutate(ds)
    with pytest.raises(AssertionError):
        assert_unchanged(before, ds)


def test_assert_unchanged_dtype_and_type():
    ds = _base()
    with pytest.raises(AssertionError, match="dtype"):
        assert_unchanged(ds, ds.assign(t=ds.t.astype("float32")))
    with pytest.raises(AssertionError, match="type changed"):
        assert_unchanged(ds, ds.t)


def test_unchanged_context_manager():
    ds = _base()
    with unchanged(ds):
        ds.assign(y=1)
    with pytest.raises(AssertionError), unchanged(ds):
        ds.t.attrs["units"] = "degC"


def test_import_xsfm_testing_does_not_import_hypothesis():
    code = "import sys, xsfm.testing; assert 'hypothesis' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
