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
from collections.abc import Hashable
from typing import Any

import numpy as np
import xarray as xr

from xsfm.errors import InputError, raise_all
from xsfm.xr.pairing import align_labels
from xsfm.xr.state import PreparedState, check_values
from xsfm.xr.timeline import steps_of

__all__ = ["STEP_DIM", "PreparedObservations", "prepare_observations"]

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
            obs = convert(obs, units, name=str(obs.name or "obs"))
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
