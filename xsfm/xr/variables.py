"""Card inputs -> dataset variables: by override, ``standard_name``, name, GRIB keys or aliases.

:func:`select_inputs` maps a model card's inputs to variables of a dataset (explicit override, then
``standard_name``, then name, then ``GRIB_shortName``/``GRIB_cfVarName``/``long_name``/aliases)
and picks vertical levels (card input ``t500`` = ``air_temperature`` at 500 hPa). It reports every
problem at once (:func:`xsfm.errors.raise_all`), never computes data and never modifies its input.
"""

from __future__ import annotations

import difflib
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import cf_xarray  # noqa: F401  (registers the .cf accessor)
import numpy as np
import xarray as xr

from xsfm.errors import AmbiguousVariableError, MissingVariableError, raise_all

__all__ = ["LEVEL_NAMES", "select_inputs"]

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
