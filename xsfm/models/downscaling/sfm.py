"""Stochastic Flow Matching (SFM): adaptive, fixed or two-stage ``sigma_z`` (see :mod:`xsfm.models.downscaling`)."""

from __future__ import annotations

from typing import Any

import torch

from xsfm.models.downscaling.base import Downscaler, _item
from xsfm.sampling.paths import loss_weight, sfm_path

__all__ = ["SFMDownscaler", "SFMFixedSigmaDownscaler", "SFMTwoStageDownscaler"]


class SFMDownscaler(Downscaler):
    """Stochastic Flow Matching with adaptive ``sigma_z`` (``method="sfm"``).

    Examples
    --------
    >>> from xsfm.models.downscaling import build_downscaler
    >>> m = build_downscaler({"method": "sfm", "unet": {"channels": 8, "channel_mult": [1]}})
    >>> type(m).__name__, m.adaptive_sigma_z
    ('SFMDownscaler', True)
    """

    method = "sfm"
    uses_encoder = True
    uses_sigma_z = True
    adaptive_sigma_z = True

    def loss_from_noise(
        self, y: torch.Tensor, x: torch.Tensor, noise: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """SFM loss ``w(sigma) mean((D - x)^2) + lambda mean((x - E(y))^2)`` (see module doc)."""
        two_stage = self.num_stages == 2
        mu = self.encode(y)
        reg = (x - mu).pow(2).mean()
        if two_stage and self.stage == 1:
            return reg, {"loss": _item(reg), "reg": _item(reg)}
        if two_stage or not self._config["encoder_flow_grad"]:
            mu = mu.detach()
        sigma, eps = noise["sigma"], noise["eps"]
        z = mu + self.sigma_z[None, :, None, None] * self.base_noise_sample(eps)
        x_t = sfm_path(z, x, sigma)
        d = self.denoise(x_t, sigma, y)
        flow = (loss_weight(sigma) * (d - x).pow(2).mean(dim=(1, 2, 3))).mean()
        lam = 0.0 if two_stage else float(self._config["lambda_reg"])
        total = flow + lam * reg if lam else flow
        return total, {"loss": _item(total), "flow": _item(flow), "reg": _item(reg)}

    @property
    def sampling_sigma_z(self) -> torch.Tensor:
        """The base noise's scale when sampling: ``sigma_z_scale * sigma_z`` (normalised units)."""
        return self.sigma_z * float(self._config["sigma_z_scale"])

    def _sample_normalised(
        self, y: torch.Tensor, noise: torch.Tensor, settings: dict[str, Any]
    ) -> torch.Tensor:
        mu = self.encode(y)
        z = mu + self.sampling_sigma_z[None, :, None, None] * self.base_noise_sample(noise)
        # z is the state at sigma = 1; a grid starting lower starts from the path's mean there.
        s0 = float(settings["sigma_max"])
        x_init = z if s0 >= 1.0 else s0 * z + (1 - s0) * mu
        return self._integrate(x_init, y, settings)

    def _guidance_path(self, sigma: float) -> tuple[float, torch.Tensor, torch.Tensor]:
        """SFM's path: ``a = 1 - sigma``, noise ``sigma * s``, prior variance ``s^2``.

        ``s`` is :attr:`sampling_sigma_z`.
        """
        sz = self.sampling_sigma_z.detach().float().cpu()
        return 1.0 - sigma, sigma * sz, sz**2


class SFMTwoStageDownscaler(SFMDownscaler):
    """SFM trained in two stages: encoder first (regression), then the flow with ``E`` frozen."""

    method = "sfm-two-stage"

    @property
    def num_stages(self) -> int:  # noqa: D102
        return 2


class SFMFixedSigmaDownscaler(SFMDownscaler):
    """SFM with ``sigma_z`` fixed at ``config["sigma_z_init"]``."""

    method = "sfm-fixed-sigma"
    adaptive_sigma_z = False
