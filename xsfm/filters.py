"""Classical filters to compare FlowDAS with: bootstrap particle filter and stochastic EnKF.

Both are batched over trajectories (``B``) and particles (``P``) in one tensor, take a user-given
stochastic transition ``transition(x [B, P, *state], noise [B, P, *state]) -> [B, P, *state]``
(``noise`` is standard normal; for Lorenz-63 use :func:`xsfm.datasets.lorenz63_transition`,
the true noisy RK4 step) and an observation operator (:mod:`xsfm.observations`, or any callable
``x[..., *state] -> y[..., *obs]``) with Gaussian noise of standard deviation ``noise_std``. Missing
observations (NaN) do not update.

Randomness: trajectory ``b`` draws all its numbers from its own generator (default
``stream_generators(seed, [b], 1)``), in a fixed order per time step, so results do not depend on
how many trajectories are filtered together.

References: Gordon, Salmond & Smith (1993) for the bootstrap filter; Evensen (1994) and Burgers, van
Leeuwen & Evensen (1998) for the EnKF with perturbed observations.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any

import torch

from xsfm.observations import Observation, as_operator
from xsfm.sampling.guidance import systematic_resample
from xsfm.sampling.rng import stream_generators

__all__ = ["FilterResult", "bootstrap_particle_filter", "ensemble_kalman_filter"]

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


def _prepare(
    x0: torch.Tensor,
    obs: torch.Tensor,
    particles: int,
    state_ndim: int | None,
    generators: Sequence[torch.Generator] | None,
    seed: int,
) -> tuple[torch.Tensor, list[torch.Generator], tuple[int, ...]]:
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


def _normals(
    gens: Sequence[torch.Generator], shape: tuple[int, ...], like: torch.Tensor
) -> torch.Tensor:
    return torch.stack(
        [torch.randn(shape, generator=g, dtype=like.dtype, device=g.device) for g in gens]
    ).to(like.device)


def _uniforms(gens: Sequence[torch.Generator], like: torch.Tensor) -> torch.Tensor:
    return torch.stack(
        [torch.rand((), generator=g, dtype=like.dtype, device=g.device) for g in gens]
    ).to(like.device)


def _gather(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``x[b, index[b, k]]`` for particles ``x [B, P, *state]`` and ``index [B, K]``."""
    expanded = index.reshape(*index.shape, *([1] * (x.ndim - 2))).expand(*index.shape, *x.shape[2:])
    return torch.gather(x, 1, expanded)


@torch.inference_mode()
def bootstrap_particle_filter(
    x0: torch.Tensor,
    obs: torch.Tensor,
    transition: Transition,
    operator: Observation | Callable[[torch.Tensor], torch.Tensor] | dict[str, Any],
    noise_std: float | None = None,
    *,
    particles: int = 1024,
    keep: int = 64,
    paths: int = 0,
    state_ndim: int | None = None,
    generators: Sequence[torch.Generator] | None = None,
    seed: int = 0,
) -> FilterResult:
    """Bootstrap particle filter: propagate with the transition, weight by the likelihood, resample.

    Particles are resampled systematically at every step.

    Parameters
    ----------
    x0
        Known initial states ``[B, *state]`` (all particles start there) or initial particles
        ``[B, P, *state]``.
    obs
        Observations ``[B, T, *obs]`` at the ``T`` steps after ``x0``.
    transition
        ``transition(x, noise) -> x_next`` on ``[B, P, *state]``.
    operator, noise_std
        Observation operator and noise standard deviation (``noise_std`` overrides the operator's).
    particles
        Number ``P`` of particles.
    keep
        Members per time kept in :attr:`FilterResult.ensemble` (a systematic resample of the
        weighted cloud).
    paths
        Number of whole trajectories to trace back through the ancestry (:attr:`FilterResult.paths`);
        0 (default) stores no history. Costs ``T`` copies of the particle cloud in memory.
    state_ndim
        Number of state axes (default: ``x0.ndim - 1``).
    generators, seed
        One generator per trajectory, or a seed to derive them from.

    Examples
    --------
    >>> from xsfm.observations import Elementwise
    >>> x0 = torch.zeros(2, 1)
    >>> obs = torch.zeros(2, 3, 1)
    >>> res = bootstrap_particle_filter(
    ...     x0, obs, lambda x, z: x + z, Elementwise(), 1.0, particles=100, keep=10
    ... )
    >>> res.mean.shape, res.ensemble.shape
    (torch.Size([2, 3, 1]), torch.Size([2, 3, 10, 1]))
    """
    op = as_operator(operator, noise_std)
    gamma = op.noise_std
    if gamma <= 0:
        raise ValueError("the particle filter needs noise_std > 0 (the likelihood is Gaussian)")
    x, gens, state_shape = _prepare(x0, obs, particles, state_ndim, generators, seed)
    batch, n_steps = obs.shape[:2]
    means, variances, kept, ess_all = [], [], [], []
    clouds: list[torch.Tensor] = []
    lineage: list[torch.Tensor] = []
    if int(paths) < 0 or int(paths) > particles:
        raise ValueError(f"paths must be between 0 and particles={particles}, got {paths}")
    log_evidence = torch.zeros(batch, dtype=x.dtype, device=x.device)
    for t in range(n_steps):
        z = _normals(gens, (particles, *state_shape), x)
        u_resample = _uniforms(gens, x)
        u_keep = _uniforms(gens, x)
        x = transition(x, z)
        y = obs[:, t].unsqueeze(1).to(x.dtype)
        r = (y - op(x)) / gamma
        r = torch.where(torch.isnan(y), torch.zeros_like(r), r)
        observed = (~torch.isnan(y)).reshape(batch, -1).sum(1).to(x.dtype)
        loglik = -0.5 * r.pow(2).reshape(batch, particles, -1).sum(2)
        log_norm = torch.logsumexp(loglik, dim=1)
        log_evidence = (
            log_evidence
            + log_norm
            - math.log(particles)
            - observed * (math.log(gamma) + 0.5 * math.log(2 * math.pi))
        )
        w = torch.exp(loglik - log_norm[:, None])
        ess_all.append(1.0 / w.pow(2).sum(1))
        wx = w.reshape(*w.shape, *([1] * len(state_shape)))
        mean = (wx * x).sum(1)
        means.append(mean)
        variances.append((wx * (x - mean.unsqueeze(1)).pow(2)).sum(1))
        if keep:
            keep_index = _keep_indices(w, u_keep, keep)
            kept.append(_gather(x, keep_index))
        ancestors = systematic_resample(w, u_resample)
        x = _gather(x, ancestors)
        if paths:
            clouds.append(x)
            lineage.append(ancestors)
    traced = _trace_paths(clouds, lineage, paths) if paths else None
    ensemble = (
        torch.stack(kept, 1)
        if keep
        else torch.empty(batch, n_steps, 0, *state_shape, dtype=x.dtype)
    )
    return FilterResult(
        mean=torch.stack(means, 1),
        variance=torch.stack(variances, 1),
        ensemble=ensemble,
        ess=torch.stack(ess_all, 1),
        log_evidence=log_evidence,
        paths=traced,
    )


def _trace_paths(
    clouds: list[torch.Tensor], lineage: list[torch.Tensor], paths: int
) -> torch.Tensor:
    """Trace ``paths`` trajectories back from the last resampled cloud: ``[B, K, T, *state]``.

    ``clouds[t]`` is the equally weighted cloud after resampling at time ``t`` and ``lineage[t][b, i]``
    the index, in ``clouds[t - 1]`` (propagated), of the parent of its particle ``i``. The last
    cloud is ordered by the systematic resampling, so evenly spaced positions are taken.
    """
    if not clouds:
        raise ValueError("paths need at least one observation time")
    batch, particles = clouds[-1].shape[:2]
    device = clouds[-1].device
    index = ((torch.arange(paths, device=device) * particles) // paths).expand(batch, paths)
    out = []
    for t in range(len(clouds) - 1, -1, -1):
        out.append(_gather(clouds[t], index))
        if t > 0:
            index = torch.gather(lineage[t], 1, index)
    return torch.stack(out[::-1], dim=2)


def _keep_indices(w: torch.Tensor, u: torch.Tensor, keep: int) -> torch.Tensor:
    """Systematic draw of ``keep`` indices from weights ``w [B, P]`` with uniforms ``u [B]``."""
    positions = (u[:, None] + torch.arange(keep, dtype=w.dtype, device=w.device)) / keep
    cdf = torch.cumsum(w, dim=-1)
    cdf = cdf / cdf[:, -1:]
    return torch.searchsorted(cdf.contiguous(), positions.contiguous(), right=True).clamp_max(
        w.shape[-1] - 1
    )


@torch.inference_mode()
def ensemble_kalman_filter(
    x0: torch.Tensor,
    obs: torch.Tensor,
    transition: Transition,
    operator: Observation | Callable[[torch.Tensor], torch.Tensor] | dict[str, Any],
    noise_std: float | None = None,
    *,
    members: int = 64,
    inflation: float = 1.0,
    state_ndim: int | None = None,
    generators: Sequence[torch.Generator] | None = None,
    seed: int = 0,
) -> FilterResult:
    """Stochastic ensemble Kalman filter with perturbed observations.

    Forecast each member with the transition; update with the gain
    ``K = C_xh (C_hh + gamma^2 I)^{-1}`` estimated from the ensemble (``h = A(x)`` evaluated per
    member, so nonlinear operators are handled the usual way) against observations perturbed with
    ``N(0, gamma^2)``.

    Parameters
    ----------
    x0
        Known initial states ``[B, *state]`` or an initial ensemble ``[B, M, *state]``.
    obs
        Observations ``[B, T, *obs]``.
    transition
        ``transition(x, noise) -> x_next`` on ``[B, M, *state]``.
    operator, noise_std
        Observation operator and noise standard deviation.
    members
        Ensemble size ``M``.
    inflation
        Multiplicative inflation of the forecast anomalies (1: none).
    state_ndim
        Number of state axes (default: ``x0.ndim - 1``).
    generators, seed
        One generator per trajectory, or a seed to derive them from.

    Examples
    --------
    >>> from xsfm.observations import Elementwise
    >>> res = ensemble_kalman_filter(
    ...     torch.zeros(2, 1), torch.ones(2, 4, 1), lambda x, z: x + z, Elementwise(), 0.5,
    ...     members=32,
    ... )
    >>> res.ensemble.shape
    torch.Size([2, 4, 32, 1])
    """
    op = as_operator(operator, noise_std)
    gamma = op.noise_std
    if gamma <= 0:
        raise ValueError("the EnKF needs noise_std > 0")
    x, gens, state_shape = _prepare(x0, obs, members, state_ndim, generators, seed)
    batch, n_steps = obs.shape[:2]
    members_out = []
    for t in range(n_steps):
        z = _normals(gens, (members, *state_shape), x)
        x = transition(x, z)
        h = op(x)
        obs_shape = tuple(h.shape[2:])
        eps = _normals(gens, (members, *obs_shape), x)
        y = obs[:, t].to(x.dtype).unsqueeze(1)
        missing = torch.isnan(y).expand_as(h).reshape(batch, members, -1)
        xf = x.reshape(batch, members, -1)  # [B, M, n]
        hf = h.reshape(batch, members, -1)  # [B, M, m] (m = 1 for scalar observations)
        xa = xf - xf.mean(1, keepdim=True)
        if inflation != 1.0:
            xf = xf.mean(1, keepdim=True) + inflation * xa
            xa = inflation * xa
        ha = hf - hf.mean(1, keepdim=True)
        ha = torch.where(missing, torch.zeros_like(ha), ha)
        c_xh = xa.transpose(1, 2) @ ha / (members - 1)  # [B, n, m]
        c_hh = ha.transpose(1, 2) @ ha / (members - 1)
        m = c_hh.shape[-1]
        c_hh = c_hh + gamma**2 * torch.eye(m, dtype=x.dtype, device=x.device)
        perturbed = y.expand_as(h) + gamma * eps
        innovation = perturbed.reshape(batch, members, -1) - hf  # [B, M, m]
        innovation = torch.where(missing, torch.zeros_like(innovation), innovation)
        gain_t = torch.linalg.solve(c_hh, c_xh.transpose(1, 2))  # K^T = C_hh^{-1} C_hx: [B, m, n]
        xf = xf + innovation @ gain_t
        x = xf.reshape(batch, members, *state_shape)
        members_out.append(x)
    ensemble = torch.stack(members_out, 1)
    return FilterResult(
        mean=ensemble.mean(2),
        variance=ensemble.var(2),
        ensemble=ensemble,
        ess=torch.full((batch, n_steps), float(members), dtype=x.dtype, device=x.device),
        log_evidence=torch.full((batch,), float("nan"), dtype=x.dtype, device=x.device),
    )
