"""Find the spatial grid and the model inputs of CF-annotated xarray objects, via cf-xarray.

The xarray layer prepares a model's inputs in four steps, each a plain function that never modifies
its input and reports every problem it finds at once (:func:`xsfm.errors.raise_all`):

1. :func:`select_inputs` maps the card's inputs to variables of the dataset (explicit override,
   then ``standard_name``, then name, then ``GRIB_shortName``/``GRIB_cfVarName``/``long_name``/
   aliases) and picks pressure levels (card input ``t500`` = ``air_temperature`` at 500 hPa);
2. :func:`xsfm.xr.units.convert_all` converts them to the card's units;
3. :func:`standardise_grid` checks each variable (dtype, empty dims, NaN/inf, duplicated or
   non-monotonic coordinates) and puts its grid in a standard orientation (ascending coordinates,
   longitudes in the card's convention);
4. :func:`match_grid` compares the grid with the card's grid spec: it passes, is cut to the card's
   domain, is interpolated (only with ``regrid="bilinear"``), or is refused.

:func:`prepare_inputs` runs the four steps in that order.

Grid spec (how a model card describes a grid)
---------------------------------------------
A dict with one entry per horizontal axis, ``"y"`` and ``"x"`` (``"lat"``/``"lon"`` and
``"latitude"``/``"longitude"`` are accepted as keys for geographic grids)::

    {"y": {"name": "y", "size": 16, "start": 0.0, "step": 1000.0, "units": "m",
           "standard_name": "projection_y_coordinate", "long_name": "y coordinate"},
     "x": {"name": "x", "size": 16, "start": 0.0, "step": 1000.0, "units": "m",
           "standard_name": "projection_x_coordinate", "long_name": "x coordinate"}}

    {"y": {"name": "lat", "size": 36, "start": 19.25, "step": 0.25, "units": "degrees_north",
           "standard_name": "latitude"},
     "x": {"name": "lon", "size": 41, "start": 116.0, "step": 0.25, "units": "degrees_east",
           "standard_name": "longitude"}}

Per axis: ``size`` (number of points), ``start`` (first, smallest coordinate value: grids are always
ascending), ``step`` (> 0, regular spacing); or ``values`` (a regular, ascending list) instead of
the three. Optional: ``name`` (coordinate and dimension name in outputs; default ``"y"``/``"x"``,
or ``"lat"``/``"lon"`` for geographic grids), ``units`` (of the coordinate; input coordinates in
other compatible units, e.g. km, are converted), ``standard_name`` (``latitude``/``longitude``
make the grid geographic, anything else is a projection grid), ``long_name``. Coordinates are cell
centres. A geographic spec's longitude range fixes the longitude convention of the inputs: any
value above 180 means 0..360, any value below 0 means -180..180 (:func:`longitude_convention`).
:func:`grid_spec_coords` builds the CF coordinates of a spec.

Dask
----
Nothing here computes dask-backed data: grids are read from index coordinates (always in memory),
units are converted by lazy arithmetic, and the NaN/inf check of :func:`standardise_grid` is
attached to each chunk (:func:`check_finite` runs inside the chunk's task), so it raises
:class:`~xsfm.errors.InvalidValuesError` when the data are computed, not before.

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
>>> prepared = prepare_inputs(ds, [spec], grid)
>>> prepared.arrays["t500"].dims
('lat', 'lon')
>>> prepared.notes
["cut the input to the model's domain: lat 19..20 (indices 0:2 of 3)"]
"""

from __future__ import annotations

import difflib
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal, NamedTuple

import cf_xarray  # noqa: F401  (registers the .cf accessor)
import numpy as np
import xarray as xr

from xsfm.errors import (
    AmbiguousVariableError,
    GridError,
    InvalidValuesError,
    MissingVariableError,
    raise_all,
)

__all__ = [
    "MatchedGrid",
    "PreparedInputs",
    "SpatialGrid",
    "check_finite",
    "find_spatial_grid",
    "grid_spec_coords",
    "longitude_convention",
    "match_grid",
    "normalise_grid_spec",
    "prepare_inputs",
    "select_inputs",
    "standardise_grid",
]

LAT_NAMES = ("lat", "latitude", "nav_lat", "XLAT", "XLAT_M", "LAT", "Latitude")
LON_NAMES = ("lon", "longitude", "nav_lon", "XLONG", "XLONG_M", "LON", "Longitude")
Y_NAMES = ("y", "rlat", "projection_y_coordinate", "Y")
X_NAMES = ("x", "rlon", "projection_x_coordinate", "X")
#: Names of pressure-level coordinates, and their units when the coordinate has no ``units``.
LEVEL_NAMES = {
    "isobaricInhPa": "hPa",
    "plev": "Pa",
    "pressure_level": "hPa",
    "level": "hPa",
    "pressure": "hPa",
    "lev": "hPa",
    "isobaric": "hPa",
}
_GEO_STANDARD_NAMES = {"latitude", "longitude"}
_GEO_KEYS = {"lat": "y", "latitude": "y", "lon": "x", "longitude": "x"}

GridKind = Literal["projection", "latlon1d", "latlon2d"]
LongitudeConvention = Literal["0..360", "-180..180"]


# --------------------------------------------------------------------------------------------
# the spatial grid
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class SpatialGrid:
    """The horizontal grid of an xarray object, as found by :func:`find_spatial_grid`.

    Attributes
    ----------
    y_dim, x_dim
        The two spatial dimensions (y is the "row" axis: latitude or projection y).
    kind
        ``"latlon1d"`` (1-D latitude and longitude on their own dims), ``"projection"`` (1-D
        projection or rotated-pole x/y coordinates; 2-D latitude/longitude may ride along) or
        ``"latlon2d"`` (curvilinear: only 2-D latitude/longitude on ``(y_dim, x_dim)``).
    y_name, x_name
        The 1-D coordinates along ``y_dim``/``x_dim`` (``None`` when the dim has none).
    y, x
        Their values (``None`` when there is no 1-D coordinate).
    dy, dx
        Median absolute spacing of ``y``/``x`` (``None`` for fewer than two points or no
        coordinate).
    y_descending, x_descending
        Whether ``y``/``x`` decrease along their dims.
    y_units, x_units
        Units of the 1-D coordinates.
    lat_name, lon_name
        Latitude and longitude coordinates (1-D for ``latlon1d``, 2-D otherwise), if any.
    sizes
        ``{y_dim: ny, x_dim: nx}``.
    """

    y_dim: Hashable
    x_dim: Hashable
    kind: GridKind
    y_name: Hashable | None
    x_name: Hashable | None
    y: np.ndarray | None
    x: np.ndarray | None
    dy: float | None
    dx: float | None
    y_descending: bool
    x_descending: bool
    y_units: str | None
    x_units: str | None
    lat_name: Hashable | None
    lon_name: Hashable | None
    sizes: Mapping[Hashable, int]

    @property
    def dims(self) -> tuple[Hashable, Hashable]:
        """``(y_dim, x_dim)``."""
        return (self.y_dim, self.x_dim)

    def __repr__(self) -> str:
        def axis(name: Hashable | None, values: np.ndarray | None, step: float | None) -> str:
            if values is None or values.size == 0:
                return f"{name}: no coordinate"
            return f"{name}: {values[0]}..{values[-1]} step {step}"

        return (
            f"SpatialGrid({self.kind}, dims={self.dims}, sizes={dict(self.sizes)}, "
            f"{axis(self.y_name, self.y, self.dy)}, {axis(self.x_name, self.x, self.dx)})"
        )


def _coord_names(obj: xr.DataArray | xr.Dataset) -> list[Hashable]:
    return list(obj.coords)


def _cf_names(obj: xr.DataArray | xr.Dataset, mapping: str, key: str) -> list[Hashable]:
    found = getattr(obj.cf, mapping).get(key, [])
    coords = set(_coord_names(obj))
    return [name for name in found if name in coords]


def _pick(obj: xr.DataArray | xr.Dataset, names: list[Hashable], what: str) -> Hashable | None:
    """Among candidate coordinates, prefer index coordinates, then 1-D, then 2-D ones."""
    if not names:
        return None
    names = list(dict.fromkeys(names))
    for rank in (
        lambda n: obj[n].dims == (n,),
        lambda n: obj[n].ndim == 1,
        lambda n: obj[n].ndim == 2,
    ):
        best = [n for n in names if rank(n)]
        if len(best) == 1:
            return best[0]
        if len(best) > 1:
            raise GridError(
                f"several {what} coordinates: {best}; keep one, e.g. "
                f"obj.drop_vars({[str(n) for n in best[1:]]})"
            )
    if names:
        shapes = {str(n): obj[n].dims for n in names}
        raise GridError(
            f"{what} coordinate(s) {shapes} are neither 1-D nor 2-D; select one time or level "
            f"first, e.g. ds.assign_coords({names[0]}=ds[{names[0]!r}].isel(Time=0))"
        )
    return None


def _find_geo(obj: xr.DataArray | xr.Dataset, key: str, names: Sequence[str]) -> Hashable | None:
    found = _cf_names(obj, "coordinates", key)
    if not found:
        found = [n for n in names if n in obj.coords]
    return _pick(obj, found, key)


def _find_axis(
    obj: xr.DataArray | xr.Dataset, key: str, names: Sequence[str], exclude: set
) -> Hashable | None:
    found = [n for n in _cf_names(obj, "axes", key) if n not in exclude]
    if not found:
        found = [n for n in names if n in obj.coords and n not in exclude]
    found = [n for n in found if obj[n].ndim == 1]
    return _pick(obj, found, f"{key} axis") if found else None


def _axis_values(obj: xr.DataArray | xr.Dataset, name: Hashable | None) -> dict[str, Any]:
    if name is None:
        return {"values": None, "step": None, "descending": False, "units": None}
    values = np.asarray(obj[name].values)
    step = None
    if values.size >= 2 and np.issubdtype(values.dtype, np.number):
        diffs = np.diff(values.astype(np.float64))
        finite = diffs[np.isfinite(diffs)]
        step = float(np.median(np.abs(finite))) if finite.size else None
    descending = bool(values.size >= 2 and values[-1] < values[0])
    units = obj[name].attrs.get("units")
    return {"values": values, "step": step, "descending": descending, "units": units}


def _datavar_hint(obj: xr.DataArray | xr.Dataset) -> str:
    if not isinstance(obj, xr.Dataset):
        return ""
    geo = [
        n
        for n in obj.data_vars
        if n in LAT_NAMES + LON_NAMES
        or obj[n].attrs.get("standard_name") in _GEO_STANDARD_NAMES
        or obj[n].attrs.get("units") in ("degrees_north", "degrees_east")
    ]
    if not geo:
        return ""
    return (
        f" Latitude/longitude are data variables here; make them coordinates: ds.set_coords({geo})."
    )


def find_spatial_grid(obj: xr.DataArray | xr.Dataset) -> SpatialGrid:
    """Find the horizontal grid of a DataArray or Dataset through cf-xarray.

    Geographic coordinates are looked up with ``obj.cf.coordinates["latitude"/"longitude"]``
    (``standard_name``, ``units`` such as ``degrees_north``, ``_CoordinateAxisType``), projection
    coordinates with ``obj.cf.axes["X"/"Y"]`` (``axis``, ``standard_name`` such as
    ``projection_x_coordinate`` or ``grid_longitude``). When cf-xarray finds nothing, common
    names are tried (``lat``/``latitude``/``nav_lat``/``XLAT``, ``lon``/..., ``x``/``y``,
    ``rlat``/``rlon``).

    The order of preference: 1-D latitude and longitude (``latlon1d``); else 1-D projection x/y
    (``projection``, with 2-D latitude/longitude recorded when present); else 2-D latitude and
    longitude on two dims (``latlon2d``, curvilinear, e.g. WRF).

    Parameters
    ----------
    obj
        A DataArray or Dataset. Nothing is computed and nothing is modified.

    Returns
    -------
    SpatialGrid

    Raises
    ------
    GridError
        No grid found (the message names both routes and suggests ``obj.cf.guess_coord_axis()``),
        or several candidate coordinates.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> da = xr.DataArray(np.zeros((3, 4)), dims=("y", "x"),
    ...                   coords={"y": ("y", [0.0, 1e3, 2e3], {"axis": "Y", "units": "m"}),
    ...                           "x": ("x", [0.0, 1e3, 2e3, 3e3], {"axis": "X", "units": "m"})})
    >>> grid = find_spatial_grid(da)
    >>> grid.kind, grid.dims, grid.dx
    ('projection', ('y', 'x'), 1000.0)
    """
    lat = _find_geo(obj, "latitude", LAT_NAMES)
    lon = _find_geo(obj, "longitude", LON_NAMES)
    exclude = {n for n in (lat, lon) if n is not None}
    yax = _find_axis(obj, "Y", Y_NAMES, exclude)
    xax = _find_axis(obj, "X", X_NAMES, exclude)
    sizes = dict(obj.sizes)

    def build(kind: GridKind, ydim: Hashable, xdim: Hashable, yname, xname) -> SpatialGrid:
        ya, xa = _axis_values(obj, yname), _axis_values(obj, xname)
        return SpatialGrid(
            y_dim=ydim,
            x_dim=xdim,
            kind=kind,
            y_name=yname,
            x_name=xname,
            y=ya["values"],
            x=xa["values"],
            dy=ya["step"],
            dx=xa["step"],
            y_descending=ya["descending"],
            x_descending=xa["descending"],
            y_units=ya["units"],
            x_units=xa["units"],
            lat_name=lat,
            lon_name=lon,
            sizes={ydim: sizes[ydim], xdim: sizes[xdim]},
        )

    if lat is not None and lon is not None and obj[lat].ndim == 1 and obj[lon].ndim == 1:
        ydim, xdim = obj[lat].dims[0], obj[lon].dims[0]
        if ydim == xdim:
            raise GridError(
                f"latitude {lat!r} and longitude {lon!r} share the dim {ydim!r}: an unstructured "
                "grid or a list of points, not a 2-D grid; regrid it onto a regular grid first"
            )
        return build("latlon1d", ydim, xdim, lat, lon)
    if yax is not None and xax is not None:
        ydim, xdim = obj[yax].dims[0], obj[xax].dims[0]
        if ydim != xdim:
            return build("projection", ydim, xdim, yax, xax)
    if lat is not None and lon is not None and obj[lat].ndim == 2:
        if set(obj[lat].dims) != set(obj[lon].dims):
            raise GridError(
                f"2-D latitude {lat!r} has dims {obj[lat].dims} but longitude {lon!r} has dims "
                f"{obj[lon].dims}; they must be on the same two dims"
            )
        ydim, xdim = obj[lat].dims
        yname = ydim if ydim in obj.coords and obj[ydim].ndim == 1 else None
        xname = xdim if xdim in obj.coords and obj[xdim].ndim == 1 else None
        return build("latlon2d", ydim, xdim, yname, xname)
    raise GridError(
        "cannot find the horizontal grid: no latitude/longitude pair through "
        "obj.cf.coordinates['latitude'/'longitude'] (standard_name 'latitude'/'longitude' or units "
        "'degrees_north'/'degrees_east') and no projection pair through obj.cf.axes['X'/'Y'] "
        "(axis 'X'/'Y' or standard_name 'projection_x_coordinate'/'projection_y_coordinate'); "
        f"coordinates present: {[str(c) for c in obj.coords]}. Fix: add CF attributes, e.g. "
        "obj = obj.cf.guess_coord_axis(), or set "
        "obj['lat'].attrs['standard_name'] = 'latitude'." + _datavar_hint(obj)
    )


# --------------------------------------------------------------------------------------------
# selecting inputs
# --------------------------------------------------------------------------------------------


def _norm_spec(spec: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(spec, Mapping) or "name" not in spec:
        raise TypeError(f"an input spec must be a dict with at least 'name', got {spec!r}")
    out = dict(spec)
    aliases = out.get("aliases") or []
    out["aliases"] = [aliases] if isinstance(aliases, str) else list(aliases)
    if out.get("level") is not None:
        out.setdefault("level_units", "hPa")
    return out


def _describe(spec: Mapping[str, Any]) -> str:
    parts = []
    if spec.get("standard_name"):
        parts.append(f"standard_name {spec['standard_name']!r}")
    if spec.get("level") is not None:
        parts.append(f"at {spec['level']:g} {spec['level_units']}")
    return f"input {spec['name']!r}" + (f" ({', '.join(parts)})" if parts else "")


def _vertical_coords(da: xr.DataArray) -> list[Hashable]:
    """Vertical coordinates of ``da``: 0-D or 1-D, found by cf-xarray or by name."""
    found = list(da.cf.coordinates.get("vertical", [])) + list(da.cf.axes.get("Z", []))
    found += [n for n in LEVEL_NAMES if n in da.coords]
    found += [n for n in ("height", "heightAboveGround", "depth") if n in da.coords]
    out = []
    for name in dict.fromkeys(found):
        if (
            name in da.coords
            and da[name].ndim <= 1
            and (da[name].ndim == 0 or da[name].dims == (name,))
        ):
            out.append(name)
    return out


def _level_units(da: xr.DataArray, name: Hashable) -> str | None:
    units = da[name].attrs.get("units")
    if units is None:
        return LEVEL_NAMES.get(str(name))
    return str(units)


def _level_values(da: xr.DataArray, name: Hashable, target_units: str) -> np.ndarray | None:
    """Values of a vertical coordinate in ``target_units`` (``None`` if incompatible)."""
    from xsfm.xr.units import _affine, parse_units

    units = _level_units(da, name)
    if units is None:
        return None
    try:
        source, target = parse_units(units), parse_units(target_units)
    except Exception:
        return None
    if not source.is_compatible_with(target):
        return None
    scale, offset = _affine(source, target)
    return np.atleast_1d(np.asarray(da[name].values, dtype=np.float64)) * scale + offset


def _is_pressure(da: xr.DataArray, name: Hashable) -> bool:
    return _level_values(da, name, "Pa") is not None


def _fmt_levels(values: np.ndarray) -> str:
    shown = ", ".join(f"{v:g}" for v in values[:8])
    return shown + (", ..." if values.size > 8 else "")


def _at_level(
    da: xr.DataArray, spec: Mapping[str, Any], lenient: bool
) -> tuple[xr.DataArray | None, str | None]:
    """Select the spec's level from ``da``; return ``(selected, None)`` or ``(None, reason)``.

    ``lenient`` (explicit override, exact name, single DataArray) accepts a variable without a
    vertical coordinate for a level input (its name says the level, e.g. ``t500``) and a
    variable with levels for a single-level input (they pass through).
    """
    vertical = _vertical_coords(da)
    level = spec.get("level")
    if level is None:
        if lenient:
            return da, None
        multi = [v for v in vertical if v in da.dims and da.sizes[v] > 1]
        if multi:
            return None, (
                f"has {da.sizes[multi[0]]} levels on {multi[0]!r} but {spec['name']!r} is a "
                "single-level field"
            )
        pressure = [v for v in vertical if _is_pressure(da, v)]
        if pressure:
            values = _level_values(da, pressure[0], "hPa")
            return None, (
                f"is on pressure level(s) {_fmt_levels(values)} hPa ({pressure[0]!r}) but "
                f"{spec['name']!r} is a single-level field"
            )
        return da, None
    units = spec["level_units"]
    compatible = [(v, _level_values(da, v, units)) for v in vertical]
    compatible = [(v, vals) for v, vals in compatible if vals is not None]
    if not compatible:
        if lenient:
            return da, None
        return None, f"has no vertical coordinate in units compatible with {units!r}"
    for name, values in compatible:
        hits = np.flatnonzero(np.isclose(values, float(level), rtol=1e-6, atol=1e-9))
        if hits.size:
            if name in da.dims:
                da = da.isel({name: int(hits[0])})
            return da.drop_vars(name), None
    name, values = compatible[0]
    return None, (
        f"has levels {_fmt_levels(values)} {units} on {name!r} but not {float(level):g} {units}"
    )


def _alias_keys(spec: Mapping[str, Any]) -> set[str]:
    keys = {str(spec["name"]).casefold()} | {str(a).casefold() for a in spec["aliases"]}
    return keys


def _matches_alias(da: xr.DataArray, name: Hashable, spec: Mapping[str, Any]) -> bool:
    keys = _alias_keys(spec)
    if str(name).casefold() in {str(a).casefold() for a in spec["aliases"]}:
        return True
    for attr in ("GRIB_shortName", "GRIB_cfVarName"):
        value = da.attrs.get(attr)
        if isinstance(value, str) and value.casefold() in keys:
            return True
    long_name = da.attrs.get("long_name")
    if isinstance(long_name, str):
        wanted = set(keys)
        if spec.get("long_name"):
            wanted.add(str(spec["long_name"]).casefold())
        if long_name.casefold() in wanted:
            return True
    return False


def _resolve(
    ds: xr.Dataset, spec: Mapping[str, Any], override: Hashable | None
) -> tuple[xr.DataArray | None, Exception | None]:
    label = _describe(spec)
    name = spec["name"]
    data_vars = list(ds.data_vars)
    if override is not None:
        if override not in ds.variables:
            close = difflib.get_close_matches(str(override), [str(v) for v in data_vars], n=3)
            hint = f"; did you mean {close}?" if close else ""
            return None, MissingVariableError(
                f"{label}: variables={{{name!r}: {override!r}}} names no variable of the dataset "
                f"(data variables: {[str(v) for v in data_vars]}){hint}"
            )
        selected, reason = _at_level(ds[override], spec, lenient=True)
        if selected is None:
            return None, MissingVariableError(
                f"{label}: variable {override!r} given by variables={{{name!r}: {override!r}}} "
                f"{reason}; pick another variable or select the level yourself"
            )
        return selected, None

    sn = spec.get("standard_name")
    by_sn = [
        v
        for v in (ds.cf.standard_names.get(sn, []) if sn and sn != "unknown" else [])
        if v in ds.data_vars
    ]
    by_name = [name] if name in ds.data_vars else []
    by_alias = [v for v in data_vars if v != name and _matches_alias(ds[v], v, spec)]
    tiers = [("standard_name", by_sn, False), ("name", by_name, True), ("alias", by_alias, False)]
    rejected: list[str] = []
    for tier, candidates, lenient in tiers:
        suitable: list[tuple[Hashable, xr.DataArray]] = []
        for var in candidates:
            selected, reason = _at_level(ds[var], spec, lenient=lenient)
            if selected is None:
                rejected.append(f"{var!r} {reason}")
            else:
                suitable.append((var, selected))
        if len(suitable) > 1:
            narrowed = [(v, d) for v, d in suitable if v == name or _matches_alias(ds[v], v, spec)]
            if len(narrowed) == 1:
                suitable = narrowed
        if len(suitable) == 1:
            return suitable[0][1], None
        if len(suitable) > 1:
            names = [str(v) for v, _ in suitable]
            return None, AmbiguousVariableError(
                f"{label} matches several variables by {tier}: {names}; choose one with "
                f"variables={{{name!r}: {names[0]!r}}}"
            )
    keys = sorted(
        _alias_keys(spec) | ({str(spec["long_name"])} if spec.get("long_name") else set())
    )
    tried = []
    if sn and sn != "unknown":
        tried.append(
            f"standard_name {sn!r} matched {[str(v) for v in by_sn]}"
            if by_sn
            else f"no data variable has standard_name {sn!r}"
        )
    tried.append(f"{name!r} exists" if by_name else f"none is named {name!r}")
    tried.append(f"none has a name, GRIB_shortName, GRIB_cfVarName or long_name in {keys}")
    why = f"; rejected: {'; '.join(rejected)}" if rejected else ""
    close = difflib.get_close_matches(str(name), [str(v) for v in data_vars], n=3, cutoff=0.5)
    hint = f" (close names: {close})" if close else ""
    set_sn = (
        f" or set ds['your_name'].attrs['standard_name'] = {sn!r}" if sn and sn != "unknown" else ""
    )
    return None, MissingVariableError(
        f"{label} not found: {', '.join(tried)}{why}. Data variables: "
        f"{[str(v) for v in data_vars]}{hint}. Fix: pass variables={{{name!r}: 'your_name'}}"
        f"{set_sn}"
    )


def select_inputs(
    ds: xr.Dataset | xr.DataArray,
    specs: Sequence[Mapping[str, Any]],
    variables: Mapping[str, Hashable] | None = None,
) -> dict[str, xr.DataArray]:
    """Map a model card's inputs to variables of a dataset.

    Each card input is a dict ``{name, standard_name, units, long_name}`` with optional ``level``
    and ``level_units`` (default ``"hPa"``) for inputs on a vertical level, and optional
    ``aliases`` (other names, e.g. cfgrib's ``GRIB_shortName`` ``"10u"``). A variable is chosen by,
    in order:

    1. the explicit override ``variables={card_name: ds_name}``;
    2. its ``standard_name`` (through ``ds.cf.standard_names``; ``"unknown"``, as cfgrib writes
       it, never matches);
    3. its name equal to the card input's name;
    4. its name, ``GRIB_shortName`` or ``GRIB_cfVarName`` among the card name and aliases, or its
       ``long_name`` equal to the card's ``long_name`` (case-insensitive).

    A tier that gives several usable variables is narrowed by the later tiers; still several is an
    ambiguity error. For an input with a ``level``, the level is selected from a vertical
    coordinate (found via cf-xarray's ``vertical``/``Z`` or named ``isobaricInhPa``, ``level``,
    ``plev``, ``pressure``, ``pressure_level``, ``lev``) after converting its units (``plev`` is in
    Pa; coordinates without ``units`` use the name's usual units: ``plev`` Pa, others hPa) and the
    level coordinate is dropped. Through tiers 2 and 4, a variable without such a coordinate does
    not match a level input and a variable on pressure levels does not match a single-level input;
    an override or an exact name is taken as it is (e.g. a variable named ``t500``).

    Parameters
    ----------
    ds
        A Dataset, or a DataArray when the card has exactly one input (it is used as that input;
        a named DataArray with several card inputs is treated as a one-variable Dataset).
    specs
        The card's inputs.
    variables
        Overrides ``{card_name: dataset variable name}``.

    Returns
    -------
    dict
        ``{card_name: DataArray}`` in the card's order. The DataArrays keep their own names and
        attributes (units are converted later by :func:`xsfm.xr.units.convert_all`); nothing is
        computed or copied.

    Raises
    ------
    MissingVariableError, AmbiguousVariableError
        One problem: the message names the card input, its ``standard_name``, what was tried and
        the fix (``variables={'t500': 'your_name'}``).
    xsfm.errors.InputErrors
        Several problems, all reported at once.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> ds = xr.Dataset({"temp": ("x", np.zeros(3), {"standard_name": "air_temperature"}),
    ...                  "2t": ("x", np.zeros(3), {"GRIB_shortName": "2t"})})
    >>> specs = [{"name": "t", "standard_name": "air_temperature", "units": "K"},
    ...          {"name": "t2m", "standard_name": "air_temperature", "units": "K",
    ...           "aliases": ["2t"]}]
    >>> {k: v.name for k, v in select_inputs(ds, specs[:1]).items()}
    {'t': 'temp'}
    >>> {k: v.name for k, v in select_inputs(ds, specs, variables={"t2m": "2t"}).items()}
    {'t': 'temp', 't2m': '2t'}
    """
    specs = [_norm_spec(s) for s in specs]
    if not specs:
        return {}
    overrides = dict(variables or {})
    problems: list[Exception] = []
    card_names = [s["name"] for s in specs]
    unknown = [k for k in overrides if k not in card_names]
    problems += [
        MissingVariableError(
            f"variables={{{k!r}: {overrides[k]!r}}}: {k!r} is not an input of the model; "
            f"its inputs are {card_names}"
        )
        for k in unknown
    ]
    if isinstance(ds, xr.DataArray):
        if len(specs) == 1 and not overrides:
            selected, reason = _at_level(ds, specs[0], lenient=True)
            if selected is None:
                problems.append(
                    MissingVariableError(f"{_describe(specs[0])}: the DataArray {reason}")
                )
            raise_all(problems, "inputs")
            return {specs[0]["name"]: selected}
        if ds.name is None:
            raise MissingVariableError(
                f"the model has {len(specs)} inputs {card_names} but got one unnamed DataArray; "
                "pass a Dataset holding all of them"
            )
        ds = ds.to_dataset()
    out: dict[str, xr.DataArray] = {}
    for spec in specs:
        da, problem = _resolve(ds, spec, overrides.get(spec["name"]))
        if problem is not None:
            problems.append(problem)
        else:
            out[spec["name"]] = da
    raise_all(problems, "inputs")
    return out


# --------------------------------------------------------------------------------------------
# standardising the grid and checking values
# --------------------------------------------------------------------------------------------


def check_finite(values: Any, name: Hashable = "<unnamed>") -> Any:
    """Raise :class:`~xsfm.errors.InvalidValuesError` if ``values`` holds NaN or inf; return it.

    Works on numpy and cupy arrays (and anything ``numpy.isfinite`` dispatches on). Meant for
    in-memory blocks: :func:`standardise_grid` runs it inside each dask chunk's task.

    Examples
    --------
    >>> import numpy as np
    >>> check_finite(np.ones(2), "t2m")
    array([1., 1.])
    >>> try:
    ...     check_finite(np.array([1.0, np.nan]), "t2m")
    ... except ValueError as err:
    ...     print(str(err).split(";")[0])
    variable 't2m' contains 1 NaN or inf value(s) (of 2)
    """
    dtype = getattr(values, "dtype", None)
    if dtype is not None and np.dtype(dtype).kind not in "fc":
        return values
    finite = np.isfinite(values)
    if bool(finite.all()):
        return values
    bad = int(finite.size - int(finite.sum()))
    raise InvalidValuesError(
        f"variable {name!r} contains {bad} NaN or inf value(s) (of {finite.size}); the model "
        f"cannot take missing values: fill them first, e.g. ds[{name!r}].fillna(value) or "
        f"ds[{name!r}].interpolate_na(dim=...)"
    )


def longitude_convention(spec: Mapping[str, Any] | None) -> LongitudeConvention | None:
    """The longitude convention a card grid spec implies: ``"0..360"``, ``"-180..180"`` or None.

    Examples
    --------
    >>> longitude_convention({"lat": {"size": 2, "start": 0, "step": 1},
    ...                       "lon": {"size": 4, "start": 350.0, "step": 5.0}})
    '0..360'
    >>> longitude_convention({"y": {"size": 2, "start": 0, "step": 1, "standard_name": "latitude"},
    ...                       "x": {"size": 3, "start": -10.0, "step": 5.0,
    ...                             "standard_name": "longitude"}})
    '-180..180'
    """
    if spec is None:
        return None
    norm = normalise_grid_spec(spec)
    if not norm["geographic"]:
        return None
    x = norm["x"]
    lo, hi = x["start"], x["start"] + x["step"] * (x["size"] - 1)
    if hi > 180.0:
        return "0..360"
    if lo < 0.0:
        return "-180..180"
    return None


def _wrap(values: Any, convention: LongitudeConvention | None) -> Any:
    """Put longitudes into [0, 360) or [-180, 180), adding or subtracting 360 (exact)."""
    if convention is None:
        return values
    lo = 0.0 if convention == "0..360" else -180.0
    where = xr.where if isinstance(values, xr.DataArray) else np.where
    shifted = where(values < lo, values + 360.0, values)
    return where(shifted >= lo + 360.0, shifted - 360.0, shifted)


def _order(values: np.ndarray, was_monotonic: bool) -> np.ndarray | str | None:
    """Index order that makes ``values`` ascending; None if already; "bad" if impossible."""
    diffs = np.diff(values)
    if values.size < 2 or (diffs > 0).all():
        return None
    if (diffs < 0).all():
        return np.arange(values.size)[::-1]
    if was_monotonic:  # a longitude rotation produced by wrapping: sort it
        return np.argsort(values, kind="stable")
    return "bad"


def standardise_grid(
    da: xr.DataArray,
    grid: SpatialGrid | None = None,
    *,
    longitudes: LongitudeConvention | Mapping[str, Any] | None = None,
    name: Hashable | None = None,
    allow_nonfinite: bool = False,
) -> xr.DataArray:
    """Check a variable and put its grid in standard orientation, without modifying ``da``.

    Checks (all problems of the variable are reported at once): numeric dtype (integer or float),
    no dimension of size zero, spatial coordinates without NaN, duplicates or disorder (strictly
    increasing or decreasing), and no NaN/inf in the values.

    Changes: longitudes are put into the card's convention (``"0..360"`` or ``"-180..180"``;
    1-D longitudes are then re-sorted, 2-D ones are only re-valued) and descending 1-D spatial
    coordinates (latitudes as ERA5 stores them, projection y of image-like grids) are flipped, so
    both spatial coordinates ascend. Coordinates keep their attributes.

    Parameters
    ----------
    da
        The variable.
    grid
        Its grid; found with :func:`find_spatial_grid` when not given.
    longitudes
        ``"0..360"``, ``"-180..180"``, a card grid spec (its convention is
        :func:`longitude_convention`), or None to keep longitudes as they are.
    name
        Name used in error messages (default ``da.name``).
    allow_nonfinite
        Skip the NaN/inf check.

    Returns
    -------
    xarray.DataArray

    Raises
    ------
    InvalidValuesError, GridError, xsfm.errors.InputErrors
        Each names the variable and the dim or coordinate at fault and the fix.

    Notes
    -----
    NaN/inf for dask-backed data: the check is not run here (it would compute the whole array).
    Instead :func:`check_finite` is attached to every chunk with ``dask.array.map_blocks``, so the
    returned DataArray raises :class:`~xsfm.errors.InvalidValuesError` naming the variable when
    (and only when) its chunks are computed. Numpy-backed data are checked eagerly.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> da = xr.DataArray(np.arange(6.0).reshape(2, 3), dims=("lat", "lon"), name="t",
    ...                   coords={"lat": [10.0, 0.0], "lon": [-10.0, 0.0, 10.0]})
    >>> out = standardise_grid(da, longitudes="0..360")
    >>> out.lat.values, out.lon.values
    (array([ 0., 10.]), array([  0.,  10., 350.]))
    """
    grid = grid if grid is not None else find_spatial_grid(da)
    label = name if name is not None else (da.name if da.name is not None else "<unnamed>")
    convention = longitude_convention(longitudes) if isinstance(longitudes, Mapping) else longitudes
    if convention not in (None, "0..360", "-180..180"):
        raise ValueError(f"longitudes must be '0..360', '-180..180' or None, got {convention!r}")
    problems: list[Exception] = []
    if da.dtype.kind not in "iuf":
        problems.append(
            InvalidValuesError(
                f"variable {label!r} has dtype {da.dtype} ({_dtype_kind(da.dtype)}); the model "
                f"needs numbers: convert it, e.g. ds[{label!r}].astype('float32')"
            )
        )
    for dim, size in da.sizes.items():
        if size == 0:
            problems.append(
                InvalidValuesError(
                    f"variable {label!r} has dimension {dim!r} of size 0; select a non-empty "
                    f"range (check the .sel()/.isel() that produced it)"
                )
            )

    indexers: dict[Hashable, Any] = {}
    new_coords: dict[Hashable, xr.DataArray] = {}
    is_lon_axis = {grid.x_name: grid.kind == "latlon1d", grid.y_name: False}
    for dim, cname in ((grid.y_dim, grid.y_name), (grid.x_dim, grid.x_name)):
        if cname is None or cname not in da.coords:
            continue
        coord = da[cname]
        raw = np.asarray(coord.values)
        if raw.size == 0:
            continue
        if not np.issubdtype(raw.dtype, np.number):
            problems.append(
                GridError(
                    f"coordinate {cname!r} of variable {label!r} is not numeric ({raw.dtype}); "
                    "spatial coordinates must be numbers"
                )
            )
            continue
        if not np.isfinite(raw).all():
            problems.append(
                GridError(
                    f"coordinate {cname!r} (dim {dim!r}) of variable {label!r} contains NaN or "
                    "inf; fix or drop those points, e.g. "
                    f"da.isel({dim}=np.isfinite(da[{cname!r}]))"
                )
            )
            continue
        values = raw
        if is_lon_axis.get(cname) and convention is not None:
            values = _wrap(raw.astype(np.float64, copy=False), convention)
        uniq, counts = np.unique(values, return_counts=True)
        if (counts > 1).any():
            dup = uniq[counts > 1]
            problems.append(
                GridError(
                    f"coordinate {cname!r} (dim {dim!r}) of variable {label!r} has duplicated "
                    f"values {_fmt_levels(dup)}; drop the duplicates, e.g. "
                    f"da.drop_duplicates({dim!r})"
                    + (" (a longitude 0 and 360 both present?)" if is_lon_axis.get(cname) else "")
                )
            )
            continue
        raw_diffs = np.diff(raw)
        was_monotonic = bool((raw_diffs > 0).all() or (raw_diffs < 0).all())
        order = _order(values, was_monotonic)
        if isinstance(order, str):
            bad = int(np.flatnonzero(np.sign(np.diff(values)) != np.sign(values[1] - values[0]))[0])
            problems.append(
                GridError(
                    f"coordinate {cname!r} (dim {dim!r}) of variable {label!r} is not monotonic "
                    f"(order breaks at index {bad + 1}: {values[bad]:g} then {values[bad + 1]:g}, "
                    f"...); sort it: da.sortby({cname!r})"
                )
            )
            continue
        if values is not raw:
            new_coords[cname] = coord.copy(data=values.astype(raw.dtype, copy=False))
        if order is not None:
            indexers[dim] = order

    if da.dtype.kind in "fc" and not allow_nonfinite and da.size:
        data = da.variable._data
        if not _is_dask(data):  # dask: checked per chunk below, when computed
            try:
                check_finite(_magnitude(da.data), label)
            except InvalidValuesError as err:
                problems.append(err)
    raise_all(problems, f"variable {label!r}")

    out = da
    if new_coords:
        out = out.assign_coords(new_coords)
    if indexers:
        out = out.isel(
            {d: (slice(None, None, -1) if _is_reversal(i) else i) for d, i in indexers.items()}
        )
    if grid.lon_name is not None and convention is not None and grid.kind != "latlon1d":
        lon2 = out.coords.get(grid.lon_name)
        if lon2 is not None:
            wrapped = _wrap(lon2, convention)
            wrapped.attrs = dict(lon2.attrs)
            out = out.assign_coords({grid.lon_name: wrapped})
    if da.dtype.kind in "fc" and not allow_nonfinite and _is_dask(out.variable._data):
        import dask.array

        data = out.data
        checked = dask.array.map_blocks(
            partial(check_finite, name=label), data, dtype=data.dtype, meta=data._meta
        )
        out = out.copy(deep=False, data=checked)
    return out


def _is_reversal(order: np.ndarray) -> bool:
    return bool(order.size and order[0] == order.size - 1 and (np.diff(order) == -1).all())


def _dtype_kind(dtype: np.dtype) -> str:
    return {
        "b": "boolean",
        "c": "complex",
        "M": "datetime",
        "m": "timedelta",
        "O": "object",
        "U": "string",
        "S": "bytes",
    }.get(dtype.kind, "non-numeric")


def _is_dask(data: Any) -> bool:
    return type(data).__module__.startswith("dask")


def _magnitude(data: Any) -> Any:
    if type(data).__module__.startswith("pint") and hasattr(data, "magnitude"):
        return data.magnitude
    return data


# --------------------------------------------------------------------------------------------
# matching the card's grid
# --------------------------------------------------------------------------------------------


def normalise_grid_spec(spec: Mapping[str, Any]) -> dict[str, Any]:
    """Check a card grid spec and return it as ``{"y": {...}, "x": {...}, "geographic": bool}``.

    Each axis gets ``name``, ``size``, ``start``, ``step`` and whatever optional keys were given
    (``units``, ``standard_name``, ``long_name``). See the module docstring for the format.

    Raises
    ------
    ValueError
        A malformed spec (a card bug): the message names the axis and the missing or bad key.

    Examples
    --------
    >>> norm = normalise_grid_spec({"lat": {"values": [0.0, 0.5, 1.0]},
    ...                             "lon": {"size": 2, "start": 10.0, "step": 0.5}})
    >>> norm["y"]["name"], norm["y"]["size"], norm["y"]["step"], norm["geographic"]
    ('lat', 3, 0.5, True)
    """
    axes: dict[str, dict[str, Any]] = {}
    geographic = False
    for key, value in spec.items():
        if key in ("y", "x"):
            role, default = key, key
        elif key in _GEO_KEYS:
            role, geographic = _GEO_KEYS[key], True
            default = "lat" if role == "y" else "lon"
        else:
            continue
        if role in axes:
            raise ValueError(f"grid spec gives the {role} axis twice (keys {list(spec)})")
        if not isinstance(value, Mapping):
            raise ValueError(f"grid spec axis {key!r} must be a dict, got {value!r}")
        axis = dict(value)
        axis.setdefault("name", default)
        if "values" in axis:
            values = np.asarray(axis["values"], dtype=np.float64)
            if values.ndim != 1 or values.size < 1:
                raise ValueError(f"grid spec axis {key!r}: 'values' must be a non-empty list")
            steps = np.diff(values)
            step = float(steps.mean()) if steps.size else float(axis.get("step", 1.0))
            if steps.size and ((steps <= 0).any() or np.abs(steps - step).max() > 1e-6 * abs(step)):
                raise ValueError(f"grid spec axis {key!r}: 'values' must be regular and ascending")
            axis.update(size=int(values.size), start=float(values[0]), step=step)
        missing = [k for k in ("size", "start", "step") if k not in axis]
        if missing:
            raise ValueError(
                f"grid spec axis {key!r} lacks {missing}; give size, start and step (or values)"
            )
        axis["size"], axis["start"], axis["step"] = (
            int(axis["size"]),
            float(axis["start"]),
            float(axis["step"]),
        )
        if axis["size"] < 1 or not axis["step"] > 0:
            raise ValueError(
                f"grid spec axis {key!r} needs size >= 1 and step > 0 (ascending), got "
                f"size {axis['size']}, step {axis['step']}"
            )
        if axis.get("standard_name") in _GEO_STANDARD_NAMES:
            geographic = True
        axes[role] = axis
    if set(axes) != {"y", "x"}:
        raise ValueError(
            f"grid spec needs a 'y' and an 'x' axis (or 'lat' and 'lon'), got keys {list(spec)}"
        )
    if geographic:
        axes["y"].setdefault("standard_name", "latitude")
        axes["x"].setdefault("standard_name", "longitude")
        axes["y"].setdefault("units", "degrees_north")
        axes["x"].setdefault("units", "degrees_east")
    return {"y": axes["y"], "x": axes["x"], "geographic": geographic}


def grid_spec_coords(spec: Mapping[str, Any]) -> dict[str, xr.DataArray]:
    """Build the 1-D CF coordinates of a card grid spec, ``{name: DataArray}`` in (y, x) order.

    Examples
    --------
    >>> coords = grid_spec_coords({"y": {"size": 3, "start": 0.0, "step": 500.0, "units": "m",
    ...                                  "standard_name": "projection_y_coordinate"},
    ...                            "x": {"size": 2, "start": 0.0, "step": 500.0, "units": "m",
    ...                                  "standard_name": "projection_x_coordinate"}})
    >>> coords["y"].values, coords["y"].attrs["axis"]
    (array([   0.,  500., 1000.]), 'Y')
    """
    norm = normalise_grid_spec(spec)
    out = {}
    for role in ("y", "x"):
        axis = norm[role]
        values = axis["start"] + axis["step"] * np.arange(axis["size"], dtype=np.float64)
        attrs = {"axis": role.upper()}
        for key in ("standard_name", "long_name", "units"):
            if axis.get(key) is not None:
                attrs[key] = axis[key]
        out[axis["name"]] = xr.DataArray(values, dims=axis["name"], attrs=attrs)
    return out


class MatchedGrid(NamedTuple):
    """Result of :func:`match_grid`: the data on the card's grid and a note for ``history``."""

    data: xr.DataArray
    note: str | None


def _coord_in_units(
    values: np.ndarray, units: str | None, target: str | None, what: str
) -> tuple[np.ndarray, str | None]:
    """Convert coordinate values to the spec's units; return ``(values, problem)``."""
    if units is None or target is None or units == target:
        return values, None
    from xsfm.xr.units import _affine, parse_units

    try:
        source, dest = parse_units(units), parse_units(target)
    except Exception:
        return values, None  # unparseable coordinate units: compare the numbers as they are
    if not source.is_compatible_with(dest):
        return values, f"{what} is in {units!r}, which cannot be converted to the card's {target!r}"
    scale, offset = _affine(source, dest)
    if scale == 1.0 and offset == 0.0:
        return values, None
    return values * scale + offset, None


def _interp_axis(da: xr.DataArray, dim: Hashable, src: np.ndarray, new: np.ndarray) -> xr.DataArray:
    """Linear interpolation along one dim (lazy for dask; no scipy)."""
    n = src.size
    i = np.clip(np.searchsorted(src, new, side="right") - 1, 0, n - 2)
    w = np.clip((new - src[i]) / (src[i + 1] - src[i]), 0.0, 1.0)
    dtype = da.dtype if da.dtype.kind == "f" else np.float64
    weight = xr.DataArray(w.astype(dtype), dims=dim)
    lo = da.isel({dim: i})
    hi = da.isel({dim: i + 1})
    return lo * (1 - weight) + hi * weight


def match_grid(
    da: xr.DataArray,
    target: Mapping[str, Any],
    regrid: Literal["bilinear"] | None = None,
    *,
    grid: SpatialGrid | None = None,
    name: Hashable | None = None,
    rtol: float = 1e-3,
) -> MatchedGrid:
    """Put a variable on the card's grid: pass, cut to the domain, interpolate, or refuse.

    ``da`` must have ascending 1-D spatial coordinates (run :func:`standardise_grid` first). For
    each axis, with tolerances relative to the card's ``step`` (``rtol``):

    * same spacing, aligned points, same extent: passes;
    * same spacing, aligned points, larger extent: cut to the card's domain (described in the
      returned note, for the output's ``history``);
    * another spacing, irregular or shifted points: refused with both spacings and a hint, unless
      ``regrid="bilinear"`` (linear interpolation along y then x onto the card's points, which must
      lie inside the input's extent; lazy for dask);
    * smaller extent than the card's domain: refused.

    The result has the card's dim and coordinate names and exact coordinate values with CF
    attributes, and the spatial dims last, ``(..., y, x)``; other dims and coords pass through.

    Parameters
    ----------
    da
        The variable (after :func:`standardise_grid`).
    target
        The card's grid spec (see the module docstring).
    regrid
        ``None`` (refuse another resolution) or ``"bilinear"``.
    grid
        ``da``'s grid, found when not given.
    name
        Name used in messages (default ``da.name``).
    rtol
        Tolerance on spacings and point positions, relative to the card's step.

    Returns
    -------
    MatchedGrid
        ``(data, note)``; ``note`` is None when nothing was cut or interpolated.

    Raises
    ------
    GridError, xsfm.errors.InputErrors
        A mismatch, naming the variable, the dim, both spacings or extents, and the fix.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> da = xr.DataArray(np.zeros((4, 4)), dims=("lat", "lon"),
    ...                   coords={"lat": np.arange(4.0), "lon": np.arange(4.0)})
    >>> spec = {"lat": {"size": 2, "start": 1.0, "step": 1.0},
    ...         "lon": {"size": 4, "start": 0.0, "step": 1.0}}
    >>> out, note = match_grid(da, spec)
    >>> out.sizes["lat"], note
    (2, "cut the input to the model's domain: lat 1..2 (indices 1:3 of 4)")
    >>> coarse = {"lat": {"size": 2, "start": 0.0, "step": 2.0},
    ...           "lon": {"size": 2, "start": 0.0, "step": 2.0}}
    >>> try:
    ...     match_grid(da, coarse)
    ... except ValueError as err:
    ...     print(err.exceptions[0])  # doctest: +ELLIPSIS
    variable '<unnamed>' has spacing 1 degrees_north on dim 'lat' but the model needs spacing 2 ...
    """
    if regrid not in (None, "bilinear"):
        raise ValueError(f"regrid must be None or 'bilinear', got {regrid!r}")
    spec = normalise_grid_spec(target)
    grid = grid if grid is not None else find_spatial_grid(da)
    label = name if name is not None else (da.name if da.name is not None else "<unnamed>")
    geo_in = grid.kind == "latlon1d"
    if grid.y is None or grid.x is None:
        raise GridError(
            f"variable {label!r} is on a curvilinear grid (2-D {grid.lat_name!r}/"
            f"{grid.lon_name!r} on dims {grid.dims}) but the model needs the regular grid "
            f"{_spec_text(spec)}; regrid it first (e.g. with xESMF)"
        )
    if geo_in != spec["geographic"]:
        have = "latitude/longitude" if geo_in else f"projection ({grid.y_name}, {grid.x_name})"
        want = "latitude/longitude" if spec["geographic"] else "projection x/y"
        raise GridError(
            f"variable {label!r} is on a {have} grid but the model needs a {want} grid "
            f"{_spec_text(spec)}; regrid it onto the model's grid first"
        )
    problems: list[Exception] = []
    plans: dict[str, tuple[str, Any]] = {}
    for role, dim, cname, values, units in (
        ("y", grid.y_dim, grid.y_name, grid.y, grid.y_units),
        ("x", grid.x_dim, grid.x_name, grid.x, grid.x_units),
    ):
        axis = spec[role]
        step, size, start = axis["step"], axis["size"], axis["start"]
        tol = rtol * step
        unit_text = axis.get("units") or units or ""
        vals, problem = _coord_in_units(
            np.asarray(values, dtype=np.float64),
            units,
            axis.get("units"),
            f"coordinate {cname!r} of variable {label!r}",
        )
        if problem:
            problems.append(GridError(problem + "; fix its 'units' attribute"))
            continue
        wanted = start + step * np.arange(size)
        n = vals.size
        diffs = np.diff(vals)
        if n >= 2 and (diffs <= 0).any():
            problems.append(
                GridError(
                    f"coordinate {cname!r} of variable {label!r} does not ascend; run "
                    "xsfm.xr.cf.standardise_grid first"
                )
            )
            continue
        in_step = float(np.median(diffs)) if n >= 2 else None
        regular = in_step is not None and np.abs(diffs - in_step).max() <= tol
        same = regular and abs(in_step - step) <= tol
        lo, hi = (vals[0], vals[-1]) if n else (np.nan, np.nan)
        extent = f"{lo:g}..{hi:g} {unit_text}".rstrip()
        need = f"{wanted[0]:g}..{wanted[-1]:g} {unit_text}".rstrip()
        if n == size == 1 and abs(vals[0] - start) <= tol:
            plans[role] = ("keep", None)
            continue
        if same:
            offset = (start - vals[0]) / in_step
            i0 = round(offset)
            aligned = abs(offset - i0) * in_step <= tol
            if aligned and i0 >= 0 and i0 + size <= n:
                window = vals[i0 : i0 + size]
                if np.abs(window - wanted).max() <= tol:
                    plans[role] = ("keep", None) if (i0 == 0 and size == n) else ("cut", i0)
                    continue
        covers = n >= 2 and lo - tol <= wanted[0] and wanted[-1] <= hi + tol
        if regrid == "bilinear" and covers:
            plans[role] = ("interp", vals)
            continue
        if not covers and (same or regrid == "bilinear"):
            problems.append(
                GridError(
                    f"variable {label!r} covers {extent} on dim {dim!r} but the model's domain "
                    f"is {need} ({size} points); give input covering the whole domain"
                )
            )
            continue
        if in_step is None:
            problems.append(
                GridError(
                    f"variable {label!r} has a single point on dim {dim!r} but the model needs "
                    f"{size} points {need}"
                )
            )
            continue
        if same:  # same spacing, points shifted by a fraction of a step
            problems.append(
                GridError(
                    f"variable {label!r} has the model's spacing {step:g} {unit_text} on dim "
                    f"{dim!r} but its points ({extent}) are shifted from the model's ({need}); "
                    "regrid, e.g. pass regrid='bilinear'"
                )
            )
            continue
        ratio = step / in_step
        hint = (
            f"; or coarsen it: da.coarsen({dim}={round(ratio)}).mean()"
            if ratio > 1 and abs(ratio - round(ratio)) < 1e-6
            else ""
        )
        kind = "irregular spacing (median" if not regular else "spacing"
        problems.append(
            GridError(
                f"variable {label!r} has {kind} {in_step:g} {unit_text}"
                f"{')' if not regular else ''} on dim {dim!r} but the model needs spacing "
                f"{step:g} {unit_text} ({size} points {need}); regrid it first or pass "
                f"regrid='bilinear'{hint}"
            )
        )
    raise_all(problems, f"the grid of variable {label!r}")

    out = da
    notes_cut, notes_interp = [], []
    coords = grid_spec_coords(target)
    for role, dim in (("y", grid.y_dim), ("x", grid.x_dim)):
        action, arg = plans[role]
        axis = spec[role]
        wanted = coords[axis["name"]].values
        if action == "cut":
            out = out.isel({dim: slice(arg, arg + axis["size"])})
            notes_cut.append(
                f"{axis['name']} {wanted[0]:g}..{wanted[-1]:g} (indices {arg}:{arg + axis['size']}"
                f" of {da.sizes[dim]})"
            )
        elif action == "interp":
            along = [c for c in out.coords if dim in out[c].dims]
            out = _interp_axis(out.drop_vars(along), dim, arg, wanted)
            in_step = float(np.median(np.diff(arg)))
            notes_interp.append(f"{axis['name']} from spacing {in_step:g} to {axis['step']:g}")
    # rename to the card's names, with exact coordinate values and CF attributes
    for role, dim, cname in (("y", grid.y_dim, grid.y_name), ("x", grid.x_dim, grid.x_name)):
        new = spec[role]["name"]
        if cname is not None and cname in out.coords:
            out = out.drop_vars(cname)
        if dim != new:
            if new in out.coords:
                out = out.drop_vars(new)
            out = out.rename({dim: new})
        out = out.assign_coords({new: coords[new]})
    out = out.transpose(..., spec["y"]["name"], spec["x"]["name"])
    notes = []
    if notes_cut:
        notes.append("cut the input to the model's domain: " + ", ".join(notes_cut))
    if notes_interp:
        notes.append("interpolated the input bilinearly: " + ", ".join(notes_interp))
    return MatchedGrid(out, "; ".join(notes) if notes else None)


def _spec_text(spec: Mapping[str, Any]) -> str:
    parts = []
    for role in ("y", "x"):
        a = spec[role]
        end = a["start"] + a["step"] * (a["size"] - 1)
        parts.append(f"{a['name']} {a['start']:g}..{end:g} step {a['step']:g} ({a['size']})")
    return "(" + ", ".join(parts) + ")"


# --------------------------------------------------------------------------------------------
# all steps
# --------------------------------------------------------------------------------------------


class PreparedInputs(NamedTuple):
    """Result of :func:`prepare_inputs`."""

    arrays: dict[str, xr.DataArray]
    """``{card_name: DataArray}`` in the card's units on the card's grid, dims ``(..., y, x)``."""
    notes: list[str]
    """What was done that the output's ``history`` should say (cuts, interpolation)."""


def prepare_inputs(
    ds: xr.Dataset | xr.DataArray,
    specs: Sequence[Mapping[str, Any]],
    grid_spec: Mapping[str, Any],
    *,
    variables: Mapping[str, Hashable] | None = None,
    regrid: Literal["bilinear"] | None = None,
    allow_nonfinite: bool = False,
) -> PreparedInputs:
    """Select, convert, check and grid-match a model's inputs: the whole xarray-side preparation.

    Runs :func:`select_inputs`, :func:`xsfm.xr.units.convert_all`, :func:`standardise_grid` and
    :func:`match_grid` in that order. Each step reports all its problems at once (over all
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
        The card's grid for these inputs (see the module docstring).
    variables
        Overrides ``{card_name: ds_name}``.
    regrid
        ``None`` or ``"bilinear"`` (see :func:`match_grid`).
    allow_nonfinite
        Skip the NaN/inf check.

    Returns
    -------
    PreparedInputs
        ``(arrays, notes)``.
    """
    from xsfm.xr.units import convert_all

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
    return PreparedInputs(arrays, notes)
