"""Radially averaged power spectra of an ensemble, its truth and its coarse input."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any, Literal

import numpy as np
import xarray as xr

from xsfm import metrics
from xsfm.plot._common import (
    apply_select,
    as_dataarray,
    axis_label,
    name_of,
    new_axes,
    require_dims,
    scalar_coords,
    tidy_log_axes,
    with_units,
    wrap,
)


def cycles_spectrum(da: xr.DataArray, dims: Sequence[Hashable], keep: Sequence[Hashable] = ()):
    """Power spectral density in cycles per coordinate unit, averaged over all but ``keep``."""
    ps = metrics.power_spectrum(da, dims=tuple(dims), wavenumber="cycles")
    over = [d for d in ps.dims if d != "wavenumber" and d not in keep]
    return ps.mean(over, keep_attrs=True) if over else ps


def up_to_nyquist(ps: xr.DataArray) -> xr.DataArray:
    """The bins ``0 < k <= Nyquist`` (the shells beyond hold only corners of the spectral square)."""
    k = ps["wavenumber"]
    nyquist = float(k.attrs["nyquist_wavenumber"])
    return ps.where((k > 0) & (k <= nyquist * (1 + 1e-9)), drop=True)


def spectra(
    ens: xr.DataArray | xr.Dataset | None = None,
    truth: xr.DataArray | xr.Dataset | None = None,
    coarse: xr.DataArray | xr.Dataset | None = None,
    *,
    others: Mapping[str, xr.DataArray | xr.Dataset] | None = None,
    variable: Hashable | None = None,
    select: Mapping[Hashable, Any] | None = None,
    members: Literal["mean", "each"] = "mean",
    dims: Sequence[Hashable] = ("y", "x"),
    member_dim: Hashable = "member",
    ax: Any = None,
) -> Any:
    """Radially averaged power spectra of truth, ensemble members and coarse input, log-log.

    Spectra are :func:`xsfm.metrics.power_spectrum` in cycles per coordinate unit (per grid step
    without coordinates), averaged over every dimension other than the two spatial ones (samples,
    times, members; with ``members="each"`` one line per member). Each is drawn for
    ``0 < k <=`` its own grid's Nyquist wavenumber only, and the x axis ends at the finest grid's
    Nyquist wavenumber; the coarse grid's Nyquist wavenumber is marked. The x axis is labelled with
    the wavenumber's units, the y axis with those of the spectral density (the variable's units
    squared times the coordinate unit).

    Parameters
    ----------
    ens
        Ensemble with dimension ``member_dim`` (optional, like the others; at least one is needed).
    truth
        Verifying field(s).
    coarse
        Coarse input, on its own grid (with coordinates in the same units).
    others
        More fields to draw, ``{legend label: field}`` (e.g. an interpolation baseline).
    variable
        The variable to draw when an input is a Dataset (default: its only data variable).
    select
        Values of other dimensions to keep, e.g. ``{"sample": [0, 1]}`` or ``{"time": 3}``
        (``.sel``; ``.isel`` on a dimension without a coordinate). Default: average over all.
    members
        ``"mean"``: the members' mean spectrum; ``"each"``: one thin line per member.
    dims
        The (row, column) spatial dimensions, evenly spaced.
    member_dim
        Name of the ensemble dimension.
    ax
        Axes to draw into (default: a new figure).

    Returns
    -------
    matplotlib.axes.Axes
        The axes.

    Raises
    ------
    xsfm.errors.InputError
        If an input lacks one of ``dims`` or ``ens`` lacks ``member_dim``.

    Examples
    --------
    >>> import numpy as np
    >>> import xarray as xr
    >>> from xsfm.plot import spectra
    >>> x = xr.DataArray(np.arange(16) * 0.5, dims="x", attrs={"long_name": "x", "units": "km"})
    >>> field = xr.DataArray(
    ...     np.random.default_rng(0).normal(size=(16, 16)), dims=("y", "x"),
    ...     coords={"x": x, "y": x.rename({"x": "y"})}, attrs={"units": "K", "long_name": "T"},
    ... )
    >>> ax = spectra(truth=field)
    >>> float(ax.get_xlim()[1])  # Nyquist: 1 / (2 * 0.5 km)
    1.0
    >>> ax.get_xscale(), ax.get_yscale(), ax.get_xlabel()
    ('log', 'log', 'wavenumber (cycles per km) [km-1]')
    >>> ax.get_ylabel()
    'power spectral density of T [(K)^2 km]'
    >>> import matplotlib.pyplot as plt; plt.close(ax.figure)
    """
    func = "spectra"
    if members not in ("mean", "each"):
        raise ValueError(f"{func}: members must be 'mean' or 'each', got {members!r}")
    inputs: dict[str, xr.DataArray | None] = {}
    roles = {"ens": "the ensemble", "truth": "the truth", "coarse": "the coarse input"}
    for key, obj in (("ens", ens), ("truth", truth), ("coarse", coarse)):
        inputs[key] = None if obj is None else as_dataarray(obj, variable, roles[key], func)
    for label, obj in (others or {}).items():
        inputs[label] = as_dataarray(obj, variable, f"the field {label!r}", func)
    if all(v is None for v in inputs.values()):
        raise ValueError(f"{func}: give at least one of ens, truth, coarse or others")
    if inputs["ens"] is not None:
        require_dims(inputs["ens"], [member_dim], "the ensemble", func)
    inputs = apply_select(inputs, select, func)
    for key, da in inputs.items():
        if da is not None:
            require_dims(da, dims, roles.get(key, f"the field {key!r}"), func)

    _, ax = new_axes(ax, None, (5.0, 4.0))
    styles = {
        "truth": {"color": "black", "lw": 1.8, "label": "truth"},
        "ens": {"color": "tab:red", "lw": 1.4, "label": "ensemble members (mean spectrum)"},
        "coarse": {"color": "tab:blue", "lw": 1.4, "ls": "--", "label": "coarse input"},
    }
    first: xr.DataArray | None = None
    source: xr.DataArray | None = None
    k_lo, k_hi = np.inf, 0.0
    p_lo, p_hi = np.inf, 0.0
    n_other = 0
    for key, da in inputs.items():
        if da is None:
            continue
        palette = ("tab:green", "tab:purple", "tab:orange", "tab:brown", "tab:olive")
        style = styles.get(key) or {"lw": 1.2, "label": key, "color": palette[n_other % 5]}
        n_other += key not in styles
        if key == "ens" and members == "each":
            ps = up_to_nyquist(cycles_spectrum(da, dims, keep=[member_dim]))
            for m in range(ps.sizes[member_dim]):
                line = ps.isel({member_dim: m})
                ax.plot(line["wavenumber"], line, color="tab:red", lw=0.6, alpha=0.5,
                        label="ensemble members" if m == 0 else None)  # fmt: skip
        else:
            ps = up_to_nyquist(cycles_spectrum(da, dims))
            ax.plot(ps["wavenumber"], ps, **style)
        if first is None:
            first, source = ps, da
        positive = ps.values[ps.values > 0]
        if positive.size:
            p_lo, p_hi = min(p_lo, positive.min()), max(p_hi, positive.max())
        k = ps["wavenumber"]
        k_lo, k_hi = min(k_lo, float(k.min())), max(k_hi, float(k.attrs["nyquist_wavenumber"]))
        if key == "coarse":
            ax.axvline(float(k.attrs["nyquist_wavenumber"]), color="tab:blue", lw=0.8, ls=":",
                       label="coarse Nyquist wavenumber")  # fmt: skip
    assert first is not None
    assert source is not None
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(k_lo, k_hi)
    if p_hi > 0:  # at most 8 decades: a spectrum falling to round-off would squash the others
        ax.set_ylim(max(p_lo, p_hi * 1e-8) / 2, p_hi * 2)
    tidy_log_axes(ax)
    ax.set_xlabel(axis_label(first["wavenumber"]))
    ax.set_ylabel(
        wrap(with_units(f"power spectral density of {name_of(source)}", first.attrs.get("units")))
    )
    where = scalar_coords(next(v for v in inputs.values() if v is not None))
    ax.set_title("power spectra" + (f" ({where})" if where else ""), fontsize=10)
    ax.legend(fontsize=8)
    return ax
