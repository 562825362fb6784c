"""Encoders ``E(y)``: coarse input to a first guess of the fine field (pure torch).

An encoder is the deterministic map from the (interpolated, normalised) coarse input to a first
guess of the fine field.

* :class:`Conv1x1Encoder` -- a per-pixel linear map of the channels (the SFM default).
* :class:`UNetEncoder` -- a small :class:`~xsfm.nn.unet.UNet` without noise input.

Both are built from JSON-serialisable configs by :func:`build_encoder`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from xsfm.nn.layers import Conv2d
from xsfm.nn.unet import UNet

__all__ = ["Conv1x1Encoder", "UNetEncoder", "build_encoder"]


class Conv1x1Encoder(nn.Module):
    """Per-pixel linear map ``[B, Cin, H, W] -> [B, Cout, H, W]``, starting at zero.

    Examples
    --------
    >>> enc = Conv1x1Encoder(3, 2)
    >>> enc(torch.zeros(4, 3, 8, 8)).shape
    torch.Size([4, 2, 8, 8])
    """

    def __init__(self, in_channels: int, out_channels: int, *, seed: int = 0) -> None:
        super().__init__()
        self._config = {
            "kind": "conv1x1",
            "in_channels": int(in_channels),
            "out_channels": int(out_channels),
            "seed": int(seed),
        }
        # Zero start: E(y) = 0 (the normalised climatology) until the regression has learned;
        # a linear least-squares problem needs no symmetry breaking.
        self.conv = Conv2d(
            in_channels,
            out_channels,
            1,
            init_weight=0.0,
            generator=torch.Generator().manual_seed(int(seed)),
        )

    @property
    def config(self) -> dict[str, Any]:
        """JSON-serialisable constructor arguments (with ``kind``)."""
        return dict(self._config)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        """Encode ``y``."""
        return self.conv(y)


class UNetEncoder(nn.Module):
    """Small U-Net encoder without noise embedding.

    Examples
    --------
    >>> enc = UNetEncoder(3, 2, channels=8, channel_mult=(1, 2))
    >>> enc(torch.zeros(1, 3, 8, 8)).shape
    torch.Size([1, 2, 8, 8])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        channels: int = 16,
        channel_mult: Sequence[int] = (1, 2),
        num_blocks: int = 1,
        grid: str = "none",
        patch: int = 1,
        padding_mode: str = "zeros",
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.net = UNet(
            in_channels,
            out_channels,
            channels=channels,
            channel_mult=channel_mult,
            num_blocks=num_blocks,
            embedding="none",
            grid=grid,
            patch=patch,
            padding_mode=padding_mode,
            seed=seed,
        )
        # A 1x1 linear path keeps the encoder a good linear regressor from the first step
        # (the U-Net's output convolution starts near zero).
        self.linear = Conv2d(
            in_channels, out_channels, 1, generator=torch.Generator().manual_seed(int(seed) + 1)
        )
        cfg = self.net.config
        self._config = {
            "kind": "unet",
            "in_channels": int(in_channels),
            "out_channels": int(out_channels),
            "channels": cfg["channels"],
            "channel_mult": cfg["channel_mult"],
            "num_blocks": cfg["num_blocks"],
            "grid": grid,
            "patch": cfg["patch"],
            "padding_mode": padding_mode,
            "seed": int(seed),
        }

    @property
    def config(self) -> dict[str, Any]:
        """JSON-serialisable constructor arguments (with ``kind``)."""
        return dict(self._config)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        """Encode ``y``."""
        return self.linear(y) + self.net(y)


def build_encoder(config: dict[str, Any]) -> nn.Module:
    """Build an encoder from a config with ``kind`` ``"conv1x1"`` or ``"unet"``.

    Examples
    --------
    >>> enc = build_encoder({"kind": "conv1x1", "in_channels": 2, "out_channels": 1})
    >>> build_encoder(enc.config).config == enc.config
    True
    """
    cfg = dict(config)
    kind = cfg.pop("kind", "conv1x1")
    if kind == "conv1x1":
        return Conv1x1Encoder(**cfg)
    if kind == "unet":
        return UNetEncoder(**cfg)
    raise ValueError(f"encoder kind must be 'conv1x1' or 'unet', got {kind!r}")
