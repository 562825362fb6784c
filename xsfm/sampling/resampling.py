r"""Importance weights and resampling: of endpoint draws (guidance) and of ensemble members.

Endpoint draws
--------------
Guidance weighs its :math:`J` endpoint draws by :func:`softmax_weights` of their misfits and, when
the effective sample size (:func:`effective_sample_size`) collapses, replaces the weights by those
of a systematic resampling (:func:`systematic_resample`, :func:`weights_with_resampling`); see
:mod:`xsfm.sampling.guidance`.

Ensemble members
----------------
Member resampling in :meth:`~xsfm.models.flowdas.FlowDAS.assimilate` (``resample_members=True``,
an extension, not in the paper): after each analysis the members of one trajectory are resampled
(systematic resampling) with weights
:math:`w_m \propto p(y_t \mid x_t^{(m)})`, the observation likelihood of each member's analysis.
Guided members alone cannot correct what the observation does not see (for Lorenz-63, y and z):
each follows its own narrow one-step transition, and nothing removes a member that has left the
trajectory. Selection supplies the missing cross-member information, as in a particle filter.
With ``zeta = 0`` this is exactly a bootstrap particle filter on the learned transition; with
guidance the proposal already leans toward :math:`y_t`, and weighting by the full likelihood
counts part of the observation twice (the proposal density is not available to correct it), so
the ensemble is somewhat over-confident when ``zeta`` is large. A member whose state turns
non-finite or leaves the model's domain (more than ``LOST_BOUND`` = 10 training standard deviations
from the training mean: guidance overshooting far off the training data) gets weight 0 and is
replaced; only when every member of a trajectory is lost does sampling fail.
``resample_members="diverged"`` does only that: lost members are replaced by copies of survivors,
the others are left as they are.

``resample_members="predictive"`` avoids counting the observation twice by selecting *before* the
analysis: each member's starting state is drawn (systematic resampling) from its trajectory's
members with weights :math:`w_m \propto p(y_t \mid \tilde x_t^{(m)})`, where
:math:`\tilde x_t^{(m)}` is one unguided forecast of ``max(PREDICTIVE_MIN_STEPS, steps // 10)``
SDE steps from member ``m``'s history; then every member takes its guided step from the state it
drew, and lost members are replaced as with ``"diverged"``. The weight is a one-draw Monte-Carlo
estimate of the predictive likelihood :math:`p(y_t \mid x_{t-1}^{(m)})` (unbiased:
:math:`E[p(y_t \mid \tilde x_t)] = p(y_t \mid x_{t-1})`), the exact weight of a particle
filter whose proposal is :math:`p(x_t \mid x_{t-1}, y_t)`, the conditional law guided sampling
approximates ("fully adapted" or optimal-proposal particle filter: Doucet, Godsill and Andrieu
2000; Pitt and Shephard 1999). The FlowDAS endpoint estimate cannot supply this weight: at
:math:`s = 0` the drift is :math:`-x_0` and the estimate :math:`x_0 + b(x_0, 0)` is zero. The
forecast takes a tenth of the SDE steps of an analysis, without gradients.
After resampling, a member's states at different times belong to different lineages: the output is
a filtering ensemble per time, not a set of trajectories.

:func:`member_resampler` and :func:`predictive_resampler` build the hooks the FlowDAS rollout calls;
they see the model only through callables (``denormalise``, ``forecast``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from xsfm.observations import Observation

__all__ = [
    "LOST_BOUND",
    "PREDICTIVE_MIN_STEPS",
    "RESAMPLE_MODES",
    "effective_sample_size",
    "member_resampler",
    "predictive_resampler",
    "softmax_weights",
    "systematic_resample",
    "weights_with_resampling",
]

RESAMPLE_MODES = (False, "likelihood", "predictive", "diverged")
"""Values of ``resample_members`` (``True`` means ``"likelihood"``)."""

PREDICTIVE_MIN_STEPS = 10
"""``resample_members="predictive"`` weighs each member by one unguided forecast of
``max(PREDICTIVE_MIN_STEPS, steps // 10)`` SDE steps (50 at the default 500)."""

LOST_BOUND = 10.0
"""With member resampling, a member whose normalised state leaves ``[-LOST_BOUND, LOST_BOUND]`` (10
training standard deviations from the training mean, far outside anything the drift was trained on)
or turns non-finite counts as lost."""


def softmax_weights(misfit: torch.Tensor) -> torch.Tensor:
    r"""Self-normalised weights :math:`w_j \propto \exp(-d_j)` over the last axis.

    Examples
    --------
    >>> softmax_weights(torch.tensor([[0.0, 0.0], [0.0, math.log(3.0)]]))
    tensor([[0.5000, 0.5000],
            [0.7500, 0.2500]])
    """
    return torch.softmax(-misfit, dim=-1)


def effective_sample_size(weights: torch.Tensor) -> torch.Tensor:
    r"""Effective sample size :math:`1 / \sum_j w_j^2` of normalised weights (last axis).

    Examples
    --------
    >>> effective_sample_size(torch.tensor([[0.25, 0.25, 0.25, 0.25], [1.0, 0.0, 0.0, 0.0]]))
    tensor([4., 1.])
    """
    return 1.0 / weights.pow(2).sum(dim=-1)


def systematic_resample(weights: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Systematic resampling: indices ``[..., J]`` from ``weights [..., J]`` and one uniform each.

    The ``J`` positions ``(u + i) / J`` are looked up in the cumulative weights, so index ``j``
    appears ``floor(J w_j)`` or ``ceil(J w_j)`` times.

    Examples
    --------
    >>> systematic_resample(torch.tensor([[0.5, 0.25, 0.25]]), torch.tensor([0.5]))
    tensor([[0, 1, 2]])
    >>> systematic_resample(torch.tensor([[0.0, 1.0, 0.0]]), torch.tensor([0.1]))
    tensor([[1, 1, 1]])
    """
    n = weights.shape[-1]
    positions = (u[..., None] + torch.arange(n, dtype=weights.dtype, device=weights.device)) / n
    cdf = torch.cumsum(weights, dim=-1)
    cdf = cdf / cdf[..., -1:]
    index = torch.searchsorted(cdf.contiguous(), positions.contiguous(), right=True)
    return index.clamp_max(n - 1)


def weights_with_resampling(
    weights: torch.Tensor, u: torch.Tensor, ess_threshold: float = 0.5
) -> torch.Tensor:
    """Replace the weights of rows whose ESS is below ``ess_threshold * J`` by resampled ones.

    Each resampled draw gets weight ``1/J``, so draw ``j`` ends with ``count_j / J``.

    Examples
    --------
    >>> w = torch.tensor([[0.25, 0.25, 0.25, 0.25], [0.97, 0.01, 0.01, 0.01]])
    >>> weights_with_resampling(w, torch.tensor([0.5, 0.5]))
    tensor([[0.2500, 0.2500, 0.2500, 0.2500],
            [1.0000, 0.0000, 0.0000, 0.0000]])
    """
    n = weights.shape[-1]
    index = systematic_resample(weights, u)
    counts = torch.zeros_like(weights).scatter_add_(-1, index, torch.ones_like(weights))
    low = effective_sample_size(weights) < ess_threshold * n
    return torch.where(low[..., None], counts / n, weights)


def member_resampler(
    obs: torch.Tensor,
    op: Observation,
    members: int,
    generators: Sequence[torch.Generator],
    denormalise: Callable[[torch.Tensor], torch.Tensor],
    only_lost: bool = False,
) -> Callable[[int, torch.Tensor], torch.Tensor | None]:
    """``select(t, x_next)``: row indices resampling each trajectory's members at time ``t``.

    Parameters
    ----------
    obs
        Observations ``[rows, T, *obs_shape]`` (rows: trajectory x member, member-minor).
    op
        Observation operator on physical states, with its ``noise_std``.
    members
        Members per trajectory.
    generators
        One generator per row; trajectory ``i`` draws its uniform from its first member's.
    denormalise
        Normalised -> physical states (the model's).
    only_lost
        Only replace lost members (``resample_members="diverged"``), by copies of survivors.

    Returns
    -------
    callable
        ``select(t, x_next [rows, *state])`` (normalised states) returning the row index of each
        row's parent, or ``None`` when nothing changes.
    """
    rows = obs.shape[0]
    n_traj = _check_members(rows, members, generators)
    first = [generators[i * members] for i in range(n_traj)]

    def check_survivors(t: int, usable: torch.Tensor) -> torch.Tensor:
        """``usable [rows]`` as ``[n_traj, members]``; raise when a trajectory has none."""
        alive = usable.reshape(n_traj, members)
        lost = ~alive.any(dim=-1)
        if bool(lost.any()):
            raise FloatingPointError(
                f"sampling diverged: every member of trajectories "
                f"{torch.nonzero(lost).flatten().tolist()[:10]} is non-finite, out of the "
                f"model's domain or without a finite likelihood at observation {t}; lower "
                "zeta or use more members"
            )
        return alive

    def replace_lost(t: int, x_next: torch.Tensor) -> torch.Tensor | None:
        finite = _in_domain(x_next)
        if bool(finite.all()):
            return None
        alive = check_survivors(t, finite)
        index = torch.arange(rows)
        for row in torch.nonzero(~finite).flatten().tolist():
            traj = row // members
            survivors = torch.nonzero(alive[traj]).flatten() + traj * members
            g = generators[row]
            pick = int(torch.randint(len(survivors), (), generator=g, device=g.device))
            index[row] = survivors[pick]
        return index.to(x_next.device)

    if only_lost:
        return replace_lost

    def select(t: int, x_next: torch.Tensor) -> torch.Tensor | None:
        finite = _in_domain(x_next)
        y = obs[:, t]
        if bool(torch.isnan(y).all()) and bool(finite.all()):
            return None
        loglik = _log_likelihood(op, denormalise(x_next), y)
        # a member that diverged (or that the operator cannot map) gets weight 0
        ok = finite & torch.isfinite(loglik)
        check_survivors(t, ok)
        loglik = torch.where(ok, loglik, torch.full_like(loglik, -math.inf))
        loglik = loglik.reshape(n_traj, members)
        if members == 1:
            return None  # nothing to select between
        return _resample_rows(loglik, first).to(x_next.device)

    return select


def predictive_resampler(
    obs: torch.Tensor,
    op: Observation,
    members: int,
    generators: Sequence[torch.Generator],
    forecast: Callable[[torch.Tensor], torch.Tensor],
    denormalise: Callable[[torch.Tensor], torch.Tensor],
) -> Callable[[int, torch.Tensor], torch.Tensor | None]:
    r"""``before(t, hist)``: ancestor rows drawn by the predictive likelihood of ``obs[:, t]``.

    Each row's weight is :math:`p(y_t \mid \tilde x_t)` for one unguided forecast
    :math:`\tilde x_t = ` ``forecast(hist)`` from the row's current history (its own
    generator): a one-draw Monte-Carlo estimate of the predictive likelihood
    :math:`p(y_t \mid x_{t-1})`, the weight of a particle filter whose proposal is the
    conditional :math:`p(x_t \mid x_{t-1}, y_t)` that guided sampling approximates.

    Parameters
    ----------
    obs, op, members, generators, denormalise
        As in :func:`member_resampler`.
    forecast
        ``forecast(hist [rows, L, *state]) -> [rows, *state]``: one unguided forecast per row,
        normalised, non-finite rows allowed (FlowDAS: ``max(PREDICTIVE_MIN_STEPS, steps // 10)``
        SDE steps).

    Returns
    -------
    callable
        ``before(t, hist)`` returning the ancestor row of each row, or ``None`` (one member, or
        no observation at ``t``).
    """
    rows = obs.shape[0]
    n_traj = _check_members(rows, members, generators)
    first = [generators[i * members] for i in range(n_traj)]

    def before(t: int, hist: torch.Tensor) -> torch.Tensor | None:
        y = obs[:, t]
        if members == 1 or bool(torch.isnan(y).all()):
            return None

        guess = forecast(hist)
        loglik = _log_likelihood(op, denormalise(guess), y)
        ok = _in_domain(guess) & torch.isfinite(loglik)
        loglik = torch.where(ok, loglik, -math.inf).reshape(n_traj, members)
        # no forecast of a trajectory is usable: weigh its members equally (the analysis
        # then shows whether any survives, see replace_lost)
        unusable = ~ok.reshape(n_traj, members).any(dim=-1, keepdim=True)
        loglik = torch.where(unusable, 0.0, loglik)
        return _resample_rows(loglik, first).to(hist.device)

    return before


def _in_domain(x: torch.Tensor) -> torch.Tensor:
    """``[rows]``: the normalised state is finite and within ``LOST_BOUND`` (see there)."""
    flat = x.reshape(x.shape[0], -1)
    return torch.isfinite(flat).all(dim=1) & (flat.abs() <= LOST_BOUND).all(dim=1)


def _log_likelihood(op: Observation, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``[rows]`` Gaussian log-likelihood (up to a constant) of ``y`` given physical states ``x``."""
    r = (y.double() - op(x).double()) / op.noise_std
    r = torch.where(torch.isnan(y), torch.zeros_like(r), r)  # missing observations: no weight
    return -0.5 * r.pow(2).reshape(x.shape[0], -1).sum(-1)


def _resample_rows(loglik: torch.Tensor, first: Sequence[torch.Generator]) -> torch.Tensor:
    """Row indices ``[n_traj * members]``: systematic resampling of each trajectory's members.

    ``loglik [n_traj, members]``; the uniform of trajectory ``i`` comes from ``first[i]``.
    """
    n_traj, members = loglik.shape
    weights = torch.softmax(loglik, dim=-1)
    u = torch.stack(
        [torch.rand((), generator=g, dtype=torch.float64, device=g.device) for g in first]
    ).to(weights.device)
    parent = systematic_resample(weights, u)  # [n_traj, members]
    offset = torch.arange(n_traj, device=parent.device)[:, None] * members
    return (parent + offset).reshape(-1)


def _check_members(rows: int, members: int, generators: Sequence[torch.Generator]) -> int:
    """Number of trajectories in ``rows`` (trajectory x member, member-minor); errors named."""
    if members < 1 or rows % members:
        raise ValueError(
            f"members={members} must divide the {rows} rows (trajectories x members, "
            "member-minor) to resample members"
        )
    if len(generators) != rows:
        raise ValueError(
            f"{len(generators)} generators for {rows} rows; give one per row "
            "(trajectory x member, see xsfm.sampling.rng.stream_generators)"
        )
    return rows // members
