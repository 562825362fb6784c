from __future__ import annotations

import subprocess
import sys

import dask
import dask.array
import hypothesis.extra.numpy as npst
import hypothesis.strategies as st
import numpy as np
import pint
import pytest
import xarray as xr
from hypothesis import given

from xsfm.errors import InputErrors, UnitsError
from xsfm.testing import assert_units_equal, cf_dataarrays, unchanged
from xsfm.xr.prepare import convert_all
from xsfm.xr.units import G0, convert, is_compatible, parse_units, registry, units_of


def _raise_on_compute(*args, **kwargs):
    raise AssertionError("dask computed something it should have left lazy")


def has_all(message: str, *pieces: str) -> None:
    missing = [piece for piece in pieces if piece not in message]
    assert not missing, f"{missing} not in message: {message}"


def da_(values, units=None, name="var", **attrs):
    if units is not None:
        attrs["units"] = units
    return xr.DataArray(np.asarray(values, dtype=float), dims="x", name=name, attrs=attrs)


@pytest.mark.parametrize(
    ("messy", "clean"),
    [
        ("m**2 s**-2", "m2 s-2"),
        ("degK", "K"),
        ("deg_K", "K"),
        ("m/s", "m s-1"),
        ("m s**-1", "m s-1"),
        ("m s^-1", "m s-1"),
        ("gpm", "m"),
        ("percent", "%"),
        ("(0 - 1)", "1"),
        ("dimensionless", "1"),
        ("kg m**-2", "kg m-2"),
        ("degC", "deg_C"),
        ("millibars", "mbar"),
        (1, "1"),
    ],
)
def test_messy_unit_strings_parse(messy, clean):
    assert parse_units(messy) == parse_units(clean)


def test_compatibility():
    assert is_compatible("hPa", "Pa")
    assert is_compatible("K", "degC")
    assert not is_compatible("K", "m")
    assert not is_compatible("nonsense_unit", "m")


@pytest.mark.parametrize(
    ("source", "target", "values", "expected"),
    [
        ("K", "degC", [273.15, 300.0], [0.0, 26.85]),
        ("degC", "K", [0.0, -273.15], [273.15, 0.0]),
        ("degK", "K", [250.0], [250.0]),
        ("percent", "1", [50.0], [0.5]),
        ("%", "1", [100.0], [1.0]),
        ("1", "%", [0.25], [25.0]),
        ("m/s", "km h-1", [1.0], [3.6]),
        ("hPa", "Pa", [500.0], [50000.0]),
        ("millibars", "hPa", [850.0], [850.0]),
        ("m**2 s**-2", "m2 s-2", [5.5e4], [5.5e4]),
        ("gpm", "m", [5500.0], [5500.0]),
    ],
)
def test_convert_values_and_units(source, target, values, expected):
    da = da_(values, source)
    with unchanged(da):
        out = convert(da, target)
    np.testing.assert_allclose(out.values, expected, rtol=1e-12, atol=1e-12)
    assert out.attrs["units"] == target
    assert_units_equal(out, target)


def test_same_units_are_not_touched():
    da = da_([1.0, 2.0], "m**2 s**-2")
    out = convert(da, "m2 s-2")
    assert np.shares_memory(out.values, da.values)
    assert out.attrs["units"] == "m2 s-2"
    assert da.attrs["units"] == "m**2 s**-2"


def test_float32_stays_float32():
    da = xr.DataArray(np.array([273.15], dtype="float32"), dims="x", attrs={"units": "K"})
    assert convert(da, "degC").dtype == np.float32


def test_grib_units_fallback():
    da = xr.DataArray([1.0], dims="x", name="z", attrs={"GRIB_units": "m**2 s**-2"})
    assert units_of(da) == "m**2 s**-2"
    assert convert(da, "m2 s-2").attrs["units"] == "m2 s-2"


def test_geopotential_height_to_geopotential_only_with_standard_names():
    gh = da_([5500.0], "gpm", name="gh", standard_name="geopotential_height")
    out = convert(gh, "m2 s-2", name="z500", standard_name="geopotential")
    np.testing.assert_allclose(out.values, [5500.0 * G0])
    assert out.attrs["standard_name"] == "geopotential"
    back = convert(out, "m", standard_name="geopotential_height")
    np.testing.assert_allclose(back.values, [5500.0], rtol=1e-14)
    # km works too
    km = da_([5.5], "km", name="gh", standard_name="geopotential_height")
    np.testing.assert_allclose(
        convert(km, "m2 s-2", standard_name="geopotential").values, [5500.0 * G0]
    )
    # without the standard names saying so, a length is not an energy per mass
    plain = da_([5500.0], "m", name="gh")
    with pytest.raises(UnitsError) as info:
        convert(plain, "m2 s-2", name="z500", standard_name="geopotential")
    message = str(info.value)
    has_all(message, "'gh'", "'m'", "'m2 s-2'")
    has_all(message, "9.80665", "geopotential_height")


def test_pint_quantified_data_from_another_registry():
    other = pint.UnitRegistry()
    da = xr.DataArray(other.Quantity(np.array([0.0, 10.0]), "degC"), dims="x", name="t")
    out = convert(da, "K")
    assert isinstance(out.data, np.ndarray)
    np.testing.assert_allclose(out.values, [273.15, 283.15])
    assert out.attrs["units"] == "K"


def test_pint_quantified_data_from_cf_registry():
    ureg = registry()
    da = xr.DataArray(ureg.Quantity(np.array([1.0, 2.0]), "km"), dims="x", name="d")
    out = convert(da, "m")
    np.testing.assert_allclose(out.values, [1000.0, 2000.0])


def test_missing_units_error_names_variable_and_fix():
    with pytest.raises(UnitsError) as info:
        convert(da_([1.0], None, name="t"), "K", name="t500")
    message = str(info.value)
    has_all(message, "'t500'", "'t'", "'K'")
    assert "attrs['units']" in message


def test_unparseable_units_error():
    with pytest.raises(UnitsError) as info:
        convert(da_([1.0], "blurbs per glorp", name="u"), "m s-1")
    message = str(info.value)
    has_all(message, "'u'", "blurbs per glorp", "'m s-1'")
    assert "attrs['units']" in message


def test_incompatible_units_error():
    with pytest.raises(UnitsError) as info:
        convert(da_([1.0], "K", name="t"), "m s-1", name="u10m")
    message = str(info.value)
    has_all(message, "'u10m'", "'K'", "'m s-1'")
    assert "variables={'u10m': 'your_name'}" in message


def test_convert_all_reports_every_problem():
    arrays = {
        "t2m": da_([1.0], None, name="t2"),
        "u10m": da_([1.0], "blurb", name="u"),
        "v10m": da_([1.0], "K", name="v"),
        "tcwv": da_([1.0], "kg m**-2", name="tcwv"),
    }
    targets = {"t2m": "K", "u10m": "m s-1", "v10m": "m s-1", "tcwv": "kg m-2"}
    with unchanged(arrays["u10m"]), pytest.raises(InputErrors) as info:
        convert_all(arrays, targets)
    assert isinstance(info.value, ValueError)
    assert len(info.value.exceptions) == 3
    text = str(info.value)
    for piece in ("'t2m'", "'u10m'", "'v10m'", "blurb", "'K'", "'m s-1'"):
        assert piece in text
    assert "tcwv" not in text


def test_convert_all_accepts_card_specs():
    specs = [
        {"name": "z500", "standard_name": "geopotential", "units": "m2 s-2"},
        {"name": "t", "standard_name": "air_temperature", "units": "K"},
    ]
    arrays = {
        "z500": da_([100.0], "m", name="zg", standard_name="geopotential_height"),
        "t": da_([0.0], "degC", name="t"),
        "extra": da_([1.0], "m", name="extra"),
    }
    out = convert_all(arrays, specs)
    np.testing.assert_allclose(out["z500"].values, [100.0 * G0])
    np.testing.assert_allclose(out["t"].values, [273.15])
    assert out["extra"] is arrays["extra"]


def test_convert_all_missing_variable():
    with pytest.raises(UnitsError, match="no variable given for 'u'"):
        convert_all({}, {"u": "m s-1"})


def test_dask_stays_lazy():
    data = dask.array.from_array(np.array([273.15, 280.0]), chunks=1)
    da = xr.DataArray(data, dims="x", attrs={"units": "K"})
    with dask.config.set(scheduler=_raise_on_compute):
        out = convert(da, "degC")
    assert isinstance(out.data, dask.array.Array)
    np.testing.assert_allclose(out.compute().values, [0.0, 6.85], atol=1e-12)


PAIRS = [
    ("K", "degC"),
    ("degC", "degF"),
    ("m s-1", "km h-1"),
    ("Pa", "hPa"),
    ("m2 s-2", "J kg-1"),
    ("%", "1"),
    ("kg m-2 s-1", "g m-2 h-1"),
    ("s-1", "h-1"),
]


@given(
    values=npst.arrays(
        np.float64,
        npst.array_shapes(max_dims=2, max_side=5),
        elements=st.floats(-1e6, 1e6, allow_nan=False),
    ),
    pair=st.sampled_from(PAIRS),
)
def test_round_trip(values, pair):
    source, target = pair
    da = xr.DataArray(values, dims=[f"d{i}" for i in range(values.ndim)], attrs={"units": source})
    with unchanged(da):
        there = convert(da, target)
        back = convert(there, source)
    assert back.attrs["units"] == source
    scale = np.maximum(np.abs(values), 1.0)
    np.testing.assert_allclose(back.values, values, rtol=1e-12, atol=1e-9 * scale.max())


@given(cf_dataarrays(extra_attrs=True, transpose=True))
def test_convert_never_mutates(da):
    target = {"K": "degC", "m s-1": "km h-1", "s-1": "h-1", "m2 s-2": "J kg-1", "%": "1"}[
        da.attrs["units"]
    ]
    with unchanged(da):
        out = convert(da, target)
    assert out.attrs["units"] == target
    assert out.dims == da.dims
    xr.testing.assert_identical(out.coords.to_dataset(), da.coords.to_dataset())


def test_application_registry_untouched_and_no_warning():
    code = (
        "import warnings, pint\n"
        "warnings.simplefilter('error')\n"
        "before = pint.get_application_registry().get()\n"
        "from xsfm.xr.units import registry\n"
        "ureg = registry()\n"
        "assert pint.get_application_registry().get() is before\n"
        "assert ureg is not before\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
