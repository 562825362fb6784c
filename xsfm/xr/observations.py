"""Observations paired with a state by label, placed on the model's time steps, in the right units.

:func:`prepare_observations` returns the observations as one DataArray ``(*pass_dims, _step,
*obs_dims)`` over the model steps ``1..K`` (NaN where a step has no observation), so that step ``k``
of the result is what the model assimilates ``k`` time steps after the state:

* **labels, never positions**: on every dim the observations share with the state (``trajectory``,
  ``case``, ``station``... and the state dims themselves for observations of the full state) the
  observations are reordered to the state's labels; a label on one side that the other lacks is an
  error that names it. A pass-through dim the observations lack is broadcast (the same
  observations for every entry);
* **times as times**: each observation time is placed on the step it falls on
  (:mod:`xsfm.xr.timeline`); unsorted times are sorted, a time between steps, a repeated time or a
  time before the state's is an error that names it, and a time equal to the state's is dropped
  (the state is known there; noted in ``history``);
* **units**: converted with pint to the units the observation operator expects, or refused with
  a message that names both units;
* a NaN is a missing observation: it stays NaN and the samplers give it no weight.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Hashable, Mapping
from typing import Any

import numpy as np
import xarray as xr

from xsfm.errors import InputError, raise_all
from xsfm.xr.pairing import align_labels
from xsfm.xr.state import PreparedState, check_values
from xsfm.xr.stations import station_operator
from xsfm.xr.timeline import steps_of

__all__ = ["STEP_DIM", "PreparedObservations", "operator_source", "prepare_observations"]

STEP_DIM = "_step"


@dataclasses.dataclass
class PreparedObservations:
    """Observations on the model's steps."""

    data: xr.DataArray
    """``(*some pass dims, _step, *obs_dims)`` over steps ``1..n_steps``; NaN where unobserved."""
    obs_dims: list[Hashable]
    steps: np.ndarray
    """The steps that carry an observation time (sorted)."""
    n_steps: int
    notes: list[str]
    time_coords: dict[Hashable, xr.Variable] = dataclasses.field(default_factory=dict)
    """The observations' other coordinates along time, on the step grid (missing at forecast steps)."""


def prepare_observations(
    obs: xr.DataArray,
    state: PreparedState,
    *,
    time_dim: Hashable,
    time_step: Any,
    units: str | None,
    shape: tuple[int, ...] | None = None,
) -> PreparedObservations:
    """Align, place in time and convert observations; see the module docstring.

    Parameters
    ----------
    obs
        The observations (a DataArray with ``time_dim`` and a coordinate on it).
    state
        The prepared state (its pass-through dims, state dims, start time).
    time_dim
        Name of the time dim.
    time_step
        The model's time step, as :func:`xsfm.xr.timeline.resolve_time_step` gives it.
    units
        Units the observation operator expects (None: the observations are taken as they are).
    shape
        What the observation operator gives per state: the sizes of the observations' own dims.
    """
    from xsfm.xr.units import convert

    notes: list[str] = []
    if time_dim not in obs.dims:
        raise InputError(
            f"obs has dims {tuple(obs.dims)} but no time dim {time_dim!r}; name it with "
            f"time_dim=... or add one (obs.expand_dims({time_dim!r}) for a single time)"
        )
    if time_dim not in obs.coords:
        raise InputError(
            f"obs has no {time_dim!r} coordinate: observation times are read as times, so give "
            f"them (obs.assign_coords({time_dim}=...))"
        )
    if state.start is None:
        raise InputError(
            f"{state.label} has no {time_dim!r} coordinate, so observations cannot be placed in "
            f"time: give the state's time (state.assign_coords({time_dim}=t0))"
        )
    shared = [d for d in obs.dims if d in state.pass_dims]
    obs = align_labels(obs, state.data, shared)
    obs_dims = [d for d in obs.dims if d != time_dim and d not in state.pass_dims]
    given = tuple(obs.sizes[d] for d in obs_dims)
    if shape is not None and given != tuple(shape):
        raise InputError(
            f"obs dims {obs_dims} (beyond the state's dims and {time_dim!r}) have shape {given}, "
            f"but the observation operator gives {tuple(shape)} per state; check operator= and "
            "the obs dims"
        )
    times = np.asarray(obs[time_dim].values)
    steps = steps_of(times, start=state.start, time_step=time_step, name="obs")
    problems: list[Exception] = []
    before = times[steps < 0]
    if before.size:
        problems.append(
            InputError(
                f"obs time(s) {[str(t) for t in before[:5]]} come before the state's time "
                f"{state.start}; assimilation runs forward from the state: drop them or start "
                "from an earlier state"
            )
        )
    values, counts = np.unique(steps, return_counts=True)
    repeated = values[counts > 1]
    if repeated.size:
        dup = times[np.isin(steps, repeated)]
        problems.append(
            InputError(
                f"obs has several observations at the same model step (times "
                f"{[str(t) for t in dup[:6]]}); combine them into one time"
            )
        )
    raise_all(problems, "the observation times")
    at_start = steps == 0
    if at_start.any():
        notes.append(
            f"dropped the observation at the state's time {state.start} along {time_dim!r} "
            "(the state is known there)"
        )
    keep = np.flatnonzero(~at_start)
    if keep.size == 0:
        raise InputError(f"no observation time after the state's time {state.start}")
    order = keep[np.argsort(steps[keep], kind="stable")]
    obs = obs.isel({time_dim: order})
    steps = steps[order]
    if units is not None:
        if "units" in obs.attrs or "GRIB_units" in obs.attrs:
            fix = f"the observation operator expects {units!r}: give obs in units convertible to it"
            obs = convert(obs, units, name=str(obs.name or "obs"), fix=fix)
        else:
            notes.append(f"obs has no 'units' attribute: taken in the operator's units {units!r}")
    if obs.chunks is None:
        raise_all(check_values(obs.values, "obs", allow_nan=True), "the observations")
    n_steps = int(steps[-1])
    grid = np.arange(1, n_steps + 1)
    time_coords = {}
    for name, c in obs.coords.items():
        if name != time_dim and c.dims == (time_dim,):
            along = xr.DataArray(c.data, dims=STEP_DIM, coords={STEP_DIM: steps})
            time_coords[name] = xr.Variable(time_dim, along.reindex({STEP_DIM: grid}).data, c.attrs)
    obs = obs.drop_vars([n for n, c in obs.coords.items() if time_dim in c.dims])
    obs = obs.assign_coords({time_dim: steps}).rename({time_dim: STEP_DIM})
    if not np.array_equal(steps, grid):
        obs = obs.reindex({STEP_DIM: grid})
    lead = [d for d in obs.dims if d in state.pass_dims]
    obs = obs.transpose(*lead, STEP_DIM, *obs_dims).drop_vars(STEP_DIM)
    return PreparedObservations(obs, obs_dims, steps, n_steps, notes, time_coords)


def operator_source(
    operator: Any,
    noise_std: float | None,
    obs: xr.DataArray,
    state: PreparedState,
    card_extra: Mapping[str, Any],
) -> tuple[Any, xr.DataArray, float | None, str | None]:
    """Where the observation operator comes from, the observations ordered for it, its noise, units.

    In order: ``operator=``; for observations on the state's own dims (e.g. ``component``), an
    identity operator on the observed labels (any subset, in any order; a plain dict); else
    ``obs.attrs["observation_operator"]``, then the card's. The noise comes from ``noise_std=``,
    then ``obs.attrs["observation_noise_std"]``. Returns the source (an operator object, callable
    or plain dict, for :func:`xsfm.observations.as_operator`), the observations, the noise and the
    units the operator expects when it does not say (the state's, for observations of the state).
    """
    if noise_std is None and "observation_noise_std" in obs.attrs:
        noise_std = float(obs.attrs["observation_noise_std"])
    on_state = [d for d in state.state_dims if d in obs.dims]
    source = operator
    if source is None and not on_state:
        stations = _station_operator(obs, state, card_extra)
        if stations is not None:
            source, obs = stations
            if noise_std is None:
                raise InputError(
                    "station observations need their noise: pass noise_std=... (in the state's "
                    "units) or set obs.attrs['observation_noise_std']"
                )
            return source, obs, noise_std, state.spec.get("units")
        source = obs.attrs.get("observation_operator", card_extra.get("observation_operator"))
        if source is None:
            raise InputError(
                "no observation operator: pass operator=... (an xsfm.observations operator, its "
                "dict, or a callable), set obs.attrs['observation_operator'], or give obs on the "
                f"state's dims {state.state_dims} to observe the state directly"
            )
    if isinstance(source, str):
        source = json.loads(source)
    if source is not None:
        if on_state:
            obs = align_labels(obs, state.data, on_state, against=state.label)
        return source, obs, noise_std, None
    components = None
    dim = on_state[0]
    labelled = dim in state.data.indexes and dim in obs.indexes
    if len(state.state_dims) == 1 and labelled:
        wanted = state.data.indexes[dim].tolist()
        given = obs.indexes[dim].tolist()
        unknown = [v for v in given if v not in wanted]
        if unknown:
            raise InputError(
                f"obs has {dim} label(s) {unknown} that {state.label} lacks (it has {wanted})"
            )
        order = sorted(range(len(given)), key=lambda i: wanted.index(given[i]))
        obs = obs.isel({dim: order})
        components = [wanted.index(given[i]) for i in order]
    else:
        obs = align_labels(obs, state.data, on_state, against=state.label)
    if noise_std is None:
        raise InputError(
            "observations of the state need their noise: pass noise_std=... (in the state's "
            "units) or set obs.attrs['observation_noise_std']"
        )
    spec = {"kind": "elementwise", "function": "identity", "components": components}
    return spec, obs, noise_std, state.spec.get("units")


def _station_operator(
    obs: xr.DataArray, state: PreparedState, card_extra: Mapping[str, Any]
) -> tuple[Any, xr.DataArray] | None:
    """Stations: one obs dim carrying 1-D coordinates named like the state's two grid dims.

    See :func:`xsfm.xr.stations.station_operator` (periodic when the card says the grid is
    ``periodic``); None when ``obs`` holds no such dim.
    """
    if len(state.state_dims) != 2:
        return None
    ydim, xdim = state.state_dims
    along = {obs[c].dims[0] for c in (ydim, xdim) if c in obs.coords and obs[c].ndim == 1} - {
        ydim,
        xdim,
    }
    if len(along) != 1 or not all(c in obs.coords for c in (ydim, xdim)):
        return None
    sdim = along.pop()
    if obs[ydim].dims != (sdim,) or obs[xdim].dims != (sdim,):
        return None
    for dim in (ydim, xdim):
        if dim not in state.data.coords:
            raise InputError(
                f"station observations give positions in {dim!r}, but {state.label} has no "
                f"{dim!r} coordinate to place them on"
            )
    grid = {d: state.data[d].values for d in (ydim, xdim)}
    periodic = bool(card_extra.get("periodic", False))
    return station_operator(obs, sdim, grid, periodic=periodic, label="station observations")
