"""U-Net drift network for FlowDAS on gridded states (2-D fields such as vorticity).

``DriftUNet(x, s, history)`` maps the interpolant state ``x [B, *state]``, the interpolation time
``s [B]`` (or a scalar) and the ``L`` previous states ``history [B, L, *state]`` (all normalised) to
the drift ``[B, *state]``. A state is ``[H, W]`` (one field) or ``[C, H, W]``.

It is the EDM-style :class:`~xsfm.nn.unet.UNet` of the downscaling models with ``x`` as its input
channels, the ``L`` history frames as conditioning channels (FlowDAS conditions its Navier-Stokes
U-Net the same way, on the previous frames stacked as channels) and ``s`` through the Fourier
noise embedding. Periodic domains use circular padding (``padding_mode="circular"``).

The network is evaluated one row at a time when a call must not depend on how many rows share it
(:attr:`DriftUNet.per_row`): CPU convolutions round differently for different batch sizes, so
row-by-row calls are what makes a trajectory's result independent of chunking.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from xsfm.nn.unet import UNet

__all__ = ["DriftUNet"]


class DriftUNet(nn.Module):
    """U-Net drift ``b(x, s, history)`` for states ``[H, W]`` or ``[C, H, W]``.

    Parameters
    ----------
    state_shape
        Shape of one state.
    history
        Number ``L`` of conditioning states (the last one is the current state).
    channels, channel_mult, num_blocks, attention_levels, num_heads, patch, padding_mode, grid
        :class:`~xsfm.nn.unet.UNet` options.
    init_seed
        Seed of the weight initialisation.

    Examples
    --------
    >>> net = DriftUNet((16, 16), history=2, channels=8, channel_mult=(1, 2))
    >>> x, hist = torch.zeros(3, 16, 16), torch.zeros(3, 2, 16, 16)
    >>> net(x, torch.rand(3, generator=torch.Generator()), hist).shape
    torch.Size([3, 16, 16])
    >>> DriftUNet.from_config(net.config).config == net.config
    True
    """

    gridded = True
    """Takes states with their shape ``[B, *state]`` (not flattened)."""
    per_row = True
    """Batch-size invariance needs one network call per row on the CPU (see the module docstring)."""

    def __init__(
        self,
        state_shape: Sequence[int],
        history: int = 1,
        *,
        channels: int = 32,
        channel_mult: Sequence[int] = (1, 2, 2),
        num_blocks: int = 1,
        attention_levels: Sequence[int] = (),
        num_heads: int = 1,
        patch: int = 1,
        padding_mode: str = "circular",
        grid: str = "none",
        init_seed: int = 0,
    ) -> None:
        super().__init__()
        shape = tuple(int(n) for n in state_shape)
        if len(shape) not in (2, 3):
            raise ValueError(
                f"DriftUNet needs gridded states of shape [H, W] or [C, H, W]; got {shape} "
                "(use the 'mlp' drift network for vector states)"
            )
        self.state_shape = shape
        self.history = int(history)
        self.fields = shape[0] if len(shape) == 3 else 1
        self._config: dict[str, Any] = {
            "kind": "unet",
            "state_shape": list(shape),
            "history": self.history,
            "channels": int(channels),
            "channel_mult": [int(m) for m in channel_mult],
            "num_blocks": int(num_blocks),
            "attention_levels": [int(a) for a in attention_levels],
            "num_heads": int(num_heads),
            "patch": int(patch),
            "padding_mode": padding_mode,
            "grid": grid,
            "init_seed": int(init_seed),
        }
        self.unet = UNet(
            self.fields,
            self.fields,
            cond_channels=self.history * self.fields,
            channels=channels,
            channel_mult=channel_mult,
            num_blocks=num_blocks,
            attention_levels=attention_levels,
            num_heads=num_heads,
            embedding="fourier",
            grid=grid,
            patch=patch,
            padding_mode=padding_mode,
            seed=init_seed,
        )

    @property
    def config(self) -> dict[str, Any]:
        """JSON-serialisable configuration (``DriftUNet.from_config(config)`` rebuilds it)."""
        return dict(self._config)

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> DriftUNet:
        """Build the network from :attr:`config`."""
        cfg = dict(config)
        kind = cfg.pop("kind", "unet")
        if kind != "unet":
            raise ValueError(f"DriftUNet config has kind {kind!r}, expected 'unet'")
        return cls(**cfg)

    def forward(self, x: torch.Tensor, s: torch.Tensor, history: torch.Tensor) -> torch.Tensor:
        """Drift at ``x [B, *state]``, time ``s [B]`` (or scalar), ``history [B, L, *state]``."""
        batch = x.shape[0]
        h, w = self.state_shape[-2:]
        if math.prod(x.shape[1:]) != math.prod(self.state_shape):
            raise ValueError(
                f"DriftUNet expects states of shape {self.state_shape}; got {tuple(x.shape[1:])}"
            )
        s = torch.as_tensor(s, dtype=x.dtype, device=x.device).reshape(-1).expand(batch)
        x4 = x.reshape(batch, self.fields, h, w)
        cond = history.reshape(batch, self.history * self.fields, h, w)
        return self.unet(x4, s, cond).reshape(x.shape)
