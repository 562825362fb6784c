"""Label the network's rows as a Dataset: member, fine-grid coordinates, CF attrs, provenance.

:func:`assemble_output` turns the raw ``(*sample_dims, member, out_channel, fy, fx)`` result into a
CF Dataset: the ``member`` dim (:data:`MEMBER_ATTRS`), the fine grid's coordinates with CF attrs,
every variable with the card's ``units``/``standard_name``/``long_name``, provenance in ``source``
and ``history`` (:func:`extend_history`), and every non-spatial dim and coordinate of the input
passed through. When the fine grid is in the input grid's coordinate system (a refinement of it, or
a card grid with the same coordinate names' standard names and units), the input's grid mapping
and its 2-D latitude/longitude (interpolated) are kept. Every output goes through
:func:`xsfm.xr.cf.cf_tidy`, so that ``to_netcdf`` writes a CF-1.8 file.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Hashable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from xsfm._version import __version__
from xsfm.xr.cf import cf_tidy, interpolate_latlon
from xsfm.xr.prepare import PreparedInputs, fine_axes
from xsfm.xr.timeline import step_times

if TYPE_CHECKING:
    from xsfm.model import Model
    from xsfm.xr.state import PreparedState

__all__ = [
    "MEMBER_ATTRS",
    "OUT_TIME",
    "assemble_output",
    "call_text",
    "extend_history",
    "label_steps",
    "provenance_attrs",
    "step_coords",
]

MEMBER_ATTRS = {"standard_name": "realization", "long_name": "ensemble member", "units": "1"}
OUT_TIME = "_time"
"""Name of the raw time-step dim of a time-stepping model's rows before labelling."""


def assemble_output(
    result: xr.DataArray,
    model: Model,
    prepared: PreparedInputs,
    source: xr.Dataset,
    call: str,
) -> xr.Dataset:
    """Label the raw ``(*sample_dims, member, out_channel, fy, fx)`` result as a CF Dataset."""
    axes = fine_axes(model, prepared)
    (fy, (yv, ya)), (fx, (xv, xa)) = axes.items()
    ya, xa = _axis_attrs(ya, "Y", prepared, model), _axis_attrs(xa, "X", prepared, model)
    result = result.rename({"_fy": fy, "_fx": fx})
    result = result.assign_coords(
        {
            fy: xr.Variable(fy, yv, ya),
            fx: xr.Variable(fx, xv, xa),
            "member": xr.Variable(
                "member", np.arange(result.sizes["member"], dtype=np.int32), MEMBER_ATTRS
            ),
        }
    )
    order = ["member", *prepared.sample_dims, fy, fx]
    data_vars = {}
    for k, spec in enumerate(prepared.output_specs):
        da = result.isel(_out=k, drop=True).transpose(*order)
        attrs = {key: spec[key] for key in ("standard_name", "long_name", "units") if key in spec}
        data_vars[spec["name"]] = da.assign_attrs(attrs)
    out = xr.Dataset(data_vars)
    passthrough = {
        name: coord
        for name, coord in prepared.data.coords.items()
        if name != "channel" and not set(coord.dims) & {prepared.grid.y_dim, prepared.grid.x_dim}
    }
    out = out.assign_coords(passthrough)
    out = _keep_grid_geometry(out, model, prepared, source, {fy: yv, fx: xv})
    out = _card_latlon(out, model, (fy, fx))
    card = model.card
    attrs = dict(source.attrs)
    attrs["source"] = f"xsfm {__version__}, model {card.name} v{card.version} ({card.method})"
    attrs["history"] = extend_history(attrs.get("history"), call, prepared.notes)
    return cf_tidy(out.assign_attrs(attrs))


def _card_latlon(out: xr.Dataset, model: Model, dims: tuple[Hashable, Hashable]) -> xr.Dataset:
    """2-D ``lat``/``lon`` coordinates of a curvilinear card grid (``grids.fine.latlon``)."""
    pair = model.fine_latlon()
    if pair is None:
        return out
    spec = model.card.grids["fine"]["latlon"]
    shape = (out.sizes[dims[0]], out.sizes[dims[1]])
    coords = {}
    for values, key, sn, units in (
        (pair[0], "lat_name", "latitude", "degrees_north"),
        (pair[1], "lon_name", "longitude", "degrees_east"),
    ):
        if values.shape != shape:
            raise ValueError(
                f"model {model.name!r}: its fine-grid {sn} has shape {values.shape}, its fine "
                f"grid {shape}; the model files are inconsistent"
            )
        name = spec.get(key, sn[:3])
        attrs = {"standard_name": sn, "units": units, "long_name": sn}
        coords[name] = xr.Variable(dims, values, attrs)
    return out.assign_coords(coords)


def _refined(model: Model) -> bool:
    return model.card.grids.get("fine", {}).get("rule") == "factor"


def _axis_attrs(
    attrs: Mapping[str, Any], axis: str, prepared: PreparedInputs, model: Model
) -> dict[str, Any]:
    """CF attrs of a fine axis: a refined latitude/longitude or grid index says what it is."""
    attrs = dict(attrs)
    grid = prepared.grid
    dim = grid.y_dim if axis == "Y" else grid.x_dim
    if not _refined(model):
        return attrs
    if grid.kind == "latlon1d":
        geo = ("latitude", "degrees_north") if axis == "Y" else ("longitude", "degrees_east")
        attrs.setdefault("standard_name", geo[0])
        attrs.setdefault("units", geo[1])
        attrs.setdefault("axis", axis)
    elif dim not in prepared.data.coords:
        attrs.setdefault(
            "long_name", f"position along the input's {dim} dim, in input grid cells from 0"
        )
    return attrs


def _keep_grid_geometry(
    out: xr.Dataset,
    model: Model,
    prepared: PreparedInputs,
    source: xr.Dataset,
    fine: Mapping[Hashable, np.ndarray],
) -> xr.Dataset:
    """The input's grid mapping and 2-D lat/lon on the fine grid, where the fine grid is its own.

    That is when the fine grid refines the input's (``rule: factor``), or when the card's fine axes
    have the same standard names and units as the input's 1-D coordinates. The 2-D lat/lon are
    interpolated bilinearly in grid-index space (exact for a linear map, close for a projection).
    """
    grid = prepared.grid
    coords = prepared.data.coords
    dims = (grid.y_dim, grid.x_dim)
    positions: dict[Hashable, np.ndarray] = {}
    for dim, values in zip(dims, fine.values(), strict=True):
        if dim in coords:
            old = np.asarray(coords[dim].values, dtype=np.float64)
        elif _refined(model):
            old = np.arange(prepared.data.sizes[dim], dtype=np.float64)
        else:
            return out
        if not _refined(model):
            fine_attrs = out[list(fine)[dims.index(dim)]].attrs
            same = all(
                fine_attrs.get(k) == coords[dim].attrs.get(k) for k in ("standard_name", "units")
            )
            if not same or "standard_name" not in fine_attrs:
                return out
        step = float(old[1] - old[0]) if old.size > 1 else 1.0
        positions[dim] = (np.asarray(values, dtype=np.float64) - old[0]) / step
    new_dims = dict(zip(dims, fine, strict=True))
    extra: dict[Hashable, xr.DataArray] = {}
    for name, sn, units in (
        (grid.lat_name, "latitude", "degrees_north"),
        (grid.lon_name, "longitude", "degrees_east"),
    ):
        if name is None or name not in coords or set(coords[name].dims) != set(dims):
            continue
        if name in out.coords or name in new_dims.values():
            continue
        carried = interpolate_latlon(coords[name].transpose(*dims), positions, new_dims)
        if carried is not None:
            carried.attrs.setdefault("standard_name", sn)
            carried.attrs.setdefault("units", units)
            extra[name] = carried
    out = out.assign_coords(extra)
    mappings = {
        v.attrs["grid_mapping"]
        for v in source.data_vars.values()
        if isinstance(v.attrs.get("grid_mapping"), str)
    }
    if len(mappings) == 1:
        (name,) = mappings
        if name in source.variables and source[name].ndim == 0 and name not in out.variables:
            out = out.assign_coords({name: source[name].variable})
            out = out.assign(
                {k: v.assign_attrs(grid_mapping=name) for k, v in out.data_vars.items()}
            )
    return out


def extend_history(previous: str | None, call: str, notes: list[str]) -> str:
    """The ``history`` attribute: the input's, then a time-stamped line for the call and each note.

    Examples
    --------
    >>> len(extend_history("made by hand", "downscale(...)", ["cut to the domain"]).splitlines())
    3
    """
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    entries = [f"{stamp} xsfm {__version__}: {call}"] + [f"{stamp} xsfm: {n}" for n in notes]
    return "\n".join(([previous] if previous else []) + entries)


def label_steps(
    result: xr.DataArray,
    state: PreparedState,
    *,
    time_dim: Hashable,
    member_dim: Hashable,
    time_coords: Mapping[Hashable, xr.Variable],
    spec: Mapping[str, Any],
    source: str,
    call: str,
    notes: list[str],
    attrs: Mapping[str, Any],
) -> xr.Dataset:
    """Raw ``(*pass, _member, _time, *state)`` -> ``(member, *pass, time, *state)`` Dataset."""
    da = result.rename({"_member": member_dim, OUT_TIME: time_dim})
    da = da.transpose(member_dim, *state.pass_dims, time_dim, *state.state_dims)
    members = da.sizes[member_dim]
    coords: dict[Hashable, Any] = {
        member_dim: xr.Variable(member_dim, np.arange(members, dtype=np.int32), MEMBER_ATTRS),
        **state.coords,
        **time_coords,
    }
    da = da.assign_coords(coords).assign_attrs(
        {k: spec[k] for k in ("standard_name", "long_name", "units") if k in spec}
    )
    name = spec.get("name", "state")
    out_attrs = {k: v for k, v in attrs.items() if k not in ("source", "history")}
    out_attrs["source"] = f"xsfm {__version__}, {source}"
    out_attrs["history"] = extend_history(attrs.get("history"), call, notes)
    return cf_tidy(xr.Dataset({name: da}).assign_attrs(out_attrs))


def step_coords(
    state: PreparedState, time_dim: Hashable, time_step: Any, n_steps: int, observed: Any
) -> dict[Hashable, xr.Variable]:
    """Coordinates along the time dim of a time-stepping model's output.

    ``lead`` counts the steps, ``time_dim`` holds their true times (when the state has a time),
    ``observed`` flags the steps that assimilated an observation.
    """
    steps = np.arange(1, n_steps + 1, dtype=np.int32)
    coords: dict[Hashable, xr.Variable] = {
        "lead": xr.Variable(time_dim, steps, {"long_name": "model steps after the initial state"})
    }
    if state.start is not None:
        coords[time_dim] = xr.Variable(
            time_dim, step_times(state.start, time_step, steps), state.time_attrs
        )
    if observed is not None:
        coords["observed"] = xr.Variable(
            time_dim,
            np.isin(steps, observed),
            {
                "long_name": "an observation time falls on this step (its values may still be missing)"
            },
        )
    return coords


def provenance_attrs(obj: xr.DataArray | xr.Dataset) -> dict[str, Any]:
    """Attributes an output keeps from its input: a Dataset's all, a DataArray's ``history``."""
    return (
        dict(obj.attrs)
        if isinstance(obj, xr.Dataset)
        else {k: v for k, v in obj.attrs.items() if k == "history"}
    )


def _brief(value: Any, limit: int = 8) -> Any:
    """``value`` with every list longer than ``limit`` replaced by ``'<N values>'``."""
    if isinstance(value, dict):
        return {k: _brief(v, limit) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        if len(value) > limit:
            return f"<{len(value)} values>"
        return type(value)(_brief(v, limit) for v in value)
    return value


def call_text(kind: str, **kwargs: Any) -> str:
    """The call as ``history`` records it: ``kind(k=v, ...)``, None values left out.

    Long lists (station positions, grid coordinates of an operator) are shortened to their length.

    Examples
    --------
    >>> call_text("assimilate", operator={"kind": "points", "points": [[0, 0]] * 64}, steps=None)
    "assimilate(operator={'kind': 'points', 'points': '<64 values>'})"
    """
    parts = (f"{k}={_brief(v)!r}" for k, v in kwargs.items() if v is not None)
    return f"{kind}(" + ", ".join(parts) + ")"
