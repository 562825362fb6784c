"""The residual block of the U-Net: noise-embedding modulation, resampling, self-attention.

``GroupNorm -> SiLU -> 3x3 conv`` twice, the noise embedding entering as a per-channel scale and
shift after the second normalisation, the skip scaled by ``1/sqrt(2)``; average-pool down-sampling,
nearest up-sampling and optional multi-head self-attention (DDPM++ / EDM family).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from xsfm.nn.layers import Conv2d, Linear, group_norm

__all__ = ["UNetBlock"]


class UNetBlock(nn.Module):
    """Residual block with noise-embedding modulation, optional resampling and self-attention.

    Examples
    --------
    >>> g = torch.Generator().manual_seed(0)
    >>> block = UNetBlock(8, 16, 32, down=True, attention=True, generator=g)
    >>> block(torch.randn(2, 8, 8, 8, generator=g), torch.zeros(2, 32)).shape
    torch.Size([2, 16, 4, 4])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        emb_channels: int,
        *,
        up: bool = False,
        down: bool = False,
        attention: bool = False,
        num_heads: int = 1,
        padding_mode: str = "zeros",
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if up and down:
            raise ValueError("a block resamples up or down, not both")
        self.up, self.down = up, down
        self.num_heads = num_heads
        self.norm0 = group_norm(in_channels)
        self.conv0 = Conv2d(
            in_channels, out_channels, 3, padding_mode=padding_mode, generator=generator
        )
        self.affine = (
            Linear(emb_channels, 2 * out_channels, generator=generator) if emb_channels else None
        )
        self.norm1 = group_norm(out_channels)
        self.conv1 = Conv2d(
            out_channels,
            out_channels,
            3,
            padding_mode=padding_mode,
            init_weight=1e-5,
            generator=generator,
        )
        self.skip = (
            Conv2d(in_channels, out_channels, 1, generator=generator)
            if in_channels != out_channels
            else None
        )
        if attention:
            if out_channels % num_heads:
                raise ValueError(
                    f"out_channels={out_channels} is not divisible by num_heads={num_heads}"
                )
            self.norm2 = group_norm(out_channels)
            self.qkv = Conv2d(out_channels, 3 * out_channels, 1, generator=generator)
            self.proj = Conv2d(out_channels, out_channels, 1, init_weight=1e-5, generator=generator)
        else:
            self.norm2 = self.qkv = self.proj = None

    def _resample(self, x: torch.Tensor) -> torch.Tensor:
        if self.down:
            return F.avg_pool2d(x, 2)
        if self.up:
            return F.interpolate(x, scale_factor=2.0, mode="nearest")
        return x

    def forward(self, x: torch.Tensor, emb: torch.Tensor | None) -> torch.Tensor:
        """Apply the block to ``x[B, Cin, H, W]`` with embedding ``emb[B, E]`` (or ``None``)."""
        orig = x
        h = self.conv0(self._resample(F.silu(self.norm0(x))))
        h = self.norm1(h)
        if self.affine is not None and emb is not None:
            scale, shift = self.affine(emb).to(h.dtype)[:, :, None, None].chunk(2, dim=1)
            h = torch.addcmul(shift, h, scale + 1)
        h = self.conv1(F.silu(h))
        skip = self._resample(orig)
        if self.skip is not None:
            skip = self.skip(skip)
        x = (h + skip) * math.sqrt(0.5)
        if self.qkv is not None:
            b, c, hh, ww = x.shape
            heads = self.num_heads
            qkv = self.qkv(self.norm2(x)).reshape(b, 3, heads, c // heads, hh * ww)
            q, k, v = (qkv[:, i].transpose(-1, -2) for i in range(3))
            a = F.scaled_dot_product_attention(q, k, v)  # [b, heads, hw, c/heads]
            a = a.transpose(-1, -2).reshape(b, c, hh, ww)
            x = (x + self.proj(a)) * math.sqrt(0.5)
        return x
