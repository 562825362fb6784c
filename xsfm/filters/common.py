"""What the classical filters share: their result, the ensemble set-up, random draws, noise.

Randomness: trajectory ``b`` draws all its numbers from its own generator (default
``stream_generators(seed, [b], 1)``), in a fixed order per time step, so results do not depend on
how many trajectories are filtered together.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import torch

from xsfm.sampling.rng import stream_generators

__all__ = [
    "FilterResult",
    "Transition",
    "gather",
    "normals",
    "observation_std",
    "prepare_ensemble",
    "uniforms",
]

Transition = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclasses.dataclass
class FilterResult:
    """Output of a filter over ``T`` observation times.

    Attributes
    ----------
    mean, variance
        Filtering mean and variance ``[B, T, *state]`` (weighted, for the particle filter).
    ensemble
        Equally weighted analysis members ``[B, T, K, *state]`` (``K = keep`` for the particle
        filter).
    ess
        Effective sample size of the weights before resampling ``[B, T]`` (``P`` for the EnKF).
    log_evidence
        Estimate of ``log p(y_1..T)`` per trajectory ``[B]`` (particle filter; NaN for the EnKF).
    paths
        Whole trajectories ``[B, K, T, *state]`` traced back through the particles' ancestry
        (smoothing draws from ``p(x_1..T | y_1..T)``; particle filter with ``paths=K`` only, else
        ``None``). Unlike the members of :attr:`ensemble`, which are drawn anew at each time, each
        path is one realisation of the transition chain.
    """

    mean: torch.Tensor
    variance: torch.Tensor
    ensemble: torch.Tensor
    ess: torch.Tensor
    log_evidence: torch.Tensor
    paths: torch.Tensor | None = None


def prepare_ensemble(
    x0: torch.Tensor,
    obs: torch.Tensor,
    particles: int,
    state_ndim: int | None,
    generators: Sequence[torch.Generator] | None,
    seed: int,
) -> tuple[torch.Tensor, list[torch.Generator], tuple[int, ...]]:
    """The starting ensemble ``[B, P, *state]``, one generator per trajectory, the state shape."""
    batch = x0.shape[0]
    if obs.shape[0] != batch:
        raise ValueError(
            f"obs has {obs.shape[0]} trajectories but x0 has {batch}; both need the "
            "trajectory axis first"
        )
    if state_ndim is None:
        state_ndim = x0.ndim - 1
    state_shape = tuple(x0.shape[x0.ndim - state_ndim :])
    if x0.ndim == state_ndim + 1:  # known initial state: all particles start there
        x = x0.unsqueeze(1).expand(batch, particles, *state_shape).clone()
    elif x0.ndim == state_ndim + 2:
        if x0.shape[1] != particles:
            raise ValueError(f"x0 has {x0.shape[1]} initial particles but particles={particles}")
        x = x0.clone()
    else:
        raise ValueError(f"x0 must be [B, *state] or [B, P, *state]; got shape {tuple(x0.shape)}")
    gens = list(generators) if generators is not None else stream_generators(seed, range(batch), 1)
    if len(gens) != batch:
        raise ValueError(
            f"{len(gens)} generators for {batch} trajectories; give one per trajectory"
        )
    return x, gens, state_shape


def normals(
    gens: Sequence[torch.Generator], shape: tuple[int, ...], like: torch.Tensor
) -> torch.Tensor:
    """Standard normals ``[B, *shape]``, row ``b`` from generator ``b``."""
    return torch.stack(
        [torch.randn(shape, generator=g, dtype=like.dtype, device=g.device) for g in gens]
    ).to(like.device)


def uniforms(gens: Sequence[torch.Generator], like: torch.Tensor) -> torch.Tensor:
    """One uniform per trajectory ``[B]``."""
    return torch.stack(
        [torch.rand((), generator=g, dtype=like.dtype, device=g.device) for g in gens]
    ).to(like.device)


def gather(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``x[b, index[b, k]]`` for particles ``x [B, P, *state]`` and ``index [B, K]``."""
    expanded = index.reshape(*index.shape, *([1] * (x.ndim - 2))).expand(*index.shape, *x.shape[2:])
    return torch.gather(x, 1, expanded)


def observation_std(
    noise_std: float | Sequence[float] | torch.Tensor, obs_shape: Sequence[int], like: torch.Tensor
) -> torch.Tensor:
    """The observation-error standard deviation per element, flattened to ``[m]``.

    A scalar is the same for every element; an array of the observations' shape gives a diagonal
    observation-error covariance ``R = diag(std**2)``.

    Examples
    --------
    >>> observation_std(0.5, (3,), torch.zeros(1)).tolist()
    [0.5, 0.5, 0.5]
    """
    std = torch.as_tensor(noise_std, dtype=like.dtype, device=like.device)
    try:
        std = torch.broadcast_to(std, tuple(obs_shape)).reshape(-1)
    except RuntimeError:
        raise ValueError(
            f"noise_std of shape {tuple(std.shape)} does not match the observations' shape "
            f"{tuple(obs_shape)}; give one value, or one per observed element"
        ) from None
    if not bool((std > 0).all()) or not bool(torch.isfinite(std).all()):
        raise ValueError(
            "noise_std (the observation noise std) must be > 0 and finite for every element"
        )
    return std
