r"""Bootstrap particle filter, with optional regularisation and resampling on a low ESS.

Each step propagates every particle with the transition, multiplies its weight by the Gaussian
likelihood of the observation (missing elements, NaN, count for nothing) and resamples
systematically: at every step (``resample_threshold=None``, the plain bootstrap filter of Gordon,
Salmond & Smith 1993), or only when the effective sample size falls below
``resample_threshold * P`` (weights carried over otherwise).

**Regularisation** (Musso, Oudjane & Le Gland 2001; Doucet et al. 2001, section 12.2.2): on a
deterministic model, resampled copies of one particle stay identical forever and the cloud
collapses. After each resampling every copy of a particle drawn more than once is jittered by
``h * h_opt * L z``: ``L L^T`` is the unbiased weighted covariance of the cloud before
resampling (divided by ``1 - sum(w**2)``; the unweighted one when a single particle holds all
the weight), ``z`` standard normal, ``h_opt = P^(-1 / (n + 4))`` the rule-of-thumb kernel
bandwidth (Scott 1992) for ``P`` particles in ``n`` dimensions, and ``h = regularisation`` scales
it (0: none). These are the conventions of DAPPER's ``PartFilt`` (``reg``, ``NER``), so its
settings carry over.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch

from xsfm.filters.common import (
    FilterResult,
    Transition,
    gather,
    normals,
    observation_std,
    prepare_ensemble,
    uniforms,
)
from xsfm.observations import Observation, as_operator
from xsfm.progress import tick
from xsfm.sampling.guidance import systematic_resample

__all__ = ["bootstrap_particle_filter", "kernel_bandwidth"]


def kernel_bandwidth(particles: int, dim: int) -> float:
    """Rule-of-thumb bandwidth ``P^(-1/(n+4))`` of a Gaussian kernel for ``P`` draws in ``n`` dims.

    Examples
    --------
    >>> round(kernel_bandwidth(100, 3), 4)
    0.5179
    """
    return float(particles) ** (-1.0 / (dim + 4))


def _jitter(x: torch.Tensor, w: torch.Tensor, z: torch.Tensor, scale: float) -> torch.Tensor:
    """``scale * L z`` per trajectory, ``L L^T`` the unbiased weighted covariance of ``x [B, P, n]``."""
    degenerate = w.max(1).values > 1 - 1e-10
    w = torch.where(degenerate[:, None], torch.full_like(w, 1.0 / w.shape[1]), w)
    mean = (w[..., None] * x).sum(1, keepdim=True)
    unbias = 1.0 / (1.0 - w.pow(2).sum(1))
    anomalies = (x - mean) * (w * unbias[:, None])[..., None].sqrt()
    cov = anomalies.transpose(1, 2) @ anomalies
    n = cov.shape[-1]
    eye = torch.eye(n, dtype=x.dtype, device=x.device)
    ridge = 1e-10 * cov.diagonal(dim1=1, dim2=2).mean(-1).clamp_min(1e-30)
    chol = torch.linalg.cholesky(cov + ridge[:, None, None] * eye)
    return scale * z @ chol.transpose(1, 2)


@torch.inference_mode()
def bootstrap_particle_filter(
    x0: torch.Tensor,
    obs: torch.Tensor,
    transition: Transition,
    operator: Observation | Callable[[torch.Tensor], torch.Tensor] | dict[str, Any],
    noise_std: float | Sequence[float] | torch.Tensor | None = None,
    *,
    particles: int = 1024,
    keep: int = 64,
    paths: int = 0,
    resample_threshold: float | None = None,
    regularisation: float = 0.0,
    state_ndim: int | None = None,
    generators: Sequence[torch.Generator] | None = None,
    seed: int = 0,
) -> FilterResult:
    """Bootstrap particle filter: propagate with the transition, weight by the likelihood, resample.

    Parameters
    ----------
    x0
        Known initial states ``[B, *state]`` (all particles start there) or initial particles
        ``[B, P, *state]``.
    obs
        Observations ``[B, T, *obs]`` at the ``T`` steps after ``x0`` (NaN: missing).
    transition
        ``transition(x, noise) -> x_next`` on ``[B, P, *state]``.
    operator, noise_std
        Observation operator and noise standard deviation (``noise_std`` overrides the operator's;
        one value, or one per observed element: a diagonal observation-error covariance).
    particles
        Number ``P`` of particles.
    keep
        Members per time kept in :attr:`FilterResult.ensemble` (a systematic resample of the
        weighted cloud).
    paths
        Number of whole trajectories to trace back through the ancestry (:attr:`FilterResult.paths`;
        needs ``resample_threshold=None``); 0 (default) stores no history.
    resample_threshold
        None (default): resample at every step. A fraction: resample a trajectory's cloud only
        when its effective sample size is at most ``resample_threshold * P`` (DAPPER's ``NER``).
    regularisation
        Jitter of duplicated particles after resampling, in units of the kernel bandwidth (see the
        module docstring; DAPPER's ``reg``). 0: none.
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
    op = as_operator(operator)
    std_source = op.noise_std if noise_std is None else noise_std
    if int(paths) < 0 or int(paths) > particles:
        raise ValueError(f"paths must be between 0 and particles={particles}, got {paths}")
    if paths and resample_threshold is not None:
        raise ValueError(
            "paths trace the ancestry of a cloud resampled at every step; "
            "use resample_threshold=None with paths"
        )
    if resample_threshold is not None and not 0 < resample_threshold <= 1:
        raise ValueError(f"resample_threshold must be in (0, 1], got {resample_threshold}")
    if regularisation < 0:
        raise ValueError(f"regularisation must be >= 0, got {regularisation}")
    x, gens, state_shape = prepare_ensemble(x0, obs, particles, state_ndim, generators, seed)
    batch, n_steps = obs.shape[:2]
    n = math.prod(state_shape)
    scale = regularisation * kernel_bandwidth(particles, n)
    means, variances, kept, ess_all = [], [], [], []
    clouds: list[torch.Tensor] = []
    lineage: list[torch.Tensor] = []
    log_evidence = torch.zeros(batch, dtype=x.dtype, device=x.device)
    logw = None  # None: equal weights
    gamma = None
    for t in range(n_steps):
        z = normals(gens, (particles, *state_shape), x)
        u_resample = uniforms(gens, x)
        u_keep = uniforms(gens, x)
        jitter_z = normals(gens, (particles, n), x) if scale > 0 else None
        x = transition(x, z)
        tick()
        y = obs[:, t].unsqueeze(1).to(x.dtype)
        h = op(x)
        if gamma is None:
            gamma = observation_std(std_source, tuple(h.shape[2:]), x)
        r = (y - h).reshape(batch, particles, -1) / gamma
        missing = torch.isnan(y).expand_as(h).reshape(batch, particles, -1)
        r = torch.where(missing, torch.zeros_like(r), r)
        observed = ~missing[:, 0]  # [B, m]
        log_const = -(observed * (gamma.log() + 0.5 * math.log(2 * math.pi))).sum(1)
        loglik = -0.5 * r.pow(2).sum(2)
        if logw is None:
            log_norm = torch.logsumexp(loglik, dim=1)
            log_evidence = log_evidence + log_norm - math.log(particles) + log_const
            w = torch.exp(loglik - log_norm[:, None])
        else:
            joint = logw + loglik
            log_norm = torch.logsumexp(joint, dim=1)
            log_evidence = log_evidence + log_norm + log_const
            w = torch.exp(joint - log_norm[:, None])
        ess = 1.0 / w.pow(2).sum(1)
        ess_all.append(ess)
        wx = w.reshape(*w.shape, *([1] * len(state_shape)))
        mean = (wx * x).sum(1)
        means.append(mean)
        variances.append((wx * (x - mean.unsqueeze(1)).pow(2)).sum(1))
        if keep:
            kept.append(gather(x, _keep_indices(w, u_keep, keep)))
        flat = x.reshape(batch, particles, n)
        # with a threshold, only trajectories whose ESS fell resample; none: nothing to compute
        now = None if resample_threshold is None else ess <= resample_threshold * particles
        if now is not None and not bool(now.any()):
            logw = w.log()
        else:
            ancestors = systematic_resample(w, u_resample)
            resampled = gather(flat, ancestors)
            if jitter_z is not None:
                # jitter every copy of a particle drawn more than once (the indices are sorted,
                # so copies are neighbours); particles drawn once keep their state
                same = ancestors[:, 1:] == ancestors[:, :-1]
                duplicate = torch.zeros_like(ancestors, dtype=torch.bool)
                duplicate[:, 1:] |= same
                duplicate[:, :-1] |= same
                jitter = _jitter(flat, w, jitter_z, scale)
                resampled = resampled + torch.where(duplicate[..., None], jitter, 0.0)
            if now is None:
                x, logw = resampled.reshape(x.shape), None
            else:
                x = torch.where(now[:, None, None], resampled, flat).reshape(x.shape)
                logw = torch.where(now[:, None], torch.full_like(w, -math.log(particles)), w.log())
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
        out.append(gather(clouds[t], index))
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
