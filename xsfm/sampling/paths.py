r"""Probability paths, EDM preconditioning and noise-level grids (pure torch).

Notation: ``sigma`` is the noise level. All paths here share one probability-flow ODE,
``dx/dsigma = (x - D(x, sigma)) / sigma``, where ``D`` is the posterior mean of the clean field
(equivalently ``dx/dt = (D - x) / sigma`` with ``t = 1 - sigma``), so one set of samplers
(:mod:`xsfm.sampling.solvers`) serves all methods.

* **SFM / flow-matching path** (Stochastic Flow Matching; Lipman et al. 2023 for the linear path):
  ``x_sigma = sigma z + (1 - sigma) x``, ``sigma = 1 - t`` in ``[0, 1]``, with base sample
  ``z = E(y) + sigma_z eps`` (SFM) or ``z = eps`` (conditional flow matching). Training draws
  ``sigma ~ U(sigma_min, 1)`` with a small ``sigma_min`` (default ``1e-3``) instead of ``U(0, 1)``:
  the loss weight ``(sigma^2 + sigma_d^2) / (sigma sigma_d)^2`` and ``ln(sigma)`` are infinite at
  ``sigma = 0``; under the preconditioning the weighted loss is bounded, so cutting the first
  thousandth of the interval changes the objective by a negligible amount and avoids ``inf * 0``.
* **EDM (variance-exploding) path** (Karras et al. 2022): ``x_sigma = x + sigma eps``, training
  ``ln(sigma) ~ N(P_mean, P_std^2)``.
* **Preconditioning** (EDM, ``sigma_data = 0.5``):
  ``D(x, sigma) = c_skip x + c_out F(c_in x, c_noise)`` with
  ``c_skip = sd^2 / (sigma^2 + sd^2)``, ``c_out = sigma sd / sqrt(sigma^2 + sd^2)``,
  ``c_in = 1 / sqrt(sigma^2 + sd^2)``, ``c_noise = ln(sigma) / 4``, and the loss weight
  ``w(sigma) = (sigma^2 + sd^2) / (sigma sd)^2`` (= ``1 / c_out^2``, so that
  ``w ||D - x||^2 = ||F - F_target||^2``).
* **Time grid** (EDM, ``rho = 7``):
  ``sigma_i = (smax^(1/rho) + i/(N-1) (smin^(1/rho) - smax^(1/rho)))^rho`` for ``i < N``, then
  ``sigma_N = 0``: ``N`` solver steps, the last of which jumps to ``sigma = 0`` and returns ``D``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch

__all__ = [
    "SIGMA_DATA",
    "EDMCoefficients",
    "edm_coefficients",
    "edm_sigmas",
    "gaussian_denoiser",
    "loss_weight",
    "precondition",
    "sample_sigma_lognormal",
    "sample_sigma_uniform",
    "sfm_path",
]

SIGMA_DATA = 0.5
"""``sigma_data`` of the EDM preconditioning used by every method."""


class EDMCoefficients(NamedTuple):
    """The four EDM preconditioning coefficients."""

    c_skip: torch.Tensor
    c_out: torch.Tensor
    c_in: torch.Tensor
    c_noise: torch.Tensor


def edm_coefficients(
    sigma: torch.Tensor | float, sigma_data: float = SIGMA_DATA
) -> EDMCoefficients:
    """EDM preconditioning coefficients for noise level(s) ``sigma``.

    Examples
    --------
    >>> c = edm_coefficients(torch.tensor(0.5))
    >>> round(c.c_skip.item(), 4), round(c.c_out.item(), 4), round(c.c_in.item(), 4)
    (0.5, 0.3536, 1.4142)
    """
    sigma = torch.as_tensor(sigma)
    total = sigma**2 + sigma_data**2
    return EDMCoefficients(
        c_skip=sigma_data**2 / total,
        c_out=sigma * sigma_data / total.sqrt(),
        c_in=1 / total.sqrt(),
        c_noise=sigma.log() / 4,
    )


def loss_weight(sigma: torch.Tensor | float, sigma_data: float = SIGMA_DATA) -> torch.Tensor:
    """EDM loss weight ``(sigma^2 + sd^2) / (sigma sd)^2``.

    With ``sd = 0.5`` this is the SFM weight ``(sigma^2 + 0.25) / (0.25 sigma^2)``.

    Examples
    --------
    >>> loss_weight(torch.tensor(1.0)).item()
    5.0
    """
    sigma = torch.as_tensor(sigma)
    return (sigma**2 + sigma_data**2) / (sigma * sigma_data) ** 2


def _expand(sigma: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Reshape a scalar or ``[B]`` sigma to broadcast against ``x[B, ...]``."""
    sigma = torch.as_tensor(sigma, device=x.device)
    if sigma.ndim == 0:
        return sigma.expand(x.shape[0]).reshape(-1, *([1] * (x.ndim - 1)))
    return sigma.reshape(-1, *([1] * (x.ndim - 1)))


def precondition(
    net: Callable[..., torch.Tensor],
    x: torch.Tensor,
    sigma: torch.Tensor | float,
    cond: torch.Tensor | None = None,
    sigma_data: float = SIGMA_DATA,
) -> torch.Tensor:
    """Preconditioned denoiser ``D = c_skip x + c_out net(c_in x, c_noise, cond)``.

    Parameters
    ----------
    net
        ``net(x, noise_labels[B], cond) -> [B, ...]``.
    x
        Noisy state ``[B, ...]``.
    sigma
        Scalar or ``[B]`` noise levels.
    cond
        Passed to ``net`` unchanged.
    sigma_data
        EDM ``sigma_data``.

    Examples
    --------
    >>> zero_net = lambda x, c_noise, cond: torch.zeros_like(x)
    >>> precondition(zero_net, torch.ones(2, 1), 0.5)  # c_skip = 0.5
    tensor([[0.5000],
            [0.5000]])
    """
    s = _expand(torch.as_tensor(sigma, dtype=torch.float32), x)
    c = edm_coefficients(s, sigma_data)
    out = net((c.c_in * x).to(x.dtype), c.c_noise.reshape(-1), cond)
    return c.c_skip * x + c.c_out * out.to(x.dtype)


def sfm_path(z: torch.Tensor, x: torch.Tensor, sigma: torch.Tensor | float) -> torch.Tensor:
    """Point of the linear path ``sigma z + (1 - sigma) x`` (``sigma`` scalar or ``[B]``).

    Examples
    --------
    >>> sfm_path(torch.zeros(1, 2), torch.ones(1, 2), torch.tensor([0.25]))
    tensor([[0.7500, 0.7500]])
    """
    s = _expand(torch.as_tensor(sigma, dtype=x.dtype), x)
    return s * z + (1 - s) * x


def sample_sigma_uniform(
    n: int,
    generator: torch.Generator,
    sigma_min: float = 1e-3,
    *,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """``n`` noise levels ``sigma ~ U(sigma_min, 1)`` (SFM and flow matching).

    Examples
    --------
    >>> s = sample_sigma_uniform(1000, torch.Generator().manual_seed(0))
    >>> bool((s >= 1e-3).all() and (s <= 1).all())
    True
    """
    u = torch.rand(n, generator=generator, device=device)
    return sigma_min + (1 - sigma_min) * u


def sample_sigma_lognormal(
    n: int,
    generator: torch.Generator,
    p_mean: float = -1.2,
    p_std: float = 1.2,
    *,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """``n`` noise levels with ``ln(sigma) ~ N(p_mean, p_std^2)`` (EDM training).

    Examples
    --------
    >>> sample_sigma_lognormal(3, torch.Generator().manual_seed(0)).shape
    torch.Size([3])
    """
    return (p_mean + p_std * torch.randn(n, generator=generator, device=device)).exp()


def edm_sigmas(
    steps: int,
    sigma_min: float = 0.01,
    sigma_max: float = 1.0,
    rho: float = 7.0,
) -> torch.Tensor:
    """Decreasing noise grid of ``steps + 1`` values: EDM ``rho`` spacing, then a final ``0``.

    Parameters
    ----------
    steps
        Number of solver steps ``N >= 1``. ``N = 1`` gives ``[sigma_max, 0]``.
    sigma_min, sigma_max
        Ends of the spaced part.
    rho
        Spacing exponent (7 in EDM and SFM).

    Returns
    -------
    torch.Tensor
        ``float64`` tensor ``[sigma_max, ..., sigma_min, 0]``.

    Examples
    --------
    >>> edm_sigmas(3, 0.01, 1.0)
    tensor([1.0000, 0.1451, 0.0100, 0.0000], dtype=torch.float64)
    """
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    if not 0 < sigma_min <= sigma_max:
        raise ValueError(f"need 0 < sigma_min <= sigma_max, got {sigma_min} and {sigma_max}")
    if steps == 1:
        return torch.tensor([sigma_max, 0.0], dtype=torch.float64)
    i = torch.arange(steps, dtype=torch.float64) / (steps - 1)
    a, b = sigma_max ** (1 / rho), sigma_min ** (1 / rho)
    sig = (a + i * (b - a)) ** rho
    return torch.cat([sig, torch.zeros(1, dtype=torch.float64)])


def gaussian_denoiser(
    data_mean: float, data_std: float, base_mean: float, base_std: float
) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Exact posterior mean ``E[x | x_sigma]`` on the path ``x_sigma = sigma z + (1 - sigma) x``.

    For independent ``x ~ N(mu, s^2)`` and ``z ~ N(m0, s0^2)`` the pair ``(x, x_sigma)`` is jointly
    Gaussian, so ``E[x | x_sigma] = mu + (1 - sigma) s^2 / v (x_sigma - m)`` with
    ``m = sigma m0 + (1 - sigma) mu`` and ``v = sigma^2 s0^2 + (1 - sigma)^2 s^2``. Running the
    probability-flow ODE with it from ``z`` at ``sigma = 1`` transports the base onto the data,
    which tests the samplers against a closed form.

    Examples
    --------
    >>> d = gaussian_denoiser(3.0, 0.5, 0.0, 1.0)
    >>> d(torch.tensor([1.0]), torch.tensor(1.0))  # at sigma = 1 the state carries no information
    tensor([3.])
    """

    def denoise(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        s = torch.as_tensor(sigma, dtype=x.dtype)
        m = s * base_mean + (1 - s) * data_mean
        v = s**2 * base_std**2 + (1 - s) ** 2 * data_std**2
        return data_mean + (1 - s) * data_std**2 / v * (x - m)

    return denoise
