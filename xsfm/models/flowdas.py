r"""FlowDAS: data assimilation with a stochastic-interpolant forecast model and observation guidance.

:class:`FlowDAS` wraps a drift network (:class:`~xsfm.nn.mlp.DriftMLP` for vector states) with the
normalisation statistics as buffers, so its public methods take and return **physical units**:

* :meth:`FlowDAS.forecast`: autoregressive unguided rollout (one interpolant SDE per step);
* :meth:`FlowDAS.assimilate`: the same, guided at every step by that step's observation (FlowDAS,
  Chen et al. 2025, Algorithm 1), with the observation operator applied to physical states.

Ensembles: each row of the batch is one independent run (a trajectory x member stream with its own
generator) carrying its own history, so uncertainty propagates as in an ensemble filter. Rows are
batched through the network together; results do not depend on which rows share a batch.

Member resampling (``resample_members=True``, an extension, not in the paper): after each analysis
the members of one trajectory are resampled (systematic resampling) with weights
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

The sampler and guidance are in :mod:`xsfm.sampling.guidance`, the interpolant in
:mod:`xsfm.sampling.interpolants`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from xsfm.observations import Observation, as_operator
from xsfm.sampling.guidance import Guidance, sample
from xsfm.sampling.interpolants import drift_target, interpolant

__all__ = ["DEFAULT_SAMPLER", "LOST_BOUND", "FlowDAS", "build_flowdas"]

DEFAULT_SAMPLER: dict[str, Any] = {
    "steps": 500,
    "s_max": 0.999,
    "guidance": Guidance().to_dict(),
}
"""Sampler defaults of FlowDAS (paper: N = 500 steps on [0, 0.999]; Lorenz J = 21, zeta = 2e-4)."""

RESAMPLE_MODES = (False, "likelihood", "predictive", "diverged")
"""Values of ``resample_members`` (``True`` means ``"likelihood"``)."""

PREDICTIVE_MIN_STEPS = 10
"""``resample_members="predictive"`` weighs each member by one unguided forecast of
``max(PREDICTIVE_MIN_STEPS, steps // 10)`` SDE steps (50 at the default 500)."""

LOST_BOUND = 10.0
"""With member resampling, a member whose normalised state leaves ``[-LOST_BOUND, LOST_BOUND]`` (10
training standard deviations from the training mean, far outside anything the drift was trained on)
or turns non-finite counts as lost."""


def _build_network(config: dict[str, Any], state_shape: tuple[int, ...], history: int) -> nn.Module:
    kind = config.get("kind", "mlp")
    if kind == "mlp":
        from xsfm.nn.mlp import DriftMLP

        cfg = {"state_dim": math.prod(state_shape), "history": history, **config}
        if cfg["state_dim"] != math.prod(state_shape) or cfg["history"] != history:
            raise ValueError(
                f"network config (state_dim={cfg['state_dim']}, history={cfg['history']}) does "
                f"not match the model (state of shape {state_shape}, history {history})"
            )
        return DriftMLP.from_config(cfg)
    raise ValueError(f"unknown FlowDAS network kind {kind!r}; known kinds: 'mlp'")


class FlowDAS(nn.Module):
    """FlowDAS forecast/assimilation model for states of shape ``state_shape``.

    Parameters
    ----------
    state_shape
        Shape of one state, e.g. ``(3,)`` for Lorenz-63.
    history
        Number ``L`` of conditioning states; the last is the current state :math:`x_0` of the
        interpolant.
    network
        Drift network config (``{"kind": "mlp", "width": 256, "blocks": 5, ...}``).
    mean, std
        Normalisation statistics in physical units, broadcastable to ``state_shape``.
    eps
        Noise scale of the interpolant (1 in FlowDAS).
    sampler
        Sampler defaults: ``steps``, ``s_max`` and ``guidance`` (a
        :class:`~xsfm.sampling.guidance.Guidance` dict).

    Examples
    --------
    >>> from xsfm.sampling.rng import stream_generators
    >>> model = FlowDAS((3,), network={"width": 16, "blocks": 1}, mean=[0, 0, 25], std=[8, 9, 8.6])
    >>> hist = torch.tensor([[[1.0, 2.0, 20.0]]])
    >>> model.forecast(hist, lead=2, generators=stream_generators(0, [0], 1), steps=4).shape
    torch.Size([1, 2, 3])
    >>> FlowDAS.from_config(model.config).config == model.config
    True
    """

    def __init__(
        self,
        state_shape: Sequence[int],
        history: int = 1,
        network: dict[str, Any] | None = None,
        mean: Sequence[float] | float | torch.Tensor = 0.0,
        std: Sequence[float] | float | torch.Tensor = 1.0,
        eps: float = 1.0,
        sampler: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.state_shape = tuple(int(n) for n in state_shape)
        self.history = int(history)
        if self.history < 1:
            raise ValueError(f"history must be >= 1, got {history}")
        self.eps = float(eps)
        mean_t = torch.as_tensor(mean, dtype=torch.float32)
        std_t = torch.as_tensor(std, dtype=torch.float32)
        for name, value in (("mean", mean_t), ("std", std_t)):
            try:
                torch.broadcast_shapes(value.shape, self.state_shape)
            except RuntimeError:
                raise ValueError(
                    f"normalisation {name} of shape {tuple(value.shape)} does not broadcast to the "
                    f"state shape {self.state_shape}"
                ) from None
        if bool((std_t <= 0).any()):
            raise ValueError("normalisation std must be > 0")
        self.register_buffer("mean", mean_t)
        self.register_buffer("std", std_t)
        self.net = _build_network(dict(network or {}), self.state_shape, self.history)
        merged = {**DEFAULT_SAMPLER, **(sampler or {})}
        merged["guidance"] = Guidance.from_dict(merged.get("guidance")).to_dict()
        self.sampler = merged

    # -- configuration -------------------------------------------------------------------------
    @property
    def config(self) -> dict[str, Any]:
        """JSON-serialisable configuration; :meth:`from_config` rebuilds an (untrained) copy."""
        return {
            "state_shape": list(self.state_shape),
            "history": self.history,
            "network": self.net.config,  # type: ignore[operator]
            "mean": self.mean.tolist(),
            "std": self.std.tolist(),
            "eps": self.eps,
            "sampler": dict(self.sampler),
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> FlowDAS:
        """Build a model from :attr:`config`."""
        cfg = dict(config)
        known = {"state_shape", "history", "network", "mean", "std", "eps", "sampler"}
        unknown = sorted(set(cfg) - known)
        if unknown:
            raise ValueError(
                f"unknown FlowDAS config keys {unknown}; known keys are {sorted(known)}"
            )
        if "state_shape" not in cfg:
            raise ValueError("FlowDAS config needs 'state_shape'")
        return cls(**cfg)

    # -- normalisation -------------------------------------------------------------------------
    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        """Physical -> network units."""
        return (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)

    def denormalise(self, x: torch.Tensor) -> torch.Tensor:
        """Network -> physical units."""
        return x * self.std.to(x.dtype) + self.mean.to(x.dtype)

    # -- network -------------------------------------------------------------------------------
    def drift(
        self, x_s: torch.Tensor, s: torch.Tensor | float, history: torch.Tensor
    ) -> torch.Tensor:
        """Drift in normalised units.

        ``x_s [B, *state]``, ``s [B]`` or a float, ``history [B, L, *state]``; all normalised (see
        :meth:`normalise`).
        """
        batch = x_s.shape[0]
        out = self.net(x_s.reshape(batch, -1), s, history.reshape(batch, self.history, -1))
        return out.reshape(x_s.shape)

    def loss(
        self,
        history: torch.Tensor,
        target: torch.Tensor,
        *,
        generator: torch.Generator | None = None,
        s: torch.Tensor | None = None,
        z: torch.Tensor | None = None,
        normalised: bool = False,
    ) -> torch.Tensor:
        """Drift-matching loss ``mean |b(I_s, s, history) - R_s|^2``, ``s ~ U(0, 1)``, ``z ~ N``.

        Parameters
        ----------
        history
            ``[B, L, *state]``; its last state is the base :math:`x_0`.
        target
            Next states :math:`x_1`, ``[B, *state]``.
        generator
            Source of ``s`` and ``z`` when they are not given (one generator for the whole batch:
            training).
        s, z
            Interpolation times ``[B]`` and noise ``[B, *state]`` (override the generator).
        normalised
            Inputs are already normalised (skip :meth:`normalise`).
        """
        if not normalised:
            history, target = self.normalise(history), self.normalise(target)
        batch = target.shape[0]
        if s is None:
            s = torch.rand(batch, generator=generator, dtype=target.dtype, device=target.device)
        if z is None:
            z = torch.randn(
                target.shape, generator=generator, dtype=target.dtype, device=target.device
            )
        x0 = history[:, -1]
        x_s = interpolant(x0, target, s, z, self.eps)
        r_s = drift_target(x0, target, s, z, self.eps)
        return (self.drift(x_s, s, history) - r_s).pow(2).mean()

    # -- sampling ------------------------------------------------------------------------------
    def _check_history(self, history: torch.Tensor) -> torch.Tensor:
        if tuple(history.shape[1:]) == self.state_shape and self.history == 1:
            history = history.unsqueeze(1)
        if tuple(history.shape[1:]) != (self.history, *self.state_shape):
            raise ValueError(
                f"history must have shape [B, {self.history}, "
                f"{', '.join(map(str, self.state_shape))}] (the last {self.history} states, in "
                f"physical units); got {tuple(history.shape)}"
            )
        return history

    def _param_dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    def _rollout(
        self,
        history: torch.Tensor,
        n_steps: int,
        generators: Sequence[torch.Generator],
        steps: int | None,
        step_kwargs: Callable[[int], dict[str, Any]],
        select: Callable[[int, torch.Tensor], torch.Tensor | None] | None = None,
        before: Callable[[int, torch.Tensor], torch.Tensor | None] | None = None,
    ) -> torch.Tensor:
        history = self._check_history(history)
        if len(generators) != history.shape[0]:
            raise ValueError(
                f"{len(generators)} generators for {history.shape[0]} rows; give one per row "
                "(trajectory x member, see xsfm.sampling.rng.stream_generators)"
            )
        n_sde = int(steps if steps is not None else self.sampler["steps"])
        dtype = self._param_dtype()
        hist = self.normalise(history.to(dtype))
        out = []
        for t in range(int(n_steps)):
            if before is not None:
                ancestors = before(t, hist)
                if ancestors is not None:
                    hist = hist[ancestors]
            x_next = self._transition(
                hist, generators, n_sde, allow_nonfinite=select is not None, **step_kwargs(t)
            )
            index = None if select is None else select(t, x_next)
            if index is not None:
                x_next, hist = x_next[index], hist[index]
            out.append(x_next)
            hist = torch.cat([hist[:, 1:], x_next.unsqueeze(1)], dim=1)
        if not out:
            return history.new_zeros((history.shape[0], 0, *self.state_shape))
        return self.denormalise(torch.stack(out, dim=1)).to(history.dtype)

    def _transition(
        self,
        hist: torch.Tensor,
        generators: Sequence[torch.Generator],
        steps: int,
        **sample_options: Any,
    ) -> torch.Tensor:
        """One interpolant SDE of ``steps`` steps from normalised ``hist [B, L, *state]``."""

        def drift(x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
            return self.drift(x, s, hist)

        return sample(
            drift,
            hist[:, -1],
            generators,
            steps=steps,
            s_max=float(self.sampler["s_max"]),
            eps=self.eps,
            **sample_options,
        )

    def forecast(
        self,
        history: torch.Tensor,
        lead: int,
        generators: Sequence[torch.Generator],
        steps: int | None = None,
    ) -> torch.Tensor:
        """Unguided autoregressive rollout.

        Parameters
        ----------
        history
            ``[B, L, *state]`` physical units (``[B, *state]`` accepted when ``L = 1``); one row per
            stream.
        lead
            Number of steps to forecast.
        generators
            One generator per row (sample-major ``[(traj 0, member 0), (traj 0, member 1), ...]``).
        steps
            SDE steps per forecast step (default: the model's, 500).

        Returns
        -------
        torch.Tensor
            ``[B, lead, *state]``, physical units.
        """
        with torch.inference_mode():
            return self._rollout(history, lead, generators, steps, lambda t: {})

    def assimilate(
        self,
        history: torch.Tensor,
        obs: torch.Tensor,
        operator: Observation | Callable[[torch.Tensor], torch.Tensor] | dict[str, Any],
        noise_std: float | None = None,
        generators: Sequence[torch.Generator] = (),
        steps: int | None = None,
        guidance: Guidance | dict[str, Any] | None = None,
        *,
        members: int = 1,
        resample_members: bool | str = False,
        **guidance_options: Any,
    ) -> torch.Tensor:
        r"""Guided autoregressive rollout: one analysis state per observation time.

        Parameters
        ----------
        history
            ``[B, L, *state]`` physical units (``[B, *state]`` accepted when ``L = 1``).
        obs
            ``[B, T, *obs_shape]`` observations of the ``T`` next states; NaN entries are not used
            (a time with all NaN is a plain forecast step).
        operator
            Observation operator on physical states (:mod:`xsfm.observations`, its dict, or a
            callable).
        noise_std
            Observation noise standard deviation :math:`\gamma` (default: the operator's).
        generators
            One generator per row.
        steps
            SDE steps per assimilation step (default: the model's, 500).
        guidance, **guidance_options
            :class:`~xsfm.sampling.guidance.Guidance` options; they override the model's defaults
            (``zeta``, ``draws``, ``order``, ``weighting``, ``norm``, ``kappa``, ``resample``,
            ``ess_threshold``, ``estimator``, ``dps_cutoff``).
        members
            Rows per trajectory: rows ``[i * members, (i + 1) * members)`` are the members of
            trajectory ``i`` (only used with ``resample_members``).
        resample_members
            ``True`` or ``"likelihood"``: after each analysis, resample each trajectory's members by
            the likelihood of their analysis states (see the module docstring; the uniform of
            trajectory ``i`` at each time comes from the generator of its first member).
            ``"diverged"``: only replace members whose state turned non-finite or left the model's
            domain (see ``LOST_BOUND``), each by a copy of
            a surviving member of its trajectory drawn uniformly (with the lost member's own
            generator, so the survivors' results are those of a run without replacement).

        Returns
        -------
        torch.Tensor
            ``[B, T, *state]``, physical units.
        """
        op = as_operator(operator, noise_std)
        if op.noise_std <= 0:
            raise ValueError(
                "assimilate needs an observation noise_std > 0 (give noise_std=... or an operator "
                "with it)"
            )
        options = dict(self.sampler["guidance"])
        if isinstance(guidance, Guidance):
            options.update(guidance.to_dict())
        elif guidance is not None:
            options.update(guidance)
        options.update(guidance_options)
        opts = Guidance.from_dict(options)
        if obs.shape[0] != history.shape[0]:
            raise ValueError(
                f"obs has {obs.shape[0]} rows but history has {history.shape[0]}; repeat the "
                "observations for each member"
            )
        dtype = self._param_dtype()
        obs_t = obs.to(dtype)

        def observe(x1: torch.Tensor) -> torch.Tensor:
            return op(self.denormalise(x1))

        expected = op.output_shape(self.state_shape)
        if tuple(obs.shape[2:]) != expected:
            raise ValueError(
                f"obs must have shape [B, T, {', '.join(map(str, expected))}] for this operator "
                f"(its output for one state); got {tuple(obs.shape)}"
            )

        def kwargs(t: int) -> dict[str, Any]:
            y = obs_t[:, t]
            if bool(torch.isnan(y).all()):
                return {"inference": False}
            return {
                "inference": False,
                "guidance": opts,
                "observe": observe,
                "y": y,
                "noise_std": op.noise_std,
            }

        select = before = None
        if resample_members is True:
            resample_members = "likelihood"
        if resample_members not in RESAMPLE_MODES:
            raise ValueError(
                "resample_members must be False, True/'likelihood', 'predictive' or 'diverged', "
                f"got {resample_members!r}"
            )
        if resample_members:
            select = self._member_resampler(
                obs_t, op, int(members), generators, only_lost=resample_members != "likelihood"
            )
        if resample_members == "predictive":
            n_sde = int(steps if steps is not None else self.sampler["steps"])
            before = self._predictive_resampler(
                obs_t, op, int(members), generators, max(PREDICTIVE_MIN_STEPS, n_sde // 10)
            )
        with torch.no_grad():
            return self._rollout(history, obs.shape[1], generators, steps, kwargs, select, before)

    def _member_resampler(
        self,
        obs: torch.Tensor,
        op: Observation,
        members: int,
        generators: Sequence[torch.Generator],
        only_lost: bool = False,
    ) -> Callable[[int, torch.Tensor], torch.Tensor | None]:
        """``select(t, x_next)``: row indices resampling each trajectory's members at time ``t``."""
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
            loglik = _log_likelihood(op, self.denormalise(x_next), y)
            # a member that diverged (or that the operator cannot map) gets weight 0
            ok = finite & torch.isfinite(loglik)
            check_survivors(t, ok)
            loglik = torch.where(ok, loglik, torch.full_like(loglik, -math.inf))
            loglik = loglik.reshape(n_traj, members)
            if members == 1:
                return None  # nothing to select between
            return _resample_rows(loglik, first).to(x_next.device)

        return select

    def _predictive_resampler(
        self,
        obs: torch.Tensor,
        op: Observation,
        members: int,
        generators: Sequence[torch.Generator],
        steps: int,
    ) -> Callable[[int, torch.Tensor], torch.Tensor | None]:
        r"""``before(t, hist)``: ancestor rows drawn by the predictive likelihood of ``obs[:, t]``.

        Each row's weight is :math:`p(y_t \mid \tilde x_t)` for one unguided forecast
        :math:`\tilde x_t` of ``steps`` SDE steps from the row's current history (its own
        generator): a one-draw Monte-Carlo estimate of the predictive likelihood
        :math:`p(y_t \mid x_{t-1})`, the weight of a particle filter whose proposal is the
        conditional :math:`p(x_t \mid x_{t-1}, y_t)` that guided sampling approximates.
        """
        rows = obs.shape[0]
        n_traj = _check_members(rows, members, generators)
        first = [generators[i * members] for i in range(n_traj)]

        def before(t: int, hist: torch.Tensor) -> torch.Tensor | None:
            y = obs[:, t]
            if members == 1 or bool(torch.isnan(y).all()):
                return None

            guess = self._transition(hist, generators, steps, allow_nonfinite=True)
            loglik = _log_likelihood(op, self.denormalise(guess), y)
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
    from xsfm.sampling.guidance import systematic_resample

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


def build_flowdas(config: dict[str, Any]) -> FlowDAS:
    """Build a :class:`FlowDAS` from its config (as stored in a model card's ``network``).

    Examples
    --------
    >>> build_flowdas({"state_shape": [3], "network": {"width": 8, "blocks": 1}}).state_shape
    (3,)
    """
    return FlowDAS.from_config(config)
