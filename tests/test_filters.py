"""Classical filters against closed forms: Kalman updates, inflation, localisation, regularisation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr

import xsfm
from xsfm.datasets.lorenz import lorenz63_transition
from xsfm.datasets.lorenz_96 import lorenz96_step
from xsfm.filters import bootstrap_particle_filter, ensemble_kalman_filter, gaspari_cohn
from xsfm.observations import Elementwise

IDENTITY = Elementwise("identity", components=[0, 2])


def _still(x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    return x


def _prior(members: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    chol = torch.tensor([[2.0, 0.0, 0.0], [0.8, 1.0, 0.0], [-0.5, 0.3, 0.7]], dtype=torch.float64)
    z = torch.randn(members, 3, generator=g, dtype=torch.float64)
    return (torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64) + z @ chol.T)[None]


def _kalman(prior: torch.Tensor, y: torch.Tensor, std: torch.Tensor):
    """Kalman update of the sample mean and covariance of ``prior [1, M, 3]`` observing x0, x2."""
    x = prior[0]
    mean = x.mean(0)
    cov = torch.cov(x.T)
    h = torch.tensor([[1.0, 0, 0], [0, 0, 1.0]], dtype=torch.float64)
    r = torch.diag(std**2)
    gain = cov @ h.T @ torch.linalg.inv(h @ cov @ h.T + r)
    return mean + gain @ (y - h @ mean), cov - gain @ h @ cov


@pytest.mark.parametrize("kind", ["stochastic", "etkf"])
def test_the_analysis_is_the_kalman_update(kind):
    prior = _prior(4000)
    y = torch.tensor([0.3, 1.7], dtype=torch.float64)
    std = torch.tensor([0.5, 2.0], dtype=torch.float64)
    res = ensemble_kalman_filter(
        prior, y[None, None], _still, IDENTITY, std, members=4000, kind=kind, state_ndim=1
    )
    mean, cov = _kalman(prior, y, std)
    analysis = res.ensemble[0, 0]
    # centred perturbations: the analysis mean is the Kalman update of the forecast mean exactly
    torch.testing.assert_close(analysis.mean(0), mean, rtol=1e-9, atol=1e-9)
    if kind == "etkf":  # deterministic square root: the covariance too
        torch.testing.assert_close(torch.cov(analysis.T), cov, rtol=1e-9, atol=1e-9)
    else:  # stochastic: to sampling error with 4000 members
        torch.testing.assert_close(torch.cov(analysis.T), cov, rtol=0.1, atol=0.05)


@pytest.mark.parametrize("kind", ["stochastic", "etkf"])
def test_inflation_scales_the_analysis_anomalies_and_carries_into_the_forecast(kind):
    prior = _prior(50, seed=1)
    y = torch.tensor([[[0.3, 1.7], [float("nan")] * 2]], dtype=torch.float64)
    common = {"members": 50, "kind": kind, "seed": 4, "state_ndim": 1}
    inflated = ensemble_kalman_filter(prior, y, _walk, IDENTITY, 0.7, inflation=1.3, **common)
    plain = ensemble_kalman_filter(prior, y, _walk, IDENTITY, 0.7, **common)
    analysis = plain.ensemble[:, 0]
    mean = analysis.mean(1, keepdim=True)
    torch.testing.assert_close(
        inflated.ensemble[:, 0], mean + 1.3 * (analysis - mean), rtol=1e-12, atol=1e-12
    )
    # the forecast step after it starts from the inflated ensemble (and is not inflated itself)
    noise = inflated.ensemble[:, 1] - inflated.ensemble[:, 0]
    torch.testing.assert_close(noise, plain.ensemble[:, 1] - plain.ensemble[:, 0])
    one = ensemble_kalman_filter(prior, y, _walk, IDENTITY, 0.7, inflation=1.0, **common)
    torch.testing.assert_close(plain.ensemble, one.ensemble, rtol=0, atol=0)
    with pytest.raises(ValueError, match="inflation"):
        ensemble_kalman_filter(prior, y, _walk, IDENTITY, 0.7, inflation=0.9, **common)


def _walk(x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    return x + 0.1 * z


def test_gaspari_cohn_closed_form():
    z = torch.tensor([0.0, 0.5, 1.0, 1.5, 2.0, 2.5], dtype=torch.float64)
    expected = [1.0, 0.68489583, 0.20833333, 0.01649306, 0.0, 0.0]
    np.testing.assert_allclose(gaspari_cohn(z).numpy(), expected, atol=1e-8)


def _l96_case(members: int = 20):
    g = torch.Generator().manual_seed(3)
    truth = 8 + torch.randn(1, 40, generator=g, dtype=torch.float64)
    for _ in range(300):
        truth = lorenz96_step(truth)
    prior = truth[:, None] + torch.randn(1, members, 40, generator=g, dtype=torch.float64)
    y = (truth + torch.randn(1, 40, generator=g, dtype=torch.float64))[:, None]
    return prior, y


def test_a_wide_localisation_is_the_global_etkf():
    prior, y = _l96_case()
    ident = Elementwise("identity")
    common = {"members": 20, "kind": "etkf", "state_ndim": 1}
    glob = ensemble_kalman_filter(prior, y, _still, ident, 1.0, **common)
    wide = ensemble_kalman_filter(
        prior, y, _still, ident, 1.0, localisation=1e6, period=40, **common
    )
    torch.testing.assert_close(wide.ensemble, glob.ensemble, rtol=1e-6, atol=1e-6)
    narrow = ensemble_kalman_filter(
        prior, y, _still, ident, 1.0, localisation=2.0, period=40, **common
    )
    # a narrow taper leaves a site untouched by observations farther than 4 sites away
    only_far = y.clone()
    only_far[..., :5] = float("nan")
    only_far[..., 36:] = float("nan")
    far = ensemble_kalman_filter(
        prior, only_far, _still, ident, 1.0, localisation=2.0, period=40, **common
    )
    torch.testing.assert_close(far.ensemble[0, 0, :, 0], prior[0, :, 0], rtol=0, atol=1e-12)
    assert not torch.allclose(narrow.ensemble, glob.ensemble)


def test_regularisation_keeps_particles_diverse_on_a_deterministic_model():
    ds = xsfm.datasets.lorenz63(trajectories=1, steps=40, burn_in=200, noise_var=0.0, seed=2)
    x0 = torch.as_tensor(ds.state.isel(time=0).values)
    x0 = x0[:, None] + torch.randn(1, 200, 3, generator=torch.Generator().manual_seed(0))
    obs = torch.as_tensor(ds.state.isel(time=slice(1, None)).values)
    step = lorenz63_transition(noise_var=0.0)
    ident = Elementwise("identity")
    common = {"particles": 200, "keep": 200, "state_ndim": 1}
    plain = bootstrap_particle_filter(x0, obs, step, ident, 1.0, **common)
    reg = bootstrap_particle_filter(
        x0, obs, step, ident, 1.0, regularisation=1.0, resample_threshold=0.5, **common
    )

    def distinct(ensemble: torch.Tensor) -> int:
        return len({tuple(row) for row in ensemble[0, -1].numpy().round(10).tolist()})

    assert distinct(plain.ensemble) < 40  # collapsed onto a few copies
    assert distinct(reg.ensemble) > 2 * distinct(plain.ensemble) + 20
    truth = obs[0, -1]
    assert float((reg.mean[0, -1] - truth).norm()) < 2.0


def test_no_resampling_while_the_effective_sample_size_is_high():
    x0 = torch.zeros(1, 64, 1, dtype=torch.float64)
    obs = torch.zeros(1, 5, 1, dtype=torch.float64)
    walk = lambda x, z: x + z  # noqa: E731
    res = bootstrap_particle_filter(
        x0, obs, walk, Elementwise("identity"), 1e6, particles=64, keep=0, paths=0,
        resample_threshold=0.5, state_ndim=1,
    )  # fmt: skip
    # an uninformative observation never drops the ESS below half: the cloud is a free random walk
    free = bootstrap_particle_filter(
        x0, torch.full_like(obs, float("nan")), walk, Elementwise("identity"), 1.0, particles=64,
        keep=0, resample_threshold=0.5, state_ndim=1,
    )  # fmt: skip
    assert bool((res.ess > 63.9).all())
    torch.testing.assert_close(res.mean, free.mean, rtol=1e-4, atol=1e-4)


def test_a_diagonal_observation_error_covariance():
    prior = _prior(500, seed=2)
    y = torch.tensor([[[0.3, 1.7]]], dtype=torch.float64)
    vague = ensemble_kalman_filter(
        prior,
        y,
        _still,
        IDENTITY,
        torch.tensor([0.5, 1e8]),
        members=500,
        kind="etkf",
        state_ndim=1,
    )
    dropped = ensemble_kalman_filter(
        prior, torch.tensor([[[0.3, float("nan")]]], dtype=torch.float64), _still, IDENTITY, 0.5,
        members=500, kind="etkf", state_ndim=1,
    )  # fmt: skip
    torch.testing.assert_close(vague.ensemble, dropped.ensemble, rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="noise_std"):
        ensemble_kalman_filter(
            prior, y, _still, IDENTITY, torch.tensor([1.0, 2.0, 3.0]), members=500, state_ndim=1
        )


def test_lorenz96_dataset():
    ds = xsfm.datasets.lorenz96(trajectories=3, steps=6, burn_in=20, obs_every=2, seed=5)
    assert ds.state.dims == ("trajectory", "time", "site") and ds.sizes["site"] == 40
    np.testing.assert_allclose(
        lorenz96_step(ds.state.isel(time=2).values), ds.state.isel(time=3).values, rtol=1e-12
    )
    observed = ~ds.obs.isnull().all(("trajectory", "site"))
    assert observed.values.tolist() == [False, False, True, False, True, False, True]
    one = xsfm.datasets.lorenz96(trajectories=1, steps=6, burn_in=20, obs_every=2, seed=5)
    xr.testing.assert_equal(one.state.isel(trajectory=0), ds.state.isel(trajectory=0))


def test_filters_from_xarray_with_their_options():
    ds = xsfm.datasets.lorenz96(trajectories=1, steps=60, burn_in=300, seed=1)
    start = ds.state.isel(time=0)
    noise = np.random.default_rng(0).normal(size=(20, 1, 40))
    ens = start + xr.DataArray(noise, dims=("member", "trajectory", "site"))
    step = xsfm.datasets.lorenz96_transition()
    common = {"transition": step, "state_dims": ["site"]}
    letkf = ens.sfm.assimilate(
        ds.obs, method="etkf", inflation=1.02, localisation=4.0, period=40, **common
    )
    assert letkf.sizes == {"member": 20, "trajectory": 1, "time": 60, "site": 40}
    assert "ETKF" in letkf.attrs["source"] and "localisation=4.0" in letkf.attrs["source"]
    error = letkf.state.mean("member") - ds.state.isel(time=slice(1, None)).values
    assert float(np.sqrt((error**2).mean("site")).isel(time=slice(30, None)).mean()) < 0.5
    with pytest.raises(ValueError, match=r"takes none of \['inflation'\]"):
        ens.sfm.assimilate(ds.obs, method="bpf", inflation=1.1, **common)
    l63 = xsfm.datasets.lorenz63(trajectories=1, steps=2, burn_in=10)
    with pytest.raises(ValueError, match="options of the classical filters"):
        l63.state.isel(time=[0]).sfm.assimilate(l63.obs, inflation=1.1, steps=5)
    with pytest.raises(ValueError, match=r"takes none of \['regularisation'\]"):
        ens.sfm.assimilate(ds.obs, method="enkf", regularisation=1.0, **common)


def test_a_random_rotation_keeps_the_etkf_mean_and_covariance():
    prior = _prior(12, seed=5)
    y = torch.tensor([[[0.3, 1.7]]], dtype=torch.float64)
    common = {"members": 12, "kind": "etkf", "state_ndim": 1}
    plain = ensemble_kalman_filter(prior, y, _still, IDENTITY, 0.7, **common)
    rotated = ensemble_kalman_filter(prior, y, _still, IDENTITY, 0.7, rotate=True, **common)
    a, b = plain.ensemble[0, 0], rotated.ensemble[0, 0]
    torch.testing.assert_close(b.mean(0), a.mean(0), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(torch.cov(b.T), torch.cov(a.T), rtol=1e-10, atol=1e-12)
    assert not torch.allclose(a, b)
    with pytest.raises(ValueError, match="rotate is an ETKF option"):
        ensemble_kalman_filter(prior, y, _still, IDENTITY, 0.7, members=12, rotate=True)
