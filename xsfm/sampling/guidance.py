r"""Euler–Maruyama sampling of the FlowDAS interpolant SDE, with observation guidance.

Sampler
-------
From :math:`X_0 = x_0` (the current state), ``steps`` Euler–Maruyama steps on the grid
:math:`0 = s_0 < \dots < s_N = 0.999` integrate

.. math:: X_{k+1} = X_k + b(X_k, s_k)\, \Delta s + \sigma(s_k) \sqrt{\Delta s}\, \xi_k, \qquad
          \sigma(s) = \varepsilon (1 - s),

and the last step returns the mean (no noise), as in FlowDAS. The interpolant and its drift are
described in :mod:`xsfm.sampling.interpolants`.

Guidance
--------
With an observation :math:`y = A(x_1) + \gamma \eta`, after each step the state moves against the
gradient of the weighted misfit of :math:`J` endpoint draws (FlowDAS, Algorithm 1):

.. math::

    X_{k+1} \leftarrow X_{k+1} - \zeta\, \nabla_{X_k} \sum_j w_j\, d_j, \qquad
    d_j = \tfrac12 \|(y - A(\hat X_1^{(j)}))/\gamma\|^2 \ (\text{``squared''}) \ \text{or}\
    \tfrac12 \|(y - A(\hat X_1^{(j)}))/\gamma\| \ (\text{``plain''}),

where the gradient flows through the drift network and the weights are detached:

* ``softmax`` (paper): :math:`w = \mathrm{softmax}(-d)`, a self-normalised importance estimate of
  :math:`\nabla \log p(y \mid X_s)`;
* ``jensen``: :math:`w_j = 1/J` (the gradient of the Jensen bound :math:`E[\log p(y \mid X_1)]`);
* ``mean-residual`` (released code): one misfit for the residuals of all :math:`J` draws stacked,
  :math:`d = \tfrac12\|(r_1, \dots, r_J)/\gamma\|^p` (the code's softmax runs over a single value,
  so its weight is 1; its plain norm is not divided by :math:`\gamma^2`, a constant factor that
  :math:`\zeta` absorbs).

Endpoint draws (``order=1``): :math:`\hat X_1^{(j)} = X_s + b(X_s, s)(1 - s) + \kappa(s) z_j`.
``order=2`` (Heun) replaces :math:`b` by the average of :math:`b(X_s, s)` and :math:`b(\tilde X_1,
1)` at the predicted endpoint :math:`\tilde X_1 = X_s + b(X_s, s)(1 - s)` (one extra network
evaluation per step; the released code evaluates the second drift at :math:`X_s` instead).
:math:`\kappa` is ``"exact"``, :math:`\varepsilon(1-s)^{3/2}/\sqrt3`, or ``"code"``,
:math:`\varepsilon(2/3 - \sqrt s + s^{3/2}/3)` (see
:func:`~xsfm.sampling.interpolants.endpoint_std`).

The choice of :math:`\kappa` (default ``"exact"``) is discussed in
:mod:`xsfm.sampling.guidance_options`.

Weight collapse: when the effective sample size :math:`1/\sum_j w_j^2` of the softmax weights falls
below ``ess_threshold * J`` the draws are resampled (systematic resampling with one uniform per step
from the stream's generator, see :mod:`xsfm.sampling.resampling`) and weighted equally.
``estimator="dps"`` plugs in the conditional mean (:math:`\kappa = 0`, one draw) as diffusion
posterior sampling does; with it, guidance is applied only for :math:`s \ge` ``dps_cutoff`` (the
one-step mean is a poor estimate of the endpoint early on).

Randomness
----------
Each stream (one row of the batch: a trajectory and member) has its own generator. Its noise is
drawn up front in blocks of steps whose size depends only on ``steps``, ``J`` and the state size, so
a stream's result does not depend on which other streams share the batch
(:class:`~xsfm.sampling.stream_noise.StreamNoise`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch

from xsfm.sampling.guidance_options import Guidance
from xsfm.sampling.interpolants import endpoint_std
from xsfm.sampling.resampling import (
    effective_sample_size,
    softmax_weights,
    systematic_resample,
    weights_with_resampling,
)
from xsfm.sampling.stream_noise import StreamNoise

__all__ = [
    "Guidance",
    "effective_sample_size",
    "sample",
    "softmax_weights",
    "systematic_resample",
    "time_grid",
    "weights_with_resampling",
]

DriftFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""``drift(x [B, *state], s [B]) -> [B, *state]``."""


def time_grid(steps: int, s_max: float = 0.999) -> list[float]:
    """The ``steps + 1`` sampling times, uniform on ``[0, s_max]``.

    Examples
    --------
    >>> time_grid(2, 1.0)
    [0.0, 0.5, 1.0]
    """
    if int(steps) < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    return torch.linspace(0.0, float(s_max), int(steps) + 1, dtype=torch.float64).tolist()


def _misfit(
    x1: torch.Tensor,
    observe: Callable[[torch.Tensor], torch.Tensor],
    y: torch.Tensor,
    noise_std: torch.Tensor | float,
    guidance: Guidance,
) -> torch.Tensor:
    """Misfits ``d [B, J]`` (``[B, 1]``: mean-residual) of endpoint draws ``x1 [B, J, *state]``."""
    pred = observe(x1)
    target = y.unsqueeze(1)
    r = (target - pred) / noise_std
    r = torch.where(
        torch.isnan(target), torch.zeros_like(r), r
    )  # missing observations do not guide
    sq = r.pow(2).reshape(r.shape[0], r.shape[1], -1).sum(-1)  # [B, J]
    if guidance.weighting == "mean-residual":
        sq = sq.sum(1, keepdim=True)
    if guidance.norm == "squared":
        return 0.5 * sq
    return 0.5 * torch.sqrt(sq + 1e-12)


def sample(
    drift: DriftFn,
    x0: torch.Tensor,
    generators: Sequence[torch.Generator],
    *,
    steps: int = 500,
    s_max: float = 0.999,
    eps: float = 1.0,
    guidance: Guidance | dict[str, Any] | None = None,
    observe: Callable[[torch.Tensor], torch.Tensor] | None = None,
    y: torch.Tensor | None = None,
    noise_std: torch.Tensor | float | None = None,
    inference: bool | None = None,
    allow_nonfinite: bool = False,
) -> torch.Tensor:
    r"""Draw :math:`X_1` from the interpolant SDE started at ``x0``, optionally guided.

    Parameters
    ----------
    drift
        ``drift(x [B, *state], s [B]) -> [B, *state]``, in the sampler's (normalised) space; it must
        treat rows independently (no batch statistics). History conditioning is closed over by the
        caller.
    x0
        Starting states ``[B, *state]`` (one row per stream: trajectory x member).
    generators
        One generator per row (see :mod:`xsfm.sampling.rng`).
    steps
        Number ``N`` of Euler–Maruyama steps on ``[0, s_max]``.
    s_max
        End of the time grid (0.999 as in FlowDAS); the last step adds no noise.
    eps
        Noise scale :math:`\varepsilon` of the interpolant.
    guidance
        :class:`Guidance` options (or a dict of them); ``None`` samples without observations.
    observe
        Observation operator on endpoint draws: ``observe(x [B, J, *state]) -> [B, J, *obs]``, in
        the sampler's space (normalised); it must be differentiable.
    y
        Observations ``[B, *obs]``; NaN entries are ignored.
    noise_std
        Observation noise standard deviation :math:`\gamma` (float or tensor broadcastable to ``[B,
        J, *obs]``).
    inference
        Run unguided sampling under :func:`torch.inference_mode` (default when unguided); pass
        ``False`` when the result feeds later guided steps (inference tensors cannot enter autograd
        graphs).
    allow_nonfinite
        Return rows that ended non-finite instead of raising (for callers that replace them, e.g.
        member resampling).

    Returns
    -------
    torch.Tensor
        ``[B, *state]``.

    Raises
    ------
    FloatingPointError
        When a row ends non-finite (typically a too large ``zeta``), unless ``allow_nonfinite``.

    Examples
    --------
    A toy drift, four streams:

    >>> from xsfm.sampling.rng import stream_generators
    >>> x0 = torch.zeros(4, 2)
    >>> out = sample(lambda x, s: -x, x0, stream_generators(0, range(4), 1), steps=10)
    >>> out.shape
    torch.Size([4, 2])
    """
    opts = None if guidance is None else Guidance.from_dict(guidance)
    if opts is not None and (observe is None or y is None or noise_std is None):
        raise ValueError("guided sampling needs observe, y and noise_std")
    batch = x0.shape[0]
    if len(generators) != batch:
        raise ValueError(
            f"sample got {len(generators)} generators for a batch of {batch}; give one per row"
        )
    grid = time_grid(steps, s_max)
    state_shape = tuple(x0.shape[1:])
    n_draws = 0 if opts is None else opts.n_draws
    uses_uniform = (
        opts is not None and opts.resample and opts.weighting == "softmax" and n_draws > 1
    )
    noise = StreamNoise(
        generators,
        int(steps),
        1 + n_draws,
        state_shape,
        1 if uses_uniform else 0,
        x0.dtype,
        x0.device,
    )
    if inference is None:
        inference = opts is None
    context = torch.inference_mode() if inference and opts is None else torch.no_grad()
    with context:
        x = x0.detach().clone()
        for k in range(int(steps)):
            s, ds = grid[k], grid[k + 1] - grid[k]
            normals, uniforms = noise(k)
            s_vec = torch.full((batch,), s, dtype=x.dtype, device=x.device)
            last = k == int(steps) - 1
            correction = None
            guided_now = opts is not None and opts.zeta > 0
            if guided_now and opts.estimator == "dps" and s < opts.dps_cutoff:
                guided_now = False
            if guided_now:
                assert opts is not None
                assert observe is not None
                assert y is not None
                with torch.enable_grad():
                    xs = x.detach().requires_grad_(True)
                    b = drift(xs, s_vec)
                    rem = 1.0 - s
                    if opts.order == 2:
                        ones = torch.ones_like(s_vec)
                        b_end = drift(xs + b * rem, ones)
                        b_bar = 0.5 * (b + b_end)
                    else:
                        b_bar = b
                    mean1 = (xs + b_bar * rem).unsqueeze(1)
                    if opts.estimator == "dps":
                        x1 = mean1
                    else:
                        kappa = endpoint_std(s, opts.kappa, eps)
                        x1 = mean1 + kappa * normals[:, 1:]
                    d = _misfit(x1, observe, y, noise_std, opts)  # type: ignore[arg-type]
                    if opts.weighting == "softmax" and d.shape[1] > 1:
                        w = softmax_weights(d.detach())
                        if uses_uniform and uniforms is not None:
                            w = weights_with_resampling(w, uniforms[:, 0], opts.ess_threshold)
                    elif opts.weighting == "jensen":
                        w = torch.full_like(d, 1.0 / d.shape[1])
                    else:
                        w = torch.ones_like(d)
                    loss = (w * d).sum()
                    (grad,) = torch.autograd.grad(loss, xs)
                b = b.detach()
                correction = opts.zeta * grad
            else:
                b = drift(x, s_vec)
            x = x + b * ds
            if not last:
                sig = eps * (1.0 - s)
                x = x + sig * math.sqrt(ds) * normals[:, 0]
            if correction is not None:
                x = x - correction
    bad = ~torch.isfinite(x.reshape(batch, -1)).all(dim=1)
    if bool(bad.any()) and not allow_nonfinite:
        rows = torch.nonzero(bad).flatten().tolist()
        hint = f"; guidance with zeta={opts.zeta} overshot: lower zeta" if opts is not None else ""
        raise FloatingPointError(
            f"sampling diverged: non-finite states in rows {rows[:10]}"
            f"{' ...' if len(rows) > 10 else ''}{hint}"
        )
    return x
