"""Station observations: values along one dim whose coordinates place each station on a grid.

Assimilation (:mod:`xsfm.xr.observations`) and observation-guided downscaling
(:mod:`xsfm.xr.fine_observations`) both read stations the same way: the station dim carries 1-D
coordinates named like the grid's two dims (``y``, ``x``), in the grid's coordinate units, and each
station's value is the bilinear interpolation of the field at its position
(:class:`~xsfm.observations.PointObservations`, wrapping around on periodic grids). The operator is
returned as its dict: the xarray layer builds no torch objects.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

import numpy as np
import xarray as xr

from xsfm.errors import InputError

__all__ = ["station_operator"]


def station_operator(
    obs: xr.DataArray,
    station_dim: Hashable,
    grid: Mapping[Hashable, Any],
    *,
    periodic: bool,
    label: str = "obs",
) -> tuple[dict[str, Any], xr.DataArray]:
    """The bilinear operator of the stations along ``station_dim``, and ``obs`` without positions.

    Parameters
    ----------
    obs
        Station values with 1-D coordinates named like the two keys of ``grid`` along
        ``station_dim``.
    station_dim
        The stations' dim.
    grid
        ``{y_dim: y values, x_dim: x values}`` of the grid, y first.
    periodic
        The grid is periodic: stations between the last and first point wrap around; otherwise a
        station outside the grid's range is an error that names it.
    label
        How error messages name ``obs``.

    Returns
    -------
    operator, obs
        The :class:`~xsfm.observations.PointObservations` dict, and ``obs`` without the position
        coordinates (they would clash with a field's own ``y``/``x``).

    Examples
    --------
    >>> obs = xr.DataArray([1.0, 2.0], dims="station",
    ...                    coords={"y": ("station", [0.5, 1.0]), "x": ("station", [0.0, 1.5])})
    >>> op, rest = station_operator(obs, "station", {"y": [0.0, 1.0], "x": [0.0, 1.0, 2.0]},
    ...                             periodic=False)
    >>> op["points"], list(rest.coords)
    ([[0.5, 0.0], [1.0, 1.5]], [])
    """
    (ydim, yv), (xdim, xv) = list(grid.items())[:2]
    axes = {ydim: np.asarray(yv, dtype=float), xdim: np.asarray(xv, dtype=float)}
    pos = {d: np.asarray(obs[d].values, dtype=float) for d in (ydim, xdim)}
    if not periodic:
        outside = [
            str(obs[station_dim].values[i]) if station_dim in obs.coords else str(i)
            for i in range(obs.sizes[station_dim])
            if any(not axes[d].min() <= pos[d][i] <= axes[d].max() for d in (ydim, xdim))
        ]
        if outside:
            raise InputError(
                f"{label}: station(s) {outside[:10]} along {station_dim!r} lie outside the grid ("
                + ", ".join(f"{d} {axes[d].min():g}..{axes[d].max():g}" for d in (ydim, xdim))
                + "); drop them"
            )
    operator = {
        "kind": "points",
        "points": np.stack([pos[ydim], pos[xdim]], axis=1).tolist(),
        "y": axes[ydim].tolist(),
        "x": axes[xdim].tolist(),
        "periodic": bool(periodic),
    }
    keep = obs.drop_vars([c for c in obs.coords if c != station_dim and station_dim in obs[c].dims])
    return operator, keep
