"""Training presets, the CLI around them, and every method end to end through the xarray API."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from fixtures_messy import era5_cfgrib

import xsfm
from xsfm.cli import main as cli_main
from xsfm.models.downscaling import METHODS
from xsfm.training.presets import parse_overrides, run_preset


def _cwa_miniature(path, ntime=6):
    """CWA-shaped data: cfgrib-style ERA5 inputs (group era5) and the 4 outputs (group cwa)."""
    era5 = era5_cfgrib(lat=(21.0, 19.25), lon=(116.0, 118.25), ntime=ntime)
    rng = np.random.default_rng(0)
    ny, nx = 4 * era5.sizes["latitude"], 4 * era5.sizes["longitude"]
    card = xsfm.load_model("cwa-2km").card
    coords = {
        "time": era5["time"].values,
        "y": (
            "y",
            2000.0 * np.arange(ny),
            {"axis": "Y", "units": "m", "standard_name": "projection_y_coordinate"},
        ),
        "x": (
            "x",
            2000.0 * np.arange(nx),
            {"axis": "X", "units": "m", "standard_name": "projection_x_coordinate"},
        ),
    }
    base = {"dBZ": 10.0, "K": 290.0, "m s-1": 0.0}
    cwa = xr.Dataset(
        {
            spec["name"]: (
                ("time", "y", "x"),
                (base[spec["units"]] + rng.normal(size=(ntime, ny, nx))).astype("f4"),
                {k: spec[k] for k in ("standard_name", "units", "long_name")},
            )
            for spec in card.outputs
        },
        coords=coords,
    )
    era5.to_netcdf(path, group="era5", mode="w")
    cwa.to_netcdf(path, group="cwa", mode="a")
    return era5


def test_cwa_preset_miniature_trains_saves_loads_downscales(tmp_path):
    data = tmp_path / "cwa-mini.nc"
    era5 = _cwa_miniature(data)
    out = tmp_path / "cwa-model"
    code = cli_main(
        [
            "train",
            "sfm",
            "--preset",
            "cwa-2km",
            "--data",
            str(data),
            "--out",
            str(out),
            "--steps",
            "2",
            "--set",
            "model_channels=8",
            "--set",
            "songunet_channel_mult=[1, 2]",
            "--set",
            "attn_resolutions=[]",
            "--set",
            "num_blocks=1",
            "--set",
            "batch_size=2",
        ]
    )
    assert code == 0
    model = xsfm.load_model(out)
    assert model.card.name == "cwa-2km-sfm"
    # the flow network has PhysicsNeMo's SongUNet layout (the CorrDiff/SFM papers' network)
    assert model.card.network["unet"]["backbone"] == "songunet"
    keys = model.network("cpu").state_dict()
    assert "net.model.map_noise.freqs" in keys and "net.model.enc.32x32_conv.weight" in keys
    assert model.card.input_names == xsfm.load_model("cwa-2km").card.input_names
    assert "xsfm train sfm --preset cwa-2km" in model.card.training["command"]
    fine = era5.isel(time=[0]).sfm.downscale(model=out, members=2, steps=2)
    assert list(fine.data_vars) == ["maximum_radar_reflectivity", "t2m", "u10m", "v10m"]
    assert fine["maximum_radar_reflectivity"].attrs["units"] == "dBZ"
    assert fine["t2m"].attrs["units"] == "K"
    assert fine["t2m"].dims == ("member", "time", "y", "x")
    assert fine.sizes["y"] == 4 * era5.sizes["latitude"]
    assert np.isfinite(fine["t2m"].values).all()


def test_cwa_preset_needs_data(tmp_path):
    with pytest.raises(ValueError, match="needs --data"):
        run_preset("sfm", "cwa-2km", out=tmp_path / "m")


def test_unknown_preset_and_option(tmp_path):
    with pytest.raises(ValueError, match="unknown preset"):
        run_preset("sfm", "mars", out=tmp_path / "m")
    with pytest.raises(KeyError, match="unknown option"):
        run_preset("sfm", "kolmogorov", out=tmp_path / "m", overrides={"colour": "red"})


def test_parse_overrides_types():
    assert parse_overrides({"a": "1", "b": "x", "c": "[1, 2]", "d": "null"}) == {
        "a": 1,
        "b": "x",
        "c": [1, 2],
        "d": None,
    }


def _pairs(n=8):
    rng = np.random.default_rng(0)

    def grid(size):
        v = (np.arange(size) + 0.5) * 2 * np.pi / size
        return {
            "y": ("y", v, {"axis": "Y", "units": "m"}),
            "x": ("x", v, {"axis": "X", "units": "m"}),
        }

    attrs = {
        "units": "s-1",
        "standard_name": "atmosphere_relative_vorticity",
        "long_name": "vorticity",
    }
    c = xr.Dataset(
        {"w": (("sample", "y", "x"), rng.normal(size=(n, 4, 4)).astype("f4"), attrs)},
        coords=grid(4),
    )
    # the fine truth in other units than the input: the output must follow the card (fine units)
    f = xr.Dataset(
        {
            "w": (
                ("sample", "y", "x"),
                rng.normal(size=(n, 8, 8)).astype("f4"),
                {**attrs, "units": "h-1"},
            )
        },
        coords=grid(8),
    )
    return c, f


@pytest.mark.parametrize("method", METHODS)
def test_every_method_downscales_with_card_units_and_members(method, tmp_path):
    coarse, fine = _pairs()
    model = xsfm.training.fit_downscaler(
        coarse,
        fine,
        method=method,
        steps=2,
        batch_size=4,
        progress=False,
        periodic=True,
        network={"unet": {"channels": 8, "channel_mult": [1]}},
    )
    path = model.save(tmp_path / method)
    out = coarse.isel(sample=[0, 1]).sfm.downscale(model=str(path), members=3, steps=2)
    assert out["w"].dims == ("member", "sample", "y", "x")
    assert out.sizes["member"] == 3 and out.sizes["x"] == 8
    assert out["w"].attrs["units"] == model.card.outputs[0]["units"] == "h-1"
    assert method in out.attrs["source"]
    spread = float(out["w"].std("member").mean())
    if method == "regression":
        assert spread < 1e-6  # deterministic: members equal up to float rounding
    else:
        assert spread > 0.0


def test_fit_downscaler_errors_name_the_problem():
    coarse, fine = _pairs()
    with pytest.raises(ValueError, match="not an integer multiple"):
        xsfm.training.fit_downscaler(coarse, fine.isel(x=slice(0, 7)), steps=1, progress=False)
    bad = coarse.copy()
    bad["w"] = bad["w"].copy()
    bad["w"].attrs = {}
    with pytest.raises(ValueError, match="'w' has no 'units'"):
        xsfm.training.fit_downscaler(bad, fine, steps=1, progress=False)
    with pytest.raises(ValueError, match="fine has 8 entries along 'sample' but coarse has 4"):
        xsfm.training.fit_downscaler(coarse.isel(sample=slice(0, 4)), fine, steps=1, progress=False)


def test_cli_models_lists_shipped(capsys):
    assert cli_main(["models"]) == 0
    out = capsys.readouterr().out
    assert "interpolation" in out and "cwa-2km" in out and "weights missing" in out


def test_cli_downscale_netcdf_round_trip(tmp_path, capsys):
    coarse = xsfm.load_model("interpolation").example_input()
    coarse.to_netcdf(tmp_path / "in.nc")
    assert (
        cli_main(
            [
                "downscale",
                str(tmp_path / "in.nc"),
                str(tmp_path / "out.nc"),
                "--model",
                "interpolation",
                "--members",
                "2",
            ]
        )
        == 0
    )
    with xr.open_dataset(tmp_path / "out.nc") as out:
        assert out["tas"].attrs["units"] == "K"
        assert out.sizes["member"] == 2


def test_cli_reports_bad_input_without_traceback(tmp_path, capsys):
    assert (
        cli_main(
            [
                "downscale",
                str(tmp_path / "missing.nc"),
                str(tmp_path / "o.nc"),
                "--model",
                "interpolation",
            ]
        )
        == 2
    )
    assert "xsfm downscale" in capsys.readouterr().err


def test_sfm_loss_options_are_checked_before_any_data_is_made(tmp_path):
    with pytest.raises(ValueError, match="encoder_flow_grad must be true or false"):
        run_preset(
            "sfm", "kolmogorov", out=tmp_path / "m", overrides={"encoder_flow_grad": "False"}
        )
    with pytest.raises(ValueError, match="not of 'regression'"):
        run_preset("regression", "kolmogorov", out=tmp_path / "m", overrides={"lambda_reg": 1.0})
    with pytest.raises(ValueError, match="lambda_reg must be a number >= 0"):
        run_preset("sfm", "kolmogorov", out=tmp_path / "m", overrides={"lambda_reg": -1})
    assert not (tmp_path / "m").exists()
