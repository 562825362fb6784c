"""Noise-level and position embeddings for the networks (pure torch).

* :class:`FourierEmbedding` -- random Fourier features ``[cos(2 pi f c), sin(2 pi f c)]`` of a
  scalar noise label ``c`` with fixed frequencies ``f ~ N(0, scale^2)`` drawn once, from an
  explicit generator, at construction (as in the NCSN++ network of Karras et al. 2022, "Elucidating
  the Design Space of Diffusion-Based Generative Models", EDM). Suited to EDM noise labels
  ``c_noise = ln(sigma) / 4``, which live in a range of a few units.
* :class:`PositionalEmbedding` -- the sinusoidal transformer embedding with geometric frequencies;
  the label is multiplied by ``scale`` first so that small label ranges still turn the fast
  frequencies.
* :func:`grid_channels` -- extra input channels that tell a convolutional network *where* it is: the
  sine and cosine of the position on a periodic domain (continuous across the wrap), or a linear
  ramp in ``[-1, 1]`` on a bounded one.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["FourierEmbedding", "PositionalEmbedding", "grid_channels"]


class FourierEmbedding(nn.Module):
    """Random Fourier features of a scalar label.

    Parameters
    ----------
    num_channels
        Output width (even).
    scale
        Standard deviation of the random frequencies.
    generator
        Source of the frequencies; a fixed default (seed 0) when omitted.

    Examples
    --------
    >>> emb = FourierEmbedding(8, generator=torch.Generator().manual_seed(0))
    >>> emb(torch.tensor([0.0, -0.5])).shape
    torch.Size([2, 8])
    """

    def __init__(
        self, num_channels: int, scale: float = 16.0, generator: torch.Generator | None = None
    ) -> None:
        super().__init__()
        if num_channels % 2:
            raise ValueError(f"num_channels must be even, got {num_channels}")
        if generator is None:
            generator = torch.Generator().manual_seed(0)
        freqs = torch.randn(num_channels // 2, generator=generator) * scale
        self.register_buffer("freqs", freqs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Embed labels ``x[B]`` into ``[B, num_channels]``."""
        arg = (2 * math.pi) * x.to(self.freqs.dtype)[:, None] * self.freqs[None, :]
        return torch.cat([arg.cos(), arg.sin()], dim=1)


class PositionalEmbedding(nn.Module):
    """Sinusoidal embedding with geometric frequencies ``(1 / max_positions)^(k / (n/2))``.

    Parameters
    ----------
    num_channels
        Output width (even).
    max_positions
        Ratio of the slowest to the fastest frequency.
    scale
        Factor applied to the label before embedding (EDM labels ``ln(sigma)/4`` span a few units,
        so ``scale = 1000`` makes them turn the whole frequency range).

    Examples
    --------
    >>> PositionalEmbedding(6)(torch.zeros(3)).shape
    torch.Size([3, 6])
    """

    def __init__(
        self, num_channels: int, max_positions: int = 10000, scale: float = 1000.0
    ) -> None:
        super().__init__()
        if num_channels % 2:
            raise ValueError(f"num_channels must be even, got {num_channels}")
        self.num_channels = num_channels
        self.max_positions = max_positions
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Embed labels ``x[B]`` into ``[B, num_channels]``."""
        half = self.num_channels // 2
        k = torch.arange(half, dtype=torch.float32, device=x.device) / half
        freqs = (1.0 / self.max_positions) ** k
        arg = (x.float() * self.scale)[:, None] * freqs[None, :]
        return torch.cat([arg.cos(), arg.sin()], dim=1)


def grid_channels(
    height: int,
    width: int,
    kind: str = "periodic",
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Position channels ``[n, height, width]`` for a grid.

    Parameters
    ----------
    height, width
        Grid size.
    kind
        ``"periodic"``: ``sin`` and ``cos`` of ``2 pi i / n`` along each axis (4 channels);
        ``"linear"``: a ramp in ``[-1, 1]`` along each axis (2 channels); ``"none"``: no channel.
    dtype, device
        Of the result.

    Examples
    --------
    >>> grid_channels(4, 6).shape
    torch.Size([4, 4, 6])
    >>> grid_channels(4, 6, "linear")[0, :, 0]
    tensor([-1.0000, -0.3333,  0.3333,  1.0000])
    """
    if kind == "none":
        return torch.zeros(0, height, width, dtype=dtype, device=device)
    if kind == "periodic":
        ay = 2 * math.pi * torch.arange(height, dtype=torch.float64) / height
        ax = 2 * math.pi * torch.arange(width, dtype=torch.float64) / width
        gy = ay[:, None].expand(height, width)
        gx = ax[None, :].expand(height, width)
        out = torch.stack([gy.sin(), gy.cos(), gx.sin(), gx.cos()])
    elif kind == "linear":
        gy = torch.linspace(-1, 1, height, dtype=torch.float64)[:, None].expand(height, width)
        gx = torch.linspace(-1, 1, width, dtype=torch.float64)[None, :].expand(height, width)
        out = torch.stack([gy, gx])
    else:
        raise ValueError(f"grid kind must be 'periodic', 'linear' or 'none', got {kind!r}")
    return out.to(dtype=dtype, device=device)


def num_grid_channels(kind: str) -> int:
    """Number of channels :func:`grid_channels` makes for ``kind``.

    Examples
    --------
    >>> num_grid_channels("periodic"), num_grid_channels("linear"), num_grid_channels("none")
    (4, 2, 0)
    """
    try:
        return {"periodic": 4, "linear": 2, "none": 0}[kind]
    except KeyError:
        raise ValueError(
            f"grid kind must be 'periodic', 'linear' or 'none', got {kind!r}"
        ) from None
