"""Map panels of an ensemble: coarse input, truth, members and spread on their coordinates."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from xsfm.errors import InputError
from xsfm.plot._common import (
    apply_select,
    as_dataarray,
    axis_label,
    name_of,
    only_dims,
    pyplot,
    require_dims,
    scalar_coords,
    units_of,
    with_units,
)

_LON = ("lon", "longitude", "nav_lon")
_LAT = ("lat", "latitude", "nav_lat")


def _is(coord: xr.DataArray, names: tuple[str, ...], standard: str, unit: str) -> bool:
    units = str(coord.attrs.get("units", ""))
    return (
        coord.attrs.get("standard_name") == standard
        or str(coord.name).lower() in names
        or units.startswith(unit)
    )


def _mesh(da: xr.DataArray, dims: Sequence[Hashable]) -> tuple[Any, Any, str, str, bool]:
    """(x, y, x label, y label, equal aspect) of a 2-D field on ``dims`` = (row, column)."""
    two_d = [c for c in da.coords.values() if c.ndim == 2 and set(c.dims) == set(dims)]
    lon = next((c for c in two_d if _is(c, _LON, "longitude", "degree_e")), None)
    lat = next((c for c in two_d if _is(c, _LAT, "latitude", "degree_n")), None)
    if lon is not None and lat is not None:
        x, y = lon.transpose(*dims).values, lat.transpose(*dims).values
        return x, y, axis_label(lon), axis_label(lat), False
    axes = []
    for d in (dims[1], dims[0]):
        coord = da.coords.get(d)
        if coord is not None and coord.ndim == 1 and coord.dtype.kind in "fiu":
            axes.append((coord.values, axis_label(coord), units_of(coord)))
        else:
            axes.append((np.arange(da.sizes[d]), f"{d} (grid index)", None))
    (x, xlabel, xu), (y, ylabel, yu) = axes
    degrees = xu is not None and xu.startswith("degree")
    return x, y, xlabel, ylabel, xu == yu and not degrees


def _field_dims(
    da: xr.DataArray, dims: Sequence[Hashable] | None, member_dim: Hashable, role: str
) -> tuple[Hashable, Hashable]:
    if dims is not None:
        require_dims(da, dims, role, "ensemble_panels")
        only_dims(da, (*dims, member_dim), role, "ensemble_panels")
        return tuple(dims)  # type: ignore[return-value]
    spatial = [d for d in da.dims if d != member_dim]
    if len(spatial) != 2:
        only_dims(da, (member_dim, *spatial[-2:]), role, "ensemble_panels")
        raise InputError(
            f"ensemble_panels: {role} {da.name!r} needs two spatial dimensions, has {spatial}"
        )
    return spatial[0], spatial[1]


def ensemble_panels(
    ens: xr.DataArray | xr.Dataset,
    truth: xr.DataArray | xr.Dataset | None = None,
    coarse: xr.DataArray | xr.Dataset | None = None,
    *,
    variable: Hashable | None = None,
    select: Mapping[Hashable, Any] | None = None,
    members_shown: int = 3,
    dims: Sequence[Hashable] | None = None,
    member_dim: Hashable = "member",
    cmap: str | None = None,
    spread_cmap: str = "magma",
    fig: Any = None,
    title: str | None = None,
) -> Any:
    """Panels coarse | truth | a few members | ensemble spread, for one time or sample.

    Fields are drawn on their own coordinates: 2-D longitude/latitude coordinates where the field
    has them (``standard_name`` ``longitude``/``latitude``, or named ``lon``/``lat``), else the 1-D
    coordinates of its two spatial dimensions (grid indices where there are none), with axis labels
    from their ``long_name`` (or ``standard_name``) and ``units``. The coarse input, truth and
    members share one colour scale (1st to 99th percentile of what is shown, symmetric about 0 when
    the values take both signs) and one colour bar; the spread (standard deviation over the
    members, ``ddof=1``) has its own. Both bars are labelled with the variable's name and units.

    Parameters
    ----------
    ens
        Ensemble with dimension ``member_dim`` and, after ``select``, two spatial dimensions.
    truth, coarse
        Optional verifying field and coarse input (on their own grid), without members (a coarse
        input with a member dimension, e.g. an interpolation baseline, shows its first member).
    variable
        The variable to draw when an input is a Dataset (default: its only data variable).
    select
        One value per other dimension, e.g. ``{"sample": 0}`` or ``{"time": "2024-01-01"}``:
        ``.sel`` on the inputs that have the dimension (``.isel`` where it has no coordinate).
    members_shown
        Number of members drawn (the first ones).
    dims
        The (row, column) spatial dimensions; default: the two dimensions left besides
        ``member_dim``.
    member_dim
        Name of the ensemble dimension.
    cmap, spread_cmap
        Colour maps of the fields (default ``"RdBu_r"`` for values of both signs, else
        ``"viridis"``) and of the spread.
    fig
        A matplotlib Figure or SubFigure to draw into (default: a new figure).
    title
        Figure title (default: the variable's name and the selected coordinates).

    Returns
    -------
    matplotlib.figure.Figure
        The figure (or ``fig``).

    Raises
    ------
    xsfm.errors.InputError
        If ``ens`` has no ``member_dim``, if an input has dimensions besides the spatial ones
        after ``select``, or if ``select`` names a dimension no input has.

    Examples
    --------
    >>> import numpy as np
    >>> import xarray as xr
    >>> from xsfm.plot import ensemble_panels
    >>> x = xr.DataArray(np.arange(8) * 1e3, dims="x", attrs={"long_name": "x", "units": "m"})
    >>> y = x.rename({"x": "y"}).assign_attrs(long_name="y")
    >>> ens = xr.DataArray(
    ...     np.random.default_rng(0).normal(size=(4, 2, 8, 8)),
    ...     dims=("member", "time", "y", "x"), coords={"x": x, "y": y, "time": [0, 6]},
    ...     name="ta", attrs={"long_name": "air temperature anomaly", "units": "K"},
    ... )
    >>> fig = ensemble_panels(ens, truth=ens.mean("member"), select={"time": 6})
    >>> [ax.get_title() for ax in fig.axes[:5]]
    ['truth', 'member 0', 'member 1', 'member 2', 'ensemble spread']
    >>> fig.axes[0].get_xlabel(), fig.axes[-1].get_ylabel()
    ('x [m]', 'ensemble std of air temperature anomaly [K]')
    >>> import matplotlib.pyplot as plt; plt.close(fig)
    """
    func = "ensemble_panels"
    ens = as_dataarray(ens, variable, "the ensemble", func)
    truth = None if truth is None else as_dataarray(truth, variable, "the truth", func)
    coarse = None if coarse is None else as_dataarray(coarse, variable, "the coarse input", func)
    require_dims(ens, [member_dim], "the ensemble", func)
    picked = apply_select({"the ensemble": ens, "the truth": truth, "the coarse input": coarse},
                          select, func)  # fmt: skip
    ens, truth, coarse = picked["the ensemble"], picked["the truth"], picked["the coarse input"]
    assert ens is not None
    spatial = _field_dims(ens, dims, member_dim, "the ensemble")
    if truth is not None:
        if member_dim in truth.dims:
            raise InputError(
                f"{func}: the truth {truth.name!r} has the member dimension {member_dim!r}; "
                "pass a single field"
            )
        require_dims(truth, spatial, "the truth", func)
        only_dims(truth, spatial, "the truth", func)
    coarse_dims: tuple[Hashable, Hashable] | None = None
    if coarse is not None:
        if member_dim in coarse.dims:
            coarse = coarse.isel({member_dim: 0}, drop=True)
        coarse_dims = tuple(spatial) if all(d in coarse.dims for d in spatial) else None  # type: ignore[assignment]
        coarse_dims = _field_dims(coarse, coarse_dims, member_dim, "the coarse input")

    n_shown = max(0, min(members_shown, ens.sizes[member_dim]))
    panels: list[tuple[str, xr.DataArray, tuple[Hashable, Hashable]]] = []
    if coarse is not None and coarse_dims is not None:
        panels.append(("coarse input", coarse, coarse_dims))
    if truth is not None:
        panels.append(("truth", truth, spatial))
    panels += [(f"member {k}", ens.isel({member_dim: k}), spatial) for k in range(n_shown)]
    spread = ens.std(member_dim, ddof=1) if ens.sizes[member_dim] > 1 else None

    values = [np.asarray(da.transpose(*d).values, dtype=float) for _, da, d in panels]
    finite = np.concatenate([v[np.isfinite(v)] for v in values] or [np.zeros(0)])
    vmin, vmax = np.percentile(finite, [1, 99]) if finite.size else (0.0, 1.0)
    diverging = vmin < 0 < vmax
    if diverging:
        vmin, vmax = -max(-vmin, vmax), max(-vmin, vmax)
    field_cmap = cmap or ("RdBu_r" if diverging else "viridis")

    name, units = name_of(ens), units_of(ens)
    n = len(panels) + (spread is not None)
    if fig is None:
        fig = pyplot().figure(figsize=(2.6 * n + 1.6, 3.2), layout="constrained")
    axes = list(np.atleast_1d(fig.subplots(1, n, squeeze=False)[0]))
    image = None
    for k, (ax, (label, da, d), v) in enumerate(zip(axes, panels, values, strict=False)):
        x, y, xlabel, ylabel, equal = _mesh(da, d)
        image = ax.pcolormesh(
            x, y, v, shading="nearest", cmap=field_cmap, vmin=vmin, vmax=vmax, rasterized=True
        )
        _decorate(ax, label, xlabel, ylabel if k == 0 else None, equal)
    if image is not None:
        fig.colorbar(image, ax=axes[: len(panels)], shrink=0.9, label=with_units(name, units))
    if spread is not None:
        ax = axes[-1]
        x, y, xlabel, ylabel, equal = _mesh(spread, spatial)
        image = ax.pcolormesh(
            x,
            y,
            np.asarray(spread.transpose(*spatial).values, dtype=float),
            shading="nearest",
            cmap=spread_cmap,
            vmin=0,
            rasterized=True,
        )
        _decorate(ax, "ensemble spread", xlabel, ylabel if not panels else None, equal)
        fig.colorbar(image, ax=ax, shrink=0.9, label=with_units(f"ensemble std of {name}", units))
    where = scalar_coords(ens)
    fig.suptitle(title or (f"{name}, {where}" if where else name), fontsize=10)
    return fig


def _decorate(ax: Any, label: str, xlabel: str, ylabel: str | None, equal: bool) -> None:
    ax.set_title(label, fontsize=9)
    ax.set_xlabel(xlabel, fontsize=8)
    if ylabel is not None:
        ax.set_ylabel(ylabel, fontsize=8)
    else:
        ax.tick_params(labelleft=False)
    ax.tick_params(labelsize=7)
    if equal:
        ax.set_aspect("equal")


def downscaling_panel(
    coarse: xr.DataArray,
    ensemble: xr.DataArray,
    truth: xr.DataArray | None = None,
    *,
    path: str | Path | None = None,
    spectra: dict[str, xr.DataArray] | None = None,
    members_shown: int = 3,
    title: str | None = None,
) -> Any:
    """Coarse | truth | a few members | ensemble std | spectra, for one sample (the first figure).

    Kept for existing scripts: it draws on grid indices; :func:`ensemble_panels`,
    :func:`~xsfm.plot.spectra` and :func:`~xsfm.plot.rank_histogram` draw on the coordinates and
    show the ensemble's calibration.

    Parameters
    ----------
    coarse, truth
        2-D fields ``(y, x)`` (truth optional).
    ensemble
        ``(member, y, x)``.
    path
        Where to save the PNG (the figure is returned either way).
    spectra
        ``{label: 1-D spectrum DataArray with dim "wavenumber"}`` drawn log-log in the last panel.
    members_shown
        Number of ensemble members drawn.
    title
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
        The figure.
    """
    plt = pyplot()
    require_dims(ensemble, ["member"], "the ensemble", "downscaling_panel")
    shown = [ensemble.isel(member=k) for k in range(min(members_shown, ensemble.sizes["member"]))]
    panels: list[tuple[str, xr.DataArray, str]] = [("coarse input", coarse, "field")]
    if truth is not None:
        panels.append(("truth", truth, "field"))
    panels += [(f"member {k}", da, "field") for k, da in enumerate(shown)]
    panels.append(("ensemble std", ensemble.std("member"), "std"))
    ncols = len(panels) + (1 if spectra else 0)
    fig, axes = plt.subplots(1, ncols, figsize=(2.6 * ncols, 2.9), constrained_layout=True)
    ref = truth if truth is not None else shown[0]
    vmin, vmax = np.nanpercentile(np.asarray(ref), [1, 99])
    for ax, (label, da, kind) in zip(axes, panels, strict=False):
        values = np.asarray(da)
        if kind == "field":
            im = ax.imshow(values, origin="lower", cmap="RdBu_r", vmin=vmin, vmax=vmax)
        else:
            im = ax.imshow(values, origin="lower", cmap="viridis")
        ax.set_title(label, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        fig.colorbar(im, ax=ax, shrink=0.7)
    if spectra:
        ax = axes[-1]
        for label, spec in spectra.items():
            k = np.asarray(spec["wavenumber"])
            ok = k > 0
            ax.loglog(k[ok], np.asarray(spec)[ok], label=label)
        ax.set_xlabel("wavenumber", fontsize=8)
        ax.set_title("power spectra", fontsize=9)
        ax.legend(fontsize=7)
    units = ensemble.attrs.get("units", "")
    name = ensemble.attrs.get("long_name", ensemble.name or "")
    fig.suptitle(title or f"{name} [{units}]", fontsize=10)
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig
