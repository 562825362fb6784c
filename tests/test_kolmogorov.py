from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
import torch

from xsfm.datasets.kolmogorov_data import _generators, kolmogorov
from xsfm.datasets.kolmogorov_grid import resample, taylor_green_vorticity, velocity_from_vorticity
from xsfm.datasets.kolmogorov_lag_rmse import _bilinear_upsample, misalignment_table
from xsfm.datasets.kolmogorov_misaligned import kolmogorov_pairs
from xsfm.datasets.kolmogorov_solver import KolmogorovSolver

SMALL_PAIRS = {
    "samples": 6,
    "trajectories": 3,
    "fine_size": 32,
    "coarse_size": 16,
    "sim_size": 48,
    "spinup_size": 32,
    "spinup": 2.0,
    "settle": 1.0,
}


def _spectral_divergence(u: np.ndarray, v: np.ndarray, length: float) -> np.ndarray:
    n = u.shape[-1]
    k = 2 * math.pi / length * np.fft.fftfreq(n, 1.0 / n)
    div = 1j * k[None, :] * np.fft.fft2(u) + 1j * k[:, None] * np.fft.fft2(v)
    return np.real(np.fft.ifft2(div))


def _spectral_curl(u: np.ndarray, v: np.ndarray, length: float) -> np.ndarray:
    n = u.shape[-1]
    k = 2 * math.pi / length * np.fft.fftfreq(n, 1.0 / n)
    curl = 1j * k[None, :] * np.fft.fft2(v) - 1j * k[:, None] * np.fft.fft2(u)
    return np.real(np.fft.ifft2(curl))


# ------------------------------------------------------------------------------ exact solutions
@pytest.mark.parametrize(("mode", "drag"), [(1, 0.0), (2, 0.1)])
def test_taylor_green_decay_matches_exact_solution(mode: int, drag: float) -> None:
    solver = KolmogorovSolver(
        64, viscosity=5e-3, drag=drag, forcing_amplitude=0.0, dtype="float64", dt=0.01
    )
    w0 = taylor_green_vorticity(64, mode=mode, speed=1.5, dtype=torch.float64)
    t_end = 5.0  # 500 steps
    state = solver.advance(solver.to_spectral(w0), t_end)
    decay = solver.taylor_green_decay(t_end, mode=mode)
    kappa = 2 * math.pi * mode / solver.length
    assert decay == pytest.approx(math.exp(-(2 * 5e-3 * kappa**2 + drag) * t_end))
    exact = w0 * decay
    w = solver.to_physical(state)
    assert float((w - exact).norm() / exact.norm()) < 1e-5
    # velocities too: u = U sin(kx) cos(ky), v = -U cos(kx) sin(ky)
    x = (torch.arange(64, dtype=torch.float64) + 0.5) * solver.dx
    u_exact = 1.5 * decay * torch.sin(kappa * x)[None, :] * torch.cos(kappa * x)[:, None]
    u, v = solver.velocity(state)
    assert float((u - u_exact).norm() / u_exact.norm()) < 1e-5
    assert float((v + u_exact.T).norm() / u_exact.norm()) < 1e-5
    # energy decays at twice the rate of the fields
    e0 = solver.energy(solver.to_spectral(w0))
    assert float(solver.energy(state) / e0) == pytest.approx(decay**2, rel=1e-8)


def test_laminar_kolmogorov_flow_matches_exact_solution() -> None:
    # at low Reynolds number the forced flow from rest stays laminar: checks sign and size of the
    # forcing
    solver = KolmogorovSolver(32, viscosity=0.05, drag=0.1, dtype="float64", dt=0.02)
    state = torch.zeros(2 * solver.max_mode + 1, solver.max_mode + 1, dtype=torch.complex128)
    now = 0.0
    for t in (0.5, 3.0):
        state, now = solver.advance(state, t - now), t
        exact = solver.laminar_vorticity(t)
        error = float((solver.to_physical(state) - exact).norm() / exact.norm())
        assert error < 1e-6, (t, error)
    # the velocity is the Kolmogorov profile u = A sin(k_f y) (1 - e^{-rt}) / r along x
    u, v = solver.velocity(state)
    kf = 4.0
    rate = 0.05 * kf**2 + 0.1
    y = (torch.arange(32, dtype=torch.float64) + 0.5) * solver.dx
    profile = torch.sin(kf * y) * (1 - math.exp(-rate * 3.0)) / rate
    assert torch.allclose(u, profile[:, None].expand(32, 32), atol=1e-6)
    assert float(v.abs().max()) < 1e-10


def test_time_stepper_is_fourth_order() -> None:
    solver = KolmogorovSolver(32, viscosity=0.01, dtype="float64", dt=0.01)
    state = solver.advance(solver.random_state(_generators(3, "train", 2)), 2.0)
    results = {}
    for dt in (0.04, 0.02, 0.01, 0.005):
        stepper = KolmogorovSolver(32, viscosity=0.01, dtype="float64", dt=dt)
        results[dt] = stepper.advance(state, 0.8)
    errors = [float((results[dt] - results[0.005]).abs().max()) for dt in (0.04, 0.02)]
    order = math.log2(errors[0] / errors[1])
    assert 3.5 < order < 4.6, (errors, order)


def test_inviscid_unforced_flow_conserves_energy_and_enstrophy() -> None:
    solver = KolmogorovSolver(
        48, viscosity=0.0, drag=0.0, forcing_amplitude=0.0, dtype="float64", dt=0.005
    )
    state = solver.random_state(_generators(1, "train", 2))
    e0, z0 = solver.energy(state), solver.enstrophy(state)
    later = solver.advance(state, 1.0)
    assert float((later - state).abs().max()) > 1.0  # the flow did evolve
    assert torch.allclose(solver.energy(later), e0, rtol=1e-6)
    assert torch.allclose(solver.enstrophy(later), z0, rtol=1e-6)


# ------------------------------------------------------------------------------ forced turbulence
def test_forced_turbulence_is_statistically_stationary() -> None:
    solver = KolmogorovSolver(64, dtype="float32")
    state = solver.advance(solver.random_state(_generators(0, "train", 4)), 20.0)
    energy = []
    for _ in range(64):
        state = solver.advance(state, 0.5)
        energy.append(solver.energy(state).mean().item())
    energy = np.asarray(energy)
    first, second = energy[:32].mean(), energy[32:].mean()
    assert abs(second - first) / first < 0.1, (first, second)
    slope = np.polyfit(np.arange(energy.size) * 0.5, energy, 1)[0]
    assert abs(slope) * 32 < 0.1 * energy.mean()  # trend over the window < 10 % of the mean
    # turbulent, not laminar and not decaying: energy well below the laminar state, and fluctuating
    rate = 5e-3 * 4.0**2 + 0.1  # nu k_f^2 + alpha
    laminar_energy = 0.25 * (1.0 / rate) ** 2
    assert energy.min() > 0.3
    assert energy.max() < 0.5 * laminar_energy
    assert energy.std() / energy.mean() > 0.01
    u, v = solver.velocity(state)
    assert float(torch.sqrt(u**2 + v**2).max()) * solver.dt / solver.dx < 1.5


# ------------------------------------------------------------------------------------ grids
def test_resample_is_exact_for_band_limited_fields_on_cell_centres() -> None:
    fine = taylor_green_vorticity(64, mode=3, dtype=torch.float64)
    coarse = resample(fine, 16)
    assert torch.allclose(coarse, taylor_green_vorticity(16, mode=3, dtype=torch.float64))
    assert torch.allclose(resample(coarse, 64), fine)
    # modes beyond the cut-off are removed
    assert float(resample(fine, 16, max_mode=2).abs().max()) < 1e-12


def test_bilinear_upsampling_maps_coarse_onto_fine_geometry() -> None:
    fine = taylor_green_vorticity(64, dtype=torch.float64)
    coarse = resample(fine, 16)
    up = _bilinear_upsample(coarse, 64)
    error = float((up - fine).norm() / fine.norm())
    shifted = float((torch.roll(up, 1, dims=-1) - fine).norm() / fine.norm())
    assert error < 0.03 < shifted


def test_velocity_from_vorticity_is_divergence_free_and_consistent() -> None:
    w = torch.randn(2, 32, 32, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    w -= w.mean((-2, -1), keepdim=True)
    u, v = velocity_from_vorticity(w, length=3.0)
    div = _spectral_divergence(u.numpy(), v.numpy(), 3.0)
    assert np.abs(div).max() < 1e-10 * np.abs(u.numpy()).max()


# ------------------------------------------------------------------------------ datasets
def test_kolmogorov_dataset_has_cf_metadata() -> None:
    ds = kolmogorov(samples=2, size=16, times=3, interval=0.5, spinup=1.0, seed=4)
    assert ds.vorticity.dims == ("sample", "time", "y", "x")
    assert ds.vorticity.shape == (2, 3, 16, 16)
    assert ds.vorticity.attrs["standard_name"] == "atmosphere_relative_vorticity"
    assert ds.vorticity.attrs["units"] == "s-1"
    assert ds.u.attrs == {
        "standard_name": "x_wind",
        "long_name": "velocity along x",
        "units": "m s-1",
    }
    assert ds.v.attrs["standard_name"] == "y_wind"
    assert ds.v.attrs["units"] == "m s-1"
    for name, axis in (("x", "X"), ("y", "Y")):
        assert ds[name].attrs["standard_name"] == f"projection_{name}_coordinate"
        assert ds[name].attrs["units"] == "m"
        assert ds[name].attrs["axis"] == axis
    np.testing.assert_allclose(ds.x.values, (np.arange(16) + 0.5) * 2 * math.pi / 16)
    assert ds.time.attrs["units"] == "s"
    np.testing.assert_allclose(ds.time.values, [1.0, 1.5, 2.0])
    assert ds.attrs["seed"] == 4
    assert ds.attrs["viscosity"] == 5e-3
    pytest.importorskip("cf_xarray")
    assert ds.cf.axes["X"] == ["x"]
    assert ds.cf.axes["Y"] == ["y"]
    assert ds.attrs["forcing_wavenumber"] == 4
    assert np.isfinite(ds.vorticity.values).all()


def test_pairs_structure_attrs_and_alignment() -> None:
    coarse, fine = kolmogorov_pairs(tau=0.5, seed=2, **SMALL_PAIRS)
    assert coarse.vorticity.dims == fine.vorticity.dims == ("sample", "y", "x")
    assert coarse.vorticity.shape == (6, 16, 16)
    assert fine.vorticity.shape == (6, 32, 32)
    np.testing.assert_array_equal(coarse.sample, fine.sample)
    np.testing.assert_array_equal(coarse.time, fine.time)
    np.testing.assert_array_equal(coarse.trajectory, fine.trajectory)
    # time-major order: first the first snapshot of every trajectory
    np.testing.assert_array_equal(fine.trajectory.values, [0, 1, 2, 0, 1, 2])
    np.testing.assert_allclose(fine.time.values, [3.0, 3.0, 3.0, 3.5, 3.5, 3.5])
    for ds in (coarse, fine):
        assert ds.attrs["tau"] == 0.5
        assert ds.attrs["tau_units"] == "s"
        assert ds.attrs["seed"] == 2
        assert ds.attrs["sim_size"] == 48
        assert ds.u.attrs["units"] == "m s-1"
        assert ds.x.attrs["standard_name"] == "projection_x_coordinate"
    # both grids are cell centres of the same square
    np.testing.assert_allclose(coarse.x.values, (np.arange(16) + 0.5) * 2 * math.pi / 16)
    np.testing.assert_allclose(fine.x.values, (np.arange(32) + 0.5) * 2 * math.pi / 32)


def test_zero_lag_is_pure_coarsening_of_the_truth() -> None:
    coarse, fine = kolmogorov_pairs(tau=0.0, seed=5, dtype="float64", **SMALL_PAIRS)
    truth = torch.from_numpy(fine.vorticity.values)
    expected = resample(truth, 16, max_mode=(16 - 1) // 3)
    np.testing.assert_allclose(coarse.vorticity.values, expected.numpy(), atol=1e-9)


def test_pair_velocities_are_divergence_free_and_match_vorticity() -> None:
    coarse, fine = kolmogorov_pairs(tau=0.5, seed=1, **SMALL_PAIRS)
    length = float(fine.attrs["length"])
    for ds in (coarse, fine):
        u, v, w = (ds[name].values.astype(np.float64) for name in ("u", "v", "vorticity"))
        scale = np.abs(w).max()
        assert np.abs(_spectral_divergence(u, v, length)).max() < 1e-5 * scale
        assert np.abs(_spectral_curl(u, v, length) - w).max() < 1e-4 * scale


def test_pairs_are_deterministic_and_seeds_differ() -> None:
    kwargs = {**SMALL_PAIRS, "samples": 2, "trajectories": 2}
    a_coarse, a_fine = kolmogorov_pairs(tau=0.5, seed=7, **kwargs)
    b_coarse, b_fine = kolmogorov_pairs(tau=0.5, seed=7, **kwargs)
    np.testing.assert_array_equal(a_fine.vorticity.values, b_fine.vorticity.values)
    np.testing.assert_array_equal(a_coarse.vorticity.values, b_coarse.vorticity.values)
    _, c_fine = kolmogorov_pairs(tau=0.5, seed=8, **kwargs)
    _, d_fine = kolmogorov_pairs(tau=0.5, seed=7, split="test", **kwargs)
    for other in (c_fine, d_fine):
        diff = np.abs(other.vorticity.values - a_fine.vorticity.values).mean()
        assert diff > 0.3 * np.abs(a_fine.vorticity.values).mean()


def test_truth_does_not_depend_on_tau() -> None:
    _, fine_a = kolmogorov_pairs(tau=0.0, seed=3, **SMALL_PAIRS)
    for tau in (0.25, 1.0):
        _, fine_b = kolmogorov_pairs(tau=tau, seed=3, **SMALL_PAIRS)
        np.testing.assert_array_equal(fine_a.vorticity.values, fine_b.vorticity.values)


def test_pairs_cache_round_trip(tmp_path) -> None:
    from xsfm.datasets.kolmogorov_misaligned import _netcdf_engine

    if _netcdf_engine() is None:
        pytest.skip("needs h5netcdf with h5py, or netCDF4")
    kwargs = {**SMALL_PAIRS, "samples": 2, "trajectories": 2}
    coarse, fine = kolmogorov_pairs(tau=0.5, seed=0, cache_dir=tmp_path, **kwargs)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert len(files) == 2
    assert all(name.endswith(".nc") for name in files)
    again_coarse, again_fine = kolmogorov_pairs(tau=0.5, seed=0, cache_dir=tmp_path, **kwargs)
    np.testing.assert_array_equal(again_fine.vorticity.values, fine.vorticity.values)
    np.testing.assert_array_equal(again_coarse.u.values, coarse.u.values)
    assert again_coarse.attrs["tau"] == 0.5
    assert again_fine.vorticity.attrs["units"] == "s-1"
    # a different parameter is a different cache entry
    kolmogorov_pairs(tau=1.0, seed=0, cache_dir=tmp_path, **kwargs)
    assert len(list(tmp_path.iterdir())) == 4


def test_invalid_arguments_are_reported() -> None:
    with pytest.raises(ValueError, match="settle"):
        kolmogorov_pairs(tau=3.0, **SMALL_PAIRS)
    with pytest.raises(ValueError, match="forcing_wavenumber"):
        KolmogorovSolver(8, forcing_wavenumber=4)
    with pytest.raises(ValueError, match="split"):
        kolmogorov_pairs(tau=0.0, split="validation", **SMALL_PAIRS)  # type: ignore[arg-type]


def test_blow_up_is_retried_with_a_shorter_step() -> None:
    base = KolmogorovSolver(32, dtype="float64")
    state = base.advance(base.random_state(_generators(0, "train", 2)), 5.0)
    with pytest.raises(FloatingPointError):
        KolmogorovSolver(32, dtype="float64", dt=0.2).advance(state, 5.0, retries=0)
    retried = KolmogorovSolver(32, dtype="float64", dt=0.2).advance(state, 5.0)
    direct = KolmogorovSolver(32, dtype="float64", dt=0.1).advance(state, 5.0)
    assert torch.equal(retried, direct)


def test_blow_up_is_detected() -> None:
    solver = KolmogorovSolver(32, dt=1.0)
    state = solver.random_state(_generators(0, "train", 1))
    with pytest.raises(FloatingPointError, match="dt"):
        solver.advance(state, 20.0)


# ------------------------------------------------------------------------------ misalignment
def test_misalignment_grows_with_tau() -> None:
    table = misalignment_table((0.0, 0.5, 1.0, 2.0), samples=8, trajectories=4, seed=0)
    rmse = table.rmse.values
    assert np.all(np.diff(rmse) > 0), rmse
    assert rmse[-1] > 1.3 * rmse[0], rmse
    assert table.rmse.attrs["units"] == "s-1"
    band = table.coarse_rmse.values
    assert band[0] < 1e-5 * table.attrs["truth_rms_vorticity"]
    assert np.all(np.diff(band) > 0), band


def test_importing_datasets_does_not_import_torch() -> None:
    code = (
        "import sys, xsfm.datasets; assert 'torch' not in sys.modules; "
        "from xsfm.datasets import kolmogorov, kolmogorov_pairs; "
        "import xsfm.datasets.kolmogorov_solver as km; "
        "assert callable(kolmogorov) and callable(kolmogorov_pairs); "
        "assert km.KolmogorovSolver and xsfm.datasets.kolmogorov is kolmogorov; "
        "import types; assert isinstance(kolmogorov, types.FunctionType); "
        "ds = xsfm.datasets.kolmogorov(samples=1, size=16, times=1, spinup=0.1); "
        "assert ds.vorticity.shape == (1, 1, 16, 16)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
