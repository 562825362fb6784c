"""An EDM-style U-Net, small enough to train on one CPU core (pure torch).

The architecture follows the DDPM++ / EDM family (Karras et al. 2022, "Elucidating the Design Space
of Diffusion-Based Generative Models"): residual blocks of ``GroupNorm -> SiLU -> 3x3 conv``, the
noise embedding entering each block as a per-channel scale and shift after the second
normalisation, skip connections scaled by ``1/sqrt(2)``, optional multi-head self-attention at
chosen levels, average-pool down-sampling and nearest up-sampling. The last convolution of each
block and of the network start near zero, so a fresh network is close to the identity of its
preconditioning.

Inputs of :meth:`UNet.forward`: the state ``x[B, C, H, W]``, optional noise labels ``[B]`` and
optional conditioning channels ``cond[B, Ccond, H, W]`` (concatenated to ``x``), plus, when
``grid`` is not ``"none"``, position channels made inside (see
:func:`xsfm.nn.embeddings.grid_channels`). Grids whose sides are not multiples of ``2**(levels-1)``
are padded (circularly when ``padding_mode="circular"``, by edge replication otherwise) and cropped
back.

All weights are drawn at construction from an explicit :class:`torch.Generator` (never from torch's
global generator), so a network is a pure function of its config and seed. There is no dropout
(torch's dropout can only draw from the global generator).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from xsfm.nn.blocks import UNetBlock
from xsfm.nn.embeddings import (
    FourierEmbedding,
    PositionalEmbedding,
    grid_channels,
    num_grid_channels,
)
from xsfm.nn.layers import Conv2d, Linear, group_norm

__all__ = ["Conv2d", "Linear", "UNet", "UNetBlock", "group_norm"]


class UNet(nn.Module):
    """EDM-style U-Net ``F(x, noise_labels, cond) -> [B, out_channels, H, W]``.

    Parameters
    ----------
    in_channels
        Channels of the state ``x``.
    out_channels
        Channels of the output.
    cond_channels
        Channels of the conditioning input concatenated to ``x`` (0: none).
    channels
        Base width; level ``l`` has ``channels * channel_mult[l]`` channels.
    channel_mult
        Width multipliers per level; there are ``len(channel_mult)`` levels, each halving the grid.
    num_blocks
        Residual blocks per level in the encoder (the decoder has one more).
    attention_levels
        Levels with self-attention after each block (the middle block has attention when the
        coarsest level is listed).
    num_heads
        Attention heads.
    embedding
        Noise-label embedding: ``"fourier"``, ``"positional"`` or ``"none"`` (a network without
        noise input, e.g. a regression encoder).
    emb_mult
        Width of the embedding MLP as a multiple of ``channels``.
    grid
        Position channels made inside: ``"none"``, ``"periodic"`` or ``"linear"``.
    patch
        Space-to-depth factor: the network works on ``H/patch x W/patch`` cells of
        ``patch x patch`` pixels (``pixel_unshuffle`` in, ``pixel_shuffle`` out). On CPUs the
        element-wise work (normalisation, activations, padding) of the full-resolution level
        dominates, so ``patch=2`` is about 3x faster for the same width.
    padding_mode
        Convolution padding: ``"zeros"`` or ``"circular"`` (periodic domains), ``"reflect"``,
        ``"replicate"``.
    seed
        Seed of the weight initialisation (ignored when ``generator`` is given).
    generator
        Source of the initial weights.

    Examples
    --------
    >>> net = UNet(1, 1, cond_channels=2, channels=8, channel_mult=(1, 2), grid="periodic")
    >>> x, cond = torch.zeros(3, 1, 16, 16), torch.zeros(3, 2, 16, 16)
    >>> net(x, torch.zeros(3), cond).shape
    torch.Size([3, 1, 16, 16])
    >>> UNet.from_config(net.config).config == net.config
    True
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        cond_channels: int = 0,
        channels: int = 32,
        channel_mult: Sequence[int] = (1, 2, 2),
        num_blocks: int = 1,
        attention_levels: Sequence[int] = (),
        num_heads: int = 1,
        embedding: str = "fourier",
        emb_mult: int = 4,
        grid: str = "none",
        patch: int = 1,
        padding_mode: str = "zeros",
        seed: int = 0,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if embedding not in ("fourier", "positional", "none"):
            raise ValueError(
                f"embedding must be 'fourier', 'positional' or 'none', got {embedding!r}"
            )
        if not channel_mult:
            raise ValueError("channel_mult needs at least one level")
        self._config: dict[str, Any] = {
            "in_channels": int(in_channels),
            "out_channels": int(out_channels),
            "cond_channels": int(cond_channels),
            "channels": int(channels),
            "channel_mult": [int(m) for m in channel_mult],
            "num_blocks": int(num_blocks),
            "attention_levels": [int(a) for a in attention_levels],
            "num_heads": int(num_heads),
            "embedding": embedding,
            "emb_mult": int(emb_mult),
            "grid": grid,
            "patch": int(patch),
            "padding_mode": padding_mode,
            "seed": int(seed),
        }
        if generator is None:
            generator = torch.Generator().manual_seed(int(seed))
        self.grid = grid
        self.cond_channels = cond_channels
        self.padding_mode = padding_mode
        self.levels = len(channel_mult)
        if int(patch) < 1:
            raise ValueError(f"patch must be a positive integer, got {patch!r}")
        self.patch = int(patch)
        emb_ch = channels * emb_mult if embedding != "none" else 0
        if embedding == "fourier":
            self.map_noise: nn.Module | None = FourierEmbedding(channels, generator=generator)
        elif embedding == "positional":
            self.map_noise = PositionalEmbedding(channels)
        else:
            self.map_noise = None
        if emb_ch:
            self.map_layer0 = Linear(channels, emb_ch, generator=generator)
            self.map_layer1 = Linear(emb_ch, emb_ch, generator=generator)
        else:
            self.map_layer0 = self.map_layer1 = None

        block_kw = {"num_heads": num_heads, "padding_mode": padding_mode, "generator": generator}
        total_in = (in_channels + cond_channels + num_grid_channels(grid)) * self.patch**2
        self.conv_in = Conv2d(
            total_in, channels * channel_mult[0], 3, padding_mode=padding_mode, generator=generator
        )
        skip_channels = [channels * channel_mult[0]]
        cur = skip_channels[0]
        self.enc = nn.ModuleList()
        for level, mult in enumerate(channel_mult):
            width = channels * mult
            if level > 0:
                self.enc.append(UNetBlock(cur, cur, emb_ch, down=True, **block_kw))
                skip_channels.append(cur)
            for _ in range(num_blocks):
                attn = level in attention_levels
                self.enc.append(UNetBlock(cur, width, emb_ch, attention=attn, **block_kw))
                cur = width
                skip_channels.append(cur)
        mid_attn = (len(channel_mult) - 1) in attention_levels
        self.mid = nn.ModuleList(
            [
                UNetBlock(cur, cur, emb_ch, attention=mid_attn, **block_kw),
                UNetBlock(cur, cur, emb_ch, **block_kw),
            ]
        )
        self.dec = nn.ModuleList()
        self._dec_kinds: list[str] = []
        for level in reversed(range(len(channel_mult))):
            width = channels * channel_mult[level]
            for _ in range(num_blocks + 1):
                attn = level in attention_levels
                skip = skip_channels.pop()
                self.dec.append(UNetBlock(cur + skip, width, emb_ch, attention=attn, **block_kw))
                self._dec_kinds.append("cat")
                cur = width
            if level > 0:
                # The up-sampling block already works at the finer level's width (EDM keeps the
                # coarser width here, which costs twice the FLOPs at the finer resolution).
                finer = channels * channel_mult[level - 1]
                self.dec.append(UNetBlock(cur, finer, emb_ch, up=True, **block_kw))
                self._dec_kinds.append("up")
                cur = finer
        self.norm_out = group_norm(cur)
        self.conv_out = Conv2d(
            cur,
            out_channels * self.patch**2,
            3,
            padding_mode=padding_mode,
            init_weight=1e-5,
            generator=generator,
        )

    @property
    def config(self) -> dict[str, Any]:
        """JSON-serialisable constructor arguments."""
        return dict(self._config)

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> UNet:
        """Build a network from :attr:`config`."""
        return cls(**config)

    def forward(
        self,
        x: torch.Tensor,
        noise_labels: torch.Tensor | None = None,
        cond: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Evaluate the network.

        Parameters
        ----------
        x
            State ``[B, in_channels, H, W]``.
        noise_labels
            ``[B]`` labels (e.g. EDM ``c_noise``); ignored by a network without embedding.
        cond
            Conditioning ``[B, cond_channels, H, W]``, required when ``cond_channels > 0``.
        """
        b, _, height, width = x.shape
        parts = [x]
        if self.cond_channels:
            if cond is None:
                raise ValueError(f"this network needs {self.cond_channels} conditioning channels")
            parts.append(cond.to(x.dtype))
        if self.grid != "none":
            g = grid_channels(height, width, self.grid, dtype=x.dtype, device=x.device)
            parts.append(g[None].expand(b, -1, -1, -1))
        h = torch.cat(parts, dim=1) if len(parts) > 1 else x
        if x.is_contiguous(memory_format=torch.channels_last) and x.shape[1] > 1:
            h = h.contiguous(memory_format=torch.channels_last)

        multiple = self.patch * 2 ** (self.levels - 1)
        pad_h, pad_w = (-height) % multiple, (-width) % multiple
        if pad_h or pad_w:
            mode = "circular" if self.padding_mode == "circular" else "replicate"
            h = F.pad(h, (0, pad_w, 0, pad_h), mode=mode)
        if self.patch > 1:
            h = F.pixel_unshuffle(h, self.patch)

        emb = None
        if self.map_noise is not None:
            if noise_labels is None:
                noise_labels = torch.zeros(b, device=x.device)
            noise_labels = (
                noise_labels.reshape(-1).expand(b) if noise_labels.numel() == 1 else noise_labels
            )
            emb = self.map_noise(noise_labels.float())
            emb = F.silu(self.map_layer0(emb))
            emb = F.silu(self.map_layer1(emb))

        h = self.conv_in(h)
        skips = [h]
        for block in self.enc:
            h = block(h, emb)
            skips.append(h)
        for block in self.mid:
            h = block(h, emb)
        for kind, block in zip(self._dec_kinds, self.dec, strict=True):
            if kind == "cat":
                h = torch.cat([h, skips.pop()], dim=1)
            h = block(h, emb)
        out = self.conv_out(F.silu(self.norm_out(h)))
        if self.patch > 1:
            out = F.pixel_shuffle(out, self.patch)
        if pad_h or pad_w:
            out = out[:, :, :height, :width]
        return out
