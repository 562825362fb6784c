"""CorrDiff wrappers around the SongUNet: the regression U-Net and the EDM super-resolution denoiser.

Both hold the backbone as ``model`` (state-dict keys ``model.*``), as PhysicsNeMo's
``CorrDiffRegressionUNet``/``UNet`` and ``EDMPrecondSuperResolution``/``EDMPrecondSR`` do, and run
in float32 (PhysicsNeMo's ``use_fp16`` only matters on CUDA and is not reproduced).
"""

from __future__ import annotations

import torch
from torch import nn

from xsfm.nn.songunet.network import SongUNet, SongUNetPosEmbd

__all__ = ["BACKBONES", "CorrDiffRegressionUNet", "EDMPrecondSuperResolution"]

#: Backbone classes by PhysicsNeMo ``model_type`` name.
BACKBONES: dict[str, type[SongUNet]] = {"SongUNet": SongUNet, "SongUNetPosEmbd": SongUNetPosEmbd}


def _backbone(model_type: str) -> type[SongUNet]:
    if model_type not in BACKBONES:
        raise ValueError(f"model_type {model_type!r} is not supported; known: {sorted(BACKBONES)}")
    return BACKBONES[model_type]


class CorrDiffRegressionUNet(nn.Module):
    """CorrDiff's deterministic regression network: ``model(cat(zeros, img_lr), noise=0)``.

    Parameters
    ----------
    img_resolution
        ``H`` or ``[H, W]``.
    img_in_channels
        Channels of the conditioning image (for ``SongUNetPosEmbd`` including its grid channels).
    img_out_channels
        Output channels.
    model_type
        ``"SongUNet"`` or ``"SongUNetPosEmbd"`` (PhysicsNeMo's default).
    **model_kwargs
        Backbone arguments (:class:`~xsfm.nn.songunet.SongUNet`).

    Examples
    --------
    >>> net = CorrDiffRegressionUNet(16, 3, 2, model_type="SongUNet", model_channels=8,
    ...                              channel_mult=[1, 2], num_blocks=1, attn_resolutions=[])
    >>> net.predict(torch.randn(1, 3, 16, 16)).shape
    torch.Size([1, 2, 16, 16])
    """

    def __init__(
        self,
        img_resolution: int | list[int] | tuple[int, int],
        img_in_channels: int,
        img_out_channels: int,
        model_type: str = "SongUNetPosEmbd",
        **model_kwargs: object,
    ) -> None:
        super().__init__()
        self.img_in_channels = img_in_channels
        self.img_out_channels = img_out_channels
        self.model = _backbone(model_type)(
            img_resolution,
            in_channels=img_in_channels + img_out_channels,
            out_channels=img_out_channels,
            **model_kwargs,  # type: ignore[arg-type]
        )

    def forward(self, x: torch.Tensor, img_lr: torch.Tensor | None = None) -> torch.Tensor:
        """PhysicsNeMo's call: ``x[B, out, H, W]`` (zeros) and ``img_lr[B, in, H, W]``."""
        if img_lr is not None:
            x = torch.cat((x, img_lr.to(x.dtype)), dim=1)
        x = x.to(torch.float32)
        noise = torch.zeros(x.shape[0], dtype=torch.float32, device=x.device)
        return self.model(x, noise)

    def predict(self, img_lr: torch.Tensor) -> torch.Tensor:
        """Regression mean ``[B, out, H, W]`` of the conditioning image ``img_lr[B, in, H, W]``."""
        zeros = img_lr.new_zeros(img_lr.shape[0], self.img_out_channels, *img_lr.shape[-2:])
        return self(zeros, img_lr)


class EDMPrecondSuperResolution(nn.Module):
    """EDM-preconditioned denoiser ``D(x; sigma, img_lr)`` for super-resolution (Karras et al. 2022).

    ``D = c_skip x + c_out F(arg, c_noise)`` with ``c_skip = s^2 / (sigma^2 + s^2)``,
    ``c_out = sigma s / sqrt(sigma^2 + s^2)``, ``c_in = 1 / sqrt(s^2 + sigma^2)``,
    ``c_noise = ln(sigma) / 4`` and ``s = sigma_data``. The network input ``arg`` is
    ``cat(c_in x, img_lr)``, or with ``scale_cond_input=True`` (the legacy ``EDMPrecondSR``
    default, needed by checkpoints trained with it) ``c_in cat(x, img_lr)``.

    Parameters
    ----------
    img_resolution
        ``H`` or ``[H, W]``.
    img_in_channels
        Channels of the conditioning (with hr-mean conditioning: the mean's channels, the
        low-resolution channels and, for ``SongUNetPosEmbd``, the grid channels).
    img_out_channels
        Channels of the denoised field.
    model_type
        ``"SongUNet"`` or ``"SongUNetPosEmbd"``.
    sigma_data
        Data standard deviation ``s``.
    sigma_min, sigma_max
        Supported noise range (the samplers clip their schedules to it).
    scale_cond_input
        Legacy scaling of the conditioning channels by ``c_in``.
    **model_kwargs
        Backbone arguments.

    Examples
    --------
    >>> net = EDMPrecondSuperResolution(16, 3, 2, model_type="SongUNet", model_channels=8,
    ...                                 channel_mult=[1, 2], num_blocks=1, attn_resolutions=[])
    >>> net(torch.randn(1, 2, 16, 16), torch.randn(1, 3, 16, 16), torch.tensor(1.0)).shape
    torch.Size([1, 2, 16, 16])
    """

    def __init__(
        self,
        img_resolution: int | list[int] | tuple[int, int],
        img_in_channels: int,
        img_out_channels: int,
        model_type: str = "SongUNetPosEmbd",
        sigma_data: float = 0.5,
        sigma_min: float = 0.0,
        sigma_max: float = float("inf"),
        scale_cond_input: bool = False,
        **model_kwargs: object,
    ) -> None:
        super().__init__()
        self.img_in_channels = img_in_channels
        self.img_out_channels = img_out_channels
        self.sigma_data = float(sigma_data)
        self.sigma_min = float(sigma_min)
        self.sigma_max = float(sigma_max)
        self.scale_cond_input = scale_cond_input
        self.model = _backbone(model_type)(
            img_resolution,
            in_channels=img_in_channels + img_out_channels,
            out_channels=img_out_channels,
            **model_kwargs,  # type: ignore[arg-type]
        )

    def forward(
        self, x: torch.Tensor, img_lr: torch.Tensor | None, sigma: torch.Tensor | float
    ) -> torch.Tensor:
        """Denoise ``x[B, out, H, W]`` at noise level ``sigma`` (scalar or ``[B]``), in float32."""
        x = x.to(torch.float32)
        sigma = torch.as_tensor(sigma, device=x.device).to(torch.float32).reshape(-1, 1, 1, 1)
        sd = self.sigma_data
        c_skip = sd**2 / (sigma**2 + sd**2)
        c_out = sigma * sd / (sigma**2 + sd**2).sqrt()
        c_in = 1 / (sd**2 + sigma**2).sqrt()
        c_noise = sigma.log() / 4
        if img_lr is None:
            arg = c_in * x
        elif self.scale_cond_input:
            arg = c_in * torch.cat([x, img_lr.to(x.dtype)], dim=1)
        else:
            arg = torch.cat([c_in * x, img_lr.to(x.dtype)], dim=1)
        f_x = self.model(arg, c_noise.flatten())
        return c_skip * x + c_out * f_x.to(torch.float32)

    @staticmethod
    def round_sigma(sigma: float | torch.Tensor) -> torch.Tensor:
        """Noise level as a tensor (no rounding for EDM)."""
        return torch.as_tensor(sigma)


class SongUNetDenoiser(nn.Module):
    """A PhysicsNeMo-layout :class:`~xsfm.nn.songunet.SongUNet` behind xsfm's denoiser interface.

    ``forward(x, noise_labels, cond)`` as :class:`xsfm.nn.unet.UNet`: the conditioning channels
    are concatenated after ``x``; the parameters are those of PhysicsNeMo's ``SongUNet`` with
    ``in_channels + cond_channels`` inputs, so a downscaler trained in xsfm with this backbone has
    the CorrDiff/SFM papers' architecture (select it in a card with ``unet.backbone``).

    Examples
    --------
    >>> net = SongUNetDenoiser(1, 1, cond_channels=2, img_resolution=16, model_channels=8,
    ...                        channel_mult=[1, 2], num_blocks=1, attn_resolutions=[8])
    >>> net(torch.randn(2, 1, 16, 16), torch.zeros(2), torch.randn(2, 2, 16, 16)).shape
    torch.Size([2, 1, 16, 16])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        cond_channels: int = 0,
        img_resolution: int | list[int] | tuple[int, int] = 64,
        **songunet_kwargs: object,
    ) -> None:
        super().__init__()
        self.cond_channels = int(cond_channels)
        self.model = SongUNet(
            img_resolution,
            in_channels=in_channels + self.cond_channels,
            out_channels=out_channels,
            **songunet_kwargs,  # type: ignore[arg-type]
        )

    def forward(
        self,
        x: torch.Tensor,
        noise_labels: torch.Tensor | None = None,
        cond: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Evaluate on ``x [B, C, H, W]`` with ``noise_labels [B]`` and ``cond [B, Cc, H, W]``."""
        parts = [x]
        if self.cond_channels:
            if cond is None:
                raise ValueError(f"this network needs {self.cond_channels} conditioning channels")
            parts.append(cond.to(x.dtype))
        if noise_labels is None:
            noise_labels = x.new_zeros(x.shape[0])
        return self.model(torch.cat(parts, dim=1), noise_labels.reshape(-1).to(x.dtype))
