"""Prepare a model's inputs: select -> convert -> standardise -> match the grid -> stack into rows.

The xarray layer prepares a model's inputs in four steps, each a plain function that never modifies
its input and reports every problem it finds at once (:func:`xsfm.errors.raise_all`):

1. :func:`xsfm.xr.variables.select_inputs` maps the card's inputs to variables of the dataset
   (explicit override, then ``standard_name``, then name, then ``GRIB_shortName``/
   ``GRIB_cfVarName``/``long_name``/aliases) and picks pressure levels (card input ``t500`` =
   ``air_temperature`` at 500 hPa);
2. :func:`convert_all` converts them to the card's units;
3. :func:`xsfm.xr.standardise.standardise_grid` checks each variable (dtype, empty dims, NaN/inf,
   duplicated or non-monotonic coordinates) and puts its grid in a standard orientation (ascending
   coordinates, longitudes in the card's convention);
4. :func:`xsfm.xr.regrid.match_grid` compares the grid with the card's grid spec
   (:mod:`xsfm.xr.gridspec`): it passes, is cut to the card's domain, is interpolated (only with
   ``regrid="bilinear"``), or is refused.

:func:`prepare_fields` runs the four steps in that order on card specs; :func:`prepare_inputs` runs
them for a model and stacks the fields into one ``channel`` dim (:class:`PreparedInputs`), ready for
the network. Dask-backed data stay lazy.

Examples
--------
>>> import numpy as np, xarray as xr
>>> ds = xr.Dataset(
...     {"t": (("isobaricInhPa", "latitude", "longitude"), np.full((2, 3, 4), 280.0, "f4"),
...            {"standard_name": "air_temperature", "units": "K"})},
...     coords={"isobaricInhPa": ("isobaricInhPa", [850.0, 500.0], {"units": "hPa"}),
...             "latitude": ("latitude", [21.0, 20.0, 19.0], {"units": "degrees_north"}),
...             "longitude": ("longitude", [0.0, 1.0, 2.0, 3.0], {"units": "degrees_east"})})
>>> spec = {"name": "t500", "standard_name": "air_temperature", "units": "K",
...         "long_name": "air temperature at 500 hPa", "level": 500, "level_units": "hPa"}
>>> grid = {"lat": {"size": 2, "start": 19.0, "step": 1.0},
...         "lon": {"size": 4, "start": 0.0, "step": 1.0}}
>>> prepared = prepare_fields(ds, [spec], grid)
>>> prepared.arrays["t500"].dims
('lat', 'lon')
>>> prepared.notes
["cut the input to the model's domain: lat 19..20 (indices 0:2 of 3)"]
"""

from __future__ import annotations

import dataclasses
from collections.abc import Hashable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

import numpy as np
import xarray as xr

from xsfm.errors import GridError, InputError, InvalidValuesError, UnitsError, raise_all
from xsfm.xr.grid import SpatialGrid, find_spatial_grid
from xsfm.xr.gridspec import grid_spec_coords, longitude_convention, refine_coord
from xsfm.xr.regrid import match_grid
from xsfm.xr.standardise import standardise_grid
from xsfm.xr.units import convert
from xsfm.xr.variables import _norm_spec, select_inputs

if TYPE_CHECKING:
    from xsfm.model import Model

__all__ = [
    "PreparedFields",
    "PreparedInputs",
    "as_dataset",
    "convert_all",
    "fine_axes",
    "prepare_fields",
    "prepare_inputs",
]

_ATTRS = ("standard_name", "units", "long_name")


def convert_all(
    arrays: Mapping[str, xr.DataArray],
    units: Mapping[str, str] | Sequence[Mapping[str, Any]],
    *,
    standard_names: Mapping[str, str] | None = None,
) -> dict[str, xr.DataArray]:
    """Convert several variables at once, reporting every unit problem together.

    Parameters
    ----------
    arrays
        ``{card_name: DataArray}``, e.g. the result of :func:`xsfm.xr.variables.select_inputs`.
    units
        Target units: ``{card_name: units}`` or the card's input specs (a sequence of dicts with
        ``name``, ``units`` and optionally ``standard_name``, which then fills ``standard_names``).
    standard_names
        Target standard names ``{card_name: standard_name}`` (see :func:`convert`; only used for
        geopotential height <-> geopotential).

    Returns
    -------
    dict
        ``{card_name: converted DataArray}``; variables of ``arrays`` without target units are
        passed through untouched.

    Raises
    ------
    UnitsError
        One problem.
    xsfm.errors.InputErrors
        Several problems (an ExceptionGroup that is also a ValueError), one :class:`UnitsError`
        per variable, each naming the variable, its units, the target and the fix.

    Examples
    --------
    >>> import xarray as xr
    >>> arrays = {"t": xr.DataArray([0.0], dims="x", attrs={"units": "degC"}),
    ...           "u": xr.DataArray([1.0], dims="x", attrs={"units": "m/s"})}
    >>> out = convert_all(arrays, {"t": "K", "u": "m s-1"})
    >>> float(out["t"][0]), out["u"].attrs["units"]
    (273.15, 'm s-1')
    >>> try:
    ...     convert_all({"t": xr.DataArray([0.0], dims="x"),
    ...                  "u": xr.DataArray([0.0], dims="x", attrs={"units": "K"})},
    ...                 {"t": "K", "u": "m s-1"})
    ... except ValueError as err:
    ...     print(str(err).splitlines()[0])
    2 problems with units of the inputs:
    """
    if isinstance(units, Mapping):
        targets = dict(units)
        sns = dict(standard_names or {})
    else:
        targets = {spec["name"]: spec["units"] for spec in units}
        sns = {spec["name"]: spec.get("standard_name") for spec in units}
        sns.update(standard_names or {})
    out: dict[str, xr.DataArray] = {}
    problems: list[Exception] = []
    for key, da in arrays.items():
        if key not in targets:
            out[key] = da
            continue
        try:
            out[key] = convert(da, targets[key], name=key, standard_name=sns.get(key))
        except UnitsError as err:
            problems.append(err)
    missing = [key for key in targets if key not in arrays]
    problems += [
        UnitsError(f"no variable given for {key!r} (units {targets[key]!r}); select it first")
        for key in missing
    ]
    raise_all(problems, "units of the inputs")
    return out


class PreparedFields(NamedTuple):
    """Result of :func:`prepare_fields`."""

    arrays: dict[str, xr.DataArray]
    """``{card_name: DataArray}`` in the card's units on the card's grid, dims ``(..., y, x)``."""
    notes: list[str]
    """What was done that the output's ``history`` should say (cuts, interpolation)."""


def prepare_fields(
    ds: xr.Dataset | xr.DataArray,
    specs: Sequence[Mapping[str, Any]],
    grid_spec: Mapping[str, Any],
    *,
    variables: Mapping[str, Hashable] | None = None,
    regrid: Literal["bilinear"] | None = None,
    allow_nonfinite: bool = False,
) -> PreparedFields:
    """Select, convert, check and grid-match a model's inputs: the whole xarray-side preparation.

    Runs :func:`~xsfm.xr.variables.select_inputs`, :func:`convert_all`,
    :func:`~xsfm.xr.standardise.standardise_grid` and :func:`~xsfm.xr.regrid.match_grid` in that
    order. Each step reports all its problems at once (over all
    variables); a step runs only when the previous one succeeded. ``ds`` is never modified and
    dask-backed data stay lazy.

    Parameters
    ----------
    ds
        The input Dataset (or a DataArray for a one-input model).
    specs
        The card's inputs (``{name, standard_name, units, long_name, [level, level_units],
        [aliases]}``).
    grid_spec
        The card's grid for these inputs (see :mod:`xsfm.xr.gridspec`).
    variables
        Overrides ``{card_name: ds_name}``.
    regrid
        ``None`` or ``"bilinear"`` (see :func:`~xsfm.xr.regrid.match_grid`).
    allow_nonfinite
        Skip the NaN/inf check.

    Returns
    -------
    PreparedFields
        ``(arrays, notes)``.
    """
    specs = [_norm_spec(s) for s in specs]
    selected = select_inputs(ds, specs, variables)
    converted = convert_all(selected, specs)
    convention = longitude_convention(grid_spec)
    problems: list[Exception] = []
    standard: dict[str, xr.DataArray] = {}
    for key, da in converted.items():
        try:
            standard[key] = standardise_grid(
                da, longitudes=convention, name=key, allow_nonfinite=allow_nonfinite
            )
        except (InvalidValuesError, GridError) as err:
            problems.append(err)
        except ValueError as err:  # an InputErrors group of this variable
            problems.extend(getattr(err, "exceptions", [err]))
    raise_all(problems, "the inputs' values and grids")
    arrays: dict[str, xr.DataArray] = {}
    notes: list[str] = []
    for key, da in standard.items():
        try:
            matched = match_grid(da, grid_spec, regrid, name=key)
        except GridError as err:
            problems.append(err)
            continue
        except ValueError as err:
            problems.extend(getattr(err, "exceptions", [err]))
            continue
        arrays[key] = matched.data
        if matched.note and matched.note not in notes:
            notes.append(matched.note)
    raise_all(problems, "the inputs' grids")
    return PreparedFields(arrays, notes)


@dataclasses.dataclass
class PreparedInputs:
    """Inputs ready for the network: one DataArray ``(*sample_dims, channel, y, x)`` and its context."""

    data: xr.DataArray
    grid: SpatialGrid
    sample_dims: list[str]
    notes: list[str]
    output_specs: list[dict[str, Any]]


def as_dataset(obj: xr.DataArray | xr.Dataset, model: Model) -> xr.Dataset:
    """``obj`` as a Dataset; an unnamed DataArray takes the name of the model's single input."""
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
    (see :func:`prepare_fields`). Grid-agnostic models (``any_variables`` cards, such as
    ``interpolation``) take every variable on the dataset's spatial grid, units unchanged.
    """
    card = model.card
    if card.extra.get("any_variables"):
        grid = find_spatial_grid(ds)
        names = [
            name for name, da in ds.data_vars.items() if {grid.y_dim, grid.x_dim} <= set(da.dims)
        ]
        if not names:
            raise InputError(
                f"no data variable of the input lies on its spatial grid {grid.dims}; "
                f"model {card.name!r} needs at least one (y, x) field"
            )
        fields = {str(n): standardise_grid(ds[n], name=n) for n in names}
        notes: list[str] = []
        output_specs = [
            {"name": name, **{k: da.attrs[k] for k in _ATTRS if k in da.attrs}}
            for name, da in fields.items()
        ]
    else:
        prepared = prepare_fields(
            ds, card.inputs, card.grids["coarse"], variables=variables, regrid=regrid
        )
        fields, notes = prepared.arrays, prepared.notes
        output_specs = list(card.outputs)
    grid = find_spatial_grid(next(iter(fields.values())))
    names = list(fields)
    arrays = xr.broadcast(*[fields[n].drop_attrs(deep=False) for n in names])
    data = xr.concat(arrays, dim="channel", coords="minimal", compat="override", join="exact")
    data = data.assign_coords(channel=names)
    sample_dims = [d for d in data.dims if d not in ("channel", grid.y_dim, grid.x_dim)]
    data = data.transpose(*sample_dims, "channel", grid.y_dim, grid.x_dim)
    return PreparedInputs(data, grid, [str(d) for d in sample_dims], notes, output_specs)


def fine_axes(
    model: Model, prepared: PreparedInputs
) -> dict[str, tuple[np.ndarray, dict[str, Any]]]:
    """Coordinates of the fine grid: from the card, or refined from the input's grid."""
    fine = model.card.grids.get("fine", {})
    grid = prepared.grid
    if fine.get("rule") == "factor":
        factor = int(model.card.network.get("factor", fine.get("factor", 4)))
        return {
            str(dim): refine_coord(prepared.data.coords.get(dim), prepared.data.sizes[dim], factor)
            for dim in (grid.y_dim, grid.x_dim)
        }
    return {name: (c.values, dict(c.attrs)) for name, c in grid_spec_coords(fine).items()}
