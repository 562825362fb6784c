"""Shared helpers of :mod:`xsfm.plot`: lazy matplotlib, labels from CF attributes, input checks."""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from typing import Any

import numpy as np
import xarray as xr

from xsfm.errors import InputError


def pyplot() -> Any:
    """``matplotlib.pyplot``, imported on first use (the ``plot`` extra)."""
    try:
        import matplotlib.pyplot as plt
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("plotting needs matplotlib: pip install 'xsfm[plot]'") from err
    return plt


def name_of(obj: xr.DataArray, default: str = "value") -> str:
    """``long_name``, else ``standard_name`` (underscores as spaces), else the name."""
    attrs = obj.attrs
    if attrs.get("long_name"):
        return str(attrs["long_name"])
    if attrs.get("standard_name"):
        return str(attrs["standard_name"]).replace("_", " ")
    return str(obj.name) if obj.name is not None else default


def units_of(obj: xr.DataArray) -> str | None:
    units = obj.attrs.get("units")
    return None if units is None or str(units).strip() == "" else str(units)


def with_units(text: str, units: str | None) -> str:
    return f"{text} [{units}]" if units else text


def axis_label(coord: xr.DataArray) -> str:
    return with_units(name_of(coord), units_of(coord))


def as_dataarray(
    obj: xr.DataArray | xr.Dataset, variable: Hashable | None, role: str, func: str
) -> xr.DataArray:
    """A DataArray as is; from a Dataset, ``variable`` (or its only data variable)."""
    if isinstance(obj, xr.DataArray):
        return obj
    if not isinstance(obj, xr.Dataset):
        raise TypeError(f"{func}: {role} must be an xarray DataArray or Dataset, got {type(obj)}")
    names = list(obj.data_vars)
    if variable is not None and variable in obj.data_vars:
        return obj[variable]
    if len(names) == 1:
        return obj[names[0]]
    if variable is not None:
        raise InputError(f"{func}: {role} has no variable {variable!r} (its variables: {names})")
    raise InputError(
        f"{func}: {role} holds several variables {names}; pass variable=<name> to pick one"
    )


def describe(da: xr.DataArray) -> str:
    """`` 'name'`` of a named DataArray, nothing for an unnamed one."""
    return f" {da.name!r}" if da.name is not None else ""


def require_dims(da: xr.DataArray, dims: Iterable[Hashable], role: str, func: str) -> None:
    missing = [d for d in dims if d not in da.dims]
    if missing:
        raise InputError(
            f"{func}: {role}{describe(da)} lacks the dimension(s) {missing} "
            f"(its dimensions: {tuple(da.dims)})"
        )


def only_dims(da: xr.DataArray, allowed: Iterable[Hashable], role: str, func: str) -> None:
    allowed = tuple(allowed)
    extra = [d for d in da.dims if d not in allowed]
    if extra:
        raise InputError(
            f"{func}: {role}{describe(da)} has the dimension(s) {extra} besides {allowed}; "
            f"pick one value of each, e.g. select={{{extra[0]!r}: ...}}"
        )


def apply_select(
    objs: Mapping[str, xr.DataArray | None], select: Mapping[Hashable, Any] | None, func: str
) -> dict[str, xr.DataArray | None]:
    """``.sel`` (``.isel`` on a dimension without an index) of each object on the dims it has."""
    out = dict(objs)
    if not select:
        return out
    present = [o for o in objs.values() if o is not None]
    unknown = [k for k in select if not any(k in o.dims for o in present)]
    if unknown:
        dims = sorted({str(d) for o in present for d in o.dims})
        raise InputError(f"{func}: select names {unknown}, which no input has (dimensions: {dims})")
    for role, obj in objs.items():
        if obj is None:
            continue
        by_label = {k: v for k, v in select.items() if k in obj.dims and k in obj.indexes}
        by_position = {k: v for k, v in select.items() if k in obj.dims and k not in obj.indexes}
        try:
            obj = obj.sel(by_label) if by_label else obj
        except KeyError as err:
            raise InputError(f"{func}: {role} has no label {err} in select={dict(select)}") from err
        out[role] = obj.isel(by_position) if by_position else obj
    return out


def scalar_coords(da: xr.DataArray) -> str:
    """``"sample = 0, time = 3"`` from the scalar coordinates left after a selection."""
    parts = []
    for name, coord in da.coords.items():
        if coord.ndim == 0 and name not in ("spatial_ref", "crs"):
            value = coord.values
            if np.issubdtype(value.dtype, np.datetime64):
                value = np.datetime_as_string(value, unit="m")
            elif value.dtype.kind == "f":
                value = f"{float(value):.4g}"
            parts.append(f"{name} = {value}")
    return ", ".join(parts)


def tidy_log_axes(ax: Any) -> None:
    """No minor tick labels on a log axis spanning more than a decade (they overlap)."""
    from matplotlib.ticker import NullFormatter

    for axis, (lo, hi) in ((ax.xaxis, ax.get_xlim()), (ax.yaxis, ax.get_ylim())):
        if axis.get_scale() == "log" and lo > 0 and hi / lo > 10:
            axis.set_minor_formatter(NullFormatter())


def wrap(text: str, width: int = 48) -> str:
    """Long axis labels on several lines."""
    import textwrap

    return "\n".join(textwrap.wrap(text, width)) if len(text) > width else text


def new_axes(ax: Any, fig: Any, figsize: tuple[float, float]) -> tuple[Any, Any]:
    """(figure, axes): ``ax`` itself, a new axes on ``fig``, or a new figure."""
    if ax is not None:
        return ax.figure, ax
    if fig is None:
        fig = pyplot().figure(figsize=figsize, layout="constrained")
    return fig, fig.add_subplot()


def match_times(
    truth: xr.DataArray, ens: xr.DataArray, time_dim: Hashable, func: str
) -> xr.DataArray:
    """The truth at the ensemble's times (a truth may cover more, e.g. the initial state)."""
    if time_dim not in truth.dims or time_dim not in ens.indexes or time_dim not in truth.indexes:
        return truth
    wanted = ens.indexes[time_dim]
    have = truth.indexes[time_dim]
    missing = wanted.difference(have)
    if len(missing):
        raise InputError(
            f"{func}: the truth{describe(truth)} lacks {time_dim} {list(missing.astype(str))} "
            "of the ensemble"
        )
    return truth.sel({time_dim: wanted})
