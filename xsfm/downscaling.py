"""Downscaling for xarray objects: CF-annotated input in, labelled ensemble with units out.

The steps of :func:`downscale` are plain functions, each tested on its own:

1. :func:`prepare_inputs` finds the card's variables (:mod:`xsfm.xr.cf`), converts units
   (:mod:`xsfm.xr.units`) and puts them on the card's coarse grid (cut to the domain, or regridded on
   request), reporting every problem at once;
2. the fields are stacked into one ``channel`` dim and sent through the network chunk by chunk
   (:mod:`xsfm.xr.chunks`, :mod:`xsfm.backend`); each sample's random streams derive from the seed and its
   global position, so results do not depend on chunking or ``batch_size``;
3. :func:`assemble_output` labels the result: ``member`` dim, the fine grid's coordinates with CF attrs,
   every variable with the card's ``units``/``standard_name``/``long_name``, provenance in ``source`` and
   ``history``, and every non-spatial dim and coordinate of the input passed through.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from xsfm.errors import InputError
from xsfm.models.base import Model, load_model
from xsfm.xr.grids import refine_coord

if TYPE_CHECKING:
    from xsfm.xr.cf import SpatialGrid

__all__ = [
    "DEFAULT_DOWNSCALING_MODEL",
    "assemble_output",
    "check_members",
    "downscale",
    "extend_history",
    "prepare_inputs",
]

DEFAULT_DOWNSCALING_MODEL = "kolmogorov-sfm"

_ATTRS = ("standard_name", "units", "long_name")

MEMBER_ATTRS = {"standard_name": "realization", "long_name": "ensemble member", "units": "1"}


@dataclasses.dataclass
class PreparedInputs:
    """Inputs ready for the network: one DataArray ``(*sample_dims, channel, y, x)`` and its context."""

    data: xr.DataArray
    grid: SpatialGrid
    sample_dims: list[str]
    notes: list[str]
    output_specs: list[dict[str, Any]]


def check_members(members: Any) -> int:
    """Validate the ensemble size."""
    if isinstance(members, bool) or not isinstance(members, (int, np.integer)):
        raise TypeError(
            f"members must be an integer >= 1, got {members!r} ({type(members).__name__})"
        )
    if members < 1:
        raise ValueError(f"members must be >= 1 (the ensemble size), got {members}")
    return int(members)


def _as_dataset(obj: xr.DataArray | xr.Dataset, model: Model) -> xr.Dataset:
    if isinstance(obj, xr.Dataset):
        return obj
    if not isinstance(obj, xr.DataArray):
        raise TypeError(f"expected an xarray DataArray or Dataset, got {type(obj).__name__}")
    inputs = model.card.inputs
    if obj.name is not None:
        return obj.to_dataset()
    if len(inputs) == 1:
        return obj.to_dataset(name=inputs[0]["name"])
    if not inputs:
        return obj.to_dataset(name="field")
    raise InputError(
        f"model {model.name!r} takes {len(inputs)} variables ({', '.join(model.card.input_names)}) "
        "but got one unnamed DataArray; pass a Dataset holding them all"
    )


def prepare_inputs(
    ds: xr.Dataset,
    model: Model,
    *,
    variables: Mapping[str, str] | None = None,
    regrid: str | None = None,
) -> PreparedInputs:
    """Select, convert and grid-check the model's inputs; stack them into a ``channel`` dim.

    Never modifies ``ds``. All missing variables and all unit problems are reported together
    (see :func:`xsfm.xr.cf.prepare_inputs`). Grid-agnostic models (``any_variables`` cards, such as
    ``interpolation``) take every variable on the dataset's spatial grid, units unchanged.
    """
    from xsfm.xr import cf

    card = model.card
    if card.extra.get("any_variables"):
        grid = cf.find_spatial_grid(ds)
        names = [
            name for name, da in ds.data_vars.items() if {grid.y_dim, grid.x_dim} <= set(da.dims)
        ]
        if not names:
            raise InputError(
                f"no data variable of the input lies on its spatial grid {grid.dims}; "
                f"model {card.name!r} needs at least one (y, x) field"
            )
        fields = {str(n): cf.standardise_grid(ds[n], name=n) for n in names}
        notes: list[str] = []
        output_specs = [
            {"name": name, **{k: da.attrs[k] for k in _ATTRS if k in da.attrs}}
            for name, da in fields.items()
        ]
    else:
        prepared = cf.prepare_inputs(
            ds, card.inputs, card.grids["coarse"], variables=variables, regrid=regrid
        )
        fields, notes = prepared.arrays, prepared.notes
        output_specs = list(card.outputs)
    grid = cf.find_spatial_grid(next(iter(fields.values())))
    names = list(fields)
    arrays = xr.broadcast(*[fields[n].drop_attrs(deep=False) for n in names])
    data = xr.concat(arrays, dim="channel", coords="minimal", compat="override", join="exact")
    data = data.assign_coords(channel=names)
    sample_dims = [d for d in data.dims if d not in ("channel", grid.y_dim, grid.x_dim)]
    data = data.transpose(*sample_dims, "channel", grid.y_dim, grid.x_dim)
    return PreparedInputs(data, grid, [str(d) for d in sample_dims], notes, output_specs)


def _fine_axes(
    model: Model, prepared: PreparedInputs
) -> dict[str, tuple[np.ndarray, dict[str, Any]]]:
    """Coordinates of the fine grid: from the card, or refined from the input's grid."""
    from xsfm.xr.cf import grid_spec_coords

    fine = model.card.grids.get("fine", {})
    grid = prepared.grid
    if fine.get("rule") == "factor":
        factor = int(model.card.network.get("factor", fine.get("factor", 4)))
        return {
            str(dim): refine_coord(prepared.data.coords.get(dim), prepared.data.sizes[dim], factor)
            for dim in (grid.y_dim, grid.x_dim)
        }
    return {name: (c.values, dict(c.attrs)) for name, c in grid_spec_coords(fine).items()}


def assemble_output(
    result: xr.DataArray,
    model: Model,
    prepared: PreparedInputs,
    source: xr.Dataset,
    call: str,
) -> xr.Dataset:
    """Label the raw ``(*sample_dims, member, out_channel, fy, fx)`` result as a CF Dataset."""
    import xsfm

    axes = _fine_axes(model, prepared)
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


def _resolve_device(device: str | None, data: xr.DataArray) -> str:
    """``auto`` picks CUDA for cupy-backed input or when a GPU is present, else the CPU."""
    from xsfm.backend import resolve_device

    if device in (None, "auto") and type(data.data).__module__.startswith("cupy"):
        return "cuda"
    return str(resolve_device(device if device is not None else "auto"))


def _run_chunk(
    array: np.ndarray,
    index: np.ndarray,
    *,
    model: Model,
    members: int,
    seed: int,
    steps: int | None,
    solver: str | None,
    device: str,
    batch_size: int | None,
    sample_kwargs: dict[str, Any],
) -> np.ndarray:
    """Sample all members of all samples in one chunk: ``[..., C, h, w] -> [..., M, Cout, H, W]``."""
    import torch

    from xsfm.backend import cached_network, from_torch, to_torch
    from xsfm.sampling.rng import stream_generators

    lead = array.shape[:-3]
    flat = array.reshape(-1, *array.shape[-3:])
    flat_index = np.asarray(index).reshape(-1)
    network = cached_network(model, device)
    step = batch_size or max(1, 64 // members)
    outputs = []
    with torch.inference_mode():
        for start in range(0, flat.shape[0], step):
            x = to_torch(flat[start : start + step], device=device, dtype=torch.float32)
            gens = stream_generators(seed, flat_index[start : start + step], members, device=device)
            y = network.sample(
                x, gens, members=members, steps=steps, solver=solver, **sample_kwargs
            )
            outputs.append(from_torch(y.float(), like=array))
    out = np.concatenate(outputs, axis=0) if outputs else np.empty((0,))
    return out.reshape(*lead, *out.shape[1:])


def downscale(
    obj: xr.DataArray | xr.Dataset,
    model: str | Model | None = None,
    members: int = 16,
    steps: int | None = None,
    seed: int = 0,
    device: str | None = None,
    batch_size: int | None = None,
    *,
    variables: Mapping[str, str] | None = None,
    regrid: str | None = None,
    solver: str | None = None,
    **sample_kwargs: Any,
) -> xr.Dataset:
    """Downscale coarse fields to the model's fine grid as an ensemble.

    Parameters
    ----------
    obj
        Coarse input: a Dataset holding the model card's inputs (found by ``standard_name``, then name),
        or a DataArray for single-input models. Any dims besides the two spatial ones (time, level, ...)
        pass through. numpy, dask (stays lazy) or cupy backed.
    model
        Registry name, path, or :class:`~xsfm.models.base.Model`; default ``"kolmogorov-sfm"``.
    members
        Ensemble size (>= 1).
    steps, solver
        Sampler steps and solver (``"euler"`` or ``"heun"``); default from the card.
    seed
        Results are reproducible bit for bit on CPU for a given seed, whatever the chunking or
        ``batch_size``.
    device
        ``"auto"`` (GPU for cupy input or when CUDA is available), ``"cpu"`` or ``"cuda"``.
    batch_size
        Samples per network batch (each with all its members).
    variables
        Explicit mapping ``{card_name: name_in_obj}`` when names and standard names do not match.
    regrid
        ``"bilinear"`` to accept input at another resolution by interpolating it to the card's grid.
    **sample_kwargs
        Passed to the network's ``sample`` (e.g. ``dtype``).

    Returns
    -------
    xarray.Dataset
        One variable per card output, dims ``(member, *pass-through dims, y, x)`` on the fine grid.

    Examples
    --------
    >>> import xsfm
    >>> coarse = xsfm.load_model("interpolation").example_input()
    >>> fine = xsfm.downscaling.downscale(coarse, model="interpolation", members=2)
    >>> fine["tas"].dims
    ('member', 'time', 'y', 'x')
    >>> fine["tas"].attrs["units"]
    'K'
    """
    m = load_model(model if model is not None else DEFAULT_DOWNSCALING_MODEL)
    if m.card.kind != "downscaling":
        raise ValueError(
            f"model {m.name!r} is a {m.card.kind} model; downscale needs a downscaling model "
            f"(see xsfm.list_models())"
        )
    members = check_members(members)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an integer, got {seed!r}")
    ds = _as_dataset(obj, m)
    prepared = prepare_inputs(ds, m, variables=variables, regrid=regrid)
    data = prepared.data
    grid = prepared.grid
    fine_axes = _fine_axes(m, prepared)
    fine_shape = tuple(len(v) for v, _ in fine_axes.values())
    dev = _resolve_device(device, data)
    from xsfm.xr.chunks import map_samples

    result = map_samples(
        _run_chunk,
        data,
        core_in=["channel", grid.y_dim, grid.x_dim],
        core_out={
            "member": members,
            "_out": len(prepared.output_specs),
            "_fy": fine_shape[0],
            "_fx": fine_shape[1],
        },
        sample_dims=prepared.sample_dims,
        kwargs={
            "model": m,
            "members": members,
            "seed": int(seed),
            "steps": steps,
            "solver": solver,
            "device": dev,
            "batch_size": batch_size,
            "sample_kwargs": sample_kwargs,
        },
    )
    call = (
        f"downscale(model={m.name!r}, members={members}, steps={steps}, seed={seed}, "
        f"solver={solver!r}, device={dev!r})"
    )
    return assemble_output(result, m, prepared, ds, call)
