"""Calibration of an ensemble: rank histogram and spread against RMSE (by scale or lead time)."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any, Literal

import numpy as np
import xarray as xr

from xsfm import metrics
from xsfm.errors import InputError
from xsfm.metrics.octaves import octave_spread_and_error
from xsfm.plot._common import (
    apply_select,
    as_dataarray,
    match_times,
    name_of,
    new_axes,
    require_dims,
    scalar_coords,
    tidy_log_axes,
    units_of,
    with_units,
    wrap,
)


def _ensemble_and_truth(
    ens: xr.DataArray | xr.Dataset,
    truth: xr.DataArray | xr.Dataset,
    variable: Hashable | None,
    select: Mapping[Hashable, Any] | None,
    member_dim: Hashable,
    func: str,
) -> tuple[xr.DataArray, xr.DataArray]:
    ens = as_dataarray(ens, variable, "the ensemble", func)
    truth = as_dataarray(truth, variable, "the truth", func)
    require_dims(ens, [member_dim], "the ensemble", func)
    if member_dim in truth.dims:
        raise InputError(
            f"{func}: the truth {truth.name!r} has the member dimension {member_dim!r}; pass one "
            "verifying field per point"
        )
    picked = apply_select({"the ensemble": ens, "the truth": truth}, select, func)
    return picked["the ensemble"], picked["the truth"]  # type: ignore[return-value]


def rank_histogram(
    ens: xr.DataArray | xr.Dataset,
    truth: xr.DataArray | xr.Dataset,
    *,
    variable: Hashable | None = None,
    select: Mapping[Hashable, Any] | None = None,
    member_dim: Hashable = "member",
    seed: int = 0,
    ax: Any = None,
) -> Any:
    """Rank histogram (Talagrand diagram) of the truth among the members, with the flat reference.

    Counts from :func:`xsfm.metrics.rank_histogram` over every point of the inputs (after
    ``select``), drawn as relative frequencies: ``M + 1`` bars for ``M`` members, and the line
    ``1 / (M + 1)`` of a calibrated ensemble. A U shape means too little spread, a dome too much,
    a slope a bias.

    Parameters
    ----------
    ens
        Ensemble with dimension ``member_dim``.
    truth
        Verifying field(s) on the same points, without ``member_dim``.
    variable
        The variable when the inputs are Datasets (default: their only data variable).
    select
        Restrict the points, e.g. ``{"time": slice(10, None)}`` (``.sel``).
    member_dim
        Name of the ensemble dimension.
    seed
        Seed of the random tie-breaking (see :func:`xsfm.metrics.rank_histogram`).
    ax
        Axes to draw into (default: a new figure).

    Returns
    -------
    matplotlib.axes.Axes
        The axes.

    Raises
    ------
    xsfm.errors.InputError
        If ``ens`` has no ``member_dim`` or ``truth`` has one.

    Examples
    --------
    >>> import numpy as np
    >>> import xarray as xr
    >>> from xsfm.plot import rank_histogram
    >>> rng = np.random.default_rng(0)
    >>> ens = xr.DataArray(rng.normal(size=(4, 500)), dims=("member", "x"), name="t")
    >>> ax = rank_histogram(ens, xr.DataArray(rng.normal(size=500), dims="x", name="t"))
    >>> len(ax.patches), ax.get_xlabel()
    (5, 'rank of the truth among 4 members')
    >>> import matplotlib.pyplot as plt; plt.close(ax.figure)
    """
    func = "rank_histogram"
    ens, truth = _ensemble_and_truth(ens, truth, variable, select, member_dim, func)
    counts = metrics.rank_histogram(ens, truth, member_dim=member_dim, seed=seed)
    m = ens.sizes[member_dim]
    total = int(counts.sum())
    if total == 0:
        raise InputError(f"{func}: no point where the truth and every member are finite")
    freq = np.asarray(counts.values, dtype=float) / total
    _, ax = new_axes(ax, None, (4.5, 3.6))
    ax.bar(np.arange(m + 1), freq, width=0.85, color="tab:gray", edgecolor="black", lw=0.5,
           label=f"{total} points")  # fmt: skip
    ax.axhline(1.0 / (m + 1), color="tab:red", ls="--", lw=1.2,
               label=f"calibrated (flat): 1/{m + 1}")  # fmt: skip
    ax.set_xlabel(f"rank of the truth among {m} members")
    ax.set_ylabel("relative frequency [1]")
    ax.set_xlim(-0.6, m + 0.6)
    ax.set_ylim(0, max(freq.max(), 1.0 / (m + 1)) * 1.25)
    where = scalar_coords(ens)
    title = f"rank histogram of {name_of(ens)}" + (f" ({where})" if where else "")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="upper center")
    return ax


def _by_scale(
    ens: xr.DataArray, truth: xr.DataArray, dims: Sequence[Hashable], member_dim: Hashable
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    func = "spread_skill"
    require_dims(ens, dims, "the ensemble", func)
    require_dims(truth, dims, "the truth", func)
    variance, squared_error, m = octave_spread_and_error(ens, truth, tuple(dims), member_dim)
    spread = np.sqrt((m + 1) / m * variance.values)
    rmse = np.sqrt(squared_error.values)
    # labelled in cycles per coordinate unit, like xsfm.plot.spectra
    unit = variance["wavenumber_lower"].attrs.get("units")
    labels = [
        f"{lo / (2 * np.pi):.3g}–{hi / (2 * np.pi):.3g}" + (f" {unit}" if unit else "")
        for lo, hi in zip(
            variance["wavenumber_lower"].values, variance["wavenumber_upper"].values, strict=True
        )
    ]
    return spread, rmse, labels


def _by_lead(
    ens: xr.DataArray, truth: xr.DataArray, time_dim: Hashable, member_dim: Hashable
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    func = "spread_skill"
    require_dims(ens, [time_dim], "the ensemble", func)
    require_dims(truth, [time_dim], "the truth", func)
    truth = match_times(truth, ens, time_dim, func)
    reduce = [d for d in ens.dims if d not in (member_dim, time_dim)]
    if ens.sizes[member_dim] < 2:
        raise InputError(f"{func}: the ensemble needs at least 2 members along {member_dim!r}")
    rmse = metrics.rmse(ens, truth, dim=reduce, member_dim=member_dim)
    ssr = metrics.spread_skill_ratio(ens, truth, member_dim=member_dim, dim=reduce)
    spread = ssr * rmse
    lead = ens.coords["lead"] if "lead" in ens.coords and ens["lead"].dims == (time_dim,) else None
    ticks = lead if lead is not None else ens[time_dim]
    name = "lead" if lead is not None else str(time_dim)
    labels = [f"{name} {v}" for v in np.asarray(ticks.values)]
    return np.asarray(spread.values), np.asarray(rmse.values), labels


def spread_skill(
    ens: xr.DataArray | xr.Dataset,
    truth: xr.DataArray | xr.Dataset,
    *,
    by: Literal["scale", "lead"] = "scale",
    variable: Hashable | None = None,
    select: Mapping[Hashable, Any] | None = None,
    dims: Sequence[Hashable] = ("y", "x"),
    time_dim: Hashable = "time",
    member_dim: Hashable = "member",
    ax: Any = None,
) -> Any:
    r"""Ensemble spread against the RMSE of the ensemble mean, by spatial scale or by lead time.

    The spread is :math:`\sqrt{(M+1)/M}` times the root-mean unbiased member variance, so that a
    calibrated ensemble lies on the 1:1 line (spread-skill ratio 1, as in
    :func:`xsfm.metrics.spread_skill_ratio`); points below it are over-dispersive, above it
    under-dispersive.

    * ``by="scale"``: one point per octave of the radial wavenumber (as in
      :func:`xsfm.metrics.spectrum_error_by_octave`, in cycles per coordinate unit): the variance of
      the members about their mean and the squared error of the mean are the band integrals of
      their power spectra (Parseval), over every sample and time; their ratio is
      :func:`xsfm.metrics.spread_skill_by_octave`. Log-log axes.
    * ``by="lead"``: one point per step along ``time_dim`` (an assimilation or forecast output),
      averaged over every other dimension, labelled with the ``lead`` coordinate where there is
      one. Linear axes from 0.

    Parameters
    ----------
    ens
        Ensemble with dimension ``member_dim`` (at least 2 members).
    truth
        Verifying field(s) without ``member_dim``; with ``by="lead"`` it may cover more times
        (e.g. the initial state): the ensemble's are taken.
    by
        ``"scale"`` or ``"lead"``.
    variable
        The variable when the inputs are Datasets (default: their only data variable).
    select
        Restrict the points first (``.sel``), e.g. ``{"component": "x"}``.
    dims
        The (row, column) spatial dimensions (``by="scale"``).
    time_dim
        The time dimension (``by="lead"``).
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
        If ``ens`` has no ``member_dim``, or lacks ``dims`` (``by="scale"``) or ``time_dim``
        (``by="lead"``).

    Examples
    --------
    >>> import numpy as np
    >>> import xarray as xr
    >>> from xsfm.plot import spread_skill
    >>> rng = np.random.default_rng(0)
    >>> truth = xr.DataArray(rng.normal(size=(6, 3)), dims=("time", "site"),
    ...                      coords={"time": np.arange(6)}, attrs={"units": "K"})
    >>> ens = truth + xr.DataArray(rng.normal(size=(8, 6, 3)), dims=("member", "time", "site"))
    >>> ax = spread_skill(ens.assign_attrs(units="K"), truth, by="lead")
    >>> ax.get_xlabel(), len(ax.lines[0].get_xdata())
    ('ensemble spread of value [K]', 6)
    >>> import matplotlib.pyplot as plt; plt.close(ax.figure)
    """
    func = "spread_skill"
    if by not in ("scale", "lead"):
        raise ValueError(f"{func}: by must be 'scale' or 'lead', got {by!r}")
    ens, truth = _ensemble_and_truth(ens, truth, variable, select, member_dim, func)
    if ens.sizes[member_dim] < 2:
        raise InputError(f"{func}: the ensemble needs at least 2 members along {member_dim!r}")
    if by == "scale":
        spread, rmse, labels = _by_scale(ens, truth, dims, member_dim)
    else:
        spread, rmse, labels = _by_lead(ens, truth, time_dim, member_dim)
    _, ax = new_axes(ax, None, (4.5, 4.2))
    what = "octaves of wavenumber" if by == "scale" else "lead times"
    ax.plot(spread, rmse, "o-", color="tab:red", ms=4, lw=1, label=what)
    step = max(1, int(np.ceil(len(labels) / 8)))
    for i in range(0, len(labels), step):
        ax.annotate(labels[i], (spread[i], rmse[i]), textcoords="offset points", xytext=(4, -9),
                    fontsize=7)  # fmt: skip
    values = np.concatenate([spread, rmse])
    values = values[np.isfinite(values)]
    if by == "scale":
        positive = values[values > 0]
        lo, hi = (positive.min() / 1.5, positive.max() * 1.5) if positive.size else (0.1, 1.0)
        ax.set_xscale("log")
        ax.set_yscale("log")
    else:
        lo, hi = 0.0, (values.max() if values.size else 1.0) * 1.1 or 1.0
    ax.plot([lo, hi], [lo, hi], color="black", ls="--", lw=1, label="1:1 (spread-skill ratio 1)")
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_aspect("equal", adjustable="box")
    tidy_log_axes(ax)
    name, units = name_of(ens), units_of(ens)
    ax.set_xlabel(wrap(with_units(f"ensemble spread of {name}", units)))
    ax.set_ylabel(wrap(with_units(f"RMSE of the ensemble mean of {name}", units)))
    where = scalar_coords(ens)
    title = f"spread and skill by {'scale' if by == 'scale' else 'lead time'}"
    ax.set_title(title + (f" ({where})" if where else ""), fontsize=10)
    ax.legend(fontsize=8, loc="best")
    return ax
