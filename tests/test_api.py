"""End-to-end behaviour of ``ds.sfm.downscale``: invariances, labels, laziness, errors."""

from __future__ import annotations

import copy

import dask
import numpy as np
import pytest
import xarray as xr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import xsfm
from xsfm.errors import InputError
from xsfm.testing import unchanged

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _grid(n, name_y="y", name_x="x"):
    values = (np.arange(n) + 0.5) * (1000.0 * 16 / n)
    return {
        name_y: (
            name_y,
            values,
            {"axis": "Y", "units": "m", "standard_name": "projection_y_coordinate"},
        ),
        name_x: (
            name_x,
            values,
            {"axis": "X", "units": "m", "standard_name": "projection_x_coordinate"},
        ),
    }


def _pairs(n_time=12, coarse=4, fine=8, seed=0):
    rng = np.random.default_rng(seed)
    t = rng.normal(280, 5, size=(n_time, coarse, coarse)).astype("f4")
    u = rng.normal(0, 3, size=(n_time, coarse, coarse)).astype("f4")
    cds = xr.Dataset(
        {
            "tas": (
                ("time", "y", "x"),
                t,
                {"units": "K", "standard_name": "air_temperature", "long_name": "air temperature"},
            ),
            "uas": (
                ("time", "y", "x"),
                u,
                {"units": "m s-1", "standard_name": "eastward_wind", "long_name": "eastward wind"},
            ),
        },
        coords={**_grid(coarse), "time": np.arange(n_time)},
    )
    up = np.repeat(np.repeat(t, fine // coarse, axis=1), fine // coarse, axis=2)
    fds = xr.Dataset(
        {
            "tas": (
                ("time", "y", "x"),
                up + rng.normal(0, 1, up.shape).astype("f4"),
                {"units": "K", "standard_name": "air_temperature", "long_name": "air temperature"},
            )
        },
        coords={**_grid(fine), "time": np.arange(n_time)},
    )
    return cds, fds


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    coarse, fine = _pairs()
    model = xsfm.training.fit_downscaler(
        coarse,
        fine,
        method="sfm",
        name="tiny-sfm",
        steps=4,
        batch_size=4,
        progress=False,
        network={"unet": {"channels": 8, "channel_mult": [1]}},
    )
    path = model.save(tmp_path_factory.mktemp("models") / "tiny-sfm")
    return xsfm.load_model(path)


@pytest.fixture
def coarse():
    return _pairs(n_time=3, seed=1)[0]


def _run(ds, model, **kw):
    kw.setdefault("members", 2)
    kw.setdefault("steps", 3)
    return ds.sfm.downscale(model=model, **kw).compute()


def test_output_follows_card(trained, coarse):
    out = _run(coarse, trained)
    assert list(out.data_vars) == trained.card.output_names
    da = out["tas"]
    assert da.dims == ("member", "time", "y", "x")
    assert da.sizes["y"] == 8 and da.dtype == np.float32
    assert da.attrs == {
        "standard_name": "air_temperature",
        "long_name": "air temperature",
        "units": "K",
    }
    assert out["member"].attrs["standard_name"] == "realization"
    assert out["y"].attrs["standard_name"] == "projection_y_coordinate"
    np.testing.assert_allclose(out["x"].values, _grid(8)["x"][1])
    assert "tiny-sfm" in out.attrs["source"] and "downscale(" in out.attrs["history"]
    np.testing.assert_array_equal(out["time"].values, coarse["time"].values)


def test_input_is_not_mutated(trained, coarse):
    before = copy.deepcopy(coarse)
    _run(coarse, trained)
    xr.testing.assert_identical(coarse, before)


def test_renamed_variable_found_by_standard_name(trained, coarse):
    ref = _run(coarse, trained)
    renamed = coarse.rename({"tas": "temperature", "uas": "U"})
    xr.testing.assert_identical(_run(renamed, trained).drop_attrs(), ref.drop_attrs())


def test_explicit_variables_mapping(trained, coarse):
    ref = _run(coarse, trained)
    odd = coarse.rename({"tas": "T2"})
    odd["T2"].attrs.pop("standard_name")
    out = _run(odd, trained, variables={"tas": "T2"})
    xr.testing.assert_equal(out, ref)


def test_converted_units_give_same_answer(trained, coarse):
    ref = _run(coarse, trained)
    celsius = coarse.copy()
    celsius["tas"] = (coarse["tas"] - 273.15).assign_attrs(coarse["tas"].attrs, units="degC")
    celsius["uas"] = (coarse["uas"] * 3.6).assign_attrs(coarse["uas"].attrs, units="km/h")
    out = _run(celsius, trained)
    np.testing.assert_allclose(out["tas"].values, ref["tas"].values, atol=2e-3)


def test_transposed_dims_give_same_answer(trained, coarse):
    ref = _run(coarse, trained)
    out = _run(coarse.transpose("x", "time", "y"), trained)
    xr.testing.assert_equal(out, ref)


def test_dask_stays_lazy_and_equals_eager(trained, coarse):
    ref = _run(coarse, trained)
    chunked = coarse.chunk(time=1)

    class Forbid:
        def __call__(self, dsk, keys, **kwargs):
            raise AssertionError("dask computed while building the graph")

    with dask.config.set(scheduler=Forbid()):
        lazy = chunked.sfm.downscale(model=trained, members=2, steps=3)
    assert isinstance(lazy["tas"].data, dask.array.Array)
    xr.testing.assert_identical(lazy.compute().drop_attrs(), ref.drop_attrs())


@pytest.mark.parametrize("batch_size", [1, 2, 7])
def test_seeded_results_independent_of_batching(trained, coarse, batch_size):
    ref = _run(coarse, trained, seed=3)
    out = _run(coarse.chunk(time=2), trained, seed=3, batch_size=batch_size)
    xr.testing.assert_equal(out, ref)
    other = _run(coarse, trained, seed=4)
    assert not np.array_equal(other["tas"].values, ref["tas"].values)
    # members differ from each other
    assert not np.array_equal(ref["tas"].isel(member=0).values, ref["tas"].isel(member=1).values)


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    extra=st.lists(
        st.sampled_from(["level", "realization", "ens", "forecast_period", "scenario"]),
        unique=True,
        max_size=3,
    ),
    sizes=st.lists(st.integers(1, 3), min_size=3, max_size=3),
)
def test_pass_through_dims_and_coords(trained, coarse, extra, sizes):
    ds = coarse.isel(time=slice(0, 1))
    for name, size in zip(extra, sizes, strict=False):
        ds = ds.expand_dims({name: size}).assign_coords(
            {name: (name, np.arange(size) * 10, {"long_name": name})}
        )
    with unchanged(ds):
        out = _run(ds, trained, members=1, steps=2)
    da = out["tas"]
    assert da.dims[0] == "member" and da.dims[-2:] == ("y", "x")
    assert set(da.dims[1:-2]) == {"time", *extra}
    for name in extra:
        xr.testing.assert_identical(out[name], ds[name])
    spec = trained.card.outputs[0]
    assert {k: da.attrs[k] for k in ("units", "standard_name", "long_name")} == {
        k: spec[k] for k in ("units", "standard_name", "long_name")
    }
    assert out["member"].attrs["standard_name"] == "realization"


def test_missing_variables_reported_together(trained, coarse):
    with pytest.raises(ValueError) as err:
        _run(coarse.drop_vars(["tas", "uas"]).assign(other=coarse["tas"].drop_attrs()), trained)
    message = str(err.value)
    assert "tas" in message and "uas" in message and "variables=" in message


def test_members_must_be_positive(trained, coarse):
    with pytest.raises(ValueError, match="members must be >= 1"):
        coarse.sfm.downscale(model=trained, members=0)
    with pytest.raises(TypeError, match="members must be an integer"):
        coarse.sfm.downscale(model=trained, members=2.5)


def test_wrong_resolution_refused_unless_regrid(trained):
    ds = _pairs(n_time=1, coarse=8, fine=16)[0]
    with pytest.raises(ValueError, match="regrid"):
        _run(ds, trained)


def test_larger_domain_is_cut_and_recorded(trained, coarse):
    big = xr.concat([coarse, coarse.assign_coords(x=coarse.x + 4 * 4000.0)], dim="x")
    out = _run(big, trained)
    assert out.sizes["x"] == 8
    assert "cut" in out.attrs["history"]


def test_nan_input_refused(trained, coarse):
    bad = coarse.copy(deep=True)
    bad["tas"][0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="tas"):
        _run(bad, trained)


def test_assimilation_model_refused_for_downscaling(coarse):
    card = xsfm.load_model("interpolation").card.replace(kind="assimilation", name="x")
    with pytest.raises(ValueError, match="assimilation model"):
        coarse.sfm.downscale(model=xsfm.Model(card), members=1)


def test_interpolation_any_variable_keeps_attrs(coarse):
    out = coarse.sfm.downscale(model="interpolation", members=1)
    assert set(out.data_vars) == {"tas", "uas"}
    assert out["uas"].attrs["units"] == "m s-1"
    assert out.sizes["x"] == 16
    # bilinear interpolation of a linear field is exact away from the edges
    lin = coarse.copy()
    lin["tas"] = (
        (coarse["x"] * 0.001 + coarse["tas"] * 0)
        .transpose("time", "y", "x")
        .assign_attrs(coarse["tas"].attrs)
    )
    fine = lin.sfm.downscale(model="interpolation", members=1)["tas"].isel(member=0, time=0)
    inner = fine.isel(x=slice(2, -2))
    np.testing.assert_allclose(
        inner.values, np.broadcast_to(inner["x"].values * 0.001, inner.shape), rtol=1e-6
    )


def test_dataarray_input(trained, coarse):
    out = coarse["tas"].sfm.downscale(model="interpolation", members=1)
    assert "tas" in out


def test_import_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, xsfm; assert 'torch' not in sys.modules; assert 'cupy' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_inputs_error_type_is_value_error():
    assert issubclass(InputError, ValueError)
