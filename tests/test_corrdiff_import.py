"""Importing a CorrDiff package: the model runs from xarray on a curvilinear grid with CF lat/lon.

The package is built here from the small PhysicsNeMo checkpoints of the ``taiwan`` fixture
(written by ``studies/corrdiff_fixtures.py`` with PhysicsNeMo itself; their equivalence is tested
in ``test_corrdiff_equivalence.py``) plus a small dataset zarr laid out as NVIDIA's package.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr

import xsfm
from xsfm.errors import WeightsMissingError
from xsfm.models.corrdiff_import import import_corrdiff
from xsfm.models.corrdiff_package import bilinear_latlon_map
from xsfm.nn.songunet import corrdiff_generate, positional_grid
from xsfm.sampling.rng import stream_generators

zarr = pytest.importorskip("zarr")
FIXTURE = Path(__file__).parent / "fixtures" / "corrdiff" / "taiwan"
LAT = np.linspace(20.0, 24.0, 9)  # coarse grid of the small case, 0.5 degree
LON = np.linspace(118.0, 123.0, 11)
IN_INDEX, OUT_INDEX = [0, 2, 3], [1, 2]


def _template(tmp: Path) -> Path:
    card = json.loads((Path(xsfm.__file__).parent / "models/shipped/cwa-2km/card.json").read_text())
    card["name"] = "tiny-corrdiff"
    card["inputs"] = card["inputs"][9:12]  # t2m, u10m, v10m
    card["outputs"] = card["outputs"][1:3]  # t2m, u10m
    path = tmp / "template" / "card.json"
    path.parent.mkdir()
    path.write_text(json.dumps(card))
    return path


def _package(tmp: Path, as_zip: bool = False) -> Path:
    root = tmp / "corrdiff_inference_package"
    shutil.copytree(FIXTURE / "checkpoints", root / "checkpoints")
    store = zarr.open_group(str(root / "dataset" / "small.zarr"), mode="w", zarr_format=2)
    # an 18 x 18 curvilinear grid (rotated, stretched) inside the coarse domain, cropped to 16 x 16
    i, j = np.meshgrid(np.arange(18.0), np.arange(18.0), indexing="ij")
    store["XLAT"] = 21.0 + 0.1 * i + 0.02 * j
    store["XLONG"] = 119.0 + 0.15 * j - 0.03 * i + 0.001 * i * j
    store["era5_center"] = np.array([280.0, 0.0, 1.0, -1.0, 5.0])
    store["era5_scale"] = np.array([10.0, 1.0, 3.0, 4.0, 2.0])
    store["cwb_center"] = np.array([0.0, 290.0, 2.0])
    store["cwb_scale"] = np.array([1.0, 5.0, 3.0])
    if not as_zip:
        return root
    archive = tmp / "package.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for f in root.rglob("*"):
            zf.write(f, f.relative_to(tmp))
    return archive


def _import(tmp: Path, as_zip: bool = False) -> Path:
    return import_corrdiff(
        _package(tmp, as_zip), tmp / "model", template=str(_template(tmp)), coarse_lat=LAT,
        coarse_lon=LON, in_index=IN_INDEX, out_index=OUT_INDEX, crop=1,
    )  # fmt: skip


def _coarse() -> xr.Dataset:
    rng = np.random.default_rng(3)
    shape = (2, LAT.size, LON.size)
    coords = {
        "time": np.array(["2024-01-01T00", "2024-01-01T06"], dtype="datetime64[ns]"),
        "latitude": ("latitude", LAT, {"units": "degrees_north", "standard_name": "latitude"}),
        "longitude": ("longitude", LON, {"units": "degrees_east", "standard_name": "longitude"}),
    }
    dims = ("time", "latitude", "longitude")
    return xr.Dataset(
        {
            "t2m": (dims, 285 + 5 * rng.standard_normal(shape),
                    {"units": "K", "standard_name": "air_temperature"}),
            "u10": (dims, rng.standard_normal(shape),
                    {"units": "m s-1", "standard_name": "eastward_wind"}),
            "v10": (dims, rng.standard_normal(shape),
                    {"units": "m s-1", "standard_name": "northward_wind"}),
        },
        coords=coords,
    )  # fmt: skip


def test_the_bilinear_map_is_linear_interpolation_in_latitude_and_longitude():
    interp = pytest.importorskip("scipy.interpolate")
    field = np.random.default_rng(0).standard_normal((LAT.size, LON.size))
    lat2d = np.array([[20.3, 21.77], [23.9, 22.0]])
    lon2d = np.array([[118.1, 122.6], [119.05, 120.0]])
    index, weight = bilinear_latlon_map(LAT, LON, lat2d, lon2d)
    got = (field.ravel()[index] * weight).sum(0).reshape(lat2d.shape)
    ref = interp.RegularGridInterpolator((LAT, LON), field)(np.stack([lat2d, lon2d], -1))
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("as_zip", [False, True])
def test_an_imported_package_downscales_onto_its_curvilinear_grid(tmp_path, as_zip):
    model = xsfm.load_model(_import(tmp_path, as_zip))
    assert model.card.method == "corrdiff" and model.card.weights_sha256
    coarse = _coarse()
    fine = coarse.sfm.downscale(model=model, members=2, seed=5)
    assert set(fine.data_vars) == {"t2m", "u10m"}
    assert fine["t2m"].dims == ("member", "time", "y", "x")
    assert fine.sizes["y"] == fine.sizes["x"] == 16
    assert fine["t2m"].attrs["units"] == "K"
    lat, lon = fine["lat"], fine["lon"]
    assert lat.dims == ("y", "x") and lat.attrs["standard_name"] == "latitude"
    assert lon.attrs["units"] == "degrees_east"
    data = zarr.open_group(
        str(tmp_path / "corrdiff_inference_package/dataset/small.zarr"), mode="r"
    )
    lat2d, lon2d = np.asarray(data["XLAT"]), np.asarray(data["XLONG"])
    np.testing.assert_allclose(lat.values, lat2d[1:-1, 1:-1])
    # by hand from the pieces: lat/lon interpolation, normalisation, grid channels, CorrDiff, units
    net = model.network("cpu")
    x = torch.as_tensor(np.stack([coarse[v].values for v in ("t2m", "u10", "v10")], 1))
    gens = stream_generators(5, [1], 2)
    index, weight = bilinear_latlon_map(LAT, LON, lat2d, lon2d)
    full = (x[1].reshape(3, -1)[:, torch.as_tensor(index)] * torch.as_tensor(weight)).sum(1)
    fine_in = full.reshape(3, 18, 18)[:, 1:-1, 1:-1].float()
    center, scale = torch.tensor([280.0, 1.0, -1.0]), torch.tensor([10.0, 3.0, 4.0])
    norm = ((fine_in - center[:, None, None]) / scale[:, None, None])[None]
    reg_in = torch.cat([norm, positional_grid("sinusoidal", 4, 16, 16)[None]], 1)
    latents = torch.stack([torch.randn(2, 16, 16, generator=g) for g in gens]).double()
    with torch.inference_mode():
        y = corrdiff_generate(net.regression, net.diffusion, reg_in, norm, latents,
                              num_steps=8, solver="euler", sigma_min=0.002, sigma_max=80.0,
                              rho=7.0)  # fmt: skip
    expected = (
        y.float() * torch.tensor([5.0, 3.0])[:, None, None]
        + torch.tensor([290.0, 2.0])[:, None, None]
    )
    got = np.stack([fine[v].isel(time=1).values for v in ("t2m", "u10m")], 1)
    np.testing.assert_allclose(got, expected.numpy(), rtol=1e-5, atol=1e-4)
    again = coarse.sfm.downscale(model=model, members=2, seed=5)
    np.testing.assert_array_equal(again["t2m"].values, fine["t2m"].values)


def test_import_refuses_what_does_not_fit(tmp_path):
    package, template = _package(tmp_path), str(_template(tmp_path))
    small = {"coarse_lat": LAT, "coarse_lon": LON, "in_index": IN_INDEX, "out_index": OUT_INDEX}
    with pytest.raises(ValueError, match="declares 12 and 4"):
        import_corrdiff(package, tmp_path / "m", **small)  # the cwa-2km card: 12 in, 4 out
    with pytest.raises(ValueError, match="works on"):
        import_corrdiff(package, tmp_path / "m", template=template, crop=2, **small)
    out = import_corrdiff(package, tmp_path / "m", template=template, **small)
    sha = xsfm.load_model(out).card.weights_sha256
    with pytest.raises(ValueError, match="already holds a model"):
        import_corrdiff(package, out, template=template, **small)
    assert xsfm.load_model(out).card.weights_sha256 == sha
    bad = tmp_path / "bad"
    shutil.copytree(package, bad)
    (bad / "checkpoints" / "diffusion.mdlus").unlink()
    with pytest.raises(ValueError, match="exactly one diffusion"):
        import_corrdiff(bad, tmp_path / "m2", template=template, **small)


def test_cwa_2km_says_how_to_get_and_import_nvidias_package():
    model = xsfm.load_model("cwa-2km")
    assert model.card.method == "corrdiff"
    assert model.card.grids["coarse"]["lon"]["size"] == 40  # earth2studio's input grid
    with pytest.raises(WeightsMissingError, match=r"xsfm import corrdiff .*zip"):
        model.example_input().sfm.downscale(model="cwa-2km", members=2)


def test_the_cli_imports_a_package(tmp_path):
    from xsfm.cli import main

    package = _package(tmp_path)
    template = _template(tmp_path)
    assert main(["import", "corrdiff", str(package), str(tmp_path / "m"), "--template",
                 str(template)]) == 2  # fmt: skip
    # the default coarse grid and channels are Taiwan's: the small package does not fit them
    assert not (tmp_path / "m" / "card.json").exists()


def _write_mdlus(path: Path, class_name: str, module_name: str, args: dict, seed: int) -> None:
    """A PhysicsNeMo-layout .mdlus (zip: args.json, metadata.json, model.pt) of random weights."""
    import io

    from xsfm.models.corrdiff_checkpoint import build_corrdiff_network

    net = build_corrdiff_network(class_name, args)
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for key, value in net.state_dict().items():
        if value.is_floating_point():
            value = 0.05 * torch.randn(value.shape, generator=gen, dtype=value.dtype)
        state[key] = value
    buf = io.BytesIO()
    torch.save(state, buf)
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("args.json", json.dumps(
            {"__name__": class_name, "__module__": module_name, "__args__": args}))  # fmt: skip
        zf.writestr("metadata.json", json.dumps({"physicsnemo_version": "2.2.2"}))
        zf.writestr("model.pt", buf.getvalue())


@pytest.mark.slow
def test_cwa_2km_runs_end_to_end_on_a_package_of_the_taiwan_layout(tmp_path, monkeypatch):
    """``ds.sfm.downscale(model="cwa-2km", members=16)`` on a package shaped as NVIDIA's.

    Random, tiny networks at the real sizes (12 ERA5 inputs on earth2studio's 36 x 40 grid, 4
    outputs on a 450 x 450 grid cropped to 448 x 448), imported with every default (the
    ``cwa-2km`` card, Taiwan's channel selections and sampler), then used by name.
    """
    root = tmp_path / "pkg" / "corrdiff_inference_package"
    small = {"model_channels": 4, "channel_mult": [1, 1, 1, 1, 1], "num_blocks": 1, "attn_resolutions": [28],
             "dropout": 0.0, "embedding_type": "positional"}  # fmt: skip
    _write_mdlus(root / "checkpoints/regression.mdlus", "UNet",
                 "physicsnemo.models.diffusion_unets.unet",
                 {"img_resolution": [448, 448], "img_in_channels": 16, "img_out_channels": 4,
                  "model_type": "SongUNet", **small}, seed=1)  # fmt: skip
    _write_mdlus(root / "checkpoints/diffusion.mdlus", "EDMPrecondSR",
                 "physicsnemo.diffusion.preconditioners.legacy",
                 {"img_resolution": [448, 448], "img_channels": 4, "img_in_channels": 20,
                  "img_out_channels": 4, "model_type": "SongUNetPosEmbd", "gridtype": "sinusoidal",
                  "N_grid_channels": 4, "scale_cond_input": True, "sigma_data": 0.5, **small},
                 seed=2)  # fmt: skip
    store = zarr.open_group(str(root / "dataset/cwb.zarr"), mode="w", zarr_format=2)
    i, j = np.meshgrid(np.arange(450.0), np.arange(450.0), indexing="ij")
    store["XLAT"] = 21.6 + 0.018 * i + 0.001 * j
    store["XLONG"] = 119.3 + 0.02 * j - 0.002 * i
    store["era5_center"], store["era5_scale"] = np.zeros(20), np.ones(20)
    store["cwb_center"] = np.array([10.0] + [0.0] * 16 + [290.0, 1.0, -1.0])
    store["cwb_scale"] = np.array([5.0] + [1.0] * 16 + [3.0, 2.0, 2.0])
    import_corrdiff(root.parent, tmp_path / "models" / "cwa-2km")  # every default: Taiwan's
    monkeypatch.setenv("XSFM_MODEL_PATH", str(tmp_path / "models"))
    ds = xsfm.load_model("cwa-2km").example_input().isel(time=[0])
    fine = ds.sfm.downscale(model="cwa-2km", members=16, seed=0)
    assert list(fine.data_vars) == ["maximum_radar_reflectivity", "t2m", "u10m", "v10m"]
    assert fine["t2m"].dims == ("member", "time", "y", "x")
    assert (fine.sizes["member"], fine.sizes["y"], fine.sizes["x"]) == (16, 448, 448)
    assert fine["maximum_radar_reflectivity"].attrs["units"] == "dBZ"
    assert fine["lat"].dims == ("y", "x") and fine["lon"].attrs["units"] == "degrees_east"
    np.testing.assert_allclose(fine["lat"].values, store["XLAT"][1:-1, 1:-1])
    assert np.isfinite(fine["t2m"].values).all()
    assert float(fine["t2m"].std("member").mean()) > 0  # members differ
