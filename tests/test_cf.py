from __future__ import annotations

import dask
import dask.array
import fixtures_messy as fm
import numpy as np
import pytest
import xarray as xr
from hypothesis import given

from xsfm.errors import (
    AmbiguousVariableError,
    GridError,
    InputErrors,
    InvalidValuesError,
    MissingVariableError,
)
from xsfm.testing import assert_unchanged, cf_dataarrays, cf_datasets, unchanged
from xsfm.xr.grid import find_spatial_grid
from xsfm.xr.gridspec import grid_spec_coords, longitude_convention, normalise_grid_spec
from xsfm.xr.prepare import convert_all, prepare_fields
from xsfm.xr.regrid import match_grid
from xsfm.xr.standardise import standardise_grid
from xsfm.xr.units import G0, convert
from xsfm.xr.variables import select_inputs


def has_all(message: str, *pieces: str) -> None:
    missing = [piece for piece in pieces if piece not in message]
    assert not missing, f"{missing} not in message: {message}"


def _raise_on_compute(*args, **kwargs):
    raise AssertionError("dask computed something it should have left lazy")


def spec(name, sn, units, **extra):
    return {"name": name, "standard_name": sn, "units": units, "long_name": name, **extra}


def latlon_grid(lat0, nlat, lon0, nlon, step):
    return {
        "lat": {"size": nlat, "start": lat0, "step": step},
        "lon": {"size": nlon, "start": lon0, "step": step},
    }


# ---------------------------------------------------------------------------------------------
# find_spatial_grid
# ---------------------------------------------------------------------------------------------


def test_grid_era5_cfgrib():
    grid = find_spatial_grid(fm.era5_cfgrib())
    assert grid.kind == "latlon1d"
    assert grid.dims == ("latitude", "longitude")
    assert grid.y_descending
    assert not grid.x_descending
    assert grid.dy == pytest.approx(0.25)
    assert grid.y_units == "degrees_north"


def test_grid_cmip_gfs_projected_wrf():
    assert find_spatial_grid(fm.cmip()).dims == ("lat", "lon")
    gfs = find_spatial_grid(fm.gfs_like())  # no attributes at all: found by name
    assert (gfs.kind, gfs.dims) == ("latlon1d", ("lat", "lon"))
    proj = find_spatial_grid(fm.projected_with_latlon())
    assert (proj.kind, proj.dims, proj.dx, proj.x_units) == ("projection", ("y", "x"), 2.0, "km")
    assert (proj.lat_name, proj.lon_name) == ("lat", "lon")
    wrf = find_spatial_grid(fm.wrf_like())
    assert (wrf.kind, wrf.dims) == ("latlon2d", ("south_north", "west_east"))
    assert (wrf.lat_name, wrf.lon_name) == ("XLAT", "XLONG")
    assert wrf.y is None


def test_grid_on_dataarray_and_rotated_pole():
    da = fm.era5_cfgrib()["t"]
    assert find_spatial_grid(da).dims == ("latitude", "longitude")
    rot = xr.DataArray(
        np.zeros((3, 4)),
        dims=("rlat", "rlon"),
        coords={
            "rlat": ("rlat", [0.0, 0.1, 0.2], {"standard_name": "grid_latitude"}),
            "rlon": ("rlon", [0.0, 0.1, 0.2, 0.3], {"standard_name": "grid_longitude"}),
        },
    )
    grid = find_spatial_grid(rot)
    assert (grid.kind, grid.dims) == ("projection", ("rlat", "rlon"))


def test_no_grid_error_names_both_routes():
    da = xr.DataArray(np.zeros((2, 3)), dims=("row", "col"), coords={"row": [0, 1]})
    with pytest.raises(GridError) as info:
        find_spatial_grid(da)
    has_all(
        str(info.value),
        "cf.coordinates['latitude'/'longitude']",
        "cf.axes['X'/'Y']",
        "guess_coord_axis()",
        "'row'",
    )


def test_latlon_as_data_variables_hint():
    ds = fm.wrf_like().reset_coords(["XLAT", "XLONG"])
    with pytest.raises(GridError, match=r"set_coords\(\['XLAT', 'XLONG'\]\)"):
        find_spatial_grid(ds)


def test_ambiguous_latitudes():
    sn = {"standard_name": "latitude"}
    da = xr.DataArray(
        np.zeros((2, 3)),
        dims=("j", "i"),
        coords={
            "lat_a": ("j", [0.0, 1.0], sn),
            "lat_b": ("j", [0.0, 1.0], sn),
            "lon": ("i", [0.0, 1.0, 2.0], {"standard_name": "longitude"}),
        },
    )
    with pytest.raises(GridError, match=r"several latitude coordinates.*drop_vars\(\['lat_b'\]\)"):
        find_spatial_grid(da)


def test_guess_coord_axis_route():
    da = xr.DataArray(
        np.zeros((2, 3)),
        dims=("nav_lat", "nav_lon"),
        coords={"nav_lat": [0.0, 1], "nav_lon": [0.0, 1, 2]},
    )
    assert find_spatial_grid(da).kind == "latlon1d"


# ---------------------------------------------------------------------------------------------
# select_inputs
# ---------------------------------------------------------------------------------------------


def test_select_era5_cfgrib_all_cwa_inputs():
    ds = fm.era5_cfgrib()
    with unchanged(ds):
        out = select_inputs(ds, fm.CWA_INPUTS)
    assert list(out) == [s["name"] for s in fm.CWA_INPUTS]
    np.testing.assert_array_equal(out["t500"].values, ds["t"].sel(isobaricInhPa=500).values)
    np.testing.assert_array_equal(out["z850"].values, ds["z"].sel(isobaricInhPa=850).values)
    assert "isobaricInhPa" not in out["t500"].coords
    assert out["t2m"].name == "t2m"  # by name; 't' (pressure levels) was rejected
    assert out["u10m"].name == "u10"  # by alias / GRIB_shortName
    assert out["tcwv"].name == "tcwv"


def test_select_cmip_plev_in_pa():
    ds = fm.cmip()
    specs = [
        spec("t500", "air_temperature", "K", level=500, level_units="hPa"),
        spec("t2m", "air_temperature", "K"),
        spec("u10m", "eastward_wind", "m s-1"),
        spec("u250", "eastward_wind", "m s-1", level=25000, level_units="Pa"),
    ]
    out = select_inputs(ds, specs)
    np.testing.assert_array_equal(out["t500"].values, ds["ta"].sel(plev=50000).values)
    assert out["t2m"].name == "tas"
    assert out["u10m"].name == "uas"
    np.testing.assert_array_equal(out["u250"].values, ds["ua"].sel(plev=25000).values)


def test_select_then_convert_geopotential_height_from_cmip():
    ds = fm.cmip()
    z500 = [spec("z500", "geopotential", "m2 s-2", level=500)]
    with pytest.raises(MissingVariableError) as info:
        select_inputs(ds, z500)
    has_all(str(info.value), "'z500'", "'geopotential'", "variables={'z500': 'your_name'}")
    selected = select_inputs(ds, z500, variables={"z500": "zg"})
    converted = convert_all(selected, z500)
    np.testing.assert_allclose(
        converted["z500"].values, ds["zg"].sel(plev=50000).values * G0, rtol=1e-6
    )
    assert converted["z500"].attrs["units"] == "m2 s-2"


def test_select_era5_netcdf_level_in_millibars_without_standard_names():
    ds = fm.era5_netcdf()
    specs = [
        spec("t500", "air_temperature", "K", level=500, aliases=["t"]),
        spec("u850", "eastward_wind", "m s-1", level=850, aliases=["u"]),
    ]
    out = select_inputs(ds, specs)
    np.testing.assert_array_equal(out["t500"].values, ds["t"].sel(level=500).values)
    np.testing.assert_array_equal(out["u850"].values, ds["u"].sel(level=850).values)


def test_select_by_grib_short_name_only():
    # an unrelated variable name, no standard_name, no long_name: only cfgrib's GRIB_shortName says
    # it is the card's "2t" alias of t2m
    rng = np.random.default_rng(0)
    ds = xr.Dataset(
        {
            "var167": (("y", "x"), rng.normal(size=(3, 4)), {"units": "K", "GRIB_shortName": "2t"}),
            "var165": (
                ("y", "x"),
                rng.normal(size=(3, 4)),
                {"units": "m s-1", "GRIB_shortName": "10u"},
            ),
        }
    )
    specs = [
        spec("t2m", "air_temperature", "K", aliases=["2t"]),
        spec("u10m", "eastward_wind", "m s-1", aliases=["10u"]),
    ]
    with unchanged(ds):
        out = select_inputs(ds, specs)
    xr.testing.assert_equal(out["t2m"], ds["var167"])
    xr.testing.assert_equal(out["u10m"], ds["var165"])


def test_select_by_long_name():
    ds = fm.gfs_like()
    out = select_inputs(
        ds,
        [
            {
                "name": "rh500",
                "standard_name": "relative_humidity",
                "units": "%",
                "long_name": "Relative humidity",
                "level": 500,
            }
        ],
    )
    np.testing.assert_array_equal(out["rh500"].values, ds["rh"].sel(lev=500).values)


def test_several_missing_reported_at_once():
    ds = fm.gfs_like()
    specs = [
        spec("t500", "air_temperature", "K", level=500),
        spec("u10m", "eastward_wind", "m s-1"),
        spec("msl", "air_pressure_at_mean_sea_level", "Pa"),
    ]
    with unchanged(ds), pytest.raises(InputErrors) as info:
        select_inputs(ds, specs)
    assert isinstance(info.value, ValueError)
    assert len(info.value.exceptions) == 3
    for err, s in zip(info.value.exceptions, specs, strict=True):
        assert isinstance(err, MissingVariableError)
        has_all(
            str(err),
            repr(s["name"]),
            repr(s["standard_name"]),
            f"variables={{{s['name']!r}: 'your_name'}}",
            "Data variables",
            f"attrs['standard_name'] = {s['standard_name']!r}",
        )


def test_missing_level_names_levels_found():
    ds = fm.era5_cfgrib()
    with pytest.raises(MissingVariableError) as info:
        select_inputs(ds, [spec("t700", "air_temperature", "K", level=700)])
    has_all(str(info.value), "'t700'", "at 700 hPa", "1000, 850, 500 hPa", "'isobaricInhPa'")


def test_ambiguous_variables():
    ds = fm.cmip()
    ds = ds.assign(ta2=ds["ta"].copy())
    with pytest.raises(AmbiguousVariableError) as info:
        select_inputs(ds, [spec("t500", "air_temperature", "K", level=500)])
    has_all(str(info.value), "'t500'", "'ta'", "'ta2'", "variables={'t500': 'ta'}")
    out = select_inputs(ds, [spec("t500", "air_temperature", "K", level=500)], {"t500": "ta2"})
    assert out["t500"].name == "ta2"


def test_override_errors():
    ds = fm.cmip()
    with pytest.raises(InputErrors) as info:
        select_inputs(ds, [spec("t2m", "air_temperature", "K")], {"t2m": "taz", "bogus": "ta"})
    text = str(info.value)
    has_all(text, "'taz'", "did you mean", "'bogus' is not an input", "['t2m']")


def test_dataarray_input_single_spec():
    da = fm.era5_cfgrib()["t"]
    out = select_inputs(da, [spec("t500", "air_temperature", "K", level=500)])
    np.testing.assert_array_equal(out["t500"].values, da.sel(isobaricInhPa=500).values)
    plain = fm.cmip()["tas"].rename("whatever")
    assert select_inputs(plain, [spec("x", "y", "K")])["x"] is plain


def test_unnamed_dataarray_with_several_inputs():
    da = xr.DataArray(np.zeros(2), dims="x")
    with pytest.raises(MissingVariableError, match="pass a Dataset"):
        select_inputs(da, [spec("a", "a", "1"), spec("b", "b", "1")])


def test_renamed_variable_with_right_standard_name_gives_same_answer():
    ds = fm.cmip()
    specs = [spec("t500", "air_temperature", "K", level=500), spec("t2m", "air_temperature", "K")]
    a = select_inputs(ds, specs)
    b = select_inputs(ds.rename({"ta": "temperature", "tas": "surface_t"}), specs)
    for key in a:
        np.testing.assert_array_equal(a[key].values, b[key].values)


# ---------------------------------------------------------------------------------------------
# standardise_grid
# ---------------------------------------------------------------------------------------------


def test_descending_latitude_flipped():
    da = fm.era5_cfgrib()["t2m"]
    with unchanged(da):
        out = standardise_grid(da)
    lat = out["latitude"].values
    assert (np.diff(lat) > 0).all()
    assert out["latitude"].attrs == da["latitude"].attrs
    xr.testing.assert_identical(out, da.sortby("latitude"))


def test_longitudes_0_360_to_minus180_180_and_back():
    lon = np.arange(0.0, 360.0, 30.0)
    da = xr.DataArray(
        np.arange(24.0).reshape(2, 12),
        dims=("lat", "lon"),
        coords={"lat": [0.0, 1.0], "lon": ("lon", lon, {"units": "degrees_east"})},
        name="t",
    )
    out = standardise_grid(da, longitudes="-180..180")
    np.testing.assert_array_equal(out.lon.values, np.arange(-180.0, 180.0, 30.0))
    assert float(out.sel(lon=-30.0, lat=1.0)) == float(da.sel(lon=330.0, lat=1.0))
    assert out.lon.attrs == {"units": "degrees_east"}
    back = standardise_grid(out, longitudes="0..360")
    xr.testing.assert_identical(back, da)


def test_longitude_convention_from_spec():
    assert longitude_convention(fm.CWA_COARSE_GRID) is None
    assert longitude_convention(latlon_grid(0, 2, 350.0, 4, 5.0)) == "0..360"
    assert longitude_convention(latlon_grid(0, 2, -10.0, 4, 5.0)) == "-180..180"
    assert (
        longitude_convention(
            {"y": {"size": 1, "start": 0, "step": 1}, "x": {"size": 1, "start": -5, "step": 1}}
        )
        is None
    )


def test_2d_longitudes_wrapped():
    ds = fm.wrf_like()
    ds = ds.assign_coords(XLONG=ds.XLONG - 240.0)  # around -122..-121
    out = standardise_grid(ds["T2"], longitudes="0..360", allow_nonfinite=True)
    assert (out.XLONG.values > 0).all()
    np.testing.assert_allclose(out.XLONG.values, ds.XLONG.values + 360.0)


def test_non_monotonic_coordinate_error():
    da = xr.DataArray(
        np.zeros((3, 2)),
        dims=("lat", "lon"),
        name="t2m",
        coords={"lat": [0.0, 2.0, 1.0], "lon": [0.0, 1.0]},
    )
    with pytest.raises(GridError) as info:
        standardise_grid(da)
    has_all(str(info.value), "'lat'", "'t2m'", "not monotonic", "sortby('lat')")


def test_duplicated_coordinate_error():
    da = xr.DataArray(
        np.zeros((2, 3)),
        dims=("lat", "lon"),
        name="t2m",
        coords={"lat": [0.0, 1.0], "lon": [0.0, 1.0, 1.0]},
    )
    with pytest.raises(GridError) as info:
        standardise_grid(da)
    has_all(str(info.value), "'lon'", "'t2m'", "duplicated", "drop_duplicates('lon')")


def test_longitude_duplicates_after_wrapping():
    da = xr.DataArray(
        np.zeros((2, 3)),
        dims=("lat", "lon"),
        name="t",
        coords={"lat": [0.0, 1.0], "lon": [0.0, 180.0, 360.0]},
    )
    with pytest.raises(GridError, match="0 and 360"):
        standardise_grid(da, longitudes="0..360")


def test_zero_size_dim_error():
    da = fm.era5_cfgrib()["t2m"].isel(time=slice(0, 0))
    with pytest.raises(InvalidValuesError) as info:
        standardise_grid(da)
    has_all(str(info.value), "'time'", "size 0", "'t2m'")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_inf_error(bad):
    da = fm.era5_cfgrib()["t2m"].copy()
    da[0, 3, 4] = bad
    with pytest.raises(InvalidValuesError) as info:
        standardise_grid(da)
    has_all(str(info.value), "'t2m'", "1 NaN or inf", "fillna")
    assert standardise_grid(da, allow_nonfinite=True).shape == da.shape


def test_nan_in_dask_input_raises_on_compute_only():
    da = fm.era5_cfgrib()["t2m"].copy()
    da[1, 0, 0] = np.nan
    lazy = da.chunk({"time": 1})
    with dask.config.set(scheduler=_raise_on_compute):
        out = standardise_grid(lazy)
    assert isinstance(out.data, dask.array.Array)
    out.isel(time=0).compute()  # the clean chunk computes fine
    with pytest.raises(InvalidValuesError, match="'t2m'"):
        out.compute()


@pytest.mark.parametrize(
    ("values", "kind"),
    [
        (np.array([["a", "b"]]), "string"),
        (np.array([[True, False]]), "boolean"),
        (np.array([[1 + 1j, 2]]), "complex"),
    ],
)
def test_non_numeric_dtype_error(values, kind):
    da = xr.DataArray(
        values, dims=("lat", "lon"), name="flag", coords={"lat": [0.0], "lon": [0.0, 1.0]}
    )
    with pytest.raises(InvalidValuesError) as info:
        standardise_grid(da)
    has_all(str(info.value), "'flag'", kind, "astype('float32')")


def test_several_problems_of_one_variable_at_once():
    da = xr.DataArray(
        np.array([[np.nan, 1.0, 2.0]]),
        dims=("lat", "lon"),
        name="t",
        coords={"lat": [0.0], "lon": [0.0, 2.0, 1.0]},
    )
    with pytest.raises(InputErrors) as info:
        standardise_grid(da.isel(lat=slice(0, 0)))
    assert len(info.value.exceptions) == 2  # empty dim and non-monotonic lon


@given(
    cf_dataarrays(
        kind=("latlon1d", "projection"), descending=True, transpose=True, extra_attrs=True
    )
)
def test_standardise_is_a_sort_and_never_mutates(da):
    grid = find_spatial_grid(da)
    with unchanged(da):
        out = standardise_grid(da)
    assert_unchanged(da.sortby([grid.y_name, grid.x_name]), out)  # deep equality


# ---------------------------------------------------------------------------------------------
# match_grid
# ---------------------------------------------------------------------------------------------


def test_grid_spec_format():
    norm = normalise_grid_spec(fm.CWA_COARSE_GRID)
    assert norm["geographic"]
    assert norm["y"]["name"] == "lat"
    coords = grid_spec_coords(fm.CWA_COARSE_GRID)
    assert list(coords) == ["lat", "lon"]
    assert coords["lat"].size == 36
    assert coords["lat"].values[-1] == pytest.approx(28.0)
    assert coords["lon"].attrs == {
        "axis": "X",
        "standard_name": "longitude",
        "units": "degrees_east",
    }
    with pytest.raises(ValueError, match="lacks \\['step'\\]"):
        normalise_grid_spec(
            {"y": {"size": 2, "start": 0.0}, "x": {"size": 2, "start": 0, "step": 1}}
        )
    with pytest.raises(ValueError, match="needs a 'y' and an 'x'"):
        normalise_grid_spec({"y": {"size": 2, "start": 0.0, "step": 1.0}})
    with pytest.raises(ValueError, match="step > 0"):
        normalise_grid_spec(latlon_grid(0, 2, 0, 2, -1.0))


def _field_on(lat, lon, name="f"):
    la, lo = np.meshgrid(lat, lon, indexing="ij")
    return xr.DataArray(
        (2.0 * la - 0.5 * lo + 3.0)[None],
        dims=("time", "lat", "lon"),
        coords={
            "time": [0],
            "lat": ("lat", lat, {"units": "degrees_north"}),
            "lon": ("lon", lon, {"units": "degrees_east"}),
        },
        name=name,
        attrs={"units": "K"},
    )


def test_exact_match_passes_and_renames():
    da = _field_on(np.arange(10.0, 12.01, 0.5), np.arange(100.0, 101.01, 0.5))
    da = da.rename(lat="latitude", lon="longitude")
    target = latlon_grid(10.0, 5, 100.0, 3, 0.5)
    with unchanged(da):
        out, note = match_grid(da, target)
    assert note is None
    assert out.dims == ("time", "lat", "lon")
    np.testing.assert_array_equal(out.values, da.values)
    assert out.lat.attrs["standard_name"] == "latitude"
    np.testing.assert_array_equal(out.lat.values, grid_spec_coords(target)["lat"].values)


def test_larger_domain_is_cut_with_a_note():
    da = _field_on(np.arange(0.0, 10.01, 0.25), np.arange(90.0, 110.01, 0.25))
    target = latlon_grid(2.0, 5, 95.0, 8, 0.25)
    out, note = match_grid(da, target)
    expected = da.sel(lat=slice(2.0, 3.0), lon=slice(95.0, 96.75))
    np.testing.assert_array_equal(out.values, expected.values)
    has_all(note, "cut", "lat 2..3", "lon 95..96.75", "of 41")


def test_other_spacing_refused_with_both_spacings_and_hint():
    da = _field_on(np.arange(0.0, 10.01, 0.5), np.arange(90.0, 110.01, 0.5), name="t2m")
    target = latlon_grid(2.0, 5, 95.0, 8, 0.25)
    with pytest.raises(InputErrors) as info:
        match_grid(da, target)
    first = str(info.value.exceptions[0])
    has_all(first, "'t2m'", "spacing 0.5", "spacing 0.25", "'lat'", "regrid='bilinear'")
    coarse = latlon_grid(2.0, 3, 95.0, 3, 1.0)
    with pytest.raises(InputErrors, match=r"coarsen\(lat=2\)"):
        match_grid(da, coarse)


def test_bilinear_regrid_is_exact_on_linear_fields_and_lazy():
    da = _field_on(np.arange(0.0, 10.01, 0.5), np.arange(90.0, 110.01, 0.5))
    target = latlon_grid(2.1, 7, 95.3, 9, 0.25)
    out, note = match_grid(da, target, regrid="bilinear")
    la, lo = np.meshgrid(
        grid_spec_coords(target)["lat"], grid_spec_coords(target)["lon"], indexing="ij"
    )
    np.testing.assert_allclose(out.values[0], 2.0 * la - 0.5 * lo + 3.0, rtol=1e-12)
    has_all(note, "bilinear", "from spacing 0.5 to 0.25")
    with dask.config.set(scheduler=_raise_on_compute):
        lazy, _ = match_grid(da.chunk(), target, regrid="bilinear")
    assert isinstance(lazy.data, dask.array.Array)
    np.testing.assert_allclose(lazy.compute().values, out.values)


def test_smaller_domain_refused():
    da = _field_on(np.arange(0.0, 2.01, 0.25), np.arange(90.0, 110.01, 0.25), name="u")
    target = latlon_grid(1.0, 9, 95.0, 4, 0.25)
    with pytest.raises(GridError) as info:
        match_grid(da, target)
    has_all(str(info.value), "'u'", "covers 0..2", "1..3", "'lat'")
    with pytest.raises(GridError, match="covers"):
        match_grid(da, target, regrid="bilinear")


def test_shifted_points_refused():
    da = _field_on(np.arange(0.1, 3.0, 0.25), np.arange(90.0, 92.0, 0.25))
    with pytest.raises(GridError, match="shifted"):
        match_grid(da, latlon_grid(0.5, 4, 90.0, 4, 0.25))


def test_projection_in_km_against_card_in_m():
    da = fm.projected_with_latlon()["tas"]
    target = {
        "y": {
            "name": "y",
            "size": 4,
            "start": 104000.0,
            "step": 2000.0,
            "units": "m",
            "standard_name": "projection_y_coordinate",
        },
        "x": {
            "name": "x",
            "size": 10,
            "start": -50000.0,
            "step": 2000.0,
            "units": "m",
            "standard_name": "projection_x_coordinate",
        },
    }
    out, note = match_grid(da, target)
    assert out.sizes == {"time": 1, "y": 4, "x": 10}
    np.testing.assert_array_equal(out.values, da.isel(y=slice(2, 6)).values)
    assert out.y.attrs["units"] == "m"
    assert "lat" in out.coords  # 2-D aux coordinates are cut along
    assert note is not None


def test_curvilinear_and_kind_mismatch_refused():
    wrf = fm.wrf_like()["T2"]
    with pytest.raises(GridError, match=r"curvilinear.*xESMF"):
        match_grid(wrf, fm.CWA_COARSE_GRID)
    proj = fm.projected_with_latlon()["tas"]
    with pytest.raises(GridError, match=r"projection .* but the model needs a latitude/longitude"):
        match_grid(proj, fm.CWA_COARSE_GRID)


def test_transposed_input_gives_same_answer():
    da = _field_on(np.arange(0.0, 5.01, 0.25), np.arange(90.0, 95.01, 0.25))
    target = latlon_grid(1.0, 5, 91.0, 6, 0.25)
    a, _ = match_grid(da, target)
    b, _ = match_grid(da.transpose("lon", "time", "lat"), target)
    assert b.dims == ("time", "lat", "lon")
    xr.testing.assert_identical(a, b)


# ---------------------------------------------------------------------------------------------
# prepare_fields: the whole sequence
# ---------------------------------------------------------------------------------------------


def test_prepare_era5_cfgrib_for_cwa():
    ds = fm.era5_cfgrib()
    with unchanged(ds):
        prepared = prepare_fields(ds, fm.CWA_INPUTS, fm.CWA_COARSE_GRID)
    assert set(prepared.arrays) == {s["name"] for s in fm.CWA_INPUTS}
    for key, da in prepared.arrays.items():
        assert da.dims == ("time", "lat", "lon"), key
        assert da.shape == (2, 36, 41)
    t500 = prepared.arrays["t500"]
    expected = ds["t"].sel(
        isobaricInhPa=500, latitude=slice(28.0, 19.25), longitude=slice(116.0, 126.0)
    )
    np.testing.assert_array_equal(t500.values, expected.values[:, ::-1, :])
    assert len(prepared.notes) == 1
    assert "cut" in prepared.notes[0]


def test_prepare_dask_stays_lazy_and_equals_eager():
    ds = fm.era5_cfgrib()
    eager = prepare_fields(ds, fm.CWA_INPUTS, fm.CWA_COARSE_GRID)
    with dask.config.set(scheduler=_raise_on_compute):
        lazy = prepare_fields(ds.chunk({"time": 1}), fm.CWA_INPUTS, fm.CWA_COARSE_GRID)
    for key in eager.arrays:
        assert isinstance(lazy.arrays[key].data, dask.array.Array)
        xr.testing.assert_identical(lazy.arrays[key].compute(), eager.arrays[key])


def test_prepare_invariant_to_units_renames_and_transposes():
    ds = fm.cmip()
    specs = [spec("t500", "air_temperature", "K", level=500), spec("t2m", "air_temperature", "K")]
    grid = latlon_grid(-27.5, 4, -15.0, 5, 2.5)
    base = prepare_fields(ds, specs, grid).arrays
    other = ds.rename({"ta": "temp", "tas": "tsurf"})
    other["tsurf"] = convert(other["tsurf"], "degC")
    other = other.transpose("lon", "lat", "plev", "time", ...)
    other = other.assign_coords(lon=other.lon % 360.0).sortby("lon")  # 0..360 convention
    got = prepare_fields(other, specs, grid).arrays
    for key in base:
        assert got[key].dims == base[key].dims
        np.testing.assert_allclose(got[key].values, base[key].values, rtol=1e-6)


def test_prepare_reports_all_value_problems_across_variables():
    ds = fm.cmip()
    ds["ta"] = ds["ta"].where(ds.lat > -25)  # NaN in the domain
    ds["tas"] = ds["tas"].astype(bool)
    specs = [spec("t500", "air_temperature", "K", level=500), spec("t2m", "air_temperature", "K")]
    with pytest.raises(InputErrors) as info:
        prepare_fields(ds, specs, latlon_grid(-27.5, 4, -15.0, 5, 2.5))
    text = str(info.value)
    has_all(text, "'t500'", "NaN", "'t2m'", "boolean")


@given(
    cf_datasets(
        kind=("latlon1d", "projection"),
        descending=True,
        transpose=True,
        extra_dims=("time", "case"),
    )
)
def test_prepare_follows_the_card_for_arbitrary_datasets(ds):
    specs = [
        {
            "name": f"in_{name}",
            **{k: ds[name].attrs[k] for k in ("standard_name", "units", "long_name")},
        }
        for name in ds.data_vars
    ]
    grid = find_spatial_grid(ds)
    axes = {}
    for role, cname in (("y", grid.y_name), ("x", grid.x_name)):
        values = np.sort(ds[cname].values)
        axes[role] = {
            "name": role,
            "size": values.size,
            "start": float(values[0]),
            "step": float(values[1] - values[0]),
            "standard_name": ds[cname].attrs["standard_name"],
            "units": ds[cname].attrs["units"],
        }
    with unchanged(ds):
        prepared = prepare_fields(ds, specs, axes)
    for s, name in zip(specs, ds.data_vars, strict=True):
        out = prepared.arrays[s["name"]]
        passthrough = [d for d in ds[name].dims if d not in grid.dims]
        assert out.dims == (*passthrough, "y", "x")
        for d in passthrough:
            xr.testing.assert_identical(out[d], ds[d])
        assert out.attrs["units"] == s["units"]
        expected = ds[name].sortby([grid.y_name, grid.x_name]).transpose(*passthrough, *grid.dims)
        np.testing.assert_array_equal(out.values, expected.values)
    assert prepared.notes == []
