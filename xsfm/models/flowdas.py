r"""FlowDAS: data assimilation with a stochastic-interpolant forecast model and observation guidance.

:class:`FlowDAS` wraps a drift network (:class:`~xsfm.nn.mlp.DriftMLP` for vector states) with the
normalisation statistics as buffers, so its public methods take and return **physical units**:

* :meth:`FlowDAS.forecast`: autoregressive unguided rollout (one interpolant SDE per step);
* :meth:`FlowDAS.assimilate`: the same, guided at every step by that step's observation (FlowDAS,
  Chen et al. 2025, Algorithm 1), with the observation operator applied to physical states.

Ensembles: each row of the batch is one independent run (a trajectory x member stream with its own
generator) carrying its own history, so uncertainty propagates as in an ensemble filter. Rows are
batched through the network together; results do not depend on which rows share a batch.

Member resampling (``resample_members``, an extension, not in the paper) is described in
:mod:`xsfm.sampling.resampling`: by the likelihood of each member's analysis, by the predictive
likelihood before the analysis, or replacing only members that diverged.

The sampler and guidance are in :mod:`xsfm.sampling.guidance`, the interpolant in
:mod:`xsfm.sampling.interpolants`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from xsfm.models.flowdas_drift import DEFAULT_SAMPLER, FlowDASDrift
from xsfm.observations import Observation, as_operator
from xsfm.progress import tick
from xsfm.sampling.guidance import Guidance, sample
from xsfm.sampling.resampling import (
    LOST_BOUND,
    PREDICTIVE_MIN_STEPS,
    RESAMPLE_MODES,
    member_resampler,
    predictive_resampler,
)

__all__ = [
    "DEFAULT_SAMPLER",
    "LOST_BOUND",
    "PREDICTIVE_MIN_STEPS",
    "RESAMPLE_MODES",
    "FlowDAS",
    "build_flowdas",
]


class FlowDAS(FlowDASDrift):
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
        min_rows: int | None = None,
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
                hist, generators, n_sde, allow_nonfinite=select is not None, min_rows=min_rows,
                **step_kwargs(t),
            )  # fmt: skip
            index = None if select is None else select(t, x_next)
            if index is not None:
                x_next, hist = x_next[index], hist[index]
            out.append(x_next)
            hist = torch.cat([hist[:, 1:], x_next.unsqueeze(1)], dim=1)
            tick()
        if not out:
            return history.new_zeros((history.shape[0], 0, *self.state_shape))
        return self.denormalise(torch.stack(out, dim=1)).to(history.dtype)

    def _transition(
        self,
        hist: torch.Tensor,
        generators: Sequence[torch.Generator],
        steps: int,
        min_rows: int | None = None,
        **sample_options: Any,
    ) -> torch.Tensor:
        """One interpolant SDE of ``steps`` steps from normalised ``hist [B, L, *state]``.

        With ``min_rows`` the drift network is evaluated on at least that many rows (the call is
        padded with zero rows): float32 matmuls on the CPU round differently for very few rows
        (below about 11 rows, measured with torch 2.13's CPU GEMM), and identically for any
        larger number, so each row's result does not depend on how many others share the call.
        A gridded drift network (:attr:`~xsfm.nn.drift_unet.DriftUNet.per_row`) is instead
        called once per row, since convolutions round differently for every batch size.
        """

        def drift(x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
            n = x.shape[0]
            if min_rows is None:
                return self.drift(x, s, hist)
            if getattr(self.net, "per_row", False):
                # convolutions round differently per batch size: one call per row instead
                s_rows = s.expand(n) if s.numel() == 1 else s
                parts = [self.drift(x[i : i + 1], s_rows[i : i + 1], hist[i : i + 1])
                         for i in range(n)]  # fmt: skip
                return torch.cat(parts)
            if n >= min_rows:
                return self.drift(x, s, hist)
            pad = min_rows - n

            def padded(t: torch.Tensor) -> torch.Tensor:
                return torch.cat([t, t.new_zeros((pad, *t.shape[1:]))])

            return self.drift(padded(x), padded(s), padded(hist))[:n]

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
        *,
        min_rows: int | None = None,
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
        min_rows
            Evaluate the drift network on at least this many rows (zero rows pad smaller calls),
            so that a row's result does not depend on how many rows share the call (None: as
            they come).

        Returns
        -------
        torch.Tensor
            ``[B, lead, *state]``, physical units.
        """
        with torch.inference_mode():
            return self._rollout(history, lead, generators, steps, lambda t: {}, min_rows=min_rows)

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
        min_rows: int | None = None,
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
        min_rows
            As for :meth:`forecast`.

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
            select = member_resampler(
                obs_t,
                op,
                int(members),
                generators,
                self.denormalise,
                only_lost=resample_members != "likelihood",
            )
        if resample_members == "predictive":
            n_sde = int(steps if steps is not None else self.sampler["steps"])
            n_forecast = max(PREDICTIVE_MIN_STEPS, n_sde // 10)

            def forecast(hist: torch.Tensor) -> torch.Tensor:
                return self._transition(
                    hist, generators, n_forecast, allow_nonfinite=True, min_rows=min_rows
                )

            before = predictive_resampler(
                obs_t, op, int(members), generators, forecast, self.denormalise
            )
        with torch.no_grad():
            return self._rollout(
                history, obs.shape[1], generators, steps, kwargs, select, before, min_rows
            )


def build_flowdas(config: dict[str, Any]) -> FlowDAS:
    """Build a :class:`FlowDAS` from its config (as stored in a model card's ``network``).

    Examples
    --------
    >>> build_flowdas({"state_shape": [3], "network": {"width": 8, "blocks": 1}}).state_shape
    (3,)
    """
    return FlowDAS.from_config(config)
