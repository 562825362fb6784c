"""Tests of xsfm.metrics against hand formulas, closed forms and synthetic ensembles."""

from __future__ import annotations

import math
import statistics

import dask
import dask.array as dsa
import numpy as np
import pytest
import xarray as xr

from xsfm import metrics
from xsfm.errors import InputError

# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def _ensemble(rng, members=4, time=3, ny=5, nx=6, units="K", name="t2m"):
    ens = xr.DataArray(
        rng.normal(size=(members, time, ny, nx)),
        dims=("member", "time", "y", "x"),
        coords={
            "member": np.arange(members),
            "time": np.arange(time),
            "y": 1000.0 * np.arange(ny),
            "x": 1000.0 * np.arange(nx),
        },
        name=name,
        attrs={"units": units, "long_name": "air temperature"},
    )
    truth = ens.isel(member=0, drop=True).copy(data=rng.normal(size=(time, ny, nx)))
    return ens, truth


def _crps_by_hand(ens: np.ndarray, y: np.ndarray, fair: bool) -> np.ndarray:
    """Point-wise CRPS with explicit double sums; members on axis 0."""
    m = ens.shape[0]
    e1 = np.zeros(y.shape)
    e2 = np.zeros(y.shape)
    for i in range(m):
        e1 += np.abs(ens[i] - y)
        for j in range(m):
            e2 += np.abs(ens[i] - ens[j])
    denom = m * (m - 1) if fair else m * m
    return e1 / m - 0.5 * e2 / denom


def _gaussian_crps(mu, sigma, y):
    z = (y - mu) / sigma
    phi = np.exp(-0.5 * z**2) / math.sqrt(2 * math.pi)
    big_phi = 0.5 * (1 + np.vectorize(math.erf)(z / math.sqrt(2)))
    return sigma * (z * (2 * big_phi - 1) + 2 * phi - 1 / math.sqrt(math.pi))


def _forbid_compute(*args, **kwargs):
    raise AssertionError("a dask graph was computed while building a lazy result")


def _field(ny=64, nx=64, dx=1000.0, dy=1000.0, data=None, units="s-1"):
    if data is not None:
        ny, nx = data.shape
    y = dy * np.arange(ny)
    x = dx * np.arange(nx)
    if data is None:
        data = np.zeros((ny, nx))
    return xr.DataArray(
        data,
        dims=("y", "x"),
        coords={"y": ("y", y, {"units": "m"}), "x": ("x", x, {"units": "m"})},
        name="vort",
        attrs={"units": units, "long_name": "relative vorticity"},
    )


# ---------------------------------------------------------------------------------------------
# deterministic scores
# ---------------------------------------------------------------------------------------------


def test_rmse_mae_single_member_hand_values():
    ens = xr.DataArray([[1.0, 3.0], [3.0, 5.0]], dims=("member", "x"), attrs={"units": "K"})
    truth = xr.DataArray([2.0, 2.0], dims="x", attrs={"units": "K"})
    # ensemble mean (2, 4): errors (0, 2)
    assert float(metrics.rmse(ens, truth)) == pytest.approx(math.sqrt(2.0))
    assert float(metrics.mae(ens, truth)) == pytest.approx(1.0)
    # member 0 errors (-1, 1) -> 1; member 1 errors (1, 3) -> sqrt(5)
    assert float(metrics.single_member_rmse(ens, truth)) == pytest.approx((1 + math.sqrt(5)) / 2)


def test_rmse_without_member_dim_and_partial_reduction():
    rng = np.random.default_rng(1)
    ens, truth = _ensemble(rng)
    field = ens.isel(member=0, drop=True)
    expected = np.sqrt(((field - truth) ** 2).mean(("y", "x")))
    out = metrics.rmse(field, truth, dim=("y", "x"))
    assert out.dims == ("time",)
    np.testing.assert_allclose(out.values, expected.values)
    out_ens = metrics.rmse(ens, truth, dim="time")
    assert out_ens.dims == ("y", "x")
    np.testing.assert_allclose(
        out_ens.values, np.sqrt(((ens.mean("member") - truth) ** 2).mean("time")).values
    )


def test_alignment_tolerates_round_off_but_not_other_grids():
    rng = np.random.default_rng(2)
    ens, truth = _ensemble(rng)
    jittered = truth.assign_coords(x=truth.x * (1 + 1e-12))
    np.testing.assert_allclose(metrics.rmse(ens, jittered), metrics.rmse(ens, truth))
    shifted = truth.assign_coords(x=truth.x + 500.0)
    with pytest.raises(InputError, match="coordinate 'x'"):
        metrics.rmse(ens, shifted)


def test_errors_name_the_problem():
    rng = np.random.default_rng(3)
    ens, truth = _ensemble(rng)
    with pytest.raises(InputError, match="member dimension 'member'"):
        metrics.rmse(ens, truth, dim=("member", "x"))
    with pytest.raises(InputError, match="'nope'"):
        metrics.rmse(ens, truth, dim="nope")
    with pytest.raises(InputError, match="no member dimension 'ens'"):
        metrics.crps(ens, truth, member_dim="ens")
    with pytest.raises(InputError, match=r"truth .* has the member dimension"):
        metrics.crps(ens, ens)
    with pytest.raises(InputError, match="units"):
        metrics.rmse(ens, truth.assign_attrs(units="degC"))
    with pytest.raises(ValueError, match="estimator"):
        metrics.crps(ens, truth, estimator="qd")
    with pytest.raises(InputError, match="at least 2 members"):
        metrics.crps(ens.isel(member=[0]), truth)
    with pytest.raises(ValueError, match="seed"):
        metrics.rank_histogram(ens, truth, seed=-1)


# ---------------------------------------------------------------------------------------------
# CRPS
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("estimator", ["fair", "nrg"])
def test_crps_matches_hand_formula(estimator):
    rng = np.random.default_rng(4)
    ens, truth = _ensemble(rng, members=5)
    pointwise = _crps_by_hand(ens.values, truth.values, fair=estimator == "fair")
    out = metrics.crps(ens, truth, estimator=estimator, dim=[])
    assert out.dims == truth.dims
    np.testing.assert_allclose(out.values, pointwise, rtol=1e-12)
    total = metrics.crps(ens, truth, estimator=estimator)
    assert float(total) == pytest.approx(pointwise.mean(), rel=1e-12)
    assert total.attrs["estimator"] == estimator
    assert total.attrs["units"] == "K"
    per_time = metrics.crps(ens, truth, estimator=estimator, dim=("y", "x"))
    np.testing.assert_allclose(per_time.values, pointwise.mean(axis=(1, 2)), rtol=1e-12)


def test_crps_pwm_equals_fair_and_nrg_differs_by_the_spread_term():
    rng = np.random.default_rng(5)
    ens, truth = _ensemble(rng, members=6)
    fair = metrics.crps(ens, truth, dim=[])
    pwm = metrics.crps(ens, truth, dim=[], estimator="pwm")
    nrg = metrics.crps(ens, truth, dim=[], estimator="nrg")
    np.testing.assert_allclose(pwm.values, fair.values, rtol=1e-10, atol=1e-12)
    assert bool((nrg >= fair).all())
    # a perfect deterministic "ensemble" scores MAE = 0 with nrg
    same = xr.concat([truth, truth], dim="member")
    assert float(metrics.crps(same, truth, estimator="nrg")) == 0.0


@pytest.mark.parametrize("estimator", ["fair", "nrg", "pwm"])
def test_crps_matches_gaussian_closed_form(estimator):
    rng = np.random.default_rng(6)
    npts, m = 40, 500
    mu = rng.normal(size=npts)
    sigma = rng.uniform(0.5, 2.0, size=npts)
    y = rng.normal(size=npts) * 1.5
    members = mu + sigma * rng.standard_normal((m, npts))
    ens = xr.DataArray(members, dims=("member", "point"))
    truth = xr.DataArray(y, dims="point")
    out = metrics.crps(ens, truth, estimator=estimator, dim=[])
    exact = _gaussian_crps(mu, sigma, y)
    # Monte Carlo error of an M-member estimate: about sigma / sqrt(M) (from E|X - y|); 4 std
    assert np.all(np.abs(out.values - exact) < 4 * sigma / math.sqrt(m))
    assert float(metrics.crps(ens, truth, estimator=estimator)) == pytest.approx(
        exact.mean(), rel=0.02
    )


@pytest.mark.parametrize(("estimator", "tol"), [("nrg", 3e-4), ("fair", 1e-3), ("pwm", 1e-3)])
def test_crps_of_gaussian_quantile_ensemble_is_close_to_closed_form(estimator, tol):
    # members at the mid-point quantiles of N(mu, s): no sampling noise, O(1/M) discretisation
    m = 1000
    quantiles = np.array([statistics.NormalDist().inv_cdf((i + 0.5) / m) for i in range(m)])
    mu, s = 1.5, 2.0
    y = np.linspace(-6.0, 9.0, 7)
    ens = xr.DataArray(mu + s * quantiles[:, None] * np.ones(y.size), dims=("member", "point"))
    out = metrics.crps(ens, xr.DataArray(y, dims="point"), estimator=estimator, dim=[])
    np.testing.assert_allclose(out.values, _gaussian_crps(mu, s, y), atol=tol * s)


def test_crps_blocks_give_the_same_result(monkeypatch):
    rng = np.random.default_rng(7)
    ens, truth = _ensemble(rng, members=8)
    full = metrics.crps(ens, truth, dim=[])
    # three points per block
    monkeypatch.setattr(metrics.probabilistic, "_CRPS_BLOCK_ELEMENTS", 64 * 3)
    np.testing.assert_array_equal(metrics.crps(ens, truth, dim=[]).values, full.values)


def test_crps_float32_stays_float32():
    rng = np.random.default_rng(8)
    ens, truth = _ensemble(rng)
    out = metrics.crps(ens.astype("float32"), truth.astype("float32"), dim=[])
    assert out.dtype == np.float32


# ---------------------------------------------------------------------------------------------
# spread-skill ratio and rank histogram on synthetic ensembles
# ---------------------------------------------------------------------------------------------


def _synthetic(rng, spread, members=10, npts=20000):
    """Truth and members: centre ~ N(0, 1) per point, truth and members centre + N(0, s)."""
    centre = rng.normal(size=npts)
    truth = centre + rng.normal(size=npts)
    ens = centre + spread * rng.normal(size=(members, npts))
    return xr.DataArray(ens, dims=("member", "point")), xr.DataArray(truth, dims="point")


def test_spread_skill_ratio_calibrated_and_under_dispersive():
    rng = np.random.default_rng(9)
    ens, truth = _synthetic(rng, spread=1.0)
    ssr = metrics.spread_skill_ratio(ens, truth)
    assert float(ssr) == pytest.approx(1.0, abs=0.03)
    assert ssr.attrs["units"] == "1"
    # without the sqrt((M+1)/M) correction the ratio would be about sqrt(10/11) = 0.953
    under, truth2 = _synthetic(rng, spread=0.5)
    assert float(metrics.spread_skill_ratio(under, truth2)) < 0.6
    over, truth3 = _synthetic(rng, spread=2.0)
    assert float(metrics.spread_skill_ratio(over, truth3)) > 1.5


def test_spread_skill_ratio_hand_value():
    ens = xr.DataArray([[0.0, 0.0], [2.0, 2.0]], dims=("member", "x"))
    truth = xr.DataArray([0.0, 2.0], dims="x")
    # var (ddof=1) = 2 everywhere, ensemble mean error 1 -> sqrt(3/2) * sqrt(2) / 1
    assert float(metrics.spread_skill_ratio(ens, truth)) == pytest.approx(math.sqrt(3.0))


def test_rank_histogram_flat_for_calibrated_u_for_under_dispersive():
    rng = np.random.default_rng(10)
    ens, truth = _synthetic(rng, spread=1.0, members=9)
    hist = metrics.rank_histogram(ens, truth)
    assert hist.dims == ("rank",)
    np.testing.assert_array_equal(hist["rank"].values, np.arange(10))
    assert int(hist.sum()) == truth.size
    expected = truth.size / 10
    # binomial std of a bin is ~ sqrt(2000 * 0.9) = 42: allow 4 sigma
    assert np.all(np.abs(hist.values - expected) < 4 * math.sqrt(expected * 0.9))
    under, truth2 = _synthetic(rng, spread=0.4, members=9)
    u = metrics.rank_histogram(under, truth2).values
    middle = u[3:7].mean()
    assert u[0] > 3 * middle
    assert u[-1] > 3 * middle


def test_rank_histogram_ties_seeded_and_conserving():
    # members all equal to the truth: every rank 0..M is equally likely
    truth = xr.DataArray(np.zeros(6000), dims="point")
    ens = xr.DataArray(np.zeros((5, 6000)), dims=("member", "point"))
    hist = metrics.rank_histogram(ens, truth, seed=3)
    assert int(hist.sum()) == 6000
    assert np.all(np.abs(hist.values - 1000) < 150)
    again = metrics.rank_histogram(ens, truth, seed=3)
    np.testing.assert_array_equal(hist.values, again.values)
    other = metrics.rank_histogram(ens, truth, seed=4)
    assert not np.array_equal(hist.values, other.values)
    # one truth tied with two of three members, one member below: ranks 1, 2 or 3 only
    ens2 = xr.DataArray([[-1.0], [0.0], [0.0]], dims=("member", "point"))
    truth2 = xr.DataArray([0.0], dims="point")
    h2 = metrics.rank_histogram(ens2, truth2).values
    assert h2.sum() == 1
    assert h2[0] == 0


def test_rank_histogram_keeps_dims_and_skips_nan():
    rng = np.random.default_rng(11)
    ens, truth = _ensemble(rng, members=4)
    truth = truth.where(truth.x > 0)  # NaN in the first column
    hist = metrics.rank_histogram(ens, truth, dim=("y", "x"))
    assert hist.dims == ("time", "rank")
    np.testing.assert_array_equal(hist.sum("rank").values, np.full(3, 5 * 5))
    np.testing.assert_array_equal(hist.time.values, truth.time.values)


# ---------------------------------------------------------------------------------------------
# power spectra
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("mode_y", "mode_x"), [(0, 3), (5, 0), (3, 4)])
def test_power_spectrum_single_mode_and_parseval(mode_y, mode_x):
    n, dx = 64, 1000.0
    j, i = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    amp = 2.5
    data = amp * np.cos(2 * np.pi * (mode_y * j + mode_x * i) / n)
    field = _field(data=data)
    ps = metrics.power_spectrum(field)
    dk = 2 * np.pi / (n * dx)
    assert ps.dims == ("wavenumber",)
    np.testing.assert_allclose(ps.wavenumber.values[:3], [0.0, dk, 2 * dk])
    assert ps.wavenumber.attrs["units"] == "m-1"
    radius = math.hypot(mode_y, mode_x)
    expected_bin = round(radius)
    peak = int(ps.argmax("wavenumber"))
    assert peak == expected_bin
    total = float((ps * dk).sum())
    assert total == pytest.approx(amp**2 / 2, rel=1e-10)  # Parseval: mean of f**2
    assert float(ps[peak] * dk) == pytest.approx(amp**2 / 2, rel=1e-10)


def test_power_spectrum_parseval_random_nonsquare_and_cycles():
    rng = np.random.default_rng(12)
    data = rng.normal(loc=1.0, size=(2, 32, 48))
    field = xr.DataArray(
        data,
        dims=("time", "y", "x"),
        coords={"y": 2000.0 * np.arange(32), "x": 1500.0 * np.arange(48)},
        attrs={"units": "m s-1"},
    )
    for kind, scale in (("angular", 2 * np.pi), ("cycles", 1.0)):
        ps = metrics.power_spectrum(field, wavenumber=kind)
        dk = ps.wavenumber.attrs["fundamental_wavenumber"]
        assert dk == pytest.approx(scale * max(1 / (32 * 2000.0), 1 / (48 * 1500.0)))
        assert ps.dims == ("time", "wavenumber")
        np.testing.assert_allclose((ps * dk).sum("wavenumber").values, (data**2).mean(axis=(1, 2)))
    averaged = metrics.power_spectrum(field, mean_over="time")
    assert averaged.dims == ("wavenumber",)
    np.testing.assert_allclose(averaged.values, metrics.power_spectrum(field).mean("time").values)


def test_power_spectrum_units_are_udunits_parseable():
    cf_units = pytest.importorskip("cf_xarray.units")
    field = _field(data=np.ones((8, 8)), units="m s-1")
    ps = metrics.power_spectrum(field)
    assert ps.attrs["units"] == "(m s-1)^2 m"
    assert cf_units.units(ps.attrs["units"]) == cf_units.units("m^3 s^-2")
    assert cf_units.units(ps.wavenumber.attrs["units"]) == cf_units.units("1/m")


def test_power_spectrum_refuses_irregular_grid():
    field = _field(ny=8, nx=8)
    irregular = field.assign_coords(x=np.r_[0.0, 1.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0])
    with pytest.raises(InputError, match="evenly spaced"):
        metrics.power_spectrum(irregular)
    with pytest.raises(InputError, match="spatial dimension"):
        metrics.power_spectrum(field, dims=("lat", "lon"))


def test_spectrum_error_by_octave():
    rng = np.random.default_rng(13)
    truth = _field(data=rng.normal(size=(64, 64)))
    err = metrics.spectrum_error_by_octave(truth, truth)
    assert err.dims == ("octave",)
    np.testing.assert_array_equal(err.octave_lower.values, [1, 2, 4, 8, 16])
    np.testing.assert_array_equal(err.octave_upper.values, [2, 4, 8, 16, 32])
    np.testing.assert_allclose(err.values, 0.0, atol=1e-12)
    assert err.attrs["units"] == "1"
    # an ensemble of copies of the truth is perfect too; half amplitude is -75 % power
    ens = xr.concat([truth, truth, truth], dim="member")
    np.testing.assert_allclose(metrics.spectrum_error_by_octave(ens, truth).values, 0.0, atol=1e-12)
    np.testing.assert_allclose(
        metrics.spectrum_error_by_octave(0.5 * truth, truth).values, -0.75, atol=1e-12
    )
    # smoothing removes power at the smallest scales only
    smooth = truth.rolling(x=3, center=True, min_periods=1).mean()
    e = metrics.spectrum_error_by_octave(smooth, truth).values
    assert e[-1] < -0.5
    assert abs(e[0]) < 0.05


def _draws(rng, members=8, samples=48, n=32):
    """``members`` + 1 exchangeable fields per sample: the last one plays the truth."""
    data = rng.normal(size=(members + 1, samples, n, n))
    draws = xr.DataArray(
        data,
        dims=("member", "sample", "y", "x"),
        coords={"sample": np.arange(samples), "y": 500.0 * np.arange(n), "x": 500.0 * np.arange(n)},
        name="vort",
        attrs={"units": "s-1"},
    )
    return draws.isel(member=slice(0, members)), draws.isel(member=members, drop=True)


def test_spread_skill_by_octave_is_one_at_every_scale_for_exchangeable_draws():
    ens, truth = _draws(np.random.default_rng(21))
    ssr = metrics.spread_skill_by_octave(ens, truth)
    assert ssr.dims == ("octave",) and ssr.attrs["units"] == "1"
    np.testing.assert_array_equal(ssr.octave_lower.values, [1, 2, 4, 8])
    np.testing.assert_array_equal(ssr.octave_upper.values, [2, 4, 8, 16])
    np.testing.assert_allclose(ssr.values, 1.0, atol=0.08)
    # the octaves carry the spread and error of the whole field (Parseval): they bracket the
    # overall ratio
    total = float(metrics.spread_skill_ratio(ens, truth))
    assert ssr.values.min() - 0.02 < total < ssr.values.max() + 0.02


def test_spread_skill_by_octave_finds_the_scales_without_spread():
    ens, truth = _draws(np.random.default_rng(22))
    mean = ens.mean("member")
    # members that differ only at large scales (|k| below 4 fundamental wavenumbers)
    k = np.fft.fftfreq(32) * 32
    keep = np.rint(np.hypot(k[:, None], k[None, :])) < 4  # the metric's radial bins
    smooth = np.fft.ifft2(np.fft.fft2((ens - mean).values) * keep).real
    narrow = mean + ens.copy(data=smooth)
    ssr = metrics.spread_skill_by_octave(narrow, truth).values
    assert ssr[:2].min() > 0.5  # octaves [1, 2) and [2, 4): spread kept
    assert ssr[2:].max() < 0.05  # [4, 8) and [8, 16]: none left, while the error is there


def test_spread_skill_by_octave_pairs_the_truth_by_label():
    ens, truth = _draws(np.random.default_rng(23), samples=6)
    shuffled = truth.isel(sample=[3, 0, 5, 1, 4, 2])
    xr.testing.assert_allclose(
        metrics.spread_skill_by_octave(ens, shuffled), metrics.spread_skill_by_octave(ens, truth)
    )
    xr.testing.assert_allclose(metrics.rmse(ens, shuffled), metrics.rmse(ens, truth))
    with pytest.raises(InputError, match="coordinate 'sample'"):
        metrics.spread_skill_by_octave(ens, truth.assign_coords(sample=truth.sample + 10))
    with pytest.raises(InputError, match="units"):
        metrics.spread_skill_by_octave(ens, truth.assign_attrs(units="K"))
    with pytest.raises(InputError, match="at least 2 members"):
        metrics.spread_skill_by_octave(ens.isel(member=[0]), truth)
    with pytest.raises(InputError, match="member dimension"):
        metrics.spread_skill_by_octave(ens, ens)


# ---------------------------------------------------------------------------------------------
# xarray behaviour: Dataset, dask, units, no mutation
# ---------------------------------------------------------------------------------------------


def _all_scores(ens, truth, field_ens, field_truth):
    return {
        "rmse": metrics.rmse(ens, truth),
        "mae": metrics.mae(ens, truth, dim="time"),
        "single_member_rmse": metrics.single_member_rmse(ens, truth),
        "crps": metrics.crps(ens, truth, dim=("y", "x")),
        "crps_nrg": metrics.crps(ens, truth, estimator="nrg"),
        "ssr": metrics.spread_skill_ratio(ens, truth),
        "rank": metrics.rank_histogram(ens, truth, dim=("y", "x")),
        "spectrum": metrics.power_spectrum(field_ens, mean_over="member"),
        "octave": metrics.spectrum_error_by_octave(field_ens, field_truth),
        "ssr_octave": metrics.spread_skill_by_octave(field_ens, field_truth),
    }


def _spectral_pair(rng, members=3):
    truth = _field(ny=16, nx=16, data=rng.normal(size=(16, 16)))
    ens = xr.concat([truth + 0.3 * rng.normal(size=(16, 16)) for _ in range(members)], "member")
    return ens, truth


def test_dask_matches_numpy_and_stays_lazy():
    rng = np.random.default_rng(14)
    ens, truth = _ensemble(rng, members=5, time=4, ny=6, nx=8)
    ens = ens.round(1)  # create ties for the rank histogram
    truth = truth.round(1)
    sens, struth = _spectral_pair(rng)
    eager = _all_scores(ens, truth, sens, struth)
    lazy_inputs = (
        ens.chunk({"member": 2, "time": 1, "y": 3}),
        truth.chunk({"time": 2, "x": 4}),
        sens.chunk({"member": 1, "y": 8}),
        struth.chunk({"x": 8}),
    )
    with dask.config.set(scheduler=_forbid_compute):
        lazy = _all_scores(*lazy_inputs)
    for key, result in lazy.items():
        assert dask.is_dask_collection(result.data), key
    for key, result in lazy.items():
        computed = result.compute(scheduler="sync")
        xr.testing.assert_allclose(computed, eager[key], rtol=1e-12)
        assert computed.attrs == eager[key].attrs, key


def test_rank_histogram_independent_of_chunking():
    rng = np.random.default_rng(15)
    ens, truth = _ensemble(rng, members=4, time=6, ny=8, nx=8)
    ens, truth = ens.round(0), truth.round(0)  # many ties
    ref = metrics.rank_histogram(ens, truth, dim=("y", "x"), seed=7)
    for chunks in ({"time": 1}, {"time": 4, "x": 3}, {"y": 5}):
        out = metrics.rank_histogram(ens.chunk(chunks), truth.chunk(chunks), dim=("y", "x"), seed=7)
        np.testing.assert_array_equal(out.values, ref.values)


def test_dataset_is_scored_per_variable():
    rng = np.random.default_rng(16)
    e1, t1 = _ensemble(rng, name="t2m")
    e2, t2 = _ensemble(rng, name="u10m", units="m s-1")
    ens = xr.Dataset({"t2m": e1, "u10m": e2})
    truth = xr.Dataset({"t2m": t1, "u10m": t2})
    out = metrics.crps(ens, truth)
    assert set(out.data_vars) == {"t2m", "u10m"}
    assert float(out["u10m"]) == float(metrics.crps(e2, t2))
    assert out["u10m"].attrs["units"] == "m s-1"
    assert out["t2m"].attrs["units"] == "K"
    hist = metrics.rank_histogram(ens, truth)
    assert hist["t2m"].dims == ("rank",)
    spectra = metrics.power_spectrum(ens.assign(scalar=3.0), dims=("y", "x"), mean_over="member")
    assert set(spectra.data_vars) == {"t2m", "u10m"}
    assert spectra["t2m"].dims == ("time", "wavenumber")
    with pytest.raises(InputError, match="u10m"):
        metrics.rmse(ens, truth[["t2m"]])
    with pytest.raises(TypeError):
        metrics.rmse(ens, t1)


def test_units_propagate():
    rng = np.random.default_rng(17)
    ens, truth = _ensemble(rng, units="m s-1")
    for func in (metrics.rmse, metrics.mae, metrics.single_member_rmse, metrics.crps):
        assert func(ens, truth).attrs["units"] == "m s-1", func.__name__
    for func in (metrics.spread_skill_ratio, metrics.rank_histogram):
        assert func(ens, truth).attrs["units"] == "1", func.__name__
    # truth without units: the ensemble's are used
    assert metrics.rmse(ens, truth.drop_attrs()).attrs["units"] == "m s-1"


def test_inputs_are_not_mutated():
    rng = np.random.default_rng(18)
    ens, truth = _ensemble(rng)
    sens, struth = _spectral_pair(rng)
    inputs = (ens, truth, sens, struth)
    before = [x.copy(deep=True) for x in inputs]
    _all_scores(*inputs)
    for old, new in zip(before, inputs, strict=True):
        xr.testing.assert_identical(old, new)


def test_lazy_crps_with_dask_array_in_truth_only():
    rng = np.random.default_rng(19)
    ens, truth = _ensemble(rng)
    lazy_truth = truth.copy(data=dsa.from_array(truth.values, chunks=(1, 5, 6)))
    out = metrics.crps(ens, lazy_truth, dim=[])
    assert dask.is_dask_collection(out.data)
    np.testing.assert_allclose(out.values, metrics.crps(ens, truth, dim=[]).values)
