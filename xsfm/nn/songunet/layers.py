"""Layers of the SongUNet (DDPM++/NCSN++) network in PhysicsNeMo's parameter layout (pure torch).

Every module here holds exactly the parameters and persistent buffers, under the same names and
shapes, as its PhysicsNeMo counterpart (``physicsnemo.nn``: ``Conv2d``, ``Linear``, ``GroupNorm``,
``UNetAttention``, ``UNetBlock``, ``PositionalEmbedding``, ``FourierEmbedding``; checked against
PhysicsNeMo 2.2.2), so a PhysicsNeMo state dict loads with ``strict=True``. The arithmetic follows
PhysicsNeMo's inference path (``eval()``), including two details that matter for exact agreement:

* :class:`GroupNorm` normalises with the *unbiased* variance (``Tensor.var``), as PhysicsNeMo's
  ``GroupNorm`` does outside training, and takes ``min(32, ceil(C / 4))`` groups;
* :class:`UNetBlock` adds the noise embedding, through a ``[C, E]`` affine map, to the features
  *before* the second GroupNorm (``adaptive_scale=False``, the SongUNet setting), and has a 1x1
  skip convolution whenever it resamples, even at equal width (``resample_proj=True``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "Attention",
    "Conv2d",
    "FourierEmbedding",
    "GroupNorm",
    "Linear",
    "PositionalEmbedding",
    "UNetBlock",
]


def _glorot_uniform(shape: list[int], fan_in: int, fan_out: int) -> torch.Tensor:
    bound = math.sqrt(6.0 / (fan_in + fan_out))
    return (torch.rand(shape) * 2 - 1) * bound


class Linear(nn.Module):
    """Dense layer ``x @ weight.T + bias`` with ``weight`` of shape ``[out, in]``.

    Parameters
    ----------
    in_features, out_features
        Widths.
    bias
        Whether the layer has a bias.
    init_weight
        Factor on the Xavier-uniform initial weights (the bias starts at zero).

    Examples
    --------
    >>> Linear(3, 5)(torch.zeros(2, 3)).shape
    torch.Size([2, 5])
    """

    def __init__(
        self, in_features: int, out_features: int, bias: bool = True, init_weight: float = 1.0
    ) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        w = _glorot_uniform([out_features, in_features], in_features, out_features)
        self.weight = nn.Parameter(w * init_weight)
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the layer to ``x[..., in_features]``."""
        x = x @ self.weight.to(x.dtype).t()
        if self.bias is not None:
            x = x + self.bias.to(x.dtype)
        return x


class Conv2d(nn.Module):
    """Convolution with optional 2x up- or down-sampling by a separable FIR filter.

    With ``kernel=0`` the layer has no weight and only resamples. The filter ``f f^T / (sum f)^2``
    is a persistent buffer ``resample_filter`` when the layer resamples (as in PhysicsNeMo).
    Up-sampling is a transposed depthwise convolution by ``4 f f^T / (sum f)^2`` with stride 2;
    down-sampling a depthwise convolution by the filter with stride 2. ``fused_resample`` applies
    the weight before down-sampling (after up-sampling) with the paddings PhysicsNeMo uses.

    Parameters
    ----------
    in_channels, out_channels
        Widths.
    kernel
        Square kernel size; 0 for no weight.
    bias
        Whether the layer has a bias (only with ``kernel > 0``).
    up, down
        Resample by 2 (at most one of them).
    resample_filter
        1-D filter taps, ``[1, 1]`` (box) or ``[1, 3, 3, 1]``.
    fused_resample
        Resample and convolve in the fused order (used by the residual encoder).
    init_weight
        Factor on the Xavier-uniform initial weights.

    Examples
    --------
    >>> conv = Conv2d(2, 3, kernel=3, down=True)
    >>> conv(torch.zeros(1, 2, 8, 8)).shape
    torch.Size([1, 3, 4, 4])
    >>> sorted(conv.state_dict())
    ['bias', 'resample_filter', 'weight']
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: int,
        bias: bool = True,
        up: bool = False,
        down: bool = False,
        resample_filter: list[int] | tuple[int, ...] = (1, 1),
        fused_resample: bool = False,
        init_weight: float = 1.0,
    ) -> None:
        super().__init__()
        if up and down:
            raise ValueError("a Conv2d cannot both up- and down-sample")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.up = up
        self.down = down
        self.fused_resample = fused_resample
        fan_in, fan_out = in_channels * kernel * kernel, out_channels * kernel * kernel
        self.weight = (
            nn.Parameter(
                _glorot_uniform([out_channels, in_channels, kernel, kernel], fan_in, fan_out)
                * init_weight
            )
            if kernel
            else None
        )
        self.bias = nn.Parameter(torch.zeros(out_channels)) if kernel and bias else None
        f = torch.as_tensor(list(resample_filter), dtype=torch.float32)
        f = torch.outer(f, f)[None, None] / f.sum().square()
        self.register_buffer("resample_filter", f if (up or down) else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the (resampling) convolution to ``x[B, in, H, W]``."""
        w = None if self.weight is None else self.weight.to(x.dtype)
        b = None if self.bias is None else self.bias.to(x.dtype)
        f = None if self.resample_filter is None else self.resample_filter.to(x.dtype)
        w_pad = w.shape[-1] // 2 if w is not None else 0
        f_pad = (f.shape[-1] - 1) // 2 if f is not None else 0
        if self.fused_resample and self.up and w is not None:
            x = F.conv_transpose2d(
                x,
                f.mul(4).tile([self.in_channels, 1, 1, 1]),
                groups=self.in_channels,
                stride=2,
                padding=max(f_pad - w_pad, 0),
            )
            x = F.conv2d(x, w, bias=b, padding=max(w_pad - f_pad, 0))
        elif self.fused_resample and self.down and w is not None:
            x = F.conv2d(x, w, padding=w_pad + f_pad)
            x = F.conv2d(
                x, f.tile([self.out_channels, 1, 1, 1]), bias=b, groups=self.out_channels, stride=2
            )
        else:
            if self.up:
                x = F.conv_transpose2d(
                    x,
                    f.mul(4).tile([self.in_channels, 1, 1, 1]),
                    groups=self.in_channels,
                    stride=2,
                    padding=f_pad,
                )
            if self.down:
                x = F.conv2d(
                    x,
                    f.tile([self.in_channels, 1, 1, 1]),
                    groups=self.in_channels,
                    stride=2,
                    padding=f_pad,
                )
            if w is not None:
                x = F.conv2d(x, w, bias=b, padding=w_pad)
        return x


class GroupNorm(nn.Module):
    """Group normalisation with ``min(num_groups, ceil(C / min_channels_per_group))`` groups.

    The variance is the unbiased one (divisor ``n - 1``), as in PhysicsNeMo's ``GroupNorm`` at
    inference (its ``eval()`` path), which is what PhysicsNeMo's CorrDiff generation runs.

    Parameters
    ----------
    num_channels
        Width ``C``.
    num_groups
        Largest number of groups.
    min_channels_per_group
        Fewest channels in a group.
    eps
        Added to the variance.
    act
        ``"silu"`` to apply SiLU after the affine map (PhysicsNeMo's fused activation), else None.

    Examples
    --------
    >>> GroupNorm(8).num_groups
    2
    >>> GroupNorm(8)(torch.randn(1, 8, 4, 4)).shape
    torch.Size([1, 8, 4, 4])
    """

    def __init__(
        self,
        num_channels: int,
        num_groups: int = 32,
        min_channels_per_group: int = 4,
        eps: float = 1e-5,
        act: str | None = None,
    ) -> None:
        super().__init__()
        groups = min(
            num_groups, (num_channels + min_channels_per_group - 1) // min_channels_per_group
        )
        if num_channels % groups:
            raise ValueError(f"{num_channels} channels do not split into {groups} groups")
        if act not in (None, "silu"):
            raise ValueError(f"unsupported fused activation {act!r} (only 'silu')")
        self.num_groups = groups
        self.eps = eps
        self.act = act
        self.weight = nn.Parameter(torch.ones(num_channels))
        self.bias = nn.Parameter(torch.zeros(num_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise ``x[B, C, H, W]``."""
        b, c, h, w = x.shape
        g = x.reshape(b, self.num_groups, c // self.num_groups, h, w)
        mean = g.mean(dim=[2, 3, 4], keepdim=True)
        var = g.var(dim=[2, 3, 4], keepdim=True)
        g = (g - mean) * (var + self.eps).rsqrt()
        x = g.reshape(b, c, h, w)
        x = x * self.weight.to(x.dtype).reshape(1, -1, 1, 1) + self.bias.to(x.dtype).reshape(
            1, -1, 1, 1
        )
        return F.silu(x) if self.act == "silu" else x


class Attention(nn.Module):
    """Self-attention over the pixels: GroupNorm, 1x1 ``qkv`` conv, softmax, 1x1 ``proj``, residual.

    The ``qkv`` output channels are laid out ``[head, channel, (q, k, v)]`` as in PhysicsNeMo.

    Parameters
    ----------
    channels
        Width ``C``.
    num_heads
        Heads; ``C`` must split evenly.
    eps
        GroupNorm epsilon.

    Examples
    --------
    >>> Attention(8)(torch.randn(1, 8, 4, 4)).shape
    torch.Size([1, 8, 4, 4])
    """

    def __init__(self, channels: int, num_heads: int = 1, eps: float = 1e-5) -> None:
        super().__init__()
        if num_heads <= 0 or channels % num_heads:
            raise ValueError(f"{channels} channels do not split into {num_heads} heads")
        self.num_heads = num_heads
        self.norm = GroupNorm(channels, eps=eps)
        self.qkv = Conv2d(channels, channels * 3, kernel=1, init_weight=math.sqrt(0.2))
        self.proj = Conv2d(channels, channels, kernel=1, init_weight=1e-5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Attend over the ``H * W`` positions of ``x[B, C, H, W]``."""
        b, c = x.shape[:2]
        qkv = self.qkv(self.norm(x)).reshape(b, self.num_heads, c // self.num_heads, 3, -1)
        qkv = qkv.permute(0, 1, 4, 3, 2)
        q, k, v = (qkv[..., i, :] for i in range(3))
        out = F.scaled_dot_product_attention(q, k, v, scale=1 / math.sqrt(k.shape[-1]))
        return self.proj(out.transpose(-1, -2).reshape(*x.shape)) + x


class UNetBlock(nn.Module):
    """SongUNet residual block: ``norm0 -> conv0 (+resample) -> +affine(emb) -> norm1 -> conv1``.

    ``norm0`` and ``norm1`` apply SiLU. The noise embedding enters through ``affine`` (a ``[C, E]``
    weight) *added* to the features before ``norm1``. The skip path is a 1x1 convolution (with the
    same resampling) whenever the width changes or the block resamples; the sum is scaled by
    ``skip_scale``, and an optional :class:`Attention` follows (its output scaled again).

    Parameters
    ----------
    in_channels, out_channels
        Widths.
    emb_channels
        Width ``E`` of the embedding.
    up, down
        Resample by 2.
    attention
        Whether the block ends in self-attention.
    num_heads
        Attention heads.
    dropout
        Dropout before ``conv1`` (training only).
    skip_scale
        Factor on the residual sum (``1 / sqrt(2)`` in SongUNet).
    eps
        GroupNorm epsilon.
    resample_filter
        FIR taps for resampling.

    Examples
    --------
    >>> block = UNetBlock(8, 8, emb_channels=16, down=True)
    >>> block(torch.randn(2, 8, 8, 8), torch.randn(2, 16)).shape
    torch.Size([2, 8, 4, 4])
    >>> block.skip.weight.shape
    torch.Size([8, 8, 1, 1])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        emb_channels: int,
        up: bool = False,
        down: bool = False,
        attention: bool = False,
        num_heads: int = 1,
        dropout: float = 0.0,
        skip_scale: float = 1 / math.sqrt(2),
        eps: float = 1e-6,
        resample_filter: list[int] | tuple[int, ...] = (1, 1),
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.dropout = dropout
        self.skip_scale = skip_scale
        self.norm0 = GroupNorm(in_channels, eps=eps, act="silu")
        self.conv0 = Conv2d(
            in_channels, out_channels, 3, up=up, down=down, resample_filter=resample_filter
        )
        self.affine = Linear(emb_channels, out_channels)
        self.norm1 = GroupNorm(out_channels, eps=eps, act="silu")
        self.conv1 = Conv2d(out_channels, out_channels, 3, init_weight=1e-5)
        self.skip = None
        if out_channels != in_channels or up or down:
            self.skip = Conv2d(
                in_channels, out_channels, 1, up=up, down=down, resample_filter=resample_filter
            )
        self.attn = Attention(out_channels, num_heads, eps=eps) if attention else None

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        """Apply the block to ``x[B, in, H, W]`` with the embedding ``emb[B or 1, E]``."""
        orig = x
        x = self.conv0(self.norm0(x))
        params = self.affine(emb).to(x.dtype)[:, :, None, None]
        x = self.norm1(x + params)
        x = self.conv1(F.dropout(x, p=self.dropout, training=self.training))
        x = x + (self.skip(orig) if self.skip is not None else orig)
        x = x * self.skip_scale
        if self.attn is not None:
            x = self.attn(x) * self.skip_scale
        return x


class PositionalEmbedding(nn.Module):
    """Sinusoidal embedding ``[cos(c f), sin(c f)]`` of a noise label ``c`` (DDPM++).

    ``f_k = (1 / max_positions) ** (k / (n/2 - endpoint))`` for ``k < n/2``; the label is used as
    given (no input scale). The frequencies are a persistent buffer ``freqs`` as in PhysicsNeMo
    2.x; checkpoints without it (older PhysicsNeMo/Modulus) get the formula's values.

    Parameters
    ----------
    num_channels
        Output width ``n`` (even).
    max_positions
        Period scale of the slowest frequency.
    endpoint
        Whether the last frequency reaches ``1 / max_positions`` (SongUNet: True).

    Examples
    --------
    >>> emb = PositionalEmbedding(8, endpoint=True)
    >>> emb(torch.tensor([0.0, 1.0])).shape
    torch.Size([2, 8])
    >>> round(float(emb.freqs[-1]), 8)
    0.0001
    """

    def __init__(
        self, num_channels: int, max_positions: int = 10000, endpoint: bool = False
    ) -> None:
        super().__init__()
        half = num_channels // 2
        freqs = torch.arange(half, dtype=torch.float32) / (half - (1 if endpoint else 0))
        self.register_buffer("freqs", (1 / max_positions) ** freqs)
        self.register_load_state_dict_pre_hook(self._fill_freqs)

    @staticmethod
    def _fill_freqs(
        module: PositionalEmbedding, state_dict: dict, prefix: str, *args: object, **kwargs: object
    ) -> None:
        # older checkpoints (PhysicsNeMo < 2, Modulus) did not save the frequencies
        state_dict.setdefault(prefix + "freqs", module.freqs.clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Embed labels ``x[B]`` into ``[B, num_channels]``."""
        x = torch.outer(x, self.freqs.to(x.dtype))
        return torch.cat([x.cos(), x.sin()], dim=1)


class FourierEmbedding(nn.Module):
    """Random Fourier features ``[cos(2 pi c f), sin(2 pi c f)]`` of a noise label (NCSN++).

    The frequencies ``f ~ N(0, scale^2)`` are a persistent buffer ``freqs`` (loaded from the
    checkpoint).

    Parameters
    ----------
    num_channels
        Output width (even).
    scale
        Standard deviation of the initial frequencies.

    Examples
    --------
    >>> FourierEmbedding(8)(torch.tensor([0.5])).shape
    torch.Size([1, 8])
    """

    def __init__(self, num_channels: int, scale: float = 16.0) -> None:
        super().__init__()
        self.register_buffer("freqs", torch.randn(num_channels // 2) * scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Embed labels ``x[B]`` into ``[B, num_channels]``."""
        x = torch.outer(x, 2 * math.pi * self.freqs.to(x.dtype))
        return torch.cat([x.cos(), x.sin()], dim=1)
