"""Units: parse, check and convert with pint through cf-xarray's UDUNITS-flavoured registry.

This is the only module of xsfm that imports :mod:`cf_xarray.units`, and it does so lazily, on first
use (:func:`registry`). That import has two side effects which are contained here:

* it calls :func:`pint.set_application_registry`; xsfm restores the application registry that was
  set before, so importing or using xsfm never changes which registry ``pint.Quantity`` uses;
* it sets up pint's matplotlib support and emits a ``UserWarning`` when matplotlib is not installed;
  that warning is silenced.

The registry is then passed explicitly everywhere (never looked up through pint's globals).

Unit strings as real files write them are accepted: UDUNITS powers (``m2 s-2``), Python powers
(``m**2 s**-2``), ``m/s``, ``degK``/``deg_K``, ``degC``, ``gpm`` (geopotential metre, an alias of
metre), ``%``/``percent``, ``(0 - 1)`` and ``1`` (dimensionless), and a few more spellings (see
:func:`parse_units`).

:func:`convert` converts one variable; :func:`xsfm.xr.prepare.convert_all` converts a model's inputs at
once, reporting every problem together.

Geopotential height and geopotential differ by the standard gravity ``g0 = 9.80665 m s-2`` (WMO). A
height (``m``/``gpm``) is turned into a geopotential (``m2 s-2``), or back, only when the standard
names say so: the variable's ``standard_name`` is ``geopotential_height`` and the target's is
``geopotential`` (or the reverse). Otherwise a length cannot become an energy per mass and the
conversion is refused.

Examples
--------
>>> import numpy as np, xarray as xr
>>> t = xr.DataArray(np.array([273.15, 300.0]), dims="x", attrs={"units": "degK"})
>>> convert(t, "degC", name="t2m").values.round(6)
array([ 0.  , 26.85])
>>> convert(t, "degC").attrs["units"]
'degC'
"""

from __future__ import annotations

import logging
import re
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from xsfm.errors import UnitsError

if TYPE_CHECKING:
    import pint

__all__ = [
    "G0",
    "convert",
    "is_compatible",
    "parse_units",
    "registry",
    "units_of",
]

#: Standard gravity (m s-2) used between geopotential height and geopotential (WMO, CF).
G0 = 9.80665

_REGISTRY: pint.UnitRegistry | None = None

_LOGARITHMIC = ("dBZ", "dBm")

# Spellings met in files that the cf-xarray registry does not parse as they stand.
_DIMENSIONLESS = {"", "1", "(0 - 1)", "(0-1)", "0-1", "fraction", "dimensionless", "unitless", "-"}
_SPELLINGS = {
    "deg c": "degC",
    "deg k": "K",
    "degrees c": "degC",
    "degrees k": "K",
    "degree_kelvin": "K",
    "degrees_kelvin": "K",
    "kelvin": "K",
    "celsius": "degC",
    "gpm": "m",
    "mb": "mbar",
    "millibars": "mbar",
    "hpa": "hPa",
}


def registry() -> pint.UnitRegistry:
    """Return cf-xarray's pint registry, importing it on first use without global side effects.

    Returns
    -------
    pint.UnitRegistry
        The registry of :mod:`cf_xarray.units` (UDUNITS-style parsing, a ``cf`` format).

    Examples
    --------
    >>> ureg = registry()
    >>> float(ureg.Quantity(1.0, "km").to("m").magnitude)
    1000.0
    """
    global _REGISTRY
    if _REGISTRY is None:
        import pint

        previous = pint.get_application_registry().get()
        pint_log = logging.getLogger("pint.util")
        level = pint_log.level
        pint_log.setLevel(logging.ERROR)  # cf_xarray redefines 'percent' etc. on import: not news
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                import cf_xarray.units as cf_units
        finally:
            pint_log.setLevel(level)
        # Undo cf_xarray's pint.set_application_registry: using xsfm changes nothing global.
        pint.set_application_registry(previous)
        reg = cf_units.units
        # Logarithmic units of radar meteorology: each is its own base dimension here, so they
        # convert only to themselves (10 log10 of a ratio cannot be scaled like a linear unit).
        for name in _LOGARITHMIC:
            if name not in reg:
                reg.define(f"{name} = [{name}_logarithmic]")
        _REGISTRY = reg
    return _REGISTRY


def parse_units(units: Any) -> pint.Unit:
    """Parse a unit string as files write it into a pint unit of :func:`registry`.

    Parameters
    ----------
    units
        A unit string (``"m s-1"``, ``"m**2 s**-2"``, ``"degK"``, ``"%"``, ``"(0 - 1)"``...), the
        number ``1``, or a pint unit (of any registry).

    Returns
    -------
    pint.Unit

    Raises
    ------
    pint.UndefinedUnitError, ValueError, TypeError
        When the string cannot be parsed; :func:`convert` turns these into :class:`UnitsError`.

    Examples
    --------
    >>> parse_units("m**2 s**-2") == parse_units("m2 s-2")
    True
    >>> parse_units("degK") == parse_units("K")
    True
    >>> parse_units("(0 - 1)") == parse_units("1")
    True
    """
    ureg = registry()
    if hasattr(units, "dimensionality") and not isinstance(units, str):  # a pint unit
        units = str(units)
    if isinstance(units, (int, float)) and units == 1:
        units = "1"
    if not isinstance(units, str):
        raise TypeError(f"units must be a string, got {type(units).__name__} {units!r}")
    text = " ".join(units.strip().split())
    key = text.lower()
    if key in _DIMENSIONLESS:
        return ureg.Unit("dimensionless")
    text = _SPELLINGS.get(key, text)
    # "m s^-1" and "m.s-1" are also common.
    text = text.replace("^", "**")
    text = re.sub(r"(?<=[A-Za-z])\.(?=[A-Za-z])", " ", text)
    return ureg.Unit(text)


def is_compatible(units: Any, other: Any) -> bool:
    """Whether two unit strings can be converted into each other (same dimensionality).

    Examples
    --------
    >>> is_compatible("hPa", "Pa"), is_compatible("K", "m")
    (True, False)
    """
    try:
        return bool(parse_units(units).is_compatible_with(parse_units(other)))
    except Exception:
        return False


def units_of(da: xr.DataArray) -> str | None:
    """Return the units of a DataArray: of its pint-quantified data, else its ``units`` attribute.

    cfgrib's ``GRIB_units`` attribute is used when ``units`` is absent.

    Examples
    --------
    >>> import xarray as xr
    >>> units_of(xr.DataArray([1.0], dims="x", attrs={"GRIB_units": "m**2 s**-2"}))
    'm**2 s**-2'
    >>> units_of(xr.DataArray([1.0], dims="x")) is None
    True
    """
    data = da.variable._data
    if _is_quantity(data):
        return str(data.units)
    for key in ("units", "GRIB_units"):
        value = da.attrs.get(key)
        if value is not None:
            return value if isinstance(value, str) else str(value)
    return None


def _is_quantity(data: Any) -> bool:
    return (
        type(data).__module__.startswith("pint")
        and hasattr(data, "magnitude")
        and hasattr(data, "units")
    )


def _affine(source: pint.Unit, target: pint.Unit) -> tuple[float, float]:
    """Return ``(scale, offset)`` with ``value_in_target = value_in_source * scale + offset``."""
    ureg = registry()
    zero = ureg.Quantity(0.0, source).to(target).magnitude
    one = ureg.Quantity(1.0, source).to(target).magnitude
    return float(one - zero), float(zero)


def _label(da: xr.DataArray, name: str | None) -> tuple[str, str]:
    """Return ``(label for messages, expression of the variable for fixes)``."""
    own = None if da.name is None else str(da.name)
    if name is None or own is None or str(name) == own:
        shown = str(name) if name is not None else (own or "<unnamed>")
        return f"variable {shown!r}", f"ds[{shown!r}]"
    return f"input {str(name)!r} (variable {own!r})", f"ds[{own!r}]"


def convert(
    da: xr.DataArray,
    units: str,
    *,
    name: str | None = None,
    standard_name: str | None = None,
    fix: str | None = None,
) -> xr.DataArray:
    """Convert a DataArray's values to ``units`` and set ``attrs["units"]`` to that string.

    The input is never modified. Dask-backed data stay lazy (the conversion is an affine map,
    ``x * scale + offset``, applied by xarray). When the units already match, the values are
    returned unchanged (not even multiplied by one).

    Parameters
    ----------
    da
        The variable. Its units come from its pint-quantified data (a :class:`pint.Quantity` of any
        registry wrapped by the DataArray; the result then holds the plain magnitude), else from
        ``attrs["units"]``, else from cfgrib's ``attrs["GRIB_units"]``.
    units
        Target units, a UDUNITS string as the model card declares them (``"m s-1"``, ``"K"``...); it
        is written verbatim into ``attrs["units"]``.
    name
        Name used in error messages (the card's input name); defaults to ``da.name``.
    standard_name
        The target's ``standard_name``. Only used to allow geopotential height <-> geopotential
        (multiply or divide by :data:`G0`) when the variable's ``standard_name`` says it is the
        other one; the result then carries the target ``standard_name``.
    fix
        What an incompatible-units error suggests first (default: selecting another variable with
        ``variables=``, as the downscaling face allows).

    Returns
    -------
    xarray.DataArray

    Raises
    ------
    UnitsError
        Missing units, units that cannot be parsed, or units that cannot be converted to ``units``.
        The message names the variable, its units, the target and the fix.

    Examples
    --------
    >>> import xarray as xr
    >>> wind = xr.DataArray([1.0, 2.0], dims="x", attrs={"units": "km/h"})
    >>> convert(wind, "m s-1").values.round(4)
    array([0.2778, 0.5556])
    >>> z = xr.DataArray([5500.0], dims="x",
    ...                  attrs={"units": "gpm", "standard_name": "geopotential_height"})
    >>> convert(z, "m2 s-2", standard_name="geopotential").values
    array([53936.575])
    """
    label, expr = _label(da, name)
    override = repr(str(name if name is not None else da.name))
    data = da.variable._data
    quantity = _is_quantity(data)
    source_text = units_of(da)
    if source_text is None:
        raise UnitsError(
            f"{label} has no 'units' attribute (target units {units!r}); "
            f"set it, e.g. {expr}.attrs['units'] = {units!r}, if the values are in {units!r}"
        )
    try:
        target = parse_units(units)
    except Exception as err:
        raise UnitsError(
            f"target units {units!r} of {label} cannot be parsed ({err}); "
            "fix the model card's units (a UDUNITS string such as 'm s-1')"
        ) from None
    try:
        source = parse_units(source_text)
    except Exception as err:
        raise UnitsError(
            f"{label} has units {source_text!r}, which cannot be parsed ({err}); "
            f"set a UDUNITS string, e.g. {expr}.attrs['units'] = {units!r} "
            f"if the values are in {units!r}"
        ) from None

    extra_scale = 1.0
    new_standard_name = None
    if not source.is_compatible_with(target):
        own_sn = da.attrs.get("standard_name")
        length = registry().Unit("m")
        energy = registry().Unit("m2 s-2")
        if (
            own_sn == "geopotential_height"
            and standard_name == "geopotential"
            and source.is_compatible_with(length)
            and target.is_compatible_with(energy)
        ):
            extra_scale = _affine(source, length)[0] * G0
            source, new_standard_name = energy, "geopotential"
        elif (
            own_sn == "geopotential"
            and standard_name == "geopotential_height"
            and source.is_compatible_with(energy)
            and target.is_compatible_with(length)
        ):
            extra_scale = _affine(source, energy)[0] / G0
            source, new_standard_name = length, "geopotential_height"
        else:
            hint = ""
            if {own_sn, standard_name} == {"geopotential", "geopotential_height"} or (
                source.is_compatible_with(length) and target.is_compatible_with(energy)
            ):
                hint = (
                    " (geopotential height <-> geopotential is converted with g0 = 9.80665 m s-2 "
                    "only when the variable's standard_name is 'geopotential_height' or "
                    "'geopotential' and the card's is the other)"
                )
            raise UnitsError(
                f"{label} has units {source_text!r} "
                f"({source.dimensionality}), which cannot be converted to {units!r} "
                f"({target.dimensionality}){hint}; "
                + (
                    fix
                    if fix is not None
                    else "check that the right variable was selected "
                    f"(override with variables={{{override}: 'your_name'}})"
                )
                + f" or fix {expr}.attrs['units']"
            )

    scale, offset = _affine(source, target)
    scale *= extra_scale
    if quantity:
        magnitude = data.magnitude
        out = da.copy(deep=False, data=np.asarray(magnitude) if _is_plain(magnitude) else magnitude)
    else:
        out = da
    if scale != 1.0 or offset != 0.0:
        out = out * scale + offset if offset != 0.0 else out * scale
    attrs = dict(da.attrs)
    attrs["units"] = units
    if "GRIB_units" in attrs and (scale != 1.0 or offset != 0.0):
        attrs["GRIB_units"] = units
    if new_standard_name is not None:
        attrs["standard_name"] = new_standard_name
    out = out.copy(deep=False)
    out.attrs = attrs
    # On-disk packing (scale_factor, dtype...) of the old units would be wrong for the new values.
    out.encoding = dict(da.encoding) if (scale == 1.0 and offset == 0.0) else {}
    return out


def _is_plain(magnitude: Any) -> bool:
    return isinstance(magnitude, (np.ndarray, np.generic, float, int))
