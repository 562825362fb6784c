r"""ODE samplers for the probability flow ``dx/dsigma = (x - D(x, sigma)) / sigma`` (pure torch).

One :class:`Sampler` runs the loop over a decreasing noise grid ``sigmas`` (see
:func:`xsfm.sampling.paths.edm_sigmas`) and calls :meth:`Sampler.step` ``(x, t_cur, t_next)`` for
each interval; solvers differ only in ``step``:

* :class:`EulerSampler` -- ``x + (t_next - t_cur) d(x, t_cur)`` with ``d = (x - D) / sigma``
  (first order, one network evaluation per step). A step to ``sigma = 0`` returns ``D`` exactly.
* :class:`HeunSampler` -- the trapezoidal correction of Karras et al. 2022 (second order, two
  evaluations per step except the last, which is an Euler step to ``sigma = 0``).

The denoiser is any callable ``D(x, sigma) -> x0_hat`` with ``sigma`` a 0-d tensor; the whole batch
(all samples and all ensemble members) moves through it at once. The samplers are deterministic;
randomness lives only in the initial state, which the caller draws from per-member generators
(:mod:`xsfm.sampling.rng`).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

__all__ = ["SAMPLERS", "Denoiser", "EulerSampler", "HeunSampler", "Sampler", "make_sampler"]

Denoiser = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class Sampler:
    """Base ODE sampler: loops over ``sigmas`` and calls :meth:`step`.

    Parameters
    ----------
    denoiser
        ``D(x, sigma) -> estimate of the clean field``.
    sigmas
        Decreasing 1-D grid ``[sigma_0, ..., sigma_N]`` (``N`` steps), usually ending at 0.

    Examples
    --------
    >>> from xsfm.sampling.paths import edm_sigmas, gaussian_denoiser
    >>> sampler = EulerSampler(gaussian_denoiser(3.0, 0.5, 0.0, 1.0), edm_sigmas(50))
    >>> out = sampler(torch.linspace(-3, 3, 7))
    >>> out.shape, sampler.nfe
    (torch.Size([7]), 50)
    """

    def __init__(self, denoiser: Denoiser, sigmas: torch.Tensor) -> None:
        sigmas = torch.as_tensor(sigmas)
        if sigmas.ndim != 1 or sigmas.numel() < 2:
            raise ValueError("sigmas must be a 1-D grid with at least two values")
        if not bool((sigmas[1:] < sigmas[:-1]).all()):
            raise ValueError("sigmas must be strictly decreasing")
        if float(sigmas[-1]) < 0:
            raise ValueError("sigmas must be non-negative")
        self.denoiser = denoiser
        self.sigmas = sigmas
        self.nfe = 0

    @staticmethod
    def derivative(x: torch.Tensor, denoised: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """``dx/dsigma = (x - D) / sigma`` (the velocity in ``t = 1 - sigma`` is its negative)."""
        return (x - denoised) / sigma

    def denoise(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """Call the denoiser, counting network evaluations in :attr:`nfe`."""
        self.nfe += 1
        return self.denoiser(x, sigma)

    def step(self, x: torch.Tensor, t_cur: torch.Tensor, t_next: torch.Tensor) -> torch.Tensor:
        """Advance ``x`` from noise level ``t_cur`` to ``t_next``."""
        raise NotImplementedError

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Integrate from ``sigmas[0]`` to ``sigmas[-1]`` from ``x``; return the end state."""
        self.nfe = 0
        sig = self.sigmas.to(device=x.device, dtype=x.dtype)
        for i in range(sig.numel() - 1):
            x = self.step(x, sig[i], sig[i + 1])
        return x


class EulerSampler(Sampler):
    """First-order Euler steps; a step to ``sigma = 0`` returns ``D`` exactly.

    Examples
    --------
    >>> from xsfm.sampling.paths import edm_sigmas
    >>> EulerSampler(lambda x, s: torch.zeros_like(x), edm_sigmas(4))(torch.ones(2))
    tensor([0., 0.])
    """

    def step(self, x: torch.Tensor, t_cur: torch.Tensor, t_next: torch.Tensor) -> torch.Tensor:
        """One Euler step."""
        denoised = self.denoise(x, t_cur)
        if float(t_next) == 0.0:
            return denoised
        return x + (t_next - t_cur) * self.derivative(x, denoised, t_cur)


class HeunSampler(Sampler):
    """Second-order Heun steps (Euler predictor, trapezoidal corrector); Euler to ``sigma = 0``.

    Examples
    --------
    >>> from xsfm.sampling.paths import edm_sigmas, gaussian_denoiser
    >>> sampler = HeunSampler(gaussian_denoiser(3.0, 0.5, 0.0, 1.0), edm_sigmas(10))
    >>> _ = sampler(torch.zeros(3))
    >>> sampler.nfe
    19
    """

    def step(self, x: torch.Tensor, t_cur: torch.Tensor, t_next: torch.Tensor) -> torch.Tensor:
        """One Heun step."""
        denoised = self.denoise(x, t_cur)
        if float(t_next) == 0.0:
            return denoised
        h = t_next - t_cur
        d_cur = self.derivative(x, denoised, t_cur)
        x_pred = x + h * d_cur
        d_next = self.derivative(x_pred, self.denoise(x_pred, t_next), t_next)
        return x + h * (d_cur + d_next) / 2


SAMPLERS: dict[str, type[Sampler]] = {"euler": EulerSampler, "heun": HeunSampler}
"""Solvers by name."""


def make_sampler(name: str, denoiser: Denoiser, sigmas: torch.Tensor) -> Sampler:
    """Build the sampler called ``name`` (``"euler"`` or ``"heun"``).

    Examples
    --------
    >>> from xsfm.sampling.paths import edm_sigmas
    >>> type(make_sampler("heun", lambda x, s: x, edm_sigmas(5))).__name__
    'HeunSampler'
    """
    try:
        cls = SAMPLERS[name.lower()]
    except KeyError:
        raise ValueError(f"unknown solver {name!r}; choose one of {sorted(SAMPLERS)}") from None
    return cls(denoiser, sigmas)
