"""The xarray layer of data assimilation: ``state.sfm.assimilate(obs)``, ``state.sfm.forecast()``."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr

import xsfm
from xsfm.datasets.lorenz import LORENZ63_STD, lorenz63_operator, lorenz63_transition
from xsfm.errors import InputError
from xsfm.filters import bootstrap_particle_filter, ensemble_kalman_filter
from xsfm.sampling.rng import stream_generators

N_SDE = 20  # Euler-Maruyama steps per assimilation step: enough to exercise the path, cheap


@pytest.fixture(scope="module")
def l63() -> xr.Dataset:
    return xsfm.datasets.lorenz63(
        trajectories=3, steps=4, seed=0, burn_in=64, first_trajectory=5000
    )


def _nrmse(ana: xr.Dataset, truth: xr.DataArray) -> float:
    std = xr.DataArray(list(LORENZ63_STD), dims="component")
    return float(np.sqrt((((ana["state"].isel(member=0) - truth) / std) ** 2).mean()))


def test_assimilate_labels_follow_the_card(l63):
    x0 = l63.state.isel(time=[0])
    ana = x0.sfm.assimilate(l63.obs, members=2, steps=N_SDE, seed=1)
    card = xsfm.load_model("lorenz63-flowdas").card
    out = ana["state"]
    assert out.dims == ("member", "trajectory", "time", "component")
    assert out.sizes == {"member": 2, "trajectory": 3, "time": 4, "component": 3}
    assert out.attrs["units"] == card.outputs[0]["units"]
    assert out.attrs["standard_name"] == card.outputs[0]["standard_name"]
    assert ana["member"].attrs["standard_name"] == "realization"
    # observation times only (time 0 is the known state and is dropped from obs, noted in history)
    np.testing.assert_array_equal(ana["time"], [1, 2, 3, 4])
    np.testing.assert_array_equal(ana["model_time"], l63["model_time"].values[1:])
    np.testing.assert_array_equal(ana["trajectory"], l63["trajectory"])
    np.testing.assert_array_equal(ana["component"], ["x", "y", "z"])
    assert "lorenz63-flowdas" in ana.attrs["source"]
    assert "assimilate(" in ana.attrs["history"]
    assert "dropped the observation at the state's time 0" in ana.attrs["history"]
    assert np.isfinite(out.values).all()


def test_inputs_are_not_mutated(l63):
    x0 = l63.state.isel(time=[0])
    before_state, before_obs = x0.copy(deep=True), l63.obs.copy(deep=True)
    x0.sfm.assimilate(l63.obs, members=1, steps=N_SDE)
    x0.sfm.forecast(lead=2, members=1, steps=N_SDE)
    xr.testing.assert_identical(x0, before_state)
    xr.testing.assert_identical(l63.obs, before_obs)


def test_seeded_and_independent_of_how_many_trajectories_run_together(l63):
    x0 = l63.state.isel(time=[0])
    full = x0.sfm.assimilate(l63.obs, members=2, steps=N_SDE, seed=3)
    again = x0.sfm.assimilate(l63.obs, members=2, steps=N_SDE, seed=3)
    xr.testing.assert_identical(full["state"], again["state"])
    # the first trajectory alone draws the same random numbers; only float32 rounding of the
    # network's matmuls (whose kernels depend on the batch size) may differ
    first = x0.isel(trajectory=[0]).sfm.assimilate(
        l63.obs.isel(trajectory=[0]), members=2, steps=N_SDE, seed=3
    )
    np.testing.assert_allclose(first["state"].values[:, 0], full["state"].values[:, 0], atol=1e-4)
    other = x0.sfm.assimilate(l63.obs, members=2, steps=N_SDE, seed=4)
    assert not np.array_equal(other["state"].values, full["state"].values)


def test_dataset_input_and_scalar_time_state(l63):
    ana_ds = l63.isel(time=[0])[["state"]].sfm.assimilate(l63[["obs"]], members=1, steps=N_SDE)
    ana_da = l63.state.isel(time=0).sfm.assimilate(l63.obs, members=1, steps=N_SDE)
    xr.testing.assert_identical(ana_ds["state"], ana_da["state"])


def test_guidance_pulls_toward_the_observations():
    ds = xsfm.datasets.lorenz63(trajectories=8, steps=30, seed=0, first_trajectory=2000)
    x0, truth = ds.state.isel(time=[0]), ds.state.isel(time=slice(1, None))
    free = x0.sfm.forecast(lead=30, members=1, steps=100)
    guided = x0.sfm.assimilate(ds.obs, members=1, steps=100, zeta=1e-2)
    assert _nrmse(guided, truth) < 0.9 * _nrmse(free, truth)


def test_member_resampling_from_xarray(l63):
    x0 = l63.state.isel(time=[0])
    # a precise observation (noise 0.002 against members ~0.02 apart in arctan units) makes the
    # likelihood weights decisive
    kw = {"members": 4, "steps": N_SDE, "seed": 2, "noise_std": 0.002, "zeta": 0.0}
    free = x0.sfm.assimilate(l63.obs, resample_members=False, **kw)
    picked = x0.sfm.assimilate(l63.obs, resample_members=True, **kw)
    again = x0.sfm.assimilate(l63.obs, resample_members=True, **kw)
    # identical but for the time stamp in history (the two calls may straddle a second)
    xr.testing.assert_identical(picked.drop_attrs(deep=False), again.drop_attrs(deep=False))
    assert "resample_members=True" in picked.attrs["history"]
    # selection copies members: after the first analysis each member's state is one of the free
    # members' first states, and some are duplicates (which independent members never are)
    first_free = free["state"].isel(time=0).values  # [member, trajectory, component]
    first_picked = picked["state"].isel(time=0).values
    duplicates = 0
    for t in range(3):
        for m in range(4):
            assert np.isclose(first_picked[m, t], first_free[:, t]).all(axis=-1).any()
        duplicates += 4 - len(np.unique(first_picked[:, t], axis=0))
        assert len(np.unique(first_free[:, t], axis=0)) == 4
    assert duplicates > 0
    # the predictive mode draws each member's starting state from the sample's members before
    # the analysis: with zeta = 0 the first analyses are fresh transitions, not copies
    ahead = x0.sfm.assimilate(l63.obs, resample_members="predictive", **kw)
    assert "resample_members='predictive'" in ahead.attrs["history"]
    assert np.isfinite(ahead["state"].values).all()
    assert ahead["state"].dims == free["state"].dims
    first_ahead = ahead["state"].isel(time=0).values
    for t in range(3):
        assert len(np.unique(first_ahead[:, t], axis=0)) == 4


def test_forecast_continues_the_time_axis(l63):
    fc = l63.state.isel(time=[0, 1]).sfm.forecast(lead=3, members=2, steps=N_SDE)
    assert fc["state"].dims == ("member", "trajectory", "time", "component")
    np.testing.assert_array_equal(fc["time"], [2, 3, 4])
    np.testing.assert_array_equal(fc["lead"], [1, 2, 3])
    assert "forecast(" in fc.attrs["history"]


def test_classical_filters_from_xarray_match_the_tensor_functions(l63):
    x0 = l63.state.isel(time=[0])
    op, f = lorenz63_operator(), lorenz63_transition()
    bpf = x0.sfm.assimilate(l63.obs, method="bpf", transition=f, particles=200, members=5, seed=2)
    enkf = x0.sfm.assimilate(l63.obs, method="enkf", transition=f, members=6, seed=2)
    x0_t = torch.from_numpy(l63.state.isel(time=0).values)
    y_t = torch.from_numpy(l63.obs.isel(time=slice(1, None)).values)
    gens = stream_generators(2, range(3), 1)
    ref = bootstrap_particle_filter(x0_t, y_t, f, op, particles=200, keep=5, generators=gens)
    np.testing.assert_allclose(bpf["state"].values, ref.ensemble.numpy().transpose(2, 0, 1, 3))
    gens = stream_generators(2, range(3), 1)
    ref = ensemble_kalman_filter(x0_t, y_t, f, op, members=6, generators=gens)
    np.testing.assert_allclose(enkf["state"].values, ref.ensemble.numpy().transpose(2, 0, 1, 3))
    assert bpf["state"].attrs["units"] == l63.state.attrs["units"]
    assert "particle filter" in bpf.attrs["source"]


def test_missing_observations_are_skipped(l63):
    obs = l63.obs.copy()
    obs[:, 2] = np.nan
    ana = l63.state.isel(time=[0]).sfm.assimilate(obs, members=1, steps=N_SDE)
    assert np.isfinite(ana["state"].values).all()


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda s, o: (s.isel(component=[0, 1]), o), "2 entries along 'component'"),
        (lambda s, o: (s.rename(component="c"), o), "no dim 'component'"),
        (lambda s, o: (s.where(s.trajectory != 5001), o), "NaN or inf"),
        (lambda s, o: (s, o.where(o.trajectory != 5001, np.inf)), "inf"),
        (lambda s, o: (s, o.isel(time=1, drop=True)), "no time dim 'time'"),
        (lambda s, o: (s, o.expand_dims(sensor=2)), "observation operator gives"),
        (lambda s, o: (s, o.isel(trajectory=[0, 1])), r"obs lacks trajectory label\(s\) \[5002\]"),
        (lambda s, o: (s.assign_attrs(units="m"), o), "units"),
        (lambda s, o: (s.astype(str), o), "give real numbers"),
    ],
)
def test_bad_input_is_named(l63, mutate, match):
    state, obs = mutate(l63.state.isel(time=[0]), l63.obs)
    with pytest.raises((InputError, ValueError), match=match):
        state.sfm.assimilate(obs, members=1, steps=N_SDE)


def test_bad_arguments(l63):
    x0 = l63.state.isel(time=[0])
    with pytest.raises(ValueError, match="members must be >= 1"):
        x0.sfm.assimilate(l63.obs, members=0)
    with pytest.raises(ValueError, match="method must be one of"):
        x0.sfm.assimilate(l63.obs, method="3dvar")
    with pytest.raises(ValueError, match="needs transition"):
        x0.sfm.assimilate(l63.obs, method="bpf")
    with pytest.raises(ValueError, match="downscaling model"):
        x0.sfm.assimilate(l63.obs, model="interpolation")
    with pytest.raises(ValueError, match="resample_members is a FlowDAS option"):
        x0.sfm.assimilate(
            l63.obs, method="enkf", transition=lorenz63_transition(), resample_members=True
        )
    with pytest.raises(TypeError, match="resample_members must be False, True"):
        x0.sfm.assimilate(l63.obs, resample_members="yes")
    with pytest.raises(ValueError, match="come before the state's time"):
        l63.state.sfm.assimilate(l63.obs, members=1)
    with pytest.raises(InputError, match="no observation operator"):
        x0.sfm.assimilate(
            l63.obs.assign_attrs(observation_operator=None).drop_attrs(), model=_no_operator_model()
        )


def _no_operator_model() -> xsfm.Model:
    m = xsfm.load_model("lorenz63-flowdas")
    card = m.card.replace(
        extra={k: v for k, v in m.card.extra.items() if k != "observation_operator"}
    )
    return xsfm.Model(card, path=m.path)


def test_named_guidance_settings_of_the_card(l63):
    x0 = l63.state.isel(time=[0], trajectory=[0])
    obs = l63.obs.isel(trajectory=[0])
    named = x0.sfm.assimilate(obs, guidance="long-window", steps=N_SDE, seed=1)
    explicit = x0.sfm.assimilate(
        obs, zeta=5e-3, resample_members="predictive", members=8, steps=N_SDE, seed=1
    )
    xr.testing.assert_identical(named.drop_attrs(deep=False), explicit.drop_attrs(deep=False))
    assert named.sizes["member"] == 8
    # the card's default is the long-window setting (it tracks on both windows of the report)
    default = x0.sfm.assimilate(obs, steps=N_SDE, seed=1)
    xr.testing.assert_identical(named.drop_attrs(deep=False), default.drop_attrs(deep=False))
    paper = x0.sfm.assimilate(obs, guidance="paper", members=2, steps=N_SDE, seed=1)
    independent = x0.sfm.assimilate(
        obs, zeta=2e-4, resample_members=False, members=2, steps=N_SDE, seed=1
    )
    xr.testing.assert_identical(paper.drop_attrs(deep=False), independent.drop_attrs(deep=False))
    # the caller's options win over a named setting
    mixed = x0.sfm.assimilate(obs, guidance="long-window", members=2, resample_members=False,
                              steps=N_SDE, seed=1)  # fmt: skip
    assert mixed.sizes["member"] == 2 and "resample_members" not in mixed.attrs["history"]
    with pytest.raises(ValueError, match=r"'long-window', 'paper'"):
        x0.sfm.assimilate(obs, guidance="fast", steps=N_SDE)
