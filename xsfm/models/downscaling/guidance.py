r"""Observation guidance of downscaling samplers: steer each member toward observations.

The probability-flow ODE of every generative downscaler integrates ``dx/dsigma = (x - D) / sigma``
with a denoiser :math:`D(x_\sigma) \approx E[x \mid x_\sigma]`. Guidance replaces :math:`D` by an
estimate of :math:`E[x \mid x_\sigma, y]` for observations :math:`y = A(x) + \gamma \eta` of the
fine field, so the same ODE transports the base sample toward the conditional distribution.

Writing each method's path as :math:`x_\sigma = a(\sigma)\,x + \text{offset} + n(\sigma)\,\varepsilon`
(SFM: :math:`a = 1 - \sigma`, :math:`n = \sigma \sigma_z`, offset :math:`\sigma E(y)`; CFM:
:math:`a = 1 - \sigma`, :math:`n = \sigma`; EDM and CorrDiff's residual: :math:`a = 1`,
:math:`n = \sigma`), Tweedie's formula gives the covariance
:math:`\operatorname{Cov}[x \mid x_\sigma] = (n^2 / a)\, \partial D / \partial x_\sigma`, hence

.. math::

    E[x \mid x_\sigma, y] = D + \frac{n^2}{a}\, \nabla_{x_\sigma} \log p(y \mid x_\sigma),
    \qquad
    \log p(y \mid x_\sigma) \approx -\sum_k \frac{(y_k - A(D)_k)^2}{2 (\gamma^2 + r^2_\sigma)},

where the gradient is taken through the network (one backward pass per evaluation, as in DPS,
Chung et al. 2023) and the likelihood's variance adds to :math:`\gamma^2` the variance
:math:`r^2_\sigma = v\,n^2 / (a^2 v + n^2)` of :math:`x` given :math:`x_\sigma` under a Gaussian
prior of variance :math:`v` about the path's mean (:math:`v = \sigma_z^2` for SFM, whose base noise
is sized to the encoder's error; 1 in normalised units otherwise), in the spirit of
pseudoinverse-guided diffusion (Song et al. 2023). Early on (:math:`r_\sigma` large) the pull is
gentle; at the end the observed values are matched to within their noise and the network's
Jacobian spreads the correction to the unobserved pixels. At :math:`a = 0` (the pure base sample)
there is no information to use and the step is unguided.

``scale`` multiplies the correction (1: the formula above, exact for a Gaussian prior). A network's
estimate is pulled less than the Gaussian one (its Jacobian smooths a correction at one place over
its surroundings), which a measured scale above 1 makes up for. The price is at the observed
places: there a scale above 1 pulls the members closer together than the observation noise allows
(with the exact Gaussian denoiser, scale 3 leaves 4 % of the posterior variance; tested);
``docs/benchmarks/guided-downscaling.md`` measures it for the shipped model.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import torch

from xsfm.observations import Observation

__all__ = ["DEFAULT_SCALE", "ObservationGuidance", "guided_denoiser"]

#: multiplier of the correction for models whose card has no measured ``sampler.guidance_scale``
#: (1: the estimate of the module docstring; the shipped ``kolmogorov-sfm`` carries its own,
#: measured by ``studies/guided_downscaling.py``)
DEFAULT_SCALE = 1.0

#: below this value of the path's signal coefficient a(sigma) a step is not guided
MIN_SIGNAL = 1e-3

Denoiser = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclasses.dataclass
class ObservationGuidance:
    r"""Observations of the fine field that steer a downscaling sampler.

    Parameters
    ----------
    y
        ``[B, *obs_shape]`` observations in the output's physical units, one row per input sample
        (NaN: missing, given no weight).
    operator
        Observation operator on one physical fine field ``[..., H, W]``
        (:mod:`xsfm.observations`).
    channel
        Output channel the observations see.
    noise_std
        Observation noise standard deviation :math:`\gamma` (> 0), physical units.
    scale
        Multiplier of the guidance correction (1: the Tweedie estimate, see the module docstring).

    Examples
    --------
    >>> from xsfm.observations import PointObservations
    >>> g = ObservationGuidance(torch.ones(2, 3), PointObservations([[0, 0], [1, 1], [2, 2]]),
    ...                         noise_std=0.1)
    >>> g.rows(2).y.shape
    torch.Size([4, 3])
    """

    y: torch.Tensor
    operator: Observation
    channel: int = 0
    noise_std: float = 0.0
    scale: float = 1.0

    def __post_init__(self) -> None:
        if not float(self.noise_std) > 0:
            raise ValueError(
                "observation guidance needs a noise standard deviation > 0 (the observations' "
                f"error), got {self.noise_std!r}"
            )
        if not float(self.scale) >= 0:
            raise ValueError(f"guidance scale must be >= 0, got {self.scale!r}")

    def rows(self, members: int) -> ObservationGuidance:
        """The same guidance with each row repeated for ``members`` members (sample-major)."""
        return dataclasses.replace(self, y=self.y.repeat_interleave(int(members), dim=0))


def guided_denoiser(
    denoiser: Denoiser,
    guidance: ObservationGuidance,
    path: Callable[[float], tuple[float, torch.Tensor, torch.Tensor]],
    to_physical: Callable[[torch.Tensor], torch.Tensor],
    out_std: torch.Tensor,
) -> Denoiser:
    """Wrap ``denoiser`` so that it returns the observation-conditioned estimate.

    Parameters
    ----------
    denoiser
        ``D(x, sigma)`` in normalised units, ``x [N, C, H, W]``.
    guidance
        The observations, one row per row of ``x``.
    path
        ``path(sigma) -> (a, n [C], v [C])``: signal coefficient, noise scale per channel and prior
        variance per channel (see the module docstring).
    to_physical
        Maps the denoiser's output to physical fine fields ``[N, C, H, W]``.
    out_std
        Per-channel standard deviation of the normalisation (physical units).

    Examples
    --------
    With the identity as denoiser only the observed pixel moves, toward its observation:

    >>> from xsfm.observations import PointObservations
    >>> g = ObservationGuidance(torch.ones(1, 1), PointObservations([[0, 0]]), noise_std=0.1)
    >>> d = guided_denoiser(lambda x, s: x, g,
    ...                     lambda s: (1 - s, torch.tensor([s]), torch.ones(1)),
    ...                     lambda d: d, torch.ones(1))
    >>> [round(v, 3) for v in d(torch.zeros(1, 1, 2, 2), torch.tensor(0.5)).flatten().tolist()]
    [0.98, 0.0, 0.0, 0.0]
    """
    op, ch = guidance.operator, int(guidance.channel)
    y = guidance.y
    observed = torch.isfinite(y)
    y_filled = torch.where(observed, y, torch.zeros_like(y))
    gamma2 = float(guidance.noise_std) ** 2
    scale = float(guidance.scale)

    def guided(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        a, n, v = path(float(sigma))
        if a < MIN_SIGNAL or scale == 0.0:
            with torch.no_grad():
                return denoiser(x, sigma)
        n = n.to(x.device, x.dtype)
        v = v.to(x.device, x.dtype)
        with torch.enable_grad():
            xg = x.detach().requires_grad_(True)
            d = denoiser(xg, sigma)
            pred = op(to_physical(d)[:, ch])
            if pred.shape != y.shape:
                raise ValueError(
                    f"the observation operator gives {tuple(pred.shape)} for these fields but "
                    f"the observations have shape {tuple(y.shape)}"
                )
            r2 = float(out_std[ch]) ** 2 * float(v[ch] * n[ch] ** 2 / (a**2 * v[ch] + n[ch] ** 2))
            resid = torch.where(observed, y_filled.to(pred.dtype) - pred, torch.zeros_like(pred))
            nll = 0.5 * resid.pow(2).sum() / (gamma2 + r2)
            if not nll.requires_grad:  # the estimate does not depend on x: nothing to steer
                return d.detach()
            (grad,) = torch.autograd.grad(nll, xg)
        factor = (scale * n**2 / a)[None, :, None, None]
        return (d - factor * grad).detach()

    return guided
