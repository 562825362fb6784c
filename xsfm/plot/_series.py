"""Time series of an assimilation or forecast: truth, observations, ensemble mean and band."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any, Literal

import numpy as np
import xarray as xr

from xsfm.errors import InputError
from xsfm.plot._common import (
    apply_select,
    as_dataarray,
    axis_label,
    name_of,
    new_axes,
    only_dims,
    require_dims,
    scalar_coords,
    units_of,
    with_units,
    wrap,
)


def _times(da: xr.DataArray, time_dim: Hashable) -> np.ndarray:
    return (
        np.asarray(da[time_dim].values) if time_dim in da.coords else np.arange(da.sizes[time_dim])
    )


def assimilation_series(
    ens: xr.DataArray | xr.Dataset,
    truth: xr.DataArray | xr.Dataset | None = None,
    obs: xr.DataArray | xr.Dataset | None = None,
    *,
    variable: Hashable | None = None,
    obs_variable: Hashable | None = None,
    select: Mapping[Hashable, Any] | None = None,
    obs_std: float | None = None,
    band: tuple[float, float] | float = (0.05, 0.95),
    obs_axis: Literal["auto", "same", "twin"] = "auto",
    time_dim: Hashable = "time",
    member_dim: Hashable = "member",
    ax: Any = None,
) -> Any:
    """Time series of one state component: truth, observations, ensemble mean and spread band.

    Parameters
    ----------
    ens
        Ensemble (e.g. the output of ``state.sfm.assimilate(obs)`` or ``.sfm.forecast()``) with
        dimensions ``member_dim`` and ``time_dim``; every other dimension is picked by ``select``.
    truth
        Optional true trajectory (it may cover more times than the ensemble, e.g. the known
        initial state).
    obs
        Optional observations, drawn as points (NaN: not observed) with error bars of ``obs_std``.
    variable, obs_variable
        The variables when the inputs are Datasets (default: their only data variable).
    select
        One value of every other dimension, e.g. ``{"trajectory": 0, "component": "x"}`` (``.sel``
        on the inputs that have the dimension, ``.isel`` where it has no coordinate).
    obs_std
        Standard deviation of the observation noise (error bars of one std); default: the
        observations' ``observation_noise_std`` attribute where it is a number, else none.
    band
        ``(low, high)`` quantiles over the members (default 5 % to 95 %), or a number ``n`` for the
        mean ± ``n`` standard deviations.
    obs_axis
        Where the observations go: ``"same"`` y axis as the state, ``"twin"`` (a second y axis,
        for observations of another quantity, e.g. ``arctan(x / 8)``), or ``"auto"``: twin when the
        observations' ``standard_name`` or ``units`` differ from the ensemble's.
    time_dim
        The time dimension.
    member_dim
        Name of the ensemble dimension.
    ax
        Axes to draw into (default: a new figure).

    Returns
    -------
    matplotlib.axes.Axes
        The axes of the state (a twin axes of the observations is ``ax.figure.axes[-1]``).

    Raises
    ------
    xsfm.errors.InputError
        If ``ens`` lacks ``member_dim`` or ``time_dim``, or an input has other dimensions left after
        ``select``.

    Examples
    --------
    >>> import numpy as np
    >>> import xarray as xr
    >>> from xsfm.plot import assimilation_series
    >>> t = xr.DataArray(np.arange(10.0), dims="time", attrs={"long_name": "time", "units": "h"})
    >>> ens = xr.DataArray(np.random.default_rng(0).normal(size=(5, 10)), dims=("member", "time"),
    ...                    coords={"time": t}, attrs={"long_name": "sea level", "units": "m"})
    >>> ax = assimilation_series(ens, truth=ens.mean("member"), band=2.0)
    >>> ax.get_xlabel(), ax.get_ylabel()
    ('time [h]', 'sea level [m]')
    >>> try:
    ...     assimilation_series(ens.isel(member=0))
    ... except ValueError as err:
    ...     print(err)
    assimilation_series: the ensemble lacks the dimension(s) ['member'] (its dimensions: ('time',))
    >>> import matplotlib.pyplot as plt; plt.close("all")
    """
    func = "assimilation_series"
    ens = as_dataarray(ens, variable, "the ensemble", func)
    truth = None if truth is None else as_dataarray(truth, variable, "the truth", func)
    obs = None if obs is None else as_dataarray(obs, obs_variable, "the observations", func)
    require_dims(ens, [member_dim, time_dim], "the ensemble", func)
    picked = apply_select({"the ensemble": ens, "the truth": truth, "the observations": obs},
                          select, func)  # fmt: skip
    ens, truth, obs = picked["the ensemble"], picked["the truth"], picked["the observations"]
    assert ens is not None
    only_dims(ens, (member_dim, time_dim), "the ensemble", func)
    for role, da in (("the truth", truth), ("the observations", obs)):
        if da is not None:
            require_dims(da, [time_dim], role, func)
            only_dims(da, (time_dim,), role, func)
    if obs_axis not in ("auto", "same", "twin"):
        raise ValueError(f"{func}: obs_axis must be 'auto', 'same' or 'twin', got {obs_axis!r}")

    _, ax = new_axes(ax, None, (7.0, 3.4))
    t = _times(ens, time_dim)
    mean = ens.mean(member_dim)
    if isinstance(band, tuple):
        lo_q, hi_q = band
        if not 0 <= lo_q < hi_q <= 1:
            raise ValueError(
                f"{func}: band quantiles must satisfy 0 <= low < high <= 1, got {band}"
            )
        q = ens.quantile([lo_q, hi_q], dim=member_dim)
        lo, hi = q.isel(quantile=0), q.isel(quantile=1)
        band_label = f"{100 * lo_q:g}–{100 * hi_q:g} % of {ens.sizes[member_dim]} members"
    else:
        std = ens.std(member_dim, ddof=1)
        lo, hi = mean - band * std, mean + band * std
        band_label = f"ensemble mean ± {band:g} std ({ens.sizes[member_dim]} members)"
    ax.fill_between(t, lo.values, hi.values, color="tab:red", alpha=0.25, lw=0, label=band_label)
    ax.plot(t, mean.values, color="tab:red", lw=1.5, label="ensemble mean")
    if truth is not None:
        ax.plot(_times(truth, time_dim), truth.values, color="black", lw=1.2, label="truth")
    handles_ax = ax
    if obs is not None:
        std_attr = obs.attrs.get("observation_noise_std")
        if obs_std is None and isinstance(std_attr, int | float | np.number):
            obs_std = float(std_attr)
        twin = obs_axis == "twin" or (
            obs_axis == "auto"
            and (
                obs.attrs.get("standard_name", ens.attrs.get("standard_name"))
                != ens.attrs.get("standard_name")
                or units_of(obs) != units_of(ens)
            )
        )
        oax = ax.twinx() if twin else ax
        ok = np.isfinite(np.asarray(obs.values, dtype=float))
        label = "observations" + (f" (± {obs_std:g} noise std)" if obs_std is not None else "")
        oax.errorbar(
            _times(obs, time_dim)[ok],
            np.asarray(obs.values)[ok],
            yerr=obs_std,
            fmt="o",
            ms=3.5,
            color="tab:blue",
            ecolor="tab:blue",
            elinewidth=0.8,
            capsize=2,
            label=label,
        )
        if twin:
            oax.set_ylabel(wrap(with_units(name_of(obs), units_of(obs))), color="tab:blue")
            oax.tick_params(axis="y", colors="tab:blue")
            handles_ax = oax
    if time_dim in ens.coords:
        coord = ens[time_dim]
        ax.set_xlabel(axis_label(coord) if coord.dtype.kind != "M" else name_of(coord))
    else:
        ax.set_xlabel(f"{time_dim} (index)")
    ax.set_ylabel(wrap(with_units(name_of(ens), units_of(ens))))
    handles, labels = ax.get_legend_handles_labels()
    if handles_ax is not ax:
        more = handles_ax.get_legend_handles_labels()
        handles, labels = handles + more[0], labels + more[1]
    if not len(t):
        raise InputError(f"{func}: the ensemble has no time along {time_dim!r}")
    handles_ax.legend(handles, labels, fontsize=8, loc="best")
    where = scalar_coords(ens)
    ax.set_title(name_of(ens) + (f" ({where})" if where else ""), fontsize=10)
    return ax
