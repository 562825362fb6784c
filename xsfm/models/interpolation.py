"""The zero-parameter baseline: bilinear or bicubic interpolation to a grid ``factor`` times finer.

It runs on any variable and any regular grid, so the whole path (xarray -> tensors -> xarray) works before
learned models exist, and it stays the baseline every downscaling report includes. Geometry: cell centres
are preserved (``align_corners=False``); edges are extended by replication, or wrapped for periodic grids.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["InterpolationDownscaler", "upsample"]

_MODES = ("bilinear", "bicubic", "nearest")


def upsample(
    x: torch.Tensor, factor: int, mode: str = "bilinear", periodic: bool = False
) -> torch.Tensor:
    """Upsample ``[..., h, w]`` by ``factor`` with cell centres preserved.

    Parameters
    ----------
    x
        Tensor with at least 3 dims ``[B, C, h, w]`` (extra leading dims are folded).
    factor
        Integer refinement factor.
    mode
        ``"bilinear"``, ``"bicubic"`` or ``"nearest"``.
    periodic
        Wrap around both spatial dims instead of replicating edges.

    Examples
    --------
    >>> upsample(torch.ones(1, 1, 2, 2), 4).shape
    torch.Size([1, 1, 8, 8])
    """
    if mode not in _MODES:
        raise ValueError(f"interpolation mode must be one of {_MODES}, got {mode!r}")
    lead = x.shape[:-2]
    x4 = x.reshape(-1, 1, *x.shape[-2:]) if x.dim() != 4 else x
    kwargs: dict[str, Any] = {} if mode == "nearest" else {"align_corners": False}
    if periodic:
        pad = 2
        padded = F.pad(x4, (pad, pad, pad, pad), mode="circular")
        out = F.interpolate(padded, scale_factor=factor, mode=mode, **kwargs)
        out = out[..., pad * factor : -pad * factor, pad * factor : -pad * factor]
    else:
        out = F.interpolate(x4, scale_factor=factor, mode=mode, **kwargs)
    return out.reshape(*lead, *out.shape[-2:])


class InterpolationDownscaler(nn.Module):
    """Deterministic interpolation as a downscaling "model" (every member is the same field).

    Examples
    --------
    >>> from xsfm.sampling.rng import stream_generators
    >>> m = InterpolationDownscaler(factor=2)
    >>> m.sample(torch.zeros(3, 2, 4, 4), stream_generators(0, range(3), 2), members=2).shape
    torch.Size([3, 2, 2, 8, 8])
    """

    def __init__(self, factor: int = 4, mode: str = "bilinear", periodic: bool = False) -> None:
        super().__init__()
        if int(factor) < 1:
            raise ValueError(f"interpolation factor must be a positive integer, got {factor!r}")
        if mode not in _MODES:
            raise ValueError(f"interpolation mode must be one of {_MODES}, got {mode!r}")
        self.factor = int(factor)
        self.mode = mode
        self.periodic = bool(periodic)

    @property
    def config(self) -> dict[str, Any]:
        """JSON config that rebuilds this module."""
        return {"factor": self.factor, "mode": self.mode, "periodic": self.periodic}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> InterpolationDownscaler:
        """Build from :attr:`config`."""
        return cls(**config)

    @torch.inference_mode()
    def sample(
        self,
        coarse: torch.Tensor,
        generators: Sequence[torch.Generator],
        members: int = 1,
        steps: int | None = None,
        solver: str | None = None,
    ) -> torch.Tensor:
        """Interpolate ``coarse [B, C, h, w]`` and repeat over members: ``[B, M, C, H, W]``."""
        fine = upsample(coarse, self.factor, self.mode, self.periodic)
        return fine.unsqueeze(1).expand(-1, members, -1, -1, -1).clone()
