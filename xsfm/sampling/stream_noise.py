"""Per-stream noise of the samplers, drawn from each stream's generator in fixed blocks of steps.

A stream's noise is drawn up front in blocks whose size depends only on the number of steps, the
draws per step and the state size, so a stream's result does not depend on which other streams
share the batch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

__all__ = ["StreamNoise"]

_NOISE_BUDGET = 1 << 20  # normal draws per stream and block of steps


class StreamNoise:
    """Per-stream noise, drawn from each stream's generator in fixed blocks of steps."""

    def __init__(
        self,
        generators: Sequence[torch.Generator],
        steps: int,
        normals_per_step: int,
        shape: Sequence[int],
        uniforms_per_step: int,
        dtype: torch.dtype,
        device: torch.device,
    ) -> None:
        self.generators = list(generators)
        self.steps = steps
        self.n_normal = normals_per_step
        self.shape = tuple(shape)
        self.n_uniform = uniforms_per_step
        self.dtype = dtype
        self.device = device
        numel = max(1, math.prod(self.shape)) * normals_per_step
        self.block = max(1, min(steps, _NOISE_BUDGET // numel))
        self._start = -1
        self._normals: torch.Tensor | None = None
        self._uniforms: torch.Tensor | None = None

    def _draw(self, start: int) -> None:
        size = min(self.block, self.steps - start)
        normals, uniforms = [], []
        for g in self.generators:
            normals.append(
                torch.randn(
                    (size, self.n_normal, *self.shape),
                    generator=g,
                    dtype=self.dtype,
                    device=g.device,
                )
            )
            if self.n_uniform:
                uniforms.append(
                    torch.rand(
                        (size, self.n_uniform), generator=g, dtype=self.dtype, device=g.device
                    )
                )
        self._normals = torch.stack(normals, dim=1).to(self.device)
        self._uniforms = torch.stack(uniforms, dim=1).to(self.device) if self.n_uniform else None
        self._start = start

    def __call__(self, k: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Noise of step ``k``: normals ``[B, n_normal, *shape]``, uniforms ``[B, n_uniform]``."""
        if k % self.block == 0:
            self._draw(k)
        assert self._normals is not None
        i = k - self._start
        return self._normals[i], (None if self._uniforms is None else self._uniforms[i])
