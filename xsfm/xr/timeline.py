"""Times as times: place observation times on a model's time steps.

A model that steps in time (FlowDAS, a filter's transition) advances by a fixed **time step**. An
observation at time ``t`` is assimilated at step ``k = (t - t0) / time_step`` counted from the
initial state's time ``t0``; ``k`` must be a whole number >= 1. Times may be numbers (in the units
of the time coordinate, e.g. a step count with units ``"1"``) or ``datetime64`` (the time step is
then a ``timedelta64``, or a string such as ``"6h"``).

Examples
--------
>>> import numpy as np
>>> steps_of(np.array([4, 1, 2]), start=0, time_step=1, name="obs")
array([4, 1, 2])
>>> times = np.array(["2020-01-01T12", "2020-01-02T00"], dtype="datetime64[ns]")
>>> step, _ = resolve_time_step("6h", None, times, {}, time_dim="time", where="the example")
>>> steps_of(times, start=np.datetime64("2020-01-01T06"), time_step=step, name="obs")
array([1, 3])
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Hashable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from xsfm.errors import InputError

if TYPE_CHECKING:
    from xsfm.xr.state import PreparedState

__all__ = ["model_time_step", "resolve_time_step", "step_times", "steps_of"]

_TOLERANCE = 1e-6


def _is_datetime(values: np.ndarray) -> bool:
    return np.asarray(values).dtype.kind == "M"


def resolve_time_step(
    given: Any,
    card_step: Any,
    times: np.ndarray,
    attrs: Mapping[str, Any],
    *,
    time_dim: str,
    where: str,
) -> tuple[Any, str | None]:
    """The model's time step in the time coordinate's own kind (number or ``timedelta64``).

    Parameters
    ----------
    given
        ``time_step=`` from the user (wins when not None).
    card_step
        The model card's ``grids["time_step"]`` (None for the classical filters).
    times
        Values of the time coordinate (to choose number or timedelta).
    attrs
        Attributes of the time coordinate: its ``time_step`` attribute, when present, is the
        default; else a coordinate with ``units: "1"`` counts steps, so its time step is 1.
    time_dim
        Name of the time dim (for messages).
    where
        What needs the step (for messages), e.g. ``"model 'lorenz63-flowdas'"``.

    Returns
    -------
    step, note
        The time step, and a note for ``history`` when it was defaulted.
    """
    note = None
    step = given if given is not None else card_step
    if step is None and "time_step" in attrs:
        step = attrs["time_step"]
        note = f"time step {step} from the {time_dim!r} coordinate's time_step attribute"
    if step is None:
        if not _is_datetime(times) and str(attrs.get("units", "")).strip() == "1":
            step, note = (
                1,
                f"time step 1: the {time_dim!r} coordinate counts model steps (units '1')",
            )
        else:
            raise InputError(
                f"{where} needs the model's time step to place times along {time_dim!r} on its "
                f"steps: pass time_step=... (a number in the units of {time_dim!r}, or for datetimes "
                "a timedelta such as '6h')"
            )
    if _is_datetime(times):
        if isinstance(step, (bool, int, float, np.number)):
            raise InputError(
                f"time_step {step!r} is not a duration, but {time_dim!r} holds datetimes; give a "
                "timedelta such as '6h'"
            )
        try:
            step = np.timedelta64(pd.Timedelta(step).to_timedelta64(), "ns")
        except (TypeError, ValueError) as err:
            raise InputError(
                f"time_step {step!r} is not a duration, but {time_dim!r} holds datetimes; give a "
                f"timedelta such as '6h' ({err})"
            ) from None
        if step <= np.timedelta64(0, "ns"):
            raise InputError(f"time_step must be positive, got {step}")
        return step, note
    if isinstance(step, (str, _dt.timedelta, np.timedelta64)):
        raise InputError(
            f"time_step {step!r} is a duration, but {time_dim!r} holds numbers; give the step in "
            f"the units of {time_dim!r} ({attrs.get('units', 'no units attribute')})"
        )
    if isinstance(step, bool) or not np.isfinite(float(step)) or float(step) <= 0:
        raise InputError(f"time_step must be a positive number, got {step!r}")
    return step, note


def steps_of(times: np.ndarray, *, start: Any, time_step: Any, name: str) -> np.ndarray:
    """Whole model steps from ``start`` to each of ``times``; an error names any time between steps.

    Times before ``start`` give negative steps (the caller decides what to do with them).
    """
    times = np.asarray(times)
    if _is_datetime(times) != _is_datetime(np.asarray(start)):
        raise InputError(
            f"{name} times are {times.dtype} but the state's time is {np.asarray(start).dtype}; "
            "give both as datetimes or both as numbers"
        )
    if _is_datetime(times):
        delta = (times - np.datetime64(start, "ns")).astype("timedelta64[ns]")
        ratio = delta / np.timedelta64(time_step, "ns")
    else:
        ratio = (times.astype(np.float64) - float(start)) / float(time_step)
    whole = np.rint(ratio)
    off = np.abs(ratio - whole) > _TOLERANCE * np.maximum(1.0, np.abs(ratio))
    if off.any():
        bad = [str(t) for t in times[off][:5]]
        raise InputError(
            f"{name} time(s) {bad} fall between the model's steps (time step {time_step} from the "
            f"state's time {start}); give observations at whole steps, or resample them in time"
        )
    return whole.astype(np.int64)


def step_times(start: Any, time_step: Any, steps: np.ndarray) -> np.ndarray:
    """The times of model steps ``steps`` after ``start`` (same kind as ``start``)."""
    steps = np.asarray(steps, dtype=np.int64)
    if _is_datetime(np.asarray(start)):
        return np.datetime64(start, "ns") + steps * np.timedelta64(time_step, "ns")
    values = np.asarray(start) + steps * time_step
    return values.astype(np.result_type(np.asarray(start).dtype, np.asarray(time_step).dtype))


def model_time_step(
    state: PreparedState, given: Any, card_step: Any, time_dim: Hashable, where: str
) -> tuple[Any, list[str]]:
    """Resolve the time step and check that a history of several states lies on it."""
    if state.start is None:
        return None, []
    step, note = resolve_time_step(
        given,
        card_step,
        np.asarray(state.start),
        state.time_attrs,
        time_dim=str(time_dim),
        where=where,
    )
    times = state.history_times
    if times is not None and times.size > 1:
        offsets = steps_of(times, start=state.start, time_step=step, name="state history")
        if not np.array_equal(offsets, np.arange(1 - times.size, 1)):
            raise InputError(
                f"{state.label}'s last {times.size} times {[str(t) for t in times]} are not "
                f"consecutive model steps of {step}; the model's history must be"
            )
    return step, [note] if note else []
