"""Kolmogorov-flow trajectories as CF-annotated Datasets (:func:`kolmogorov`).

Also the pieces the misaligned pairs share: seeded initial states per trajectory and split, spin-up
on a coarser grid, and the CF variables and coordinates of the output.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch
import xarray as xr

from xsfm.datasets.kolmogorov_grid import resample, velocity_from_vorticity
from xsfm.datasets.kolmogorov_solver import DEFAULTS, KolmogorovSolver

__all__ = ["kolmogorov"]

_SPLITS = {"train": 0, "test": 1}

_VARIABLE_ATTRS: dict[str, dict[str, str]] = {
    "vorticity": {
        "standard_name": "atmosphere_relative_vorticity",
        "long_name": "relative vorticity",
        "units": "s-1",
    },
    "u": {"standard_name": "x_wind", "long_name": "velocity along x", "units": "m s-1"},
    "v": {"standard_name": "y_wind", "long_name": "velocity along y", "units": "m s-1"},
}


def _grid_coords(size: int, length: float) -> dict[str, xr.Variable]:
    centres = (np.arange(size) + 0.5) * length / size
    coords = {}
    for name, axis in (("x", "X"), ("y", "Y")):
        coords[name] = xr.Variable(
            name,
            centres,
            {
                "standard_name": f"projection_{name}_coordinate",
                "long_name": f"{name} of cell centre",
                "units": "m",
                "axis": axis,
            },
        )
    return coords


def _fields(
    vorticity: torch.Tensor, length: float, dims: tuple[str, ...]
) -> dict[str, xr.Variable]:
    flat = vorticity.reshape(-1, *vorticity.shape[-2:])
    parts = [velocity_from_vorticity(chunk, length) for chunk in flat.split(256)]  # bounded memory
    u = torch.cat([p[0] for p in parts]).reshape(vorticity.shape)
    v = torch.cat([p[1] for p in parts]).reshape(vorticity.shape)
    out = {}
    for name, data in (("vorticity", vorticity), ("u", u), ("v", v)):
        out[name] = xr.Variable(dims, data.cpu().numpy(), dict(_VARIABLE_ATTRS[name]))
    return out


def _time_attrs(long_name: str) -> dict[str, str]:
    return {"long_name": long_name, "units": "s", "axis": "T"}


def _generators(seed: int, split: str, count: int) -> list[torch.Generator]:
    if split not in _SPLITS:
        raise ValueError(f"split must be one of {sorted(_SPLITS)}, got {split!r}")
    gens = []
    for trajectory in range(count):
        state = np.random.SeedSequence([int(seed), _SPLITS[split], trajectory]).generate_state(2)
        g = torch.Generator()
        g.manual_seed(int((int(state[0]) << 31) ^ int(state[1])) & ((1 << 63) - 1))
        gens.append(g)
    return gens


def _spun_up(
    solver: KolmogorovSolver,
    trajectories: int,
    seed: int,
    split: str,
    spinup: float,
    spinup_size: int,
    physics: dict[str, Any],
) -> torch.Tensor:
    """States of ``solver`` after ``spinup`` s from random vorticity, spun up on a coarser grid."""
    gens = _generators(seed, split, trajectories)
    if spinup_size >= solver.size or spinup <= 0:
        return solver.advance(solver.random_state(gens), max(spinup, 0.0))
    coarse = KolmogorovSolver(spinup_size, dtype=solver.dtype, device=solver.device, **physics)
    state = coarse.advance(coarse.random_state(gens), spinup)
    return solver.to_spectral(resample(coarse.to_physical(state), solver.size).to(solver.dtype))


def kolmogorov(
    samples: int = 4,
    size: int = 64,
    *,
    times: int = 8,
    interval: float = 1.0,
    spinup: float = 20.0,
    sim_size: int | None = None,
    spinup_size: int | None = None,
    seed: int = 0,
    split: Literal["train", "test"] = "train",
    viscosity: float = DEFAULTS["viscosity"],
    drag: float = DEFAULTS["drag"],
    forcing_amplitude: float = DEFAULTS["forcing_amplitude"],
    forcing_wavenumber: int = int(DEFAULTS["forcing_wavenumber"]),
    length: float = DEFAULTS["length"],
    dt: float | None = None,
    dtype: Literal["float32", "float64"] = "float32",
) -> xr.Dataset:
    """Simulate independent Kolmogorov-flow trajectories and return them as a CF-annotated Dataset.

    Each sample starts from its own random vorticity (generator derived from ``seed``, ``split`` and
    the sample index), is spun up for ``spinup`` seconds to the statistically stationary state, and
    is then saved ``times`` times, ``interval`` seconds apart. The simulation runs on ``sim_size``
    points (default ``3 * size // 2``) and is truncated spectrally to ``size``.

    Parameters
    ----------
    samples
        Number of independent trajectories (dimension ``sample``).
    size
        Output grid points per side.
    times, interval
        Number of saved states per trajectory and their spacing in s (dimension ``time``).
    spinup
        Seconds simulated before the first saved state.
    sim_size, spinup_size
        Simulation grid (default ``3 * size // 2``, whose 2/3-rule modes are exactly those of the
        output grid) and the coarser grid on which all but the last ``min(2, spinup)`` seconds of
        spin-up run (default ``max(sim_size // 2, 16)``).
    seed, split
        Seed and ``"train"``/``"test"``: different values give independent trajectories.
    viscosity, drag, forcing_amplitude, forcing_wavenumber, length
        Physical parameters (SI units), see :class:`KolmogorovSolver`.
    dt
        Largest time step of the simulation in s (default from a CFL number of 1 at 4 m s-1).
    dtype
        Simulation precision.

    Returns
    -------
    xarray.Dataset
        ``vorticity`` (s-1), ``u`` and ``v`` (m s-1) with dims ``(sample, time, y, x)``; coordinates
        ``x``/``y`` (cell centres in m, CF projection coordinates) and ``time`` (s since the start
        of each simulation); the parameters in ``attrs``.

    Examples
    --------
    >>> ds = kolmogorov(samples=2, size=16, times=3, spinup=1.0)
    >>> ds.vorticity.dims
    ('sample', 'time', 'y', 'x')
    >>> ds.vorticity.attrs["units"], ds.u.attrs["units"], ds.x.attrs["units"]
    ('s-1', 'm s-1', 'm')
    """
    sim_size = 3 * size // 2 if sim_size is None else int(sim_size)
    spinup_size = max(sim_size // 2, 16) if spinup_size is None else int(spinup_size)
    if sim_size < size:
        raise ValueError(f"sim_size={sim_size} must be >= size={size}")
    physics = {
        "length": float(length),
        "viscosity": float(viscosity),
        "drag": float(drag),
        "forcing_amplitude": float(forcing_amplitude),
        "forcing_wavenumber": int(forcing_wavenumber),
    }
    solver = KolmogorovSolver(sim_size, dt=dt, dtype=dtype, **physics)
    settle = min(2.0, spinup)
    state = _spun_up(solver, samples, seed, split, spinup - settle, spinup_size, physics)
    state = solver.advance(state, settle)
    frames = []
    for i in range(times):
        if i:
            state = solver.advance(state, interval)
        frames.append(resample(solver.to_physical(state), size))
    vorticity = torch.stack(frames, dim=1)
    ds = xr.Dataset(
        _fields(vorticity, length, ("sample", "time", "y", "x")),
        coords={
            **_grid_coords(size, length),
            "time": xr.Variable(
                "time", spinup + interval * np.arange(times), _time_attrs("time since start")
            ),
            "sample": xr.Variable("sample", np.arange(samples), {"long_name": "trajectory"}),
        },
    )
    ds.attrs = {
        "title": "2-D Kolmogorov flow",
        "Conventions": "CF-1.10",
        "source": "xsfm.datasets.kolmogorov (pseudo-spectral IF-RK4, 2/3 dealiasing)",
        "seed": int(seed),
        "split": split,
        "sim_size": sim_size,
        "spinup_size": spinup_size,
        "spinup": float(spinup),
        "interval": float(interval),
        "dt": solver.dt,
        "dtype": dtype,
        **physics,
        "forcing": "F = (A sin(k_f y), 0), vorticity forcing -A k_f cos(k_f y), k_f = 2 pi n_f / L",
    }
    return ds
