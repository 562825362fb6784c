"""Training objective of the downscaling methods: noise draws, the loss, the adaptive ``sigma_z``.

:class:`LossMixin` gives :class:`~xsfm.models.downscaling.base.Downscaler` its :meth:`loss` on
physical pairs (the noise drawn from an explicit generator in a fixed order, :meth:`draw_noise`, so
losses can be recomputed by hand), the encoder's RMSE and the bias-corrected moving average that
sets ``sigma_z`` (:meth:`update_sigma_z`). Each method supplies ``loss_from_noise``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from xsfm.models.downscaling.base_noise import BANDS, band_power, fill_empty_bands, shape_noise
from xsfm.sampling.paths import sample_sigma_uniform

__all__ = ["LossMixin"]


class LossMixin:
    """Training loss and ``sigma_z`` updates, for :class:`~xsfm.models.downscaling.base.Downscaler`."""

    def _generator(self, generator: torch.Generator | None) -> torch.Generator:
        if generator is not None:
            return generator
        if self._default_generator is None:
            self._default_generator = torch.Generator().manual_seed(int(self._config["seed"]))
        return self._default_generator

    def draw_noise(
        self, batch: int, shape: Sequence[int], generator: torch.Generator
    ) -> dict[str, torch.Tensor]:
        """Draw the training noise for a batch: ``sigma[B]`` first, then ``eps[B, *shape]``.

        Both come from ``generator`` (on its device), in this order.
        """
        sigma = self._draw_sigma(batch, generator)
        eps = torch.randn((batch, *shape), generator=generator, device=generator.device)
        return {"sigma": sigma, "eps": eps}

    def _draw_sigma(self, batch: int, generator: torch.Generator) -> torch.Tensor:
        return sample_sigma_uniform(
            batch, generator, float(self._config["sigma_min_train"]), device=generator.device
        )

    def loss(
        self,
        coarse: torch.Tensor,
        fine: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Training loss on a batch of physical pairs.

        Parameters
        ----------
        coarse
            ``[B, Cin, h, w]`` in physical units.
        fine
            ``[B, Cout, H, W]`` in physical units.
        generator
            Source of the noise (drawn by :meth:`draw_noise`); a module-owned generator seeded from
            ``config["seed"]`` when omitted.

        Returns
        -------
        loss
            Scalar tensor (differentiable).
        logs
            Its parts as floats (``loss`` and method-specific terms).
        """
        y, x = self.prepare(coarse, fine)
        assert x is not None
        noise = self.draw_noise(x.shape[0], x.shape[1:], self._generator(generator))
        noise = {k: v.to(x.device) for k, v in noise.items()}
        # config dtype "bfloat16": the forward pass under bfloat16 autocast; parameters (the
        # optimiser's master weights), inputs and the loss stay float32
        autocast = self._config["dtype"] == "bfloat16"
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=autocast):
            loss, logs = self.loss_from_noise(y, x, noise)
        return loss.float(), logs

    def loss_from_noise(
        self, y: torch.Tensor, x: torch.Tensor, noise: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """The loss for normalised ``y``, ``x`` and given noise (see :meth:`draw_noise`)."""
        raise NotImplementedError

    @torch.no_grad()
    def encoder_rmse(self, coarse: torch.Tensor, fine: torch.Tensor) -> torch.Tensor:
        """Per-channel RMSE of the encoder on physical pairs, in normalised units ``[Cout]``."""
        y, x = self.prepare(coarse, fine)
        assert x is not None
        return (x - self.encode(y)).pow(2).mean(dim=(0, 2, 3)).sqrt()

    @torch.no_grad()
    def encoder_error_spectrum(
        self, coarse: torch.Tensor, fine: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean Fourier power of the encoder's error per channel and radial band (normalised units).

        Returns ``power [Cout, BANDS]`` and the mode count per band ``[BANDS]``
        (:func:`~xsfm.models.downscaling.base_noise.band_power`).
        """
        y, x = self.prepare(coarse, fine)
        assert x is not None
        return band_power(x - self.encode(y))

    def update_noise_spectrum(self, power: torch.Tensor, count: torch.Tensor) -> torch.Tensor:
        """Fold a measured error power per band (see :meth:`encoder_error_spectrum`) into the base noise.

        Like ``sigma_z``: a bias-corrected moving average (decay ``sigma_z_ema``) of the band power;
        the amplitude is its square root, bands never measured take the nearest measured band's.
        Only for ``base_noise="spectral"``.

        Returns
        -------
        torch.Tensor
            The amplitude per channel and band ``[Cout, BANDS]`` (normalised units).

        Examples
        --------
        >>> from xsfm.models.downscaling import build_downscaler
        >>> m = build_downscaler({"method": "sfm", "base_noise": "spectral",
        ...                       "unet": {"channels": 8, "channel_mult": [1]}})
        >>> e = torch.randn(8, 1, 16, 16, generator=torch.Generator().manual_seed(0))
        >>> amp = m.update_noise_spectrum(*band_power(e))
        >>> amp.shape, bool(((amp - 1).abs() < 0.4).all())
        (torch.Size([1, 17]), True)
        """
        if self.base_noise != "spectral":
            raise TypeError(
                f"method {self.method!r} has white base noise; update_noise_spectrum is for "
                "base_noise='spectral'"
            )
        power = torch.as_tensor(power, dtype=torch.float64).cpu()
        count = torch.as_tensor(count).cpu()
        if power.shape != self.noise_band_ema_sum.shape or count.shape != (power.shape[-1],):
            raise ValueError(
                f"power must be [{self.out_channels}, {BANDS}] and count [{BANDS}], got "
                f"{list(power.shape)} and {list(count.shape)}"
            )
        seen = count > 0
        decay = float(self._config["sigma_z_ema"])
        with torch.no_grad():
            self.noise_band_ema_sum.mul_(decay).add_(
                (1 - decay) * power.to(self.noise_band_ema_sum)
            )
            self.noise_band_updates.add_(1)
            self.noise_band_seen.logical_or_(seen.to(self.noise_band_seen.device))
            corrected = self.noise_band_ema_sum / (1 - decay ** int(self.noise_band_updates))
            amp = fill_empty_bands(corrected.sqrt().cpu(), self.noise_band_seen.cpu())
            self.noise_band_amplitude.copy_(amp.to(self.noise_band_amplitude))
        return self.noise_band_amplitude.clone()

    def base_noise_sample(self, eps: torch.Tensor) -> torch.Tensor:
        """The unit-variance base noise from white ``eps``: ``eps`` itself, or shaped (spectral)."""
        if self.base_noise != "spectral":
            return eps
        return shape_noise(eps, self.noise_band_amplitude)

    def update_sigma_z(self, rmse_per_channel: torch.Tensor | Sequence[float]) -> torch.Tensor:
        """Fold a measured per-channel encoder RMSE (normalised units) into ``sigma_z``.

        ``sigma_z = max(floor, EMA_0.99(rmse) / (1 - 0.99^n))`` after ``n`` updates (a
        bias-corrected moving average). A no-op for methods with a fixed or no ``sigma_z``.

        Returns
        -------
        torch.Tensor
            The current ``sigma_z`` (normalised units); empty for methods without one.

        Examples
        --------
        >>> from xsfm.models.downscaling import build_downscaler
        >>> m = build_downscaler({"method": "sfm", "unet": {"channels": 8, "channel_mult": [1]}})
        >>> m.update_sigma_z([0.01])  # floored at 0.05 (normalised units)
        tensor([0.0500])
        >>> m.update_sigma_z([0.3])  # bias-corrected average of 0.01 and 0.3
        tensor([0.1557])
        """
        if not self.uses_sigma_z:
            return torch.zeros(0)
        if not self.adaptive_sigma_z:
            return self.sigma_z.clone()
        rmse = torch.as_tensor(rmse_per_channel, dtype=torch.float64).reshape(-1)
        if rmse.numel() != self.out_channels:
            raise ValueError(
                f"rmse needs {self.out_channels} values (one per output channel), "
                f"got {rmse.numel()}"
            )
        decay = float(self._config["sigma_z_ema"])
        with torch.no_grad():
            self.sigma_z_ema_sum.mul_(decay).add_((1 - decay) * rmse.to(self.sigma_z_ema_sum))
            self.sigma_z_updates.add_(1)
            corrected = self.sigma_z_ema_sum / (1 - decay ** int(self.sigma_z_updates))
            floor = float(self._config["sigma_z_floor"])
            self.sigma_z.copy_(corrected.clamp_min(floor).to(self.sigma_z))
        return self.sigma_z.clone()

    @property
    def sigma_z_physical(self) -> torch.Tensor:
        """``sigma_z`` in the physical units of each output channel."""
        if not self.uses_sigma_z:
            raise TypeError(f"method {self.method!r} has no sigma_z")
        return self.sigma_z * self.out_std
