"""Observation-guided downscaling: the guided denoiser's maths, the sampler, the xarray face."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr

import xsfm
from xsfm.errors import InputError
from xsfm.models.downscaling.guidance import ObservationGuidance, guided_denoiser
from xsfm.observations import Elementwise, PointObservations, from_dict
from xsfm.sampling.paths import edm_sigmas
from xsfm.sampling.solvers import make_sampler
from xsfm.testing import unchanged

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _gaussian_sfm(s: float):
    """Exact denoiser of SFM's path for a prior N(0, s^2) and base noise N(0, s^2)."""
    v = s**2

    def path(sigma: float):
        return 1.0 - sigma, torch.tensor([sigma * s]), torch.tensor([v])

    def denoiser(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        a, n = 1.0 - float(sigma), float(sigma) * s
        return a * v * x / (a**2 * v + n**2)

    return denoiser, path


def test_guided_denoiser_is_the_exact_posterior_mean_for_a_gaussian_prior():
    s, gamma = 0.7, 0.3
    denoiser, path = _gaussian_sfm(s)
    y = torch.tensor([[[1.5, -0.5]]])  # [N, H, W]
    g = ObservationGuidance(y, Elementwise("identity"), noise_std=gamma)
    guided = guided_denoiser(denoiser, g, path, lambda d: d, torch.ones(1))
    x = torch.tensor([[[[0.4, 0.1]]]])
    for sigma in (0.2, 0.5, 0.9):
        a, n = 1.0 - sigma, sigma * s
        d = denoiser(x, torch.tensor(sigma))
        c = s**2 * n**2 / (a**2 * s**2 + n**2)  # Var[x | x_sigma]
        exact = d + c / (c + gamma**2) * (y.unsqueeze(1) - d)
        assert exact.shape == x.shape
        got = guided(x, torch.tensor(sigma))
        torch.testing.assert_close(got, exact, rtol=1e-5, atol=1e-6)


def test_guided_flow_samples_the_gaussian_posterior():
    s, gamma, y_obs = 1.0, 0.5, 1.2
    denoiser, path = _gaussian_sfm(s)
    n = 20000
    g = ObservationGuidance(torch.full((n, 1, 1), y_obs), Elementwise("identity"), noise_std=gamma)
    guided = guided_denoiser(denoiser, g, path, lambda d: d, torch.ones(1))
    z = s * torch.randn(n, 1, 1, 1, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    out = make_sampler("heun", guided, edm_sigmas(200, 0.001, 1.0, 1.0).double())(z)
    post_var = s**2 * gamma**2 / (s**2 + gamma**2)
    post_mean = s**2 * y_obs / (s**2 + gamma**2)
    assert abs(float(out.mean()) - post_mean) < 0.02
    assert abs(float(out.var()) - post_var) / post_var < 0.05
    unguided = make_sampler("heun", denoiser, edm_sigmas(200, 0.001, 1.0, 1.0).double())(z)
    assert abs(float(unguided.var()) - s**2) / s**2 < 0.05  # the prior without observations


def test_guidance_scale_above_one_narrows_the_members_at_observed_places():
    # the documented price of a card's guidance_scale > 1: for a Gaussian prior (where scale 1
    # is exact, see above) scale 3, the shipped model's, leaves a few % of the posterior variance
    s, gamma, y_obs = 1.0, 0.5, 1.2
    denoiser, path = _gaussian_sfm(s)
    n = 20000
    z = s * torch.randn(n, 1, 1, 1, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    var = {}
    for scale in (1.0, 3.0):
        g = ObservationGuidance(
            torch.full((n, 1, 1), y_obs), Elementwise("identity"), noise_std=gamma, scale=scale
        )
        guided = guided_denoiser(denoiser, g, path, lambda d: d, torch.ones(1))
        var[scale] = float(
            make_sampler("heun", guided, edm_sigmas(200, 0.001, 1.0, 1.0).double())(z).var()
        )
    post_var = s**2 * gamma**2 / (s**2 + gamma**2)
    assert abs(var[1.0] - post_var) / post_var < 0.05
    assert var[3.0] / post_var < 0.1


def test_periodic_points_wrap_and_non_periodic_points_outside_are_refused():
    field = torch.arange(16.0).reshape(4, 4)
    coords = (np.arange(4) + 0.5) * 0.25  # cell centres of [0, 1)
    op = PointObservations([[0.5, 0.0]], y=coords, x=coords, periodic=True)
    # x = 0 lies halfway between the last column (x = 0.875) and the first (x = 0.125)
    assert float(op(field)) == pytest.approx(0.5 * (field[1, 3] + field[1, 0]) * 0.5 + 0.5 * (
        field[2, 3] + field[2, 0]) * 0.5)  # fmt: skip
    with pytest.raises(ValueError, match="outside"):
        PointObservations([[0.5, 0.0]], y=coords, x=coords)
    assert from_dict(op.to_dict()) == op


@pytest.fixture(scope="module")
def setting():
    model = xsfm.load_model("kolmogorov-sfm")
    coarse, fine = xsfm.datasets.kolmogorov_pairs(
        tau=2.0, samples=2, split="test", seed=3, sim_size=96, spinup_size=64
    )
    truth = fine.vorticity
    rng = np.random.default_rng(0)
    n_st = 40
    pos = rng.uniform(0, 2 * np.pi, size=(n_st, 2))
    op = PointObservations(pos, y=truth.y.values, x=truth.x.values, periodic=True)
    values = op(torch.tensor(truth.values)).numpy() + 0.2 * rng.normal(size=(2, n_st))
    stations = xr.DataArray(
        values,
        dims=("sample", "station"),
        coords={
            "sample": truth.sample.values,
            "station": [f"s{i}" for i in range(n_st)],
            "y": ("station", pos[:, 0]),
            "x": ("station", pos[:, 1]),
        },
        name="vorticity",
        attrs={"units": "s-1", "observation_noise_std": 0.2},
    )
    return model, coarse, truth, stations, op


def _at_stations(ens: xr.DataArray, op: PointObservations) -> np.ndarray:
    return op(torch.tensor(ens.transpose("member", "sample", "y", "x").values)).numpy()


def test_guided_members_agree_with_the_stations_and_plain_call_is_unchanged(setting):
    model, coarse, _truth, stations, op = setting
    plain = coarse.sfm.downscale(model=model, members=4)
    with unchanged(coarse), unchanged(stations):
        guided = coarse.sfm.downscale(model=model, members=4, obs=stations)
    again = coarse.sfm.downscale(model=model, members=4, obs=None)
    np.testing.assert_array_equal(plain.vorticity.values, again.vorticity.values)
    err_plain = _at_stations(plain.vorticity, op) - stations.values[None]
    err_guided = _at_stations(guided.vorticity, op) - stations.values[None]
    assert np.sqrt((err_guided**2).mean()) < 0.5 * np.sqrt((err_plain**2).mean())
    assert "obs=<40 stations of 'vorticity', noise std 0.2>" in guided.attrs["history"]
    assert guided.vorticity.attrs["units"] == "s-1"


def test_stations_pair_by_label_not_position(setting):
    model, coarse, _truth, stations, _op = setting
    a = coarse.sfm.downscale(model=model, members=2, obs=stations)
    b = coarse.sfm.downscale(model=model, members=2, obs=stations.isel(sample=[1, 0]))
    np.testing.assert_array_equal(a.vorticity.values, b.vorticity.values)
    swapped = stations.assign_coords(sample=stations.sample.values[::-1])
    c = coarse.sfm.downscale(model=model, members=2, obs=swapped)
    assert not np.array_equal(a.vorticity.values, c.vorticity.values)


def test_guided_result_does_not_depend_on_chunking(setting):
    model, coarse, _truth, stations, _op = setting
    eager = coarse.sfm.downscale(model=model, members=2, obs=stations)
    lazy = coarse.chunk(sample=1).sfm.downscale(model=model, members=2, obs=stations)
    np.testing.assert_array_equal(eager.vorticity.values, lazy.vorticity.compute().values)


def test_gridded_observations_with_missing_pixels(setting):
    model, coarse, truth, _stations, _op = setting
    grid = truth.where(np.random.default_rng(1).uniform(size=truth.shape) < 0.03)
    grid = grid.assign_attrs(units="s-1", observation_noise_std=0.2)
    out = coarse.sfm.downscale(model=model, members=2, obs=grid)
    seen = np.isfinite(grid.values)
    err = (out.vorticity.mean("member").values - truth.values)[seen]
    plain = coarse.sfm.downscale(model=model, members=2)
    err_plain = (plain.vorticity.mean("member").values - truth.values)[seen]
    assert np.sqrt((err**2).mean()) < 0.97 * np.sqrt((err_plain**2).mean())
    # a partly observed field is the same observation as stations at the observed pixel centres
    # (NaN where a sample's pixel is not observed): the same operator, so the same members
    iy, ix = np.nonzero(seen.any(axis=0))
    at_pixels = xr.DataArray(
        grid.values[:, iy, ix],
        dims=("sample", "station"),
        coords={
            "sample": grid.sample.values,
            "y": ("station", grid.y.values[iy]),
            "x": ("station", grid.x.values[ix]),
        },
        name="vorticity",
        attrs=grid.attrs,
    )
    same = coarse.sfm.downscale(model=model, members=2, obs=at_pixels)
    np.testing.assert_allclose(out.vorticity.values, same.vorticity.values, rtol=1e-4, atol=1e-4)


def test_units_of_observations_are_converted(setting):
    model, coarse, _truth, stations, _op = setting
    per_hour = (stations * 3600).assign_attrs(units="h-1", observation_noise_std=0.2 * 3600)
    a = coarse.sfm.downscale(model=model, members=2, obs=stations)
    b = coarse.sfm.downscale(model=model, members=2, obs=per_hour)
    np.testing.assert_allclose(a.vorticity.values, b.vorticity.values, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda s: s.rename("tas"), "none of the model's outputs"),
        (lambda s: s.assign_attrs(observation_noise_std=None), "observation noise"),
        (lambda s: s.drop_attrs(), "no 'units'"),
        (lambda s: s.assign_attrs(units="m"), "s-1"),
        (lambda s: s.expand_dims(level=[1]), "level"),
        (lambda s: s.assign_coords(sample=[5, 6]), "label"),
        (lambda s: s.drop_vars("x"), "'x' coordinate"),
        (lambda s: s * np.nan, "no observation"),
    ],
)
def test_bad_observations_get_clear_errors(setting, change, match):
    model, coarse, _truth, stations, _op = setting
    bad = change(stations)
    if bad.attrs.get("observation_noise_std", 0) is None:
        bad.attrs.pop("observation_noise_std")
    with pytest.raises((InputError, ValueError), match=match):
        coarse.sfm.downscale(model=model, members=2, obs=bad)


def test_models_without_a_sampler_refuse_guidance(setting):
    _model, coarse, _truth, stations, _op = setting
    with pytest.raises(ValueError, match="cannot be guided"):
        coarse.sfm.downscale(model="kolmogorov-regression", members=2, obs=stations)
