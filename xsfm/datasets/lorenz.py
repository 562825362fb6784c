"""Lorenz-63 with model noise: the data-assimilation benchmark of FlowDAS (Chen et al. 2025).

The state follows one classical Runge-Kutta-4 step of the Lorenz-63 equations (sigma = 10, rho = 28,
beta = 8/3) with ``dt = 0.025`` plus Gaussian model noise of variance 0.025 per component, in
physical units. Trajectories start from ``N(mean, diag(std^2))`` and are spun up for ``burn_in``
steps onto the attractor. The observation at each time ``1..steps`` is ``y = arctan(x_1 / 8) + N(0,
0.25^2)``, i.e. the arctangent of the normalised first component (normalisation mean ``(0, 0, 25)``,
std ``(8, 9, 8.6)``).

All randomness comes from per-trajectory streams of :mod:`xsfm.sampling.rng`, drawn in fixed blocks
of steps (so a run with more steps extends the same trajectories): stream
``(seed, trajectory, 0)`` draws the initial condition, ``(seed, trajectory, 1)`` the model noise and
``(seed, trajectory, 2)`` the observation noise, so trajectory ``i`` is the same whatever the number
of trajectories asked for.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import torch

from xsfm.observations import Elementwise
from xsfm.sampling.rng import stream_generators

if TYPE_CHECKING:
    import xarray as xr

__all__ = [
    "LORENZ63_MEAN",
    "LORENZ63_PARAMETERS",
    "LORENZ63_STD",
    "lorenz63",
    "lorenz63_operator",
    "lorenz63_rhs",
    "lorenz63_transition",
    "noisy_rk4_step",
    "rk4_step",
]

LORENZ63_PARAMETERS: dict[str, float] = {"sigma": 10.0, "rho": 28.0, "beta": 8.0 / 3.0}
"""The classical chaotic parameters."""
LORENZ63_MEAN: tuple[float, float, float] = (0.0, 0.0, 25.0)
"""Normalisation mean of FlowDAS (physical units)."""
LORENZ63_STD: tuple[float, float, float] = (8.0, 9.0, 8.6)
"""Normalisation standard deviation of FlowDAS (physical units)."""

Array = TypeVar("Array", np.ndarray, torch.Tensor)


def _stack(parts: list[Any], like: Any) -> Any:
    if isinstance(like, torch.Tensor):
        return torch.stack(parts, dim=-1)
    return np.stack(parts, axis=-1)


def lorenz63_rhs(
    x: Array, sigma: float = 10.0, rho: float = 28.0, beta: float = 8.0 / 3.0
) -> Array:
    """Right-hand side of the Lorenz-63 equations for states ``[..., 3]`` (NumPy or torch).

    Examples
    --------
    >>> lorenz63_rhs(np.array([1.0, 1.0, 1.0]))
    array([ 0.        , 26.        , -1.66666667])
    """
    u, v, w = x[..., 0], x[..., 1], x[..., 2]
    return _stack([sigma * (v - u), u * (rho - w) - v, u * v - beta * w], x)


def rk4_step(x: Array, dt: float = 0.025, **params: float) -> Array:
    """One classical Runge-Kutta-4 step of the Lorenz-63 equations (NumPy or torch, any batch).

    Examples
    --------
    >>> rk4_step(np.zeros(3))
    array([0., 0., 0.])
    """
    k1 = lorenz63_rhs(x, **params)
    k2 = lorenz63_rhs(x + 0.5 * dt * k1, **params)
    k3 = lorenz63_rhs(x + 0.5 * dt * k2, **params)
    k4 = lorenz63_rhs(x + dt * k3, **params)
    return x + (dt / 6.0) * (k1 + 2 * k2 + 2 * k3 + k4)


def _rk4_components(
    u: np.ndarray, v: np.ndarray, w: np.ndarray, dt: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """RK4 step on the three components held as separate arrays (the simulator's fast path)."""
    s, r, b = LORENZ63_PARAMETERS["sigma"], LORENZ63_PARAMETERS["rho"], LORENZ63_PARAMETERS["beta"]

    def rhs(a: np.ndarray, c: np.ndarray, e: np.ndarray) -> tuple[np.ndarray, ...]:
        return s * (c - a), a * (r - e) - c, a * c - b * e

    h = 0.5 * dt
    k1 = rhs(u, v, w)
    k2 = rhs(u + h * k1[0], v + h * k1[1], w + h * k1[2])
    k3 = rhs(u + h * k2[0], v + h * k2[1], w + h * k2[2])
    k4 = rhs(u + dt * k3[0], v + dt * k3[1], w + dt * k3[2])
    f = dt / 6.0
    return (
        u + f * (k1[0] + 2 * k2[0] + 2 * k3[0] + k4[0]),
        v + f * (k1[1] + 2 * k2[1] + 2 * k3[1] + k4[1]),
        w + f * (k1[2] + 2 * k2[2] + 2 * k3[2] + k4[2]),
    )


def noisy_rk4_step(x: Array, noise: Array, dt: float = 0.025, noise_var: float = 0.025) -> Array:
    """The stochastic transition ``x' = RK4(x) + sqrt(noise_var) * noise`` with ``noise ~ N(0, I)``.

    Examples
    --------
    >>> noisy_rk4_step(np.zeros(3), np.ones(3), noise_var=0.04)
    array([0.2, 0.2, 0.2])
    """
    return rk4_step(x, dt) + math.sqrt(noise_var) * noise


def lorenz63_transition(
    dt: float = 0.025, noise_var: float = 0.025
) -> Any:  # Callable[[Array, Array], Array]
    """The true transition ``transition(x, noise)`` for :mod:`xsfm.filters`.

    Examples
    --------
    >>> f = lorenz63_transition()
    >>> f(torch.zeros(2, 3), torch.zeros(2, 3)).shape
    torch.Size([2, 3])
    """

    def transition(x: Array, noise: Array) -> Array:
        return noisy_rk4_step(x, noise, dt=dt, noise_var=noise_var)

    transition.__qualname__ = f"lorenz63_transition(dt={dt}, noise_var={noise_var})"
    return transition


def lorenz63_operator(obs_std: float = 0.25) -> Elementwise:
    """The FlowDAS observation operator: arctan of the normalised first component (units ``"1"``).

    Examples
    --------
    >>> lorenz63_operator().to_dict()["function"]
    'arctan'
    """
    return Elementwise(
        "arctan",
        components=0,
        loc=LORENZ63_MEAN[0],
        scale=LORENZ63_STD[0],
        noise_std=obs_std,
        units="1",
    )


_BLOCK = 256


def _blocked_randn(
    g: torch.Generator, n: int, shape: tuple[int, ...], dtype: torch.dtype
) -> torch.Tensor:
    """``n`` draws of ``shape`` in fixed blocks: a shorter run is a prefix of a longer one."""
    blocks = [torch.randn(_BLOCK, *shape, generator=g, dtype=dtype) for _ in range(-(-n // _BLOCK))]
    return torch.cat(blocks)[:n] if blocks else torch.empty(0, *shape, dtype=dtype)


def simulate(
    trajectories: int,
    steps: int,
    seed: int,
    *,
    burn_in: int = 1024,
    dt: float = 0.025,
    noise_var: float = 0.025,
    obs_std: float = 0.25,
    first_trajectory: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Tensor-level simulator: states ``[n, steps + 1, 3]``, observations ``[n, steps]`` (float64).

    Examples
    --------
    >>> x, y = simulate(2, 5, seed=0, burn_in=10)
    >>> x.shape, y.shape
    (torch.Size([2, 6, 3]), torch.Size([2, 5]))
    """
    index = np.arange(first_trajectory, first_trajectory + int(trajectories))
    gens = stream_generators(seed, index, members=3)
    init_g, model_g, obs_g = gens[0::3], gens[1::3], gens[2::3]
    dtype = torch.float64
    mean = torch.tensor(LORENZ63_MEAN, dtype=dtype)
    std = torch.tensor(LORENZ63_STD, dtype=dtype)
    total = int(burn_in) + int(steps)
    x = mean + std * torch.stack([torch.randn(3, generator=g, dtype=dtype) for g in init_g])
    noise = torch.stack([_blocked_randn(g, total, (3,), dtype) for g in model_g])
    # integrate in NumPy with components as rows (3 contiguous arrays): ~3x faster than [n, 3] torch
    scaled = np.ascontiguousarray(math.sqrt(noise_var) * noise.numpy().transpose(1, 2, 0))
    u, v, w = (np.array(c) for c in x.numpy().T)
    out = np.empty((int(steps) + 1, 3, len(index)))
    for k in range(total):
        if k >= int(burn_in):
            out[k - int(burn_in)] = (u, v, w)
        u, v, w = _rk4_components(u, v, w, dt)
        u, v, w = u + scaled[k, 0], v + scaled[k, 1], w + scaled[k, 2]
    out[-1] = (u, v, w)
    states = torch.from_numpy(np.ascontiguousarray(out.transpose(2, 0, 1)))
    operator = lorenz63_operator(obs_std)
    eta = torch.stack([_blocked_randn(g, int(steps), (), dtype) for g in obs_g])
    obs = operator(states[:, 1:]) + obs_std * eta
    return states, obs


def lorenz63(
    trajectories: int = 64,
    steps: int = 15,
    seed: int = 0,
    *,
    burn_in: int = 1024,
    dt: float = 0.025,
    noise_var: float = 0.025,
    obs_std: float = 0.25,
    first_trajectory: int = 0,
) -> xr.Dataset:
    """Simulate noisy Lorenz-63 trajectories and their FlowDAS observations.

    Parameters
    ----------
    trajectories
        Number of independent trajectories.
    steps
        Number of time steps after the initial state (times ``0..steps``).
    seed
        Seed of all random streams (initial conditions, model noise, observation noise).
    burn_in
        Steps simulated and discarded before time 0 (1024 in FlowDAS).
    dt
        RK4 time step (0.025).
    noise_var
        Variance of the additive Gaussian model noise per step and component (0.025), physical
        units.
    obs_std
        Standard deviation of the observation noise (0.25).
    first_trajectory
        Global index of the first trajectory (a held-out test set uses other indices than the
        training set with the same seed).

    Returns
    -------
    xarray.Dataset
        ``state`` (``trajectory``, ``time``, ``component``), physical units, times ``0..steps``;
        ``obs`` (``trajectory``, ``time``): ``arctan(x / 8) + noise`` at times ``1..steps``; at time
        0 it is NaN (the initial state is known, not observed). Select ``obs.isel(time=slice(1,
        None))`` for the observed times only. The operator (``observation_operator``, JSON) and the
        noise are in ``obs.attrs``. ``time`` is the integer step index; ``model_time`` = ``time *
        dt``.

    Examples
    --------
    >>> ds = lorenz63(trajectories=2, steps=3, seed=0, burn_in=16)
    >>> ds.state.dims, ds.obs.dims
    (('trajectory', 'time', 'component'), ('trajectory', 'time'))
    >>> ds.sizes["time"], bool(ds.obs.isel(time=0).isnull().all())
    (4, True)
    """
    import xarray as xr

    if int(trajectories) < 1 or int(steps) < 0 or int(burn_in) < 0:
        raise ValueError(
            f"lorenz63 needs trajectories >= 1, steps >= 0 and burn_in >= 0; got trajectories="
            f"{trajectories}, steps={steps}, burn_in={burn_in}"
        )
    x, y = simulate(
        trajectories,
        steps,
        seed,
        burn_in=burn_in,
        dt=dt,
        noise_var=noise_var,
        obs_std=obs_std,
        first_trajectory=first_trajectory,
    )
    operator = lorenz63_operator(obs_std)
    obs = np.full((int(trajectories), int(steps) + 1), np.nan)
    obs[:, 1:] = y.numpy()
    time = np.arange(int(steps) + 1)
    trajectory = np.arange(first_trajectory, first_trajectory + int(trajectories))
    params = dict(LORENZ63_PARAMETERS)
    call = (
        f"xsfm.datasets.lorenz63(trajectories={trajectories}, steps={steps}, seed={seed}, "
        f"burn_in={burn_in}, dt={dt}, noise_var={noise_var}, obs_std={obs_std}, "
        f"first_trajectory={first_trajectory})"
    )
    return xr.Dataset(
        data_vars={
            "state": (
                ("trajectory", "time", "component"),
                x.numpy(),
                {
                    "standard_name": "lorenz63_state",
                    "long_name": "Lorenz-63 state",
                    "units": "1",
                    "normalisation_mean": list(LORENZ63_MEAN),
                    "normalisation_std": list(LORENZ63_STD),
                },
            ),
            "obs": (
                ("trajectory", "time"),
                obs,
                {
                    "standard_name": "lorenz63_observation",
                    "long_name": "arctan of the normalised first Lorenz-63 component, with noise",
                    "units": "1",
                    "observation_operator": operator.to_json(),
                    "observation_noise_std": float(obs_std),
                    "comment": "time 0 is not observed (the initial state is known): NaN",
                },
            ),
        },
        coords={
            "trajectory": ("trajectory", trajectory, {"long_name": "trajectory index"}),
            "time": ("time", time, {"long_name": "time step", "units": "1", "axis": "T"}),
            "model_time": (
                "time",
                time * float(dt),
                {"long_name": "model time", "units": "1", "time_step": float(dt)},
            ),
            "component": (
                "component",
                np.array(["x", "y", "z"]),
                {"long_name": "Lorenz-63 state component"},
            ),
        },
        attrs={
            "title": "Lorenz-63 with additive model noise (FlowDAS setting)",
            "Conventions": "CF-1.10",
            "source": "xsfm.datasets.lorenz63",
            "history": call,
            "lorenz63_sigma": params["sigma"],
            "lorenz63_rho": params["rho"],
            "lorenz63_beta": params["beta"],
            "dt": float(dt),
            "model_noise_variance": float(noise_var),
            "burn_in": int(burn_in),
            "seed": int(seed),
            "references": "Chen et al. (2025), FlowDAS, arXiv:2501.16642",
        },
    )
