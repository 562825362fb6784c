"""Put a variable on the card's grid: pass, cut to the domain, interpolate, or refuse (:func:`match_grid`)."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any, Literal, NamedTuple

import numpy as np
import xarray as xr

from xsfm.errors import GridError, raise_all
from xsfm.xr.grid import SpatialGrid, find_spatial_grid
from xsfm.xr.gridspec import grid_spec_coords, normalise_grid_spec

__all__ = ["MatchedGrid", "match_grid"]


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
        The card's grid spec (see :mod:`xsfm.xr.gridspec`).
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
                    "xsfm.xr.standardise.standardise_grid first"
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
