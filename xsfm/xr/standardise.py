"""Check a variable and put its grid in standard orientation (ascending, the card's longitudes).

:func:`standardise_grid` checks each variable (dtype, empty dims, NaN/inf, duplicated or
non-monotonic coordinates), reporting every problem at once, and flips descending coordinates and
wraps longitudes into the card's convention (:func:`xsfm.xr.gridspec.longitude_convention`).

Dask
----
Nothing here computes dask-backed data: grids are read from index coordinates (always in memory)
and the NaN/inf check is attached to each chunk (:func:`check_finite` runs inside the chunk's
task), so it raises :class:`~xsfm.errors.InvalidValuesError` when the data are computed, not before.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from functools import partial
from typing import Any

import numpy as np
import xarray as xr

from xsfm.errors import GridError, InvalidValuesError, raise_all
from xsfm.xr.grid import SpatialGrid, find_spatial_grid
from xsfm.xr.gridspec import LongitudeConvention, longitude_convention
from xsfm.xr.variables import _fmt_levels

__all__ = ["check_finite", "standardise_grid"]


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
