"""The state of a time-stepping model as rows: variable, state dims, ensemble, history, start time.

:func:`prepare_state` turns the user's state (a DataArray, or a Dataset holding the model's state
variable) into one DataArray ``(*pass_dims, [member], _hist, *state_dims)`` in the model's units,
never touching the input:

* the **state dims** are the model card's (``component`` for Lorenz-63); their labels are matched
  to the card's by label, so a state with its components in another order is reordered, and a
  label the card lacks is an error that names it;
* a ``member`` dim makes the state an **initial ensemble**: each member starts from its own state;
* the **history** is the last ``L`` entries along the time dim (the model conditions on ``L`` past
  states), and the **start time** ``t0`` the time of the last one; a scalar time coordinate is a
  history of one;
* every other dim (``trajectory``, ``case``...) passes through.

Dask-backed states stay lazy: their values are checked where the rows are computed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Hashable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from xsfm.errors import InputError, InvalidValuesError, MissingVariableError, raise_all

if TYPE_CHECKING:
    from xsfm.models.card import ModelCard

__all__ = [
    "PreparedState",
    "check_values",
    "pick_variable",
    "prepare_state",
    "prepare_state_for_card",
]

HIST_DIM = "_hist"


@dataclasses.dataclass
class PreparedState:
    """A state ready for a time-stepping model."""

    data: xr.DataArray
    """``(*pass_dims, [member_dim], _hist, *state_dims)`` in the model's units."""
    pass_dims: list[Hashable]
    state_dims: list[Hashable]
    members: int | None
    """Ensemble size when the state carried a member dim (an initial ensemble), else None."""
    start: Any
    """Time of the last history state (the initial time), or None when the state has no time."""
    history_times: np.ndarray | None
    time_attrs: dict[str, Any]
    spec: dict[str, Any]
    label: str
    coords: dict[Hashable, xr.Variable]
    """Coordinates to carry to the output (on pass-through and state dims)."""


def pick_variable(
    obj: xr.DataArray | xr.Dataset, spec: Mapping[str, Any] | None, what: str
) -> xr.DataArray:
    """The DataArray itself, or the Dataset variable matching ``spec`` (standard_name, then name).

    Examples
    --------
    >>> ds = xr.Dataset({"a": ("x", [1.0]), "b": ("x", [2.0])})
    >>> pick_variable(ds, {"name": "b"}, "state").name
    'b'
    """
    if isinstance(obj, xr.DataArray):
        return obj
    if not isinstance(obj, xr.Dataset):
        raise TypeError(f"{what} must be an xarray DataArray or Dataset, got {type(obj).__name__}")
    names = list(obj.data_vars)
    if spec:
        by_standard = [
            n for n in names if obj[n].attrs.get("standard_name") == spec.get("standard_name")
        ]
        if len(by_standard) == 1:
            return obj[by_standard[0]]
        if spec.get("name") in obj.data_vars:
            return obj[spec["name"]]
    if len(names) == 1:
        return obj[names[0]]
    if not names:
        raise MissingVariableError(f"{what}: the Dataset has no data variables")
    wanted = (
        f"standard_name {spec.get('standard_name')!r} or name {spec.get('name')!r}"
        if spec
        else "one variable"
    )
    raise MissingVariableError(
        f"{what}: no unique variable with {wanted} among {names}; pass the DataArray itself "
        f"(e.g. ds[{names[0]!r}])"
    )


def check_values(values: Any, label: str, *, allow_nan: bool) -> list[Exception]:
    """Problems with the values of an in-memory array: dtype, empty dims, NaN or inf."""
    values = np.asarray(values)
    if not np.issubdtype(values.dtype, np.number) or np.issubdtype(
        values.dtype, np.complexfloating
    ):
        return [InvalidValuesError(f"{label} has dtype {values.dtype}; give real numbers (float)")]
    values = values.astype(np.float64, copy=False)
    bad = np.isinf(values) if allow_nan else ~np.isfinite(values)
    if not bad.any():
        return []
    kind = "inf" if allow_nan else "NaN or inf"
    hint = "; missing observations are NaN, never inf" if allow_nan else "; fill or drop them first"
    return [InvalidValuesError(f"{label} holds {int(bad.sum())} {kind} value(s){hint}")]


def _is_lazy(da: xr.DataArray) -> bool:
    return da.chunks is not None


def _match_state_labels(
    da: xr.DataArray, dim: Hashable, labels: Sequence[Any], label: str, model: str
) -> xr.DataArray:
    if dim not in da.coords:
        return da
    given = [str(v) for v in np.asarray(da[dim].values)]
    wanted = [str(v) for v in labels]
    if given == wanted:
        return da
    missing = [w for w in wanted if w not in given]
    extra = [g for g in given if g not in wanted]
    if missing or extra or len(set(given)) != len(given):
        raise InputError(
            f"{label} has {dim} labels {given}; {model} needs exactly {wanted}"
            + (f" (missing {missing})" if missing else "")
            + (f" (unknown {extra})" if extra else "")
        )
    return da.isel({dim: [given.index(w) for w in wanted]})


def prepare_state(
    obj: xr.DataArray | xr.Dataset,
    *,
    spec: Mapping[str, Any] | None,
    state_dims: Sequence[Hashable],
    history: int,
    time_dim: Hashable = "time",
    member_dim: Hashable = "member",
    state_shape: Sequence[int] | None = None,
    state_labels: Mapping[Hashable, Sequence[Any]] | None = None,
    model: str = "the model",
) -> PreparedState:
    """Select, check, convert and order a state; see the module docstring.

    Parameters
    ----------
    obj
        The state.
    spec
        The card's state variable (``name``, ``standard_name``, ``units``); None for the classical
        filters (the state is used as it is).
    state_dims
        The model's state dims.
    history
        Number of past states the model conditions on.
    time_dim, member_dim
        Names of the time and ensemble dims.
    state_shape, state_labels
        The card's sizes and labels of the state dims, checked when given.
    model
        How to name the model in messages.
    """
    from xsfm.xr.units import convert

    da = pick_variable(obj, spec, "state")
    label = f"state variable {da.name!r}" if da.name is not None else "state"
    problems: list[Exception] = []
    for i, d in enumerate(state_dims):
        if d not in da.dims:
            problems.append(
                InputError(
                    f"{label} has no dim {d!r}; {model} needs its state along {list(state_dims)} "
                    f"(the state's dims are {tuple(da.dims)})"
                )
            )
        elif state_shape is not None and da.sizes[d] != state_shape[i]:
            problems.append(
                InputError(
                    f"{label} has {da.sizes[d]} entries along {d!r}; {model} needs {state_shape[i]}"
                )
            )
    for d, n in da.sizes.items():
        if n == 0:
            problems.append(InvalidValuesError(f"{label} has zero-size dim {d!r}"))
    raise_all(problems, f"the state for {model}")
    for d, labels in (state_labels or {}).items():
        da = _match_state_labels(da, d, labels, label, model)
    if spec and spec.get("units"):
        fix = f"{model} takes its state in {spec['units']!r}: give the state in units convertible to it"
        da = convert(da, spec["units"], name=str(da.name or "state"), fix=fix)
    if not _is_lazy(da):
        raise_all(check_values(da.values, label, allow_nan=False), f"the state for {model}")

    members = int(da.sizes[member_dim]) if member_dim in da.dims else None
    start: Any = None
    history_times = None
    time_attrs: dict[str, Any] = {}
    if time_dim in da.dims:
        if time_dim in da.coords:
            da = da.sortby(time_dim)
        if da.sizes[time_dim] < history:
            raise InputError(
                f"{model} conditions on {history} past states but {label} has "
                f"{da.sizes[time_dim]} along {time_dim!r}; give at least {history} times"
            )
        da = da.isel({time_dim: slice(da.sizes[time_dim] - history, None)})
        if time_dim in da.coords:
            history_times = np.asarray(da[time_dim].values)
            start = history_times[-1]
            time_attrs = dict(da[time_dim].attrs)
    else:
        if history != 1:
            raise InputError(
                f"{model} conditions on {history} past states: give {label} with a {time_dim!r} "
                f"dim of at least {history} entries"
            )
        if time_dim in da.coords:
            start = np.asarray(da[time_dim].values).reshape(())[()]
            time_attrs = dict(da[time_dim].attrs)
        da = da.expand_dims(time_dim)
    da = da.drop_vars(
        [n for n, c in da.coords.items() if n == time_dim or time_dim in c.dims]
    ).rename({time_dim: HIST_DIM})
    lead = [member_dim] if members is not None else []
    pass_dims = [d for d in da.dims if d not in state_dims and d != HIST_DIM and d not in lead]
    da = da.transpose(*pass_dims, *lead, HIST_DIM, *state_dims)
    coords = {
        name: c.variable
        for name, c in da.coords.items()
        if set(c.dims) <= set(pass_dims) | set(state_dims)
    }
    out_spec = {"name": da.name if da.name is not None else "state", **dict(spec or {})}
    if not spec:
        out_spec.update(
            {k: da.attrs[k] for k in ("standard_name", "long_name", "units") if k in da.attrs}
        )
    return PreparedState(
        data=da,
        pass_dims=pass_dims,
        state_dims=list(state_dims),
        members=members,
        start=start,
        history_times=history_times,
        time_attrs=time_attrs,
        spec=out_spec,
        label=label,
        coords=coords,
    )


def prepare_state_for_card(
    obj: xr.DataArray | xr.Dataset,
    card: ModelCard,
    *,
    time_dim: Hashable = "time",
    member_dim: Hashable = "member",
) -> PreparedState:
    """:func:`prepare_state` with what an assimilation model's card declares.

    The state variable (``inputs[0]``), the state dims and their labels (``grids``), the sizes
    (``network["state_shape"]``) and the history length (``network["history"]``).
    """
    state_dims = [str(d) for d in card.grids.get("state_dims", [])]
    return prepare_state(
        obj,
        spec=dict(card.inputs[0]) if card.inputs else None,
        state_dims=state_dims,
        history=int(card.network.get("history", 1)),
        time_dim=time_dim,
        member_dim=member_dim,
        state_shape=card.network.get("state_shape"),
        state_labels={d: card.grids[d] for d in state_dims if d in card.grids},
        model=f"model {card.name!r}",
    )
