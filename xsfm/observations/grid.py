"""Operators on gridded fields: a seeded sparse mask, average pooling, values at points."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from xsfm.observations.base import Observation

__all__ = ["AveragePool", "PointObservations", "SparseMask"]


class SparseMask(Observation):
    """Observe a random fraction of the grid points of the last ``len(shape)`` axes (flattened).

    The points are chosen once, from ``seed``, with NumPy's PCG64 generator seeded by
    ``numpy.random.SeedSequence(seed)``; they are sorted in row-major order.

    Parameters
    ----------
    shape
        Grid shape, e.g. ``(64, 64)``.
    fraction
        Fraction of points observed, in ``(0, 1]`` (at least one point).
    seed
        Seed of the choice of points.
    noise_std, units
        Noise standard deviation and units of the output (the state's); see
        :class:`~xsfm.observations.base.Observation`.

    Examples
    --------
    >>> op = SparseMask((4, 4), fraction=0.25, seed=0)
    >>> op(torch.zeros(2, 3, 4, 4)).shape
    torch.Size([2, 3, 4])
    """

    kind = "sparse_mask"

    def __init__(
        self,
        shape: Sequence[int],
        fraction: float,
        seed: int = 0,
        *,
        noise_std: float = 0.0,
        units: str | None = None,
    ) -> None:
        super().__init__(noise_std, units=units)
        self.shape = tuple(int(n) for n in shape)
        if not 0 < fraction <= 1:
            raise ValueError(f"sparse mask fraction must be in (0, 1], got {fraction}")
        self.fraction = float(fraction)
        self.seed = int(seed)
        size = math.prod(self.shape)
        n_obs = max(1, round(self.fraction * size))
        rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(self.seed)))
        self.indices = np.sort(rng.permutation(size)[:n_obs])

    @property
    def mask(self) -> torch.Tensor:
        """Boolean mask of the observed points, of ``shape``."""
        m = torch.zeros(math.prod(self.shape), dtype=torch.bool)
        m[torch.as_tensor(self.indices)] = True
        return m.reshape(self.shape)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        k = len(self.shape)
        if tuple(x.shape[-k:]) != self.shape:
            raise ValueError(
                f"sparse mask expects trailing axes {self.shape}, got a state of shape "
                f"{tuple(x.shape)}"
            )
        flat = x.reshape(*x.shape[:-k], -1)
        return flat[..., torch.as_tensor(self.indices, device=x.device)]

    def _params(self) -> dict[str, Any]:
        return {"shape": list(self.shape), "fraction": self.fraction, "seed": self.seed}

    def positions(self, state_shape: Sequence[int]) -> np.ndarray:
        """Grid indices ``[m, len(shape)]`` of the observed points.

        Examples
        --------
        >>> SparseMask((2, 3), 1.0).positions((2, 3))[:2].tolist()
        [[0.0, 0.0], [0.0, 1.0]]
        """
        return np.stack(np.unravel_index(self.indices, self.shape), axis=-1).astype(float)

    @classmethod
    def _from_params(cls, p: dict[str, Any]) -> SparseMask:
        return cls(
            p["shape"],
            p["fraction"],
            p.get("seed", 0),
            noise_std=p.get("noise_std", 0.0),
            units=p.get("units"),
        )


class AveragePool(Observation):
    """Average pooling of the last two axes by ``factor`` (the super-resolution setting).

    Parameters
    ----------
    factor
        Pooling factor of both axes.
    noise_std, units
        Noise standard deviation and units of the output (the state's); see
        :class:`~xsfm.observations.base.Observation`.

    Examples
    --------
    >>> AveragePool(2)(torch.arange(16.0).reshape(1, 4, 4))
    tensor([[[ 2.5000,  4.5000],
             [10.5000, 12.5000]]])
    """

    kind = "average_pool"

    def __init__(self, factor: int, *, noise_std: float = 0.0, units: str | None = None) -> None:
        super().__init__(noise_std, units=units)
        if int(factor) < 1:
            raise ValueError(f"average pooling factor must be >= 1, got {factor}")
        self.factor = int(factor)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        f = self.factor
        h, w = x.shape[-2:]
        if h % f or w % f:
            raise ValueError(
                f"average pooling by {f} needs the last two axes divisible by {f}, got {h} x {w}"
            )
        v = x.reshape(*x.shape[:-2], h // f, f, w // f, f)
        return v.mean(dim=(-3, -1))

    def _params(self) -> dict[str, Any]:
        return {"factor": self.factor}

    def positions(self, state_shape: Sequence[int]) -> np.ndarray:
        """Grid-index centres ``[m, 2]`` of the pooled blocks of the last two axes.

        Examples
        --------
        >>> AveragePool(2).positions((4, 4)).tolist()
        [[0.5, 0.5], [0.5, 2.5], [2.5, 0.5], [2.5, 2.5]]
        """
        f = self.factor
        h, w = state_shape[-2:]
        rows = np.arange(h // f) * f + (f - 1) / 2
        cols = np.arange(w // f) * f + (f - 1) / 2
        r, c = np.meshgrid(rows, cols, indexing="ij")
        return np.stack([r.ravel(), c.ravel()], axis=-1)

    @classmethod
    def _from_params(cls, p: dict[str, Any]) -> AveragePool:
        return cls(p["factor"], noise_std=p.get("noise_std", 0.0), units=p.get("units"))


class PointObservations(Observation):
    """Values at points of the grid of the last two axes, by bilinear interpolation.

    Parameters
    ----------
    points
        ``[[row, col], ...]`` positions in (fractional) grid index units, or in coordinate units
        when ``y`` and ``x`` (the grid's 1-D, monotonic coordinates) are given.
    y, x
        Optional grid coordinates of the rows and columns.
    periodic
        The grid is periodic (e.g. a doubly periodic flow): positions wrap around, so a point
        between the last and the first grid point interpolates between them (with coordinates,
        they must be evenly spaced; the period is their number times their spacing).
    noise_std, units
        Noise standard deviation and units of the output (the state's); see
        :class:`~xsfm.observations.base.Observation`.

    Examples
    --------
    >>> grid = torch.arange(9.0).reshape(3, 3)
    >>> PointObservations([[0.5, 0.5], [2, 1]])(grid)
    tensor([2., 7.])
    >>> PointObservations([[15.0, 0.0]], y=[10.0, 20.0, 30.0], x=[0.0, 1.0, 2.0])(grid)
    tensor([1.5000])
    >>> PointObservations([[0.0, 2.5]], periodic=True)(grid)  # halfway between columns 2 and 0
    tensor([1.])
    """

    kind = "points"

    def __init__(
        self,
        points: Sequence[Sequence[float]],
        *,
        y: Sequence[float] | None = None,
        x: Sequence[float] | None = None,
        periodic: bool = False,
        noise_std: float = 0.0,
        units: str | None = None,
    ) -> None:
        super().__init__(noise_std, units=units)
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        self.points = pts.tolist()
        self.y = None if y is None else [float(v) for v in y]
        self.x = None if x is None else [float(v) for v in x]
        self.periodic = bool(periodic)
        rows, cols = pts[:, 0], pts[:, 1]
        if self.y is not None:
            rows = _fractional_index(np.asarray(self.y), rows, "y", self.periodic)
        if self.x is not None:
            cols = _fractional_index(np.asarray(self.x), cols, "x", self.periodic)
        self._rows, self._cols = rows, cols

    def __call__(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        h, w = x.shape[-2:]
        if self.periodic:
            rows, cols = self._wrapped(h, w)
            r0, c0 = np.floor(rows).astype(np.int64), np.floor(cols).astype(np.int64)
            r1, c1 = (r0 + 1) % h, (c0 + 1) % w
        else:
            rows = np.clip(self._rows, 0, h - 1)
            cols = np.clip(self._cols, 0, w - 1)
            if np.any(rows != self._rows) or np.any(cols != self._cols):
                raise ValueError(f"observation points lie outside the {h} x {w} grid")
            r0 = np.clip(np.floor(rows).astype(np.int64), 0, max(h - 2, 0))
            c0 = np.clip(np.floor(cols).astype(np.int64), 0, max(w - 2, 0))
            r1, c1 = np.minimum(r0 + 1, h - 1), np.minimum(c0 + 1, w - 1)
        fr = torch.as_tensor(rows - r0, dtype=x.dtype, device=x.device)
        fc = torch.as_tensor(cols - c0, dtype=x.dtype, device=x.device)
        flat = x.reshape(*x.shape[:-2], h * w)

        def at(r: np.ndarray, c: np.ndarray) -> torch.Tensor:
            return flat[..., torch.as_tensor(r * w + c, device=x.device)]

        return (
            at(r0, c0) * (1 - fr) * (1 - fc)
            + at(r0, c1) * (1 - fr) * fc
            + at(r1, c0) * fr * (1 - fc)
            + at(r1, c1) * fr * fc
        )

    def _params(self) -> dict[str, Any]:
        return {"points": self.points, "y": self.y, "x": self.x, "periodic": self.periodic}

    def _wrapped(self, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
        """Fractional row and column indices, wrapped into the grid when it is periodic."""
        if self.periodic:
            return np.mod(self._rows, h), np.mod(self._cols, w)
        return self._rows, self._cols

    def positions(self, state_shape: Sequence[int]) -> np.ndarray:
        """Fractional grid indices ``[m, 2]`` of the points (wrapped on a periodic grid)."""
        rows, cols = self._wrapped(*state_shape[-2:])
        return np.stack([rows, cols], axis=-1).astype(float)

    @classmethod
    def _from_params(cls, p: dict[str, Any]) -> PointObservations:
        return cls(
            p["points"],
            y=p.get("y"),
            x=p.get("x"),
            periodic=bool(p.get("periodic", False)),
            noise_std=p.get("noise_std", 0.0),
            units=p.get("units"),
        )


def _fractional_index(
    coord: np.ndarray, values: np.ndarray, name: str, periodic: bool = False
) -> np.ndarray:
    """Fractional index of ``values`` on the monotonic coordinate ``coord`` (wrapped if periodic)."""
    if coord.size < 2:
        return np.zeros_like(values)
    if periodic:
        step = np.diff(coord)
        if not np.allclose(step, step[0], rtol=1e-6, atol=0.0) or step[0] == 0:
            raise ValueError(
                f"a periodic observation grid needs an evenly spaced {name!r} coordinate"
            )
        return np.mod((values - coord[0]) / step[0], coord.size)
    if coord[0] > coord[-1]:
        coord, flip = coord[::-1], True
    else:
        flip = False
    if np.any(np.diff(coord) <= 0):
        raise ValueError(f"coordinate {name!r} of the observation grid must be strictly monotonic")
    if np.any(values < coord[0]) or np.any(values > coord[-1]):
        raise ValueError(
            f"observation points lie outside the grid's {name!r} range [{coord[0]}, {coord[-1]}]"
        )
    index = np.interp(values, coord, np.arange(coord.size, dtype=np.float64))
    return coord.size - 1 - index if flip else index
