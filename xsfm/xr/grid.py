"""The spatial grid of CF-annotated xarray objects: find it via cf-xarray (:func:`find_spatial_grid`).

A grid is geographic (1-D latitude/longitude, ``latlon1d``), projected (1-D projection or rotated-pole
x/y, ``projection``) or curvilinear (2-D latitude/longitude only, ``latlon2d``). Nothing here computes
data or modifies its input: grids are read from coordinates. :mod:`xsfm.xr.standardise` puts a grid in
standard orientation; :mod:`xsfm.xr.regrid` matches it with a card's grid spec.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import cf_xarray  # noqa: F401  (registers the .cf accessor)
import numpy as np
import xarray as xr

from xsfm.errors import GridError

__all__ = ["GridKind", "SpatialGrid", "find_spatial_grid"]

LAT_NAMES = ("lat", "latitude", "nav_lat", "XLAT", "XLAT_M", "LAT", "Latitude")
LON_NAMES = ("lon", "longitude", "nav_lon", "XLONG", "XLONG_M", "LON", "Longitude")
Y_NAMES = ("y", "rlat", "projection_y_coordinate", "Y")
X_NAMES = ("x", "rlon", "projection_x_coordinate", "X")
_GEO_STANDARD_NAMES = {"latitude", "longitude"}

GridKind = Literal["projection", "latlon1d", "latlon2d"]


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
