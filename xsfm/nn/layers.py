"""Layers whose weights are drawn from an explicit generator: linear, 'same'-padded convolution, GroupNorm.

Weights are Xavier-uniform from a :class:`torch.Generator` passed in (never torch's global
generator), so a network built from these layers is a pure function of its config and seed.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["Conv2d", "Linear", "group_norm"]

_PADDING_MODES = ("zeros", "circular", "reflect", "replicate")


def _uniform_(
    tensor: torch.Tensor, bound: float, generator: torch.Generator | None
) -> torch.Tensor:
    with torch.no_grad():
        values = torch.rand(tensor.shape, generator=generator, dtype=tensor.dtype) * 2 - 1
        tensor.copy_(values * bound)
    return tensor


class Linear(nn.Module):
    """Fully connected layer with Xavier-uniform weights from an explicit generator.

    Examples
    --------
    >>> layer = Linear(3, 2, generator=torch.Generator().manual_seed(0))
    >>> layer(torch.ones(5, 3)).shape
    torch.Size([5, 2])
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        bias: bool = True,
        init_weight: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        _uniform_(self.weight, init_weight * math.sqrt(6 / (in_features + out_features)), generator)
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the layer."""
        return F.linear(x, self.weight, self.bias)


class Conv2d(nn.Module):
    """2-D convolution with 'same' padding of a chosen mode and generator-drawn Xavier weights.

    Examples
    --------
    >>> conv = Conv2d(2, 4, 3, padding_mode="circular", generator=torch.Generator().manual_seed(0))
    >>> conv(torch.ones(1, 2, 8, 8)).shape
    torch.Size([1, 4, 8, 8])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: int,
        *,
        bias: bool = True,
        padding_mode: str = "zeros",
        init_weight: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if padding_mode not in _PADDING_MODES:
            raise ValueError(f"padding_mode must be one of {_PADDING_MODES}, got {padding_mode!r}")
        if kernel % 2 != 1:
            raise ValueError(f"kernel must be odd for 'same' padding, got {kernel}")
        self.padding_mode = padding_mode
        self.pad = kernel // 2
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel, kernel))
        fan_in, fan_out = in_channels * kernel**2, out_channels * kernel**2
        _uniform_(self.weight, init_weight * math.sqrt(6 / (fan_in + fan_out)), generator)
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the convolution (spatial size kept)."""
        if self.pad == 0:
            return F.conv2d(x, self.weight, self.bias)
        if self.padding_mode == "zeros":
            return F.conv2d(x, self.weight, self.bias, padding=self.pad)
        x = F.pad(x, (self.pad,) * 4, mode=self.padding_mode)
        return F.conv2d(x, self.weight, self.bias)


def group_norm(channels: int, eps: float = 1e-6) -> nn.GroupNorm:
    """GroupNorm with ``min(32, channels // 4)`` groups (at least one group).

    Examples
    --------
    >>> group_norm(32).num_groups
    8
    """
    groups = max(1, min(32, channels // 4))
    while channels % groups:
        groups -= 1
    return nn.GroupNorm(groups, channels, eps=eps)
