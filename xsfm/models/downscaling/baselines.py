"""The baselines of SFM on the same backbone: regression, CFM, EDM and CorrDiff-style diffusion."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from xsfm.models.downscaling.base import Downscaler, _item
from xsfm.sampling.paths import loss_weight, sample_sigma_lognormal, sfm_path

__all__ = ["CFMDownscaler", "CorrDiffDownscaler", "EDMDownscaler", "RegressionDownscaler"]


class RegressionDownscaler(Downscaler):
    """The encoder alone, trained on ``mean((x - E(y))^2)``; deterministic (members equal).

    Examples
    --------
    >>> from xsfm.models.downscaling import build_downscaler
    >>> from xsfm.sampling.rng import stream_generators
    >>> m = build_downscaler({"method": "regression", "factor": 2})
    >>> out = m.sample(torch.ones(1, 1, 3, 3), stream_generators(0, [0], 3), members=3)
    >>> out.shape, bool((out[:, 0] == out[:, 2]).all())
    (torch.Size([1, 3, 1, 6, 6]), True)
    """

    method = "regression"
    uses_encoder = True
    uses_flow_net = False

    def draw_noise(  # noqa: D102
        self, batch: int, shape: Sequence[int], generator: torch.Generator
    ) -> dict[str, torch.Tensor]:
        return {}

    def loss_from_noise(
        self, y: torch.Tensor, x: torch.Tensor, noise: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Regression loss ``mean((x - E(y))^2)``."""
        reg = (x - self.encode(y)).pow(2).mean()
        return reg, {"loss": _item(reg), "reg": _item(reg)}

    supports_guidance = False

    def _sample_normalised(
        self, y: torch.Tensor, noise: torch.Tensor, settings: dict[str, Any]
    ) -> torch.Tensor:
        return self.encode(y)


class CFMDownscaler(Downscaler):
    """Conditional flow matching from ``N(0, I)`` with ``y`` as conditioning channels.

    The loss is SFM's flow term with ``z = eps``: ``w(sigma) mean((D - x)^2)``, which equals the
    velocity-matching loss times ``(sigma^2 + 0.25) / 0.25``.
    """

    method = "cfm"

    def loss_from_noise(
        self, y: torch.Tensor, x: torch.Tensor, noise: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """CFM loss ``w(sigma) mean((D(sigma eps + (1 - sigma) x, sigma, y) - x)^2)``."""
        sigma, eps = noise["sigma"], noise["eps"]
        x_t = sfm_path(eps, x, sigma)
        d = self.denoise(x_t, sigma, y)
        flow = (loss_weight(sigma) * (d - x).pow(2).mean(dim=(1, 2, 3))).mean()
        return flow, {"loss": _item(flow), "flow": _item(flow)}

    def _sample_normalised(
        self, y: torch.Tensor, noise: torch.Tensor, settings: dict[str, Any]
    ) -> torch.Tensor:
        s0 = float(settings["sigma_max"])
        x_init = noise if s0 >= 1.0 else s0 * noise
        return self._integrate(x_init, y, settings)

    def _guidance_path(self, sigma: float) -> tuple[float, torch.Tensor, torch.Tensor]:
        """CFM's path from ``N(0, I)``: ``a = 1 - sigma``, noise ``sigma``, prior variance 1."""
        ones = torch.ones(self.out_channels)
        return 1.0 - sigma, sigma * ones, ones


class EDMDownscaler(Downscaler):
    """Conditional EDM diffusion: ``x_sigma = x + sigma eps``, ``ln sigma ~ N(-1.2, 1.2^2)``."""

    method = "edm"

    def _draw_sigma(self, batch: int, generator: torch.Generator) -> torch.Tensor:
        cfg = self._config
        return sample_sigma_lognormal(
            batch, generator, float(cfg["p_mean"]), float(cfg["p_std"]), device=generator.device
        )

    def _edm_loss(
        self, y: torch.Tensor, target: torch.Tensor, noise: dict[str, torch.Tensor]
    ) -> torch.Tensor:
        sigma, eps = noise["sigma"], noise["eps"]
        x_t = target + sigma[:, None, None, None] * eps
        d = self.denoise(x_t, sigma, y)
        return (loss_weight(sigma) * (d - target).pow(2).mean(dim=(1, 2, 3))).mean()

    def loss_from_noise(
        self, y: torch.Tensor, x: torch.Tensor, noise: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """EDM loss ``w(sigma) mean((D(x + sigma eps, sigma, y) - x)^2)``."""
        flow = self._edm_loss(y, x, noise)
        return flow, {"loss": _item(flow), "flow": _item(flow)}

    def _sample_normalised(
        self, y: torch.Tensor, noise: torch.Tensor, settings: dict[str, Any]
    ) -> torch.Tensor:
        return self._integrate(float(settings["sigma_max"]) * noise, y, settings)


class CorrDiffDownscaler(EDMDownscaler):
    """Regression mean ``E(y)`` plus conditional EDM diffusion of the residual ``x - E(y)``.

    With ``corrdiff_joint=False`` (default, as CorrDiff) training has two stages: the regression
    first, then the diffusion with the mean frozen. With ``corrdiff_joint=True`` one loss
    ``w(sigma) mean((D - r)^2) + lambda mean((x - E(y))^2)``, ``r = x - E(y)`` detached.
    """

    method = "corrdiff"
    uses_encoder = True

    @property
    def num_stages(self) -> int:  # noqa: D102
        return 1 if self._config["corrdiff_joint"] else 2

    def loss_from_noise(
        self, y: torch.Tensor, x: torch.Tensor, noise: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Regression and/or residual diffusion loss, by stage."""
        mu = self.encode(y)
        reg = (x - mu).pow(2).mean()
        if self.num_stages == 2 and self.stage == 1:
            return reg, {"loss": _item(reg), "reg": _item(reg)}
        flow = self._edm_loss(y, x - mu.detach(), noise)
        lam = 0.0 if self.num_stages == 2 else float(self._config["lambda_reg"])
        total = flow + lam * reg if lam else flow
        return total, {"loss": _item(total), "flow": _item(flow), "reg": _item(reg)}

    def _sample_normalised(
        self, y: torch.Tensor, noise: torch.Tensor, settings: dict[str, Any]
    ) -> torch.Tensor:
        mu = self.encode(y)
        if settings.get("guidance") is not None:
            settings = {**settings, "offset": mu}  # the observations see mean + residual
        residual = self._integrate(float(settings["sigma_max"]) * noise, y, settings)
        return mu + residual
