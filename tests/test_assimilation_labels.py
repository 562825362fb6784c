"""Assimilation pairs by label, never by position: trajectories, times, units, members, dask."""

from __future__ import annotations

import inspect

import dask
import numpy as np
import pytest
import xarray as xr

import xsfm
from xsfm.assimilation import assimilate, forecast
from xsfm.datasets.lorenz import lorenz63_transition
from xsfm.errors import InputError

N_SDE = 20


def raise_if_dask_computes() -> dask.config.set:
    """A dask scheduler that fails on any compute (as xarray's own test helper)."""

    def scheduler(dsk, keys, **kwargs):
        raise RuntimeError(f"dask computed {len(keys)} key(s) where nothing should be computed")

    return dask.config.set(scheduler=scheduler)


KW = {"members": 2, "steps": N_SDE, "seed": 3}


@pytest.fixture(scope="module")
def l63() -> xr.Dataset:
    ds = xsfm.datasets.lorenz63(trajectories=3, steps=4, seed=1, burn_in=64)
    return ds.assign_coords(trajectory=["a", "b", "c"])


@pytest.fixture(scope="module")
def x0(l63: xr.Dataset) -> xr.DataArray:
    return l63.state.isel(time=[0])


@pytest.fixture(scope="module")
def base(l63: xr.Dataset, x0: xr.DataArray) -> xr.Dataset:
    return x0.sfm.assimilate(l63.obs, **KW)


def _same(a: xr.Dataset, b: xr.Dataset) -> None:
    xr.testing.assert_identical(a["state"].drop_attrs(), b["state"].drop_attrs())


def test_swapped_trajectory_labels_give_the_right_trajectories(l63, x0, base):
    swapped = l63.obs.isel(trajectory=[2, 0, 1])
    assert list(swapped.trajectory.values) == ["c", "a", "b"]
    out = x0.sfm.assimilate(swapped, **KW)
    _same(out, base)
    # the pairing matters: giving trajectory c's observations to trajectory a changes its analysis
    relabelled = swapped.assign_coords(trajectory=["a", "b", "c"])
    wrong = x0.sfm.assimilate(relabelled, **KW)
    assert not np.allclose(wrong["state"].sel(trajectory="a"), base["state"].sel(trajectory="a"))


def test_labels_either_side_lacks_are_named(l63, x0):
    with pytest.raises(InputError, match=r"obs lacks trajectory label\(s\) \['b'\]"):
        x0.sfm.assimilate(l63.obs.sel(trajectory=["a", "c"]), **KW)
    extra = l63.obs.assign_coords(trajectory=["a", "b", "z"])
    with pytest.raises(ValueError, match=r"\['z'\] that the state lacks"):
        x0.sfm.assimilate(extra, **KW)
    with pytest.raises(InputError, match="no 'trajectory' coordinate"):
        x0.sfm.assimilate(l63.obs.drop_vars("trajectory"), **KW)


def test_a_gap_in_time_is_a_forecast_step_and_times_are_true(l63, x0, base):
    gappy = l63.obs.sel(time=[1, 2, 4])
    out = x0.sfm.assimilate(gappy, **KW)
    assert out["time"].values.tolist() == [1, 2, 3, 4]
    assert out["observed"].values.tolist() == [True, True, False, True]
    # the same as a NaN observation at t = 3 (a forecast step), not the t = 4 observation at step 3
    nan3 = x0.sfm.assimilate(l63.obs.where(l63.obs.time != 3), **KW)
    np.testing.assert_array_equal(out["state"].values, nan3["state"].values)
    assert not np.allclose(out["state"].sel(time=3), base["state"].sel(time=3))
    # model_time of the observations travels with them; unknown at the forecast step
    np.testing.assert_array_equal(out["model_time"].values[[0, 1, 3]], [0.025, 0.05, 0.1])
    assert np.isnan(out["model_time"].values[2])


def test_unsorted_observation_times_equal_sorted(l63, x0, base):
    out = x0.sfm.assimilate(l63.obs.isel(time=[3, 1, 4, 0, 2]), **KW)
    _same(out, base)


def test_a_nan_observation_equals_dropping_it(l63, x0):
    truth = l63.state.isel(time=slice(1, None))
    full = truth.copy()
    full.attrs.update(observation_noise_std=1.0)
    with_nan = full.where(full.component != "z")
    dropped = full.sel(component=["x", "y"])
    a = x0.sfm.assimilate(with_nan, **KW)
    b = x0.sfm.assimilate(dropped, **KW)
    np.testing.assert_allclose(a["state"].values, b["state"].values, rtol=1e-6, atol=1e-6)
    # and the z observations do matter when present
    c = x0.sfm.assimilate(full, **KW)
    assert not np.allclose(a["state"].values, c["state"].values)


def test_observation_units_are_converted_or_refused(l63, x0):
    truth = l63.state.isel(time=slice(1, None))
    obs = truth.assign_attrs(observation_noise_std=1.0, units="1")
    percent = (obs * 100).assign_attrs(obs.attrs, units="percent")
    a = x0.sfm.assimilate(obs, **KW)
    b = x0.sfm.assimilate(percent, **KW)
    np.testing.assert_allclose(a["state"].values, b["state"].values, rtol=1e-6, atol=1e-6)
    with pytest.raises(InputError, match=r"'m'.*'1'|'1'.*'m'"):
        x0.sfm.assimilate(obs.assign_attrs(units="m"), **KW)


def test_full_state_observations_follow_component_labels(l63, x0):
    obs = l63.state.isel(time=slice(1, None)).assign_attrs(observation_noise_std=1.0)
    a = x0.sfm.assimilate(obs, **KW)
    b = x0.sfm.assimilate(obs.isel(component=[2, 0, 1]), **KW)
    _same(a, b)
    with pytest.raises(InputError, match="noise"):
        x0.sfm.assimilate(obs.drop_attrs(), **KW)


@pytest.mark.parametrize(
    ("times", "match"),
    [
        ([1.5, 2.0], r"\['1.5'\] fall between the model's steps"),
        ([-1, 2], "come before the state's time"),
        ([2, 2], "several observations at the same model step"),
    ],
)
def test_bad_times_are_named(l63, x0, times, match):
    obs = l63.obs.isel(time=[1, 2]).assign_coords(time=times)
    with pytest.raises(InputError, match=match):
        x0.sfm.assimilate(obs, **KW)


def test_datetime_times_with_the_time_step(l63, x0, base):
    t0 = np.datetime64("2024-01-01T00:00", "ns")
    times = t0 + np.arange(5) * np.timedelta64(6, "h")
    state = x0.assign_coords(time=times[:1])
    obs = l63.obs.assign_coords(time=times)
    out = state.sfm.assimilate(obs, time_step="6h", **KW)
    np.testing.assert_array_equal(out["time"].values, times[1:])
    np.testing.assert_array_equal(out["state"].values, base["state"].values)
    with pytest.raises(InputError, match="not a duration"):
        state.sfm.assimilate(obs, time_step=1, **KW)
    with pytest.raises(InputError, match="fall between"):
        state.sfm.assimilate(obs, time_step="4h", **KW)


def test_initial_ensemble_is_used_member_by_member(l63):
    start = l63.state.isel(time=0)
    ens = xr.concat([start, start * 0.9, start * 1.1], dim="member")
    fc = forecast(ens, lead=2, steps=N_SDE, seed=5)
    assert fc.sizes["member"] == 3
    for m in range(3):
        alone = forecast(ens.isel(member=m), lead=2, members=3, steps=N_SDE, seed=5)
        np.testing.assert_array_equal(
            fc["state"].isel(member=m).values, alone["state"].isel(member=m).values
        )
    with pytest.raises(InputError, match="initial ensemble of 3"):
        forecast(ens, lead=2, members=4, steps=N_SDE)
    ana = assimilate(ens, l63.obs, steps=N_SDE, seed=5)
    assert ana.sizes["member"] == 3


def test_filters_take_an_initial_ensemble(l63):
    start = l63.state.isel(time=0)
    spread = xr.DataArray(np.linspace(-1, 1, 16), dims="member")
    ens = start + spread
    enkf = ens.sfm.assimilate(l63.obs, method="enkf", transition=lorenz63_transition())
    assert enkf.sizes["member"] == 16
    bpf = ens.sfm.assimilate(l63.obs, method="bpf", transition=lorenz63_transition(), members=4)
    assert bpf.sizes["member"] == 4
    with pytest.raises(InputError, match="particles"):
        ens.sfm.assimilate(l63.obs, method="bpf", transition=lorenz63_transition(), particles=32)


def test_lazy_assimilate_builds_a_graph_and_equals_eager(l63, x0, base):
    state = x0.chunk(trajectory=1)
    with raise_if_dask_computes():
        lazy = state.sfm.assimilate(l63.obs.chunk(trajectory=2), **KW)
        fc = state.sfm.forecast(lead=2, steps=N_SDE, members=2)
    assert isinstance(lazy["state"].data, dask.array.Array)
    assert lazy["state"].data.numblocks[1] == 3  # one task per trajectory chunk
    # bitwise whatever the chunking (the drift network sees at least xsfm.run.MIN_ROWS rows)
    np.testing.assert_array_equal(lazy["state"].values, base["state"].values)
    eager_fc = x0.sfm.forecast(lead=2, steps=N_SDE, members=2)
    np.testing.assert_array_equal(fc["state"].values, eager_fc["state"].values)
    # one chunk holding every trajectory runs the same batch as the eager call: bit for bit
    whole = x0.chunk(trajectory=3).sfm.assimilate(l63.obs, **KW)
    _same(whole.compute(), base)


@pytest.mark.parametrize("lazy", [False, True])
@pytest.mark.parametrize("method", ["flowdas", "enkf"])
def test_observations_without_the_trajectory_dim_are_shared(l63, x0, lazy, method):
    # one observation series for every trajectory (e.g. several filter runs on one truth)
    shared = l63.obs.sel(trajectory="b", drop=True)
    explicit = shared.expand_dims(trajectory=x0["trajectory"].values)
    kw = (
        dict(KW)
        if method == "flowdas"  # the filters guess state dims as those obs lacks: name them here
        else {"method": method, "transition": lorenz63_transition(), "state_dims": ["component"]}
    )
    state = x0.chunk(trajectory=1) if lazy else x0
    out = state.sfm.assimilate(shared, **kw)
    ref = x0.sfm.assimilate(explicit, **kw)
    assert out.sizes["trajectory"] == 3
    np.testing.assert_array_equal(out["state"].values, ref["state"].values)


def test_inputs_are_not_mutated(l63, x0):
    before_obs, before_state = l63.obs.copy(deep=True), x0.copy(deep=True)
    x0.sfm.assimilate(l63.obs.isel(time=[4, 2, 1]), **KW)
    xr.testing.assert_identical(l63.obs, before_obs)
    xr.testing.assert_identical(x0, before_state)


@pytest.mark.parametrize(
    ("method", "face"),
    [("assimilate", assimilate), ("forecast", forecast)],
)
def test_the_accessor_lists_the_face_parameters(method, face):
    accessor = inspect.signature(getattr(xsfm.accessor.SFMAccessor, method))
    real = inspect.signature(face)
    ours = [p for p in accessor.parameters.values() if p.name != "self"]
    theirs = list(real.parameters.values())[1:]
    assert [(p.name, p.kind, p.default) for p in ours] == [
        (p.name, p.kind, p.default) for p in theirs
    ]


def test_operator_units_convert_the_observations(l63, x0, base):
    # the Lorenz-63 operator gives arctan in units "1" (radians): degrees are converted
    degrees = (l63.obs * 180 / np.pi).assign_attrs(l63.obs.attrs, units="degree")
    out = x0.sfm.assimilate(degrees, **KW)
    np.testing.assert_allclose(out["state"].values, base["state"].values, rtol=1e-6, atol=1e-6)
    with pytest.raises(InputError, match="'K'"):
        x0.sfm.assimilate(l63.obs.assign_attrs(units="K"), **KW)
