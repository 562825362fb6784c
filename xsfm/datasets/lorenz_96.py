"""Lorenz-96: the 40-site ring of Lorenz (1996), the standard test of ensemble Kalman filters.

``dx_i/dt = (x_{i+1} - x_{i-2}) x_{i-1} - x_i + F`` on a periodic ring of ``sites`` (40) with forcing
``F = 8``, stepped by classical Runge-Kutta 4 with ``dt = 0.05`` (Lorenz & Emanuel 1998; the
setting of Sakov & Oke 2008 that DAPPER's ``Lorenz96.sakov2008`` uses). Optional additive model
noise of variance ``noise_var`` per step and site (0: deterministic). Every site is observed
directly, every ``obs_every`` steps, with Gaussian noise of standard deviation ``obs_std`` (1).

Trajectories start from ``F + N(0, 1)`` at every site (the equilibrium ``x_i = F`` is unstable) and
are spun up for ``burn_in`` steps onto the attractor. Randomness: stream ``(seed, trajectory, 0)``
draws the initial condition, ``(seed, trajectory, 1)`` the model noise and ``(seed, trajectory, 2)``
the observation noise (:mod:`xsfm.sampling.rng`), so trajectory ``i`` is the same whatever the
number of trajectories asked for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import torch

from xsfm.sampling.rng import stream_generators

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["lorenz96", "lorenz96_rhs", "lorenz96_step", "lorenz96_transition"]

Array = TypeVar("Array", np.ndarray, torch.Tensor)


def _roll(x: Array, shift: int) -> Array:
    if isinstance(x, torch.Tensor):
        return torch.roll(x, shift, dims=-1)
    return np.roll(x, shift, axis=-1)


def lorenz96_rhs(x: Array, forcing: float = 8.0) -> Array:
    """Right-hand side of Lorenz-96 for states ``[..., sites]`` (NumPy or torch).

    Examples
    --------
    >>> lorenz96_rhs(np.full(5, 8.0)).tolist()
    [0.0, 0.0, 0.0, 0.0, 0.0]
    """
    return (_roll(x, -1) - _roll(x, 2)) * _roll(x, 1) - x + forcing


def lorenz96_step(x: Array, dt: float = 0.05, forcing: float = 8.0) -> Array:
    """One classical Runge-Kutta-4 step of Lorenz-96 (NumPy or torch, any batch)."""
    k1 = lorenz96_rhs(x, forcing)
    k2 = lorenz96_rhs(x + 0.5 * dt * k1, forcing)
    k3 = lorenz96_rhs(x + 0.5 * dt * k2, forcing)
    k4 = lorenz96_rhs(x + dt * k3, forcing)
    return x + (dt / 6.0) * (k1 + 2 * k2 + 2 * k3 + k4)


def lorenz96_transition(dt: float = 0.05, forcing: float = 8.0, noise_var: float = 0.0) -> Any:
    """The transition ``transition(x, noise) = RK4(x) + sqrt(noise_var) noise`` for :mod:`xsfm.filters`.

    Examples
    --------
    >>> f = lorenz96_transition()
    >>> f(torch.full((2, 40), 8.0), torch.zeros(2, 40)).shape
    torch.Size([2, 40])
    """
    scale = float(np.sqrt(noise_var))

    def transition(x: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        out = lorenz96_step(x, dt, forcing)
        return out + scale * noise if scale else out

    transition.__qualname__ = (
        f"lorenz96_transition(dt={dt}, forcing={forcing}, noise_var={noise_var})"
    )
    return transition


def _simulate(
    trajectories: int,
    steps: int,
    seed: int,
    *,
    sites: int,
    burn_in: int,
    dt: float,
    forcing: float,
    noise_var: float,
    obs_std: float,
    first_trajectory: int,
) -> tuple[np.ndarray, np.ndarray]:
    """States ``[B, steps + 1, sites]`` and noisy observations of every state, float64."""
    index = range(first_trajectory, first_trajectory + trajectories)
    init, model, observe = (stream_generators(seed, index, 3)[k::3] for k in range(3))
    x = forcing + torch.stack([torch.randn(sites, generator=g, dtype=torch.float64) for g in init])

    def noise() -> torch.Tensor:
        return torch.stack([torch.randn(sites, generator=g, dtype=torch.float64) for g in model])

    step = lorenz96_transition(dt, forcing, noise_var)
    for _ in range(burn_in):
        x = step(x, noise() if noise_var else torch.zeros_like(x))
    states = [x]
    for _ in range(steps):
        x = step(x, noise() if noise_var else torch.zeros_like(x))
        states.append(x)
    out = torch.stack(states, 1)
    eps = torch.stack(
        [torch.randn(out.shape[1:], generator=g, dtype=torch.float64) for g in observe]
    )
    return out.numpy(), (out + obs_std * eps).numpy()


def lorenz96(
    trajectories: int = 8,
    steps: int = 100,
    seed: int = 0,
    *,
    sites: int = 40,
    burn_in: int = 1000,
    dt: float = 0.05,
    forcing: float = 8.0,
    noise_var: float = 0.0,
    obs_std: float = 1.0,
    obs_every: int = 1,
    first_trajectory: int = 0,
) -> xr.Dataset:
    """Simulate Lorenz-96 trajectories and direct noisy observations of every site.

    Parameters
    ----------
    trajectories, steps, seed
        Number of trajectories, time steps after the initial state (times ``0..steps``), seed.
    sites
        Size of the ring (40).
    burn_in
        Steps simulated and discarded before time 0.
    dt, forcing
        RK4 time step (0.05) and forcing ``F`` (8).
    noise_var
        Variance of additive model noise per step and site (0: deterministic).
    obs_std
        Observation noise standard deviation (1).
    obs_every
        Observe every this many steps (the others are NaN).
    first_trajectory
        Global index of the first trajectory.

    Returns
    -------
    xarray.Dataset
        ``state`` (``trajectory``, ``time``, ``site``) and ``obs`` (same dims; NaN at time 0 and
        between observation times, with ``observation_noise_std`` in its attrs). ``time`` is the
        model time (``step * dt``, units ``"1"``); its ``time_step`` attribute (``dt``) tells the
        filters the model's time step.

    Examples
    --------
    >>> ds = lorenz96(trajectories=2, steps=4, burn_in=10)
    >>> ds.state.dims, ds.sizes["site"]
    (('trajectory', 'time', 'site'), 40)
    """
    import xarray as xr

    if int(trajectories) < 1 or int(steps) < 0 or int(burn_in) < 0 or int(obs_every) < 1:
        raise ValueError(
            "lorenz96 needs trajectories >= 1, steps >= 0, burn_in >= 0 and obs_every >= 1; got "
            f"{trajectories}, {steps}, {burn_in}, {obs_every}"
        )
    x, y = _simulate(
        int(trajectories), int(steps), seed, sites=int(sites), burn_in=int(burn_in), dt=dt,
        forcing=forcing, noise_var=noise_var, obs_std=obs_std,
        first_trajectory=int(first_trajectory),
    )  # fmt: skip
    step = np.arange(int(steps) + 1)
    y[:, (step % int(obs_every) != 0) | (step == 0)] = np.nan
    attrs = {"standard_name": "lorenz96_state", "long_name": "Lorenz-96 state", "units": "1"}
    return xr.Dataset(
        data_vars={
            "state": (("trajectory", "time", "site"), x, attrs),
            "obs": (
                ("trajectory", "time", "site"),
                y,
                {
                    **attrs,
                    "long_name": "Lorenz-96 state observed with noise",
                    "observation_noise_std": float(obs_std),
                    "comment": "NaN at time 0 (the state is known) and between observation times",
                },
            ),
        },
        coords={
            "trajectory": (
                "trajectory",
                np.arange(first_trajectory, first_trajectory + int(trajectories)),
                {"long_name": "trajectory index"},
            ),
            "time": (
                "time",
                step * float(dt),
                {"long_name": "model time", "units": "1", "time_step": float(dt)},
            ),
            "site": ("site", np.arange(int(sites)), {"long_name": "site on the ring"}),
        },
        attrs={
            "title": "Lorenz-96 (Lorenz 1996), observed at every site",
            "Conventions": "CF-1.10",
            "source": "xsfm.datasets.lorenz96",
            "forcing": float(forcing),
            "dt": float(dt),
            "model_noise_variance": float(noise_var),
            "burn_in": int(burn_in),
            "seed": int(seed),
        },
    )
