"""Label the network's rows as a Dataset: member, fine-grid coordinates, CF attrs, provenance.

:func:`assemble_output` turns the raw ``(*sample_dims, member, out_channel, fy, fx)`` result into a
CF Dataset: the ``member`` dim (:data:`MEMBER_ATTRS`), the fine grid's coordinates with CF attrs,
every variable with the card's ``units``/``standard_name``/``long_name``, provenance in ``source``
and ``history`` (:func:`extend_history`), and every non-spatial dim and coordinate of the input
passed through.
"""

from __future__ import annotations

import datetime as _dt
from typing import TYPE_CHECKING

import numpy as np
import xarray as xr

from xsfm.xr.prepare import PreparedInputs, fine_axes

if TYPE_CHECKING:
    from xsfm.models.base import Model

__all__ = ["MEMBER_ATTRS", "assemble_output", "extend_history"]

MEMBER_ATTRS = {"standard_name": "realization", "long_name": "ensemble member", "units": "1"}


def assemble_output(
    result: xr.DataArray,
    model: Model,
    prepared: PreparedInputs,
    source: xr.Dataset,
    call: str,
) -> xr.Dataset:
    """Label the raw ``(*sample_dims, member, out_channel, fy, fx)`` result as a CF Dataset."""
    import xsfm

    axes = fine_axes(model, prepared)
    (fy, (yv, ya)), (fx, (xv, xa)) = axes.items()
    result = result.rename({"_fy": fy, "_fx": fx})
    result = result.assign_coords(
        {
            fy: xr.Variable(fy, yv, ya),
            fx: xr.Variable(fx, xv, xa),
            "member": xr.Variable("member", np.arange(result.sizes["member"]), MEMBER_ATTRS),
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
    card = model.card
    attrs = dict(source.attrs)
    attrs["source"] = f"xsfm {xsfm.__version__}, model {card.name} v{card.version} ({card.method})"
    attrs["history"] = extend_history(attrs.get("history"), call, prepared.notes)
    return out.assign_attrs(attrs)


def extend_history(previous: str | None, call: str, notes: list[str]) -> str:
    """The ``history`` attribute: the input's, then a time-stamped line for the call and each note.

    Examples
    --------
    >>> len(extend_history("made by hand", "downscale(...)", ["cut to the domain"]).splitlines())
    3
    """
    import xsfm

    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    entries = [f"{stamp} xsfm {xsfm.__version__}: {call}"] + [f"{stamp} xsfm: {n}" for n in notes]
    return "\n".join(([previous] if previous else []) + entries)
