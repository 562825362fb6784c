"""Datasets with the metadata real producers write, built here (nothing is downloaded).

* :func:`era5_cfgrib` -- ERA5 pressure and single levels as cfgrib opens GRIB: ``isobaricInhPa``
  (descending 1000..500 hPa), ``latitude`` 90 -> -90 (descending), ``longitude`` 0..360,
  ``GRIB_*`` attributes, ``units: m**2 s**-2``, ``standard_name: unknown`` on surface fields,
  ``number``/``step``/``valid_time`` scalar coordinates.
* :func:`era5_netcdf` -- ERA5 from the CDS as netCDF: ``level`` in ``millibars``, no
  ``standard_name`` on variables, ``units: K``/``m s**-1``/``(0 - 1)``.
* :func:`cmip` -- CMIP6-like: ``plev`` in Pa, ``lat``/``lon`` with bounds, ``ta``/``ua``/``zg``
  (geopotential height in m), ``tas``/``uas`` with a scalar ``height`` coordinate.
* :func:`gfs_like` -- GFS-like geopotential height in ``gpm``, temperature in ``degK``, humidity in
  ``percent``, ``lat``/``lon`` without attributes (found by name).
* :func:`wrf_like` -- WRF-like curvilinear grid: dims ``south_north``/``west_east`` with 2-D
  ``XLAT``/``XLONG`` coordinates and ``units: degK``/``m s-1``.
* :func:`projected_with_latlon` -- a Lambert-conformal-like grid: 1-D ``x``/``y`` in km with CF
  attributes and 2-D ``lat``/``lon`` auxiliary coordinates.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

LEVELS_HPA = np.array([1000.0, 850.0, 500.0])


def _field(shape: tuple[int, ...], base: float, spread: float, seed: int, dtype: str) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (base + spread * rng.standard_normal(shape)).astype(dtype)


def _grib_attrs(short: str, name: str, units: str, cf: str, type_of_level: str) -> dict:
    return {
        "GRIB_paramId": 0,
        "GRIB_dataType": "an",
        "GRIB_numberOfPoints": 0,
        "GRIB_typeOfLevel": type_of_level,
        "GRIB_stepUnits": 1,
        "GRIB_stepType": "instant",
        "GRIB_gridType": "regular_ll",
        "GRIB_NV": 0,
        "GRIB_cfName": cf,
        "GRIB_cfVarName": {"2t": "t2m", "10u": "u10", "10v": "v10"}.get(short, short),
        "GRIB_gridDefinitionDescription": "Latitude/Longitude Grid",
        "GRIB_iDirectionIncrementInDegrees": 0.25,
        "GRIB_jDirectionIncrementInDegrees": 0.25,
        "GRIB_missingValue": 3.4028234663852886e38,
        "GRIB_name": name,
        "GRIB_shortName": short,
        "GRIB_units": units,
        "long_name": name,
        "units": units,
        "standard_name": cf,
    }


def era5_cfgrib(
    lat: tuple[float, float] = (30.0, 17.0),
    lon: tuple[float, float] = (114.0, 128.0),
    step: float = 0.25,
    ntime: int = 2,
) -> xr.Dataset:
    """ERA5 pressure-level and single-level fields as cfgrib writes them (0.25 deg by default)."""
    lats = np.arange(lat[0], lat[1] - step / 2, -step)  # descending, as stored in GRIB
    lons = np.arange(lon[0], lon[1] + step / 2, step)
    ny, nx = lats.size, lons.size
    shape3 = (ntime, LEVELS_HPA.size, ny, nx)
    shape2 = (ntime, ny, nx)
    dims3 = ("time", "isobaricInhPa", "latitude", "longitude")
    dims2 = ("time", "latitude", "longitude")
    pl = "isobaricInhPa"
    data_vars = {
        "z": (
            dims3,
            _field(shape3, 5.5e4, 3e3, 1, "float32"),
            _grib_attrs("z", "Geopotential", "m**2 s**-2", "geopotential", pl),
        ),
        "t": (
            dims3,
            _field(shape3, 260.0, 10.0, 2, "float32"),
            _grib_attrs("t", "Temperature", "K", "air_temperature", pl),
        ),
        "u": (
            dims3,
            _field(shape3, 5.0, 8.0, 3, "float32"),
            _grib_attrs("u", "U component of wind", "m s**-1", "eastward_wind", pl),
        ),
        "v": (
            dims3,
            _field(shape3, 0.0, 8.0, 4, "float32"),
            _grib_attrs("v", "V component of wind", "m s**-1", "northward_wind", pl),
        ),
        "r": (
            dims3,
            _field(shape3, 60.0, 10.0, 5, "float32"),
            _grib_attrs("r", "Relative humidity", "%", "relative_humidity", pl),
        ),
        "t2m": (
            dims2,
            _field(shape2, 295.0, 5.0, 6, "float32"),
            _grib_attrs("2t", "2 metre temperature", "K", "unknown", "surface"),
        ),
        "u10": (
            dims2,
            _field(shape2, 2.0, 3.0, 7, "float32"),
            _grib_attrs("10u", "10 metre U wind component", "m s**-1", "unknown", "surface"),
        ),
        "v10": (
            dims2,
            _field(shape2, 1.0, 3.0, 8, "float32"),
            _grib_attrs("10v", "10 metre V wind component", "m s**-1", "unknown", "surface"),
        ),
        "tcwv": (
            dims2,
            _field(shape2, 40.0, 5.0, 9, "float32"),
            _grib_attrs(
                "tcwv",
                "Total column vertically-integrated water vapour",
                "kg m**-2",
                "unknown",
                "entireAtmosphere",
            ),
        ),
    }
    coords = {
        "number": (
            (),
            0,
            {
                "long_name": "ensemble member numerical id",
                "units": "1",
                "standard_name": "realization",
            },
        ),
        "time": (
            "time",
            np.datetime64("2021-09-01T00", "ns") + np.arange(ntime) * np.timedelta64(1, "h"),
            {"long_name": "initial time of forecast", "standard_name": "forecast_reference_time"},
        ),
        "step": (
            (),
            np.timedelta64(0, "ns"),
            {"long_name": "time since forecast_reference_time", "standard_name": "forecast_period"},
        ),
        pl: (
            pl,
            LEVELS_HPA,
            {
                "long_name": "pressure",
                "units": "hPa",
                "positive": "down",
                "stored_direction": "decreasing",
                "standard_name": "air_pressure",
            },
        ),
        "latitude": (
            "latitude",
            lats,
            {
                "units": "degrees_north",
                "standard_name": "latitude",
                "long_name": "latitude",
                "stored_direction": "decreasing",
            },
        ),
        "longitude": (
            "longitude",
            lons,
            {"units": "degrees_east", "standard_name": "longitude", "long_name": "longitude"},
        ),
    }
    attrs = {
        "GRIB_edition": 1,
        "GRIB_centre": "ecmf",
        "GRIB_centreDescription": "European Centre for Medium-Range Weather Forecasts",
        "GRIB_subCentre": 0,
        "Conventions": "CF-1.7",
        "institution": "European Centre for Medium-Range Weather Forecasts",
        "history": "2024-01-01T00:00 GRIB to CDM+CF via cfgrib-0.9.10.4/ecCodes-2.30.0",
    }
    ds = xr.Dataset(data_vars, coords=coords, attrs=attrs)
    for name in ds.data_vars:
        ds[name].encoding.update({"dtype": "float32", "source": "era5.grib"})
    return ds


def era5_netcdf(step: float = 0.25) -> xr.Dataset:
    """ERA5 as the CDS writes netCDF (older API): ``level`` in millibars, 0..360 longitudes."""
    lats = np.arange(28.0, 19.25 - step / 2, -step)
    lons = np.arange(112.0, 130.0 + step / 2, step)
    shape = (1, 2, lats.size, lons.size)
    dims = ("time", "level", "latitude", "longitude")
    return xr.Dataset(
        {
            "t": (
                dims,
                _field(shape, 260.0, 5.0, 11, "float64"),
                {"units": "K", "long_name": "Temperature"},
            ),
            "u": (
                dims,
                _field(shape, 3.0, 5.0, 12, "float64"),
                {"units": "m s**-1", "long_name": "U component of wind"},
            ),
            "lcc": (
                dims[:1] + dims[2:],
                _field((1, lats.size, lons.size), 0.5, 0.1, 13, "float64"),
                {"units": "(0 - 1)", "long_name": "Low cloud cover"},
            ),
        },
        coords={
            "time": ("time", [np.datetime64("2021-09-01T00", "ns")], {"long_name": "time"}),
            "level": (
                "level",
                np.array([850, 500], dtype="int32"),
                {"units": "millibars", "long_name": "pressure_level"},
            ),
            "latitude": ("latitude", lats, {"units": "degrees_north", "long_name": "latitude"}),
            "longitude": ("longitude", lons, {"units": "degrees_east", "long_name": "longitude"}),
        },
        attrs={"Conventions": "CF-1.6", "history": "2024-01-01 CDS"},
    )


def cmip(nlat: int = 12, nlon: int = 16) -> xr.Dataset:
    """CMIP6-like atmosphere: ``plev`` in Pa (descending), lat/lon with bounds, -180..180 lon."""
    lat = -30.0 + 2.5 * np.arange(nlat)
    lon = -20.0 + 2.5 * np.arange(nlon)
    plev = np.array([100000.0, 85000.0, 50000.0, 25000.0])
    shape = (1, plev.size, nlat, nlon)
    dims = ("time", "plev", "lat", "lon")
    ds = xr.Dataset(
        {
            "ta": (
                dims,
                _field(shape, 250.0, 10.0, 21, "float32"),
                {
                    "standard_name": "air_temperature",
                    "long_name": "Air Temperature",
                    "units": "K",
                    "cell_methods": "time: mean",
                },
            ),
            "ua": (
                dims,
                _field(shape, 5.0, 5.0, 22, "float32"),
                {"standard_name": "eastward_wind", "long_name": "Eastward Wind", "units": "m s-1"},
            ),
            "zg": (
                dims,
                _field(shape, 5500.0, 100.0, 23, "float32"),
                {
                    "standard_name": "geopotential_height",
                    "long_name": "Geopotential Height",
                    "units": "m",
                },
            ),
            "tas": (
                ("time", "lat", "lon"),
                _field(shape[:1] + shape[2:], 288.0, 5.0, 24, "float32"),
                {
                    "standard_name": "air_temperature",
                    "long_name": "Near-Surface Air Temperature",
                    "units": "K",
                },
            ),
            "uas": (
                ("time", "lat", "lon"),
                _field(shape[:1] + shape[2:], 1.0, 2.0, 25, "float32"),
                {
                    "standard_name": "eastward_wind",
                    "long_name": "Eastward Near-Surface Wind",
                    "units": "m s-1",
                },
            ),
            "lat_bnds": (("lat", "bnds"), np.stack([lat - 1.25, lat + 1.25], axis=1)),
            "lon_bnds": (("lon", "bnds"), np.stack([lon - 1.25, lon + 1.25], axis=1)),
        },
        coords={
            "time": (
                "time",
                [np.datetime64("2000-01-16T12", "ns")],
                {"standard_name": "time", "axis": "T"},
            ),
            "plev": (
                "plev",
                plev,
                {"standard_name": "air_pressure", "units": "Pa", "axis": "Z", "positive": "down"},
            ),
            "lat": (
                "lat",
                lat,
                {
                    "standard_name": "latitude",
                    "units": "degrees_north",
                    "axis": "Y",
                    "bounds": "lat_bnds",
                },
            ),
            "lon": (
                "lon",
                lon,
                {
                    "standard_name": "longitude",
                    "units": "degrees_east",
                    "axis": "X",
                    "bounds": "lon_bnds",
                },
            ),
            "height": (
                (),
                2.0,
                {"standard_name": "height", "units": "m", "axis": "Z", "positive": "up"},
            ),
        },
        attrs={"Conventions": "CF-1.7 CMIP-6.2", "source_id": "FAKE-ESM"},
    )
    return ds


def gfs_like() -> xr.Dataset:
    """GFS-like fields with messy units and coordinates lacking attributes (found by name)."""
    lat = np.arange(10.0, 20.1, 0.5)
    lon = np.arange(100.0, 110.1, 0.5)
    shape = (2, lat.size, lon.size)
    dims = ("lev", "lat", "lon")
    return xr.Dataset(
        {
            "gh": (
                dims,
                _field(shape, 5600.0, 50.0, 31, "float32"),
                {
                    "standard_name": "geopotential_height",
                    "units": "gpm",
                    "long_name": "Geopotential height",
                },
            ),
            "tmp": (
                dims,
                _field(shape, 265.0, 5.0, 32, "float32"),
                {"units": "degK", "long_name": "Temperature"},
            ),
            "rh": (
                dims,
                _field(shape, 50.0, 10.0, 33, "float32"),
                {"units": "percent", "long_name": "Relative humidity"},
            ),
            "wspd": (
                dims[1:],
                _field(shape[1:], 5.0, 1.0, 34, "float32"),
                {"units": "m/s", "long_name": "wind speed"},
            ),
        },
        coords={
            "lev": ("lev", [500.0, 850.0], {"units": "hPa"}),
            "lat": ("lat", lat),
            "lon": ("lon", lon),
        },
    )


def wrf_like(ny: int = 9, nx: int = 11) -> xr.Dataset:
    """WRF-like curvilinear output: 2-D XLAT/XLONG on south_north/west_east, no 1-D coords."""
    j, i = np.meshgrid(np.arange(nx), np.arange(ny))
    xlat = 20.0 + 0.09 * i + 0.01 * j
    xlong = 118.0 + 0.1 * j - 0.01 * i
    shape = (2, ny, nx)
    dims = ("Time", "south_north", "west_east")
    return xr.Dataset(
        {
            "T2": (
                dims,
                _field(shape, 298.0, 2.0, 41, "float32"),
                {
                    "units": "degK",
                    "description": "TEMP at 2 M",
                    "FieldType": 104,
                    "MemoryOrder": "XY ",
                    "stagger": "",
                },
            ),
            "U10": (
                dims,
                _field(shape, 2.0, 1.0, 42, "float32"),
                {"units": "m s-1", "description": "U at 10 M", "stagger": ""},
            ),
        },
        coords={
            "XLAT": (
                dims[1:],
                xlat,
                {
                    "units": "degree_north",
                    "description": "LATITUDE, SOUTH IS NEGATIVE",
                    "MemoryOrder": "XY ",
                    "stagger": "",
                },
            ),
            "XLONG": (
                dims[1:],
                xlong,
                {
                    "units": "degree_east",
                    "description": "LONGITUDE, WEST IS NEGATIVE",
                    "MemoryOrder": "XY ",
                    "stagger": "",
                },
            ),
            "XTIME": (
                "Time",
                np.array([0.0, 60.0], dtype="float32"),
                {"units": "minutes since 2021-09-01 00:00:00", "description": "minutes"},
            ),
        },
        attrs={"TITLE": " OUTPUT FROM WRF V4.4 MODEL", "MAP_PROJ": 1, "DX": 2000.0, "DY": 2000.0},
    )


def projected_with_latlon(ny: int = 8, nx: int = 10, step_km: float = 2.0) -> xr.Dataset:
    """A Lambert-like projected grid: 1-D x/y in km with CF attrs, 2-D lat/lon aux coordinates."""
    y = 100.0 + step_km * np.arange(ny)
    x = -50.0 + step_km * np.arange(nx)
    xx, yy = np.meshgrid(x, y)
    lat = 23.0 + yy / 111.0
    lon = 121.0 + xx / 102.0
    return xr.Dataset(
        {
            "tas": (
                ("time", "y", "x"),
                _field((1, ny, nx), 290.0, 3.0, 51, "float64"),
                {
                    "standard_name": "air_temperature",
                    "units": "K",
                    "long_name": "near-surface air temperature",
                    "grid_mapping": "crs",
                },
            ),
            "crs": (
                (),
                0,
                {
                    "grid_mapping_name": "lambert_conformal_conic",
                    "standard_parallel": [30.0, 60.0],
                    "longitude_of_central_meridian": 121.0,
                    "latitude_of_projection_origin": 23.0,
                },
            ),
        },
        coords={
            "time": ("time", [np.datetime64("2021-09-01T00", "ns")]),
            "y": ("y", y, {"standard_name": "projection_y_coordinate", "units": "km", "axis": "Y"}),
            "x": ("x", x, {"standard_name": "projection_x_coordinate", "units": "km", "axis": "X"}),
            "lat": (("y", "x"), lat, {"standard_name": "latitude", "units": "degrees_north"}),
            "lon": (("y", "x"), lon, {"standard_name": "longitude", "units": "degrees_east"}),
        },
    )


#: Card-like input specs of the Taiwan 25 km -> 2 km setting (ERA5 inputs of CorrDiff/SFM).
CWA_INPUTS = [
    {
        "name": "tcwv",
        "standard_name": "lwe_thickness_of_atmosphere_mass_content_of_water_vapor",
        "units": "kg m-2",
        "long_name": "total column water vapour",
        "aliases": ["tcwv"],
    },
    *[
        {
            "name": f"{short}{level}",
            "standard_name": sn,
            "units": units,
            "long_name": f"{long} at {level} hPa",
            "level": level,
            "level_units": "hPa",
            "aliases": [short],
        }
        for level in (500, 850)
        for short, sn, units, long in (
            ("z", "geopotential", "m2 s-2", "geopotential"),
            ("t", "air_temperature", "K", "air temperature"),
            ("u", "eastward_wind", "m s-1", "eastward wind"),
            ("v", "northward_wind", "m s-1", "northward wind"),
        )
    ],
    {
        "name": "t2m",
        "standard_name": "air_temperature",
        "units": "K",
        "long_name": "2 metre temperature",
        "aliases": ["2t", "tas"],
    },
    {
        "name": "u10m",
        "standard_name": "eastward_wind",
        "units": "m s-1",
        "long_name": "10 metre U wind component",
        "aliases": ["10u", "u10", "uas"],
    },
    {
        "name": "v10m",
        "standard_name": "northward_wind",
        "units": "m s-1",
        "long_name": "10 metre V wind component",
        "aliases": ["10v", "v10", "vas"],
    },
]

#: The 0.25 deg ERA5 grid over Taiwan of the cwa-2km card.
CWA_COARSE_GRID = {
    "lat": {
        "name": "lat",
        "size": 36,
        "start": 19.25,
        "step": 0.25,
        "units": "degrees_north",
        "standard_name": "latitude",
    },
    "lon": {
        "name": "lon",
        "size": 41,
        "start": 116.0,
        "step": 0.25,
        "units": "degrees_east",
        "standard_name": "longitude",
    },
}
