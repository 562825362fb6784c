"""CorrDiff sampling as PhysicsNeMo runs it: regression mean plus an EDM-sampled residual.

Two samplers reproduce PhysicsNeMo's legacy CorrDiff samplers for the
:class:`~xsfm.nn.songunet.EDMPrecondSuperResolution` denoiser:

* :func:`deterministic_sampler` -- Karras et al. (2022) time steps
  ``sigma_i = (sigma_max^(1/rho) + i/(N-1) (sigma_min^(1/rho) - sigma_max^(1/rho)))^rho``, then 0,
  Euler or Heun steps of the probability-flow ODE in float64 (``discretization="edm"``,
  ``schedule="linear"``, ``scaling="none"``: the CorrDiff settings), optional churn;
* :func:`stochastic_sampler` -- EDM Algorithm 2 (Heun with churn) in the latents' dtype.

The conditioning is ``cat(mean_hr, img_lr)`` when a regression mean is given (CorrDiff's
``hr_mean_conditioning``). ``randn_like`` supplies the churn noise; both samplers call it once per
step (as PhysicsNeMo does, even when the churn is zero), so recorded draws replay exactly.
:func:`corrdiff_generate` chains the regression step and the diffusion step.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np
import torch

from xsfm.nn.songunet.wrappers import CorrDiffRegressionUNet, EDMPrecondSuperResolution

__all__ = ["corrdiff_generate", "deterministic_sampler", "stochastic_sampler"]

RandnLike = Callable[[torch.Tensor], torch.Tensor]


def _condition(img_lr: torch.Tensor, mean_hr: torch.Tensor | None) -> torch.Tensor:
    if mean_hr is None:
        return img_lr
    if mean_hr.shape[-2:] != img_lr.shape[-2:]:
        raise ValueError(f"mean_hr {tuple(mean_hr.shape)} and img_lr {tuple(img_lr.shape)} differ")
    return torch.cat((mean_hr.expand(img_lr.shape[0], -1, -1, -1).to(img_lr.dtype), img_lr), dim=1)


def deterministic_sampler(
    net: EDMPrecondSuperResolution,
    latents: torch.Tensor,
    img_lr: torch.Tensor,
    *,
    mean_hr: torch.Tensor | None = None,
    randn_like: RandnLike = torch.randn_like,
    num_steps: int = 18,
    sigma_min: float = 0.002,
    sigma_max: float = 80.0,
    rho: float = 7.0,
    solver: str = "heun",
    alpha: float = 1.0,
    S_churn: float = 0.0,
    S_min: float = 0.0,
    S_max: float = float("inf"),
    S_noise: float = 1.0,
) -> torch.Tensor:
    """Integrate the EDM probability-flow ODE from ``latents`` (unit noise) to a sample.

    Parameters
    ----------
    net
        The denoiser.
    latents
        Unit Gaussian noise ``[B, C, H, W]``.
    img_lr
        Conditioning ``[B, C_lr, H, W]``.
    mean_hr
        Optional regression mean ``[1 or B, C, H, W]`` prepended to the conditioning.
    randn_like
        Source of the churn noise.
    num_steps, sigma_min, sigma_max, rho
        Time steps (``sigma_min``/``sigma_max`` clipped to the denoiser's range).
    solver
        ``"euler"`` or ``"heun"`` (the last step is always Euler).
    alpha
        Heun's intermediate-point factor.
    S_churn, S_min, S_max, S_noise
        EDM churn (0: deterministic).

    Returns
    -------
    torch.Tensor
        Samples ``[B, C, H, W]`` in float64.

    Examples
    --------
    >>> net = EDMPrecondSuperResolution(8, 1, 1, model_type="SongUNet", model_channels=8,
    ...                                 channel_mult=[1], num_blocks=1, attn_resolutions=[])
    >>> deterministic_sampler(net, torch.randn(1, 1, 8, 8), torch.randn(1, 1, 8, 8),
    ...                       num_steps=2, solver="euler").shape
    torch.Size([1, 1, 8, 8])
    """
    if solver not in ("euler", "heun"):
        raise ValueError(f"solver must be 'euler' or 'heun', got {solver!r}")
    if img_lr.shape[0] != latents.shape[0]:
        raise ValueError("img_lr and latents need the same batch size")
    dtype = torch.float64
    x_lr = _condition(img_lr, mean_hr)
    sigma_min = max(sigma_min, net.sigma_min)
    sigma_max = min(sigma_max, net.sigma_max)
    i = torch.arange(num_steps, dtype=dtype, device=latents.device)
    t_steps = (
        sigma_max ** (1 / rho)
        + i / (num_steps - 1) * (sigma_min ** (1 / rho) - sigma_max ** (1 / rho))
    ) ** rho
    t_steps = torch.cat([net.round_sigma(t_steps), torch.zeros_like(t_steps[:1])])
    x_next = latents.to(dtype) * t_steps[0]
    for step, (t_cur, t_next) in enumerate(itertools.pairwise(t_steps)):
        x_cur = x_next
        gamma = min(S_churn / num_steps, np.sqrt(2) - 1) if S_min <= t_cur <= S_max else 0
        t_hat = net.round_sigma(t_cur + gamma * t_cur)
        noise = randn_like(x_cur)
        x_hat = x_cur + (t_hat**2 - t_cur**2).clip(min=0).sqrt() * S_noise * noise
        h = t_next - t_hat
        denoised = net(x_hat / 1, x_lr, t_hat).to(dtype)
        d_cur = (1 / t_hat) * x_hat - 1 / t_hat * denoised
        if solver == "euler" or step == num_steps - 1:
            x_next = x_hat + h * d_cur
        else:
            x_prime = x_hat + alpha * h * d_cur
            t_prime = t_hat + alpha * h
            denoised = net(x_prime / 1, x_lr, t_prime).to(dtype)
            d_prime = (1 / t_prime) * x_prime - 1 / t_prime * denoised
            x_next = x_hat + h * ((1 - 1 / (2 * alpha)) * d_cur + 1 / (2 * alpha) * d_prime)
    return x_next


def stochastic_sampler(
    net: EDMPrecondSuperResolution,
    latents: torch.Tensor,
    img_lr: torch.Tensor,
    *,
    mean_hr: torch.Tensor | None = None,
    randn_like: RandnLike = torch.randn_like,
    num_steps: int = 18,
    sigma_min: float = 0.002,
    sigma_max: float = 800.0,
    rho: float = 7.0,
    S_churn: float = 0.0,
    S_min: float = 0.0,
    S_max: float = float("inf"),
    S_noise: float = 1.0,
) -> torch.Tensor:
    """EDM's stochastic sampler (Algorithm 2) as in PhysicsNeMo's CorrDiff, in ``latents.dtype``.

    Parameters are those of :func:`deterministic_sampler` (no ``solver``: always Heun with an
    Euler last step; ``sigma_max`` defaults to 800 and is clipped to the denoiser's range).

    Returns
    -------
    torch.Tensor
        Samples ``[B, C, H, W]``.

    Examples
    --------
    >>> net = EDMPrecondSuperResolution(8, 1, 1, model_type="SongUNet", model_channels=8,
    ...                                 channel_mult=[1], num_blocks=1, attn_resolutions=[])
    >>> stochastic_sampler(net, torch.randn(1, 1, 8, 8), torch.randn(1, 1, 8, 8),
    ...                    num_steps=2).shape
    torch.Size([1, 1, 8, 8])
    """
    if img_lr.shape[0] != latents.shape[0]:
        raise ValueError("img_lr and latents need the same batch size")
    sigma_min = max(sigma_min, net.sigma_min)
    sigma_max = min(sigma_max, net.sigma_max)
    i = torch.arange(num_steps, device=latents.device)
    t_steps = (
        sigma_max ** (1 / rho)
        + i / (num_steps - 1) * (sigma_min ** (1 / rho) - sigma_max ** (1 / rho))
    ) ** rho
    t_steps = torch.cat([net.round_sigma(t_steps), torch.zeros_like(t_steps[:1])])
    x_lr = _condition(img_lr, mean_hr)
    x_next = latents * t_steps[0]
    for step, (t_cur, t_next) in enumerate(itertools.pairwise(t_steps)):
        x_cur = x_next
        gamma = S_churn / num_steps if S_min <= t_cur <= S_max else 0
        t_hat = net.round_sigma(t_cur + gamma * t_cur)
        x_hat = x_cur + (t_hat**2 - t_cur**2).sqrt() * S_noise * randn_like(x_cur)
        denoised = net(x_hat, x_lr, t_hat)
        d_cur = (x_hat - denoised) / t_hat
        x_next = x_hat + (t_next - t_hat) * d_cur
        if step < num_steps - 1:
            denoised = net(x_next, x_lr, t_next)
            d_prime = (x_next - denoised) / t_next
            x_next = x_hat + (t_next - t_hat) * (0.5 * d_cur + 0.5 * d_prime)
    return x_next


def corrdiff_generate(
    regression: CorrDiffRegressionUNet,
    diffusion: EDMPrecondSuperResolution,
    img_lr_regression: torch.Tensor,
    img_lr: torch.Tensor,
    latents: torch.Tensor,
    *,
    sampler: str = "deterministic",
    hr_mean_conditioning: bool = True,
    randn_like: RandnLike = torch.randn_like,
    **sampler_kwargs: object,
) -> torch.Tensor:
    """CorrDiff for one input: regression mean plus a sampled residual per member.

    As PhysicsNeMo's ``regression_step`` and ``diffusion_step``: the regression network maps
    ``img_lr_regression[1, C_r, H, W]`` to the mean; the residual of each member is sampled from
    its ``latents[b]`` with ``img_lr`` (one row per member) as conditioning, prepended by the mean
    when ``hr_mean_conditioning``; the result is ``mean + residual``.

    Parameters
    ----------
    regression, diffusion
        The two networks.
    img_lr_regression
        Regression input ``[1, C_r, H, W]``.
    img_lr
        Diffusion conditioning ``[1 or M, C_lr, H, W]``.
    latents
        Unit noise ``[M, C, H, W]`` (one row per member).
    sampler
        ``"deterministic"`` or ``"stochastic"``.
    hr_mean_conditioning
        Condition the residual on the regression mean.
    randn_like
        Churn noise (see the samplers).
    **sampler_kwargs
        Sampler settings (``num_steps``, ``solver``, ``sigma_min``, ...).

    Returns
    -------
    torch.Tensor
        Members ``[M, C, H, W]``.

    Examples
    --------
    >>> kw = dict(model_type="SongUNet", model_channels=8, channel_mult=[1], num_blocks=1,
    ...           attn_resolutions=[])
    >>> reg = CorrDiffRegressionUNet(8, 2, 1, **kw)
    >>> dif = EDMPrecondSuperResolution(8, 3, 1, **kw)
    >>> out = corrdiff_generate(reg, dif, torch.randn(1, 2, 8, 8), torch.randn(1, 2, 8, 8),
    ...                         torch.randn(3, 1, 8, 8), num_steps=2, solver="euler")
    >>> out.shape
    torch.Size([3, 1, 8, 8])
    """
    if img_lr_regression.shape[0] != 1:
        raise ValueError("the regression step takes one input (batch of 1)")
    members = latents.shape[0]
    mean = regression(
        img_lr_regression.new_zeros(
            1, regression.img_out_channels, *img_lr_regression.shape[-2:], dtype=torch.float64
        ),
        img_lr_regression,
    )
    cond = img_lr.expand(members, -1, -1, -1)
    kwargs = dict(
        sampler_kwargs, mean_hr=mean if hr_mean_conditioning else None, randn_like=randn_like
    )
    if sampler == "deterministic":
        residual = deterministic_sampler(diffusion, latents, cond, **kwargs)  # type: ignore[arg-type]
    elif sampler == "stochastic":
        residual = stochastic_sampler(diffusion, latents, cond, **kwargs)  # type: ignore[arg-type]
    else:
        raise ValueError(f"sampler must be 'deterministic' or 'stochastic', got {sampler!r}")
    return mean.expand(members, -1, -1, -1) + residual
