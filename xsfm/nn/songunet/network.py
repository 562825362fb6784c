"""SongUNet and SongUNetPosEmbd in PhysicsNeMo's layout (pure torch).

The networks hold the same state-dict keys and shapes as PhysicsNeMo's
``physicsnemo.models.diffusion_unets.SongUNet`` and ``SongUNetPosEmbd`` (2.2.2) and compute the same
function at inference. Architecture facts (DDPM++/NCSN++ of Song et al. 2021 as arranged by
PhysicsNeMo):

* **mapping**: noise label -> :class:`~xsfm.nn.songunet.layers.PositionalEmbedding` (``endpoint``
  True, no input scale) or :class:`~xsfm.nn.songunet.layers.FourierEmbedding`, its halves swapped
  to ``[sin, cos]``, plus optional class/augment labels, then ``map_layer0``/``map_layer1`` with
  SiLU; ``embedding_type="zero"`` gives a zero embedding and no mapping parameters;
* **encoder**: per level a resampling block ``{res}x{res}_down`` (same width, 1x1 skip conv) and
  ``num_blocks`` blocks ``{res}x{res}_block{i}`` at width ``model_channels * mult`` with attention
  where ``res in attn_resolutions``; ``encoder_type`` "skip"/"residual" adds the auxiliary
  input paths; ``res`` is the *height* of the level;
* **decoder**: at the innermost level ``_in0`` (attention if ``bottleneck_attention``) and
  ``_in1``; elsewhere an up-sampling block ``_up`` that keeps the width of the level below; then
  ``num_blocks + 1`` blocks fed with the concatenated skips, the last one with attention where
  ``res in attn_resolutions``; output through ``aux_norm -> SiLU -> aux_conv`` (every level with
  ``decoder_type="skip"``, summed and up-sampled).

:class:`SongUNetPosEmbd` concatenates a fixed or learnable positional grid (``gridtype``) to the
input channels before the U-Net.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from xsfm.nn.songunet.layers import (
    Conv2d,
    FourierEmbedding,
    GroupNorm,
    Linear,
    PositionalEmbedding,
    UNetBlock,
)

__all__ = ["SongUNet", "SongUNetPosEmbd", "positional_grid"]


class SongUNet(nn.Module):
    """U-Net of DDPM++ / NCSN++ with PhysicsNeMo's parameter names.

    Parameters
    ----------
    img_resolution
        ``H`` or ``[H, W]``; names the levels and sizes ``spatial_emb``.
    in_channels, out_channels
        Input and output widths.
    label_dim, augment_dim
        Widths of the optional vector conditionings (0: none).
    model_channels
        Base width.
    channel_mult
        Width multiplier per level (one level per entry).
    channel_mult_emb
        Embedding width ``model_channels * channel_mult_emb``.
    num_blocks
        Blocks per level in the encoder (decoder: one more).
    attn_resolutions
        Level heights that get self-attention.
    dropout
        Dropout in the blocks (training only).
    label_dropout
        Class-label dropout (training only).
    embedding_type
        ``"positional"``, ``"fourier"`` or ``"zero"``.
    channel_mult_noise
        Noise-embedding width ``model_channels * channel_mult_noise``.
    encoder_type
        ``"standard"``, ``"skip"`` or ``"residual"``.
    decoder_type
        ``"standard"`` or ``"skip"``.
    resample_filter
        FIR taps for resampling.
    additive_pos_embed
        Add a learnable ``spatial_emb[1, model_channels, H, W]`` after the first convolution.
    bottleneck_attention
        Self-attention in the innermost decoder block ``_in0``.

    Examples
    --------
    >>> net = SongUNet(16, in_channels=3, out_channels=2, model_channels=8, channel_mult=[1, 2],
    ...                num_blocks=1, attn_resolutions=[8])
    >>> net(torch.randn(2, 3, 16, 16), torch.randn(2)).shape
    torch.Size([2, 2, 16, 16])
    """

    def __init__(
        self,
        img_resolution: int | list[int] | tuple[int, int],
        in_channels: int,
        out_channels: int,
        label_dim: int = 0,
        augment_dim: int = 0,
        model_channels: int = 128,
        channel_mult: list[int] | tuple[int, ...] = (1, 2, 2, 2),
        channel_mult_emb: int = 4,
        num_blocks: int = 4,
        attn_resolutions: list[int] | tuple[int, ...] = (16,),
        dropout: float = 0.10,
        label_dropout: float = 0.0,
        embedding_type: str = "positional",
        channel_mult_noise: int = 1,
        encoder_type: str = "standard",
        decoder_type: str = "standard",
        resample_filter: list[int] | tuple[int, ...] = (1, 1),
        additive_pos_embed: bool = False,
        bottleneck_attention: bool = True,
    ) -> None:
        super().__init__()
        for name, value, allowed in (
            ("embedding_type", embedding_type, ("positional", "fourier", "zero")),
            ("encoder_type", encoder_type, ("standard", "skip", "residual")),
            ("decoder_type", decoder_type, ("standard", "skip")),
        ):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
        if isinstance(img_resolution, int):
            self.img_shape_y = self.img_shape_x = img_resolution
        else:
            self.img_shape_y, self.img_shape_x = (int(v) for v in img_resolution)
        self.label_dim = label_dim
        self.augment_dim = augment_dim
        self.label_dropout = label_dropout
        self.embedding_type = embedding_type
        self.additive_pos_embed = additive_pos_embed
        self.num_levels = len(channel_mult)
        emb_channels = model_channels * channel_mult_emb
        self.emb_channels = emb_channels
        noise_channels = model_channels * channel_mult_noise
        block = {
            "emb_channels": emb_channels,
            "num_heads": 1,
            "dropout": dropout,
            "skip_scale": 1 / math.sqrt(2),
            "eps": 1e-6,
            "resample_filter": list(resample_filter),
        }

        if additive_pos_embed:
            self.spatial_emb = nn.Parameter(
                0.02 * torch.randn(1, model_channels, self.img_shape_y, self.img_shape_x)
            )

        self.map_noise: nn.Module | None = None
        self.map_label: Linear | None = None
        self.map_augment: Linear | None = None
        if embedding_type != "zero":
            self.map_noise = (
                PositionalEmbedding(noise_channels, endpoint=True)
                if embedding_type == "positional"
                else FourierEmbedding(noise_channels)
            )
            self.map_label = Linear(label_dim, noise_channels) if label_dim else None
            self.map_augment = (
                Linear(augment_dim, noise_channels, bias=False) if augment_dim else None
            )
            self.map_layer0 = Linear(noise_channels, emb_channels)
            self.map_layer1 = Linear(emb_channels, emb_channels)

        self.enc = nn.ModuleDict()
        cout = caux = in_channels
        for level, mult in enumerate(channel_mult):
            res = self.img_shape_y >> level
            if level == 0:
                cin, cout = cout, model_channels
                self.enc[f"{res}x{res}_conv"] = Conv2d(cin, cout, kernel=3)
            else:
                self.enc[f"{res}x{res}_down"] = UNetBlock(cout, cout, down=True, **block)
                if encoder_type == "skip":
                    self.enc[f"{res}x{res}_aux_down"] = Conv2d(
                        caux, caux, kernel=0, down=True, resample_filter=resample_filter
                    )
                    self.enc[f"{res}x{res}_aux_skip"] = Conv2d(caux, cout, kernel=1)
                if encoder_type == "residual":
                    self.enc[f"{res}x{res}_aux_residual"] = Conv2d(
                        caux,
                        cout,
                        kernel=3,
                        down=True,
                        resample_filter=resample_filter,
                        fused_resample=True,
                    )
                    caux = cout
            for idx in range(num_blocks):
                cin, cout = cout, model_channels * mult
                self.enc[f"{res}x{res}_block{idx}"] = UNetBlock(
                    cin, cout, attention=res in attn_resolutions, **block
                )
        skips = [m.out_channels for name, m in self.enc.items() if "aux" not in name]

        self.dec = nn.ModuleDict()
        for level, mult in reversed(list(enumerate(channel_mult))):
            res = self.img_shape_y >> level
            if level == len(channel_mult) - 1:
                self.dec[f"{res}x{res}_in0"] = UNetBlock(
                    cout, cout, attention=bottleneck_attention, **block
                )
                self.dec[f"{res}x{res}_in1"] = UNetBlock(cout, cout, **block)
            else:
                self.dec[f"{res}x{res}_up"] = UNetBlock(cout, cout, up=True, **block)
            for idx in range(num_blocks + 1):
                cin, cout = cout + skips.pop(), model_channels * mult
                attn = idx == num_blocks and res in attn_resolutions
                self.dec[f"{res}x{res}_block{idx}"] = UNetBlock(cin, cout, attention=attn, **block)
            if decoder_type == "skip" or level == 0:
                if decoder_type == "skip" and level < len(channel_mult) - 1:
                    self.dec[f"{res}x{res}_aux_up"] = Conv2d(
                        out_channels,
                        out_channels,
                        kernel=0,
                        up=True,
                        resample_filter=resample_filter,
                    )
                self.dec[f"{res}x{res}_aux_norm"] = GroupNorm(cout, eps=1e-6)
                self.dec[f"{res}x{res}_aux_conv"] = Conv2d(cout, out_channels, 3, init_weight=1e-5)

    def embed(
        self,
        noise_labels: torch.Tensor,
        class_labels: torch.Tensor | None = None,
        augment_labels: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Embedding ``[B, E]`` of the noise labels ``[B]`` (and optional labels)."""
        if self.map_noise is None:
            return torch.zeros(noise_labels.shape[0], self.emb_channels, dtype=noise_labels.dtype)
        emb = self.map_noise(noise_labels)
        cos, sin = emb.chunk(2, dim=1)
        emb = torch.cat([sin, cos], dim=1)
        if self.map_label is not None:
            if class_labels is None:
                raise ValueError(f"this network needs class_labels [B, {self.label_dim}]")
            tmp = class_labels
            if self.training and self.label_dropout:
                keep = torch.rand([tmp.shape[0], 1], device=tmp.device) >= self.label_dropout
                tmp = tmp * keep.to(tmp.dtype)
            emb = emb + self.map_label(tmp * math.sqrt(self.map_label.in_features))
        if self.map_augment is not None and augment_labels is not None:
            emb = emb + self.map_augment(augment_labels)
        emb = F.silu(self.map_layer0(emb))
        return F.silu(self.map_layer1(emb))

    def forward(
        self,
        x: torch.Tensor,
        noise_labels: torch.Tensor,
        class_labels: torch.Tensor | None = None,
        augment_labels: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Map ``x[B, in, H, W]`` and noise labels ``[B]`` (or ``[1]``) to ``[B, out, H, W]``.

        ``H`` and ``W`` must be multiples of ``2 ** (levels - 1)``.
        """
        mult = 2 ** (self.num_levels - 1)
        if x.ndim != 4 or any(d % mult for d in x.shape[-2:]):
            raise ValueError(
                f"expected x[B, C, H, W] with H and W multiples of {mult}, got {tuple(x.shape)}"
            )
        emb = self.embed(noise_labels, class_labels, augment_labels).to(x.dtype)

        skips = []
        aux = x
        for name, block in self.enc.items():
            if "aux_down" in name:
                aux = block(aux)
            elif "aux_skip" in name:
                x = skips[-1] = x + block(aux)
            elif "aux_residual" in name:
                x = skips[-1] = aux = (x + block(aux)) / np.sqrt(2)
            elif "_conv" in name:
                x = block(x)
                if self.additive_pos_embed:
                    x = x + self.spatial_emb.to(x.dtype)
                skips.append(x)
            else:
                x = block(x, emb)
                skips.append(x)

        aux = None
        tmp = None
        for name, block in self.dec.items():
            if "aux_up" in name:
                aux = block(aux)
            elif "aux_norm" in name:
                tmp = block(x)
            elif "aux_conv" in name:
                tmp = block(F.silu(tmp))
                aux = tmp if aux is None else tmp + aux
            else:
                if x.shape[1] != block.in_channels:
                    x = torch.cat([x, skips.pop()], dim=1)
                x = block(x, emb)
        return aux


def positional_grid(gridtype: str, channels: int, height: int, width: int) -> torch.Tensor | None:
    """The fixed positional grid ``[channels, height, width]`` of :class:`SongUNetPosEmbd`.

    Parameters
    ----------
    gridtype
        ``"sinusoidal"`` (PhysicsNeMo's legacy bands: with 4 channels ``sin, cos`` of
        ``linspace(0, 2 pi)`` *with* the end point, else bands ``2 ** linspace(0, n, n)``),
        ``"sinusoidal_octave"`` (bands ``2 ** k``), ``"linear"`` (2 channels in ``[-1, 1]``) or
        ``"test"`` (2 channels of pixel indices).
    channels
        Number of grid channels (0: none, returns None).
    height, width
        Grid size.

    Returns
    -------
    torch.Tensor or None
        The grid in float32.

    Examples
    --------
    >>> g = positional_grid("sinusoidal", 4, 3, 5)
    >>> g.shape, float(g[0, 0, -1].abs()) < 1e-12
    (torch.Size([4, 3, 5]), True)
    """
    if channels == 0:
        return None
    xs = np.linspace(0, 2 * np.pi, width)
    ys = np.linspace(0, 2 * np.pi, height)
    if gridtype == "sinusoidal" and channels == 4:
        gx1, gy1 = np.meshgrid(np.sin(xs), np.sin(ys))
        gx2, gy2 = np.meshgrid(np.cos(xs), np.cos(ys))
        grid = np.stack((gx1, gy1, gx2, gy2))
    elif gridtype in ("sinusoidal", "sinusoidal_octave"):
        if channels % 4:
            raise ValueError(f"{gridtype} grid needs a multiple of 4 channels, got {channels}")
        n = channels // 4
        bands = (
            2.0 ** np.linspace(0.0, n, num=n) if gridtype == "sinusoidal" else 2.0 ** np.arange(n)
        )
        gx, gy = np.meshgrid(xs, ys)
        grid = np.stack(
            [fn(g * f) for f in bands for fn in (np.sin, np.cos) for g in (gx, gy)], axis=0
        )
    elif gridtype == "linear":
        if channels != 2:
            raise ValueError("linear grid needs 2 channels")
        gy, gx = np.meshgrid(np.linspace(-1, 1, width), np.linspace(-1, 1, height))
        grid = np.stack((gy, gx))
    elif gridtype == "test":
        if channels != 2:
            raise ValueError("test grid needs 2 channels")
        iy, ix = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
        grid = np.stack((iy, ix))
    else:
        raise ValueError(f"unsupported gridtype {gridtype!r} with {channels} channels")
    return torch.from_numpy(np.asarray(grid)).float()


class SongUNetPosEmbd(SongUNet):
    """:class:`SongUNet` whose input gets ``N_grid_channels`` positional channels appended.

    ``in_channels`` counts the grid channels (as in PhysicsNeMo). The grid is a non-persistent
    buffer ``pos_embd`` for the fixed types (:func:`positional_grid`) and a parameter for
    ``gridtype="learnable"``. Lead-time embeddings (``SongUNetPosLtEmbd``) are not supported.

    Parameters
    ----------
    img_resolution, in_channels, out_channels
        As :class:`SongUNet`; the grid is ``img_resolution`` in size, so inputs must be too.
    gridtype
        ``"sinusoidal"``, ``"sinusoidal_octave"``, ``"linear"``, ``"learnable"`` or ``"test"``.
    N_grid_channels
        Number of grid channels.
    **kwargs
        The other :class:`SongUNet` arguments (defaults as PhysicsNeMo's ``SongUNetPosEmbd``:
        five levels, attention at 28, dropout 0.13).

    Examples
    --------
    >>> net = SongUNetPosEmbd(16, in_channels=6, out_channels=2, model_channels=8,
    ...                       channel_mult=[1, 2], num_blocks=1, attn_resolutions=[8])
    >>> net(torch.randn(1, 2, 16, 16), torch.zeros(1)).shape
    torch.Size([1, 2, 16, 16])
    """

    def __init__(
        self,
        img_resolution: int | list[int] | tuple[int, int],
        in_channels: int,
        out_channels: int,
        gridtype: str = "sinusoidal",
        N_grid_channels: int = 4,
        channel_mult: list[int] | tuple[int, ...] = (1, 2, 2, 2, 2),
        attn_resolutions: list[int] | tuple[int, ...] = (28,),
        dropout: float = 0.13,
        **kwargs: object,
    ) -> None:
        super().__init__(
            img_resolution,
            in_channels,
            out_channels,
            channel_mult=channel_mult,
            attn_resolutions=attn_resolutions,
            dropout=dropout,
            **kwargs,  # type: ignore[arg-type]
        )
        self.gridtype = gridtype
        self.N_grid_channels = N_grid_channels
        shape = (N_grid_channels, self.img_shape_y, self.img_shape_x)
        if gridtype == "learnable" and N_grid_channels:
            self.pos_embd = nn.Parameter(torch.randn(shape))
        else:
            grid = positional_grid(gridtype, N_grid_channels, *shape[1:])
            self.register_buffer("pos_embd", grid, persistent=False)

    def forward(
        self,
        x: torch.Tensor,
        noise_labels: torch.Tensor,
        class_labels: torch.Tensor | None = None,
        augment_labels: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Append the grid to ``x[B, C, H, W]`` and apply the U-Net."""
        if self.pos_embd is not None:
            if tuple(x.shape[-2:]) != tuple(self.pos_embd.shape[-2:]):
                raise ValueError(
                    f"input is {tuple(x.shape[-2:])} but the positional grid is "
                    f"{tuple(self.pos_embd.shape[-2:])}"
                )
            grid = self.pos_embd.to(x.dtype)[None].expand(x.shape[0], -1, -1, -1)
            x = torch.cat([x, grid], dim=1)
        return super().forward(x, noise_labels, class_labels, augment_labels)
