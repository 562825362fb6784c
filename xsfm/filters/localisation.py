r"""Covariance localisation by distance: the Gaspari-Cohn taper.

An ensemble of ``N`` members estimates covariances with sampling noise that makes distant,
physically unrelated elements look correlated. Localisation multiplies each covariance between
two places by a taper of their distance that is 1 at distance 0 and exactly 0 beyond twice the
**half-width** ``c``: the fifth-order piecewise rational function of Gaspari & Cohn (1999,
eq. 4.10), with :math:`z = d / c`,

.. math::

    \rho(z) = \begin{cases}
        -\tfrac14 z^5 + \tfrac12 z^4 + \tfrac58 z^3 - \tfrac53 z^2 + 1, & 0 \le z \le 1,\\
        \tfrac1{12} z^5 - \tfrac12 z^4 + \tfrac58 z^3 + \tfrac53 z^2 - 5 z + 4 - \tfrac23 z^{-1},
            & 1 < z \le 2,\\
        0, & z > 2.
    \end{cases}

Places are given as coordinates ``[n, D]`` (grid indices by default); a ``period`` makes an axis
periodic (Lorenz-96's ring of 40 sites: period 40).

Examples
--------
>>> gaspari_cohn(torch.tensor([0.0, 1.0, 2.0, 3.0], dtype=torch.float64)).tolist()
[1.0, 0.20833333333333326, 0.0, 0.0]
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["default_positions", "distances", "gaspari_cohn", "taper"]


def gaspari_cohn(z: torch.Tensor) -> torch.Tensor:
    """The Gaspari-Cohn taper of ``z = distance / half_width`` (zero for ``z >= 2``)."""
    z = z.abs()
    inner = (((-0.25 * z + 0.5) * z + 0.625) * z - 5.0 / 3.0) * z**2 + 1.0
    safe = torch.where(z > 0, z, torch.ones_like(z))
    outer = (
        ((((z / 12.0 - 0.5) * z + 0.625) * z + 5.0 / 3.0) * z - 5.0) * z + 4.0 - 2.0 / (3.0 * safe)
    )
    return torch.where(z <= 1, inner, torch.where(z < 2, outer, torch.zeros_like(z)))


def default_positions(shape: Sequence[int], like: torch.Tensor) -> torch.Tensor:
    """Grid-index coordinates ``[prod(shape), len(shape)]`` of every element of a state."""
    axes = [torch.arange(n, dtype=like.dtype, device=like.device) for n in shape]
    grids = torch.meshgrid(*axes, indexing="ij")
    return torch.stack([g.reshape(-1) for g in grids], dim=-1)


def distances(
    a: torch.Tensor, b: torch.Tensor, period: float | Sequence[float | None] | None = None
) -> torch.Tensor:
    """Euclidean distances ``[n, m]`` between places ``a [n, D]`` and ``b [m, D]``.

    ``period`` (one value, or one per axis, None for a bounded axis) wraps periodic axes.

    Examples
    --------
    >>> distances(torch.tensor([[0.0]]), torch.tensor([[1.0], [39.0]]), period=40).tolist()
    [[1.0, 1.0]]
    """
    diff = (a[:, None, :] - b[None, :, :]).abs()
    if period is not None:
        periods = [period] * a.shape[-1] if isinstance(period, (int, float)) else list(period)
        if len(periods) != a.shape[-1]:
            raise ValueError(f"period needs one value per axis ({a.shape[-1]}), got {period!r}")
        for axis, p in enumerate(periods):
            if p is not None:
                wrapped = torch.remainder(diff[..., axis], float(p))
                diff[..., axis] = torch.minimum(wrapped, float(p) - wrapped)
    return diff.pow(2).sum(-1).sqrt()


def taper(
    a: torch.Tensor,
    b: torch.Tensor,
    half_width: float,
    period: float | Sequence[float | None] | None = None,
) -> torch.Tensor:
    """Gaspari-Cohn weights ``[n, m]`` between places ``a`` and ``b``."""
    if not half_width > 0:
        raise ValueError(f"the localisation half-width must be > 0, got {half_width}")
    return gaspari_cohn(distances(a, b, period) / float(half_width))
