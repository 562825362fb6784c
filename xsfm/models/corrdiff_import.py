"""Import an NVIDIA CorrDiff package as an xsfm model directory (``xsfm import corrdiff``).

A CorrDiff package (the zip earth2studio's ``CorrDiffTaiwan`` downloads from NGC,
``corrdiff_inference_package.zip``, or its unpacked folder) holds:

* ``checkpoints/regression.mdlus`` and ``checkpoints/diffusion.mdlus``: PhysicsNeMo archives read
  by :func:`xsfm.models.corrdiff_checkpoint.load_corrdiff_checkpoint` (unknown classes refused);
* ``dataset/<name>.zarr``: the output grid's 2-D ``XLAT``/``XLONG`` (450 x 450 for Taiwan, cropped
  by one cell on each side to the 448 x 448 the networks see) and the normalisation centres and
  scales of the ERA5 inputs (``era5_center``/``era5_scale``, 20 channels, of which the model uses
  12) and of the CWA outputs (``cwb_center``/``cwb_scale``, of which it uses 4).

:func:`import_corrdiff` writes ``card.json`` + ``weights.safetensors`` (sha256 in the card): the
card of ``template`` (``cwa-2km``: inputs in earth2studio's order, outputs, the coarse
latitude/longitude grid) with the networks' PhysicsNeMo arguments, the sampler settings, and a
fine grid whose 2-D latitude/longitude are buffers of the weights. The channel selections, the
coarse grid and the crop are those of earth2studio's ``CorrDiffTaiwan`` unless given.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from xsfm.models.card import ModelCard
from xsfm.models.corrdiff_checkpoint import load_corrdiff_checkpoint
from xsfm.models.corrdiff_package import CorrDiffPackageDownscaler, bilinear_latlon_map
from xsfm.models.io import CARD_FILE, load_card, save_model_files

__all__ = ["TAIWAN", "import_corrdiff"]

#: earth2studio's CorrDiffTaiwan: input grid, channel selections, crop and sampler
TAIWAN: dict[str, Any] = {
    "coarse_lat": np.linspace(19.25, 28.0, 36),
    "coarse_lon": np.linspace(116.0, 126.0, 40, endpoint=False),
    "in_index": [0, 1, 2, 3, 4, 9, 10, 11, 12, 17, 18, 19],
    "out_index": [0, 17, 18, 19],
    "crop": 1,
    "sampler": {
        "kind": "deterministic",
        "num_steps": 8,
        "solver": "euler",
        "sigma_min": 0.002,
        "sigma_max": 80.0,
        "rho": 7.0,
    },
}
_SHIPPED = Path(__file__).parent / "shipped"


def _unpack(package: Path, into: Path) -> Path:
    """The package folder: ``package`` itself, or the needed members of a zip extracted."""
    if package.is_dir():
        return package
    if not zipfile.is_zipfile(package):
        raise ValueError(f"{package}: neither a folder nor a zip archive of a CorrDiff package")
    with zipfile.ZipFile(package) as zf:
        for member in zf.namelist():
            parts = Path(member).parts
            if "checkpoints" in parts or any(p.endswith(".zarr") for p in parts):
                target = (into / member).resolve()
                if not str(target).startswith(str(into.resolve())):
                    raise ValueError(f"{package}: member {member!r} points outside the archive")
                zf.extract(member, into)
    return into


def _find(root: Path, pattern: str, what: str) -> Path:
    found = sorted(p for p in root.rglob(pattern))
    if len(found) != 1:
        raise ValueError(
            f"the CorrDiff package at {root} should hold exactly one {what} ({pattern}); found "
            f"{[str(p.relative_to(root)) for p in found] or 'none'}"
        )
    return found[0]


def _read_dataset(path: Path) -> dict[str, np.ndarray]:
    import zarr

    group = zarr.open_group(str(path), mode="r")
    out = {}
    for key in ("XLAT", "XLONG", "era5_center", "era5_scale", "cwb_center", "cwb_scale"):
        if key not in group:
            raise ValueError(f"{path}: the package's dataset lacks the array {key!r}")
        out[key] = np.asarray(group[key][...], dtype=np.float64)
    return out


def _extra_channels(info: dict[str, Any]) -> int:
    """Conditioning channels a network adds itself (a ``SongUNetPosEmbd``'s positional grid)."""
    args = info["args"]
    model_type = args.get("model_type", "SongUNetPosEmbd")
    if model_type == "SongUNetPosEmbd" and args.get("gridtype", "sinusoidal") != "test":
        return int(args.get("N_grid_channels", 4))
    return 0


def import_corrdiff(
    package: str | Path,
    out: str | Path,
    *,
    template: str = "cwa-2km",
    name: str | None = None,
    coarse_lat: Sequence[float] | np.ndarray | None = None,
    coarse_lon: Sequence[float] | np.ndarray | None = None,
    in_index: Sequence[int] | None = None,
    out_index: Sequence[int] | None = None,
    crop: int | None = None,
    sampler: dict[str, Any] | None = None,
    overwrite: bool = False,
) -> Path:
    """Import a CorrDiff package into the xsfm model directory ``out``; return its path.

    Parameters
    ----------
    package
        The package zip, or its folder.
    out
        The model directory to write (refused if it holds a model, unless ``overwrite``).
    template
        Shipped card whose variables and coarse grid the model takes (default ``cwa-2km``), or a
        path to a ``card.json``.
    name
        Model name (default: the template's).
    coarse_lat, coarse_lon, in_index, out_index, crop, sampler
        The input grid, the channels of the package's statistics the model uses, the crop of the
        output grid and the sampler (default: earth2studio's ``CorrDiffTaiwan``, :data:`TAIWAN`).
    overwrite
        Replace an existing model directory.

    Returns
    -------
    pathlib.Path
        ``out``; load it with ``xsfm.load_model(out)``.
    """
    out = Path(out)
    if (out / CARD_FILE).exists() and not overwrite:
        raise ValueError(f"{out} already holds a model; choose another folder or pass overwrite")
    source = Path(template) if Path(template).suffix == ".json" else _SHIPPED / template / CARD_FILE
    if not source.is_file():
        raise ValueError(f"no card template {template!r} (a shipped model name or a card.json)")
    base = load_card(source.parent if source.name == CARD_FILE else source)
    with tempfile.TemporaryDirectory(prefix="xsfm-corrdiff-") as tmp:
        root = _unpack(Path(package), Path(tmp))
        reg, reg_info = load_corrdiff_checkpoint(_find(root, "regression.mdlus", "regression"))
        dif, dif_info = load_corrdiff_checkpoint(_find(root, "diffusion.mdlus", "diffusion"))
        data = _read_dataset(_find(root, "*.zarr", "dataset zarr"))
    lat = np.asarray(TAIWAN["coarse_lat"] if coarse_lat is None else coarse_lat, np.float64)
    lon = np.asarray(TAIWAN["coarse_lon"] if coarse_lon is None else coarse_lon, np.float64)
    in_index = list(TAIWAN["in_index"] if in_index is None else in_index)
    out_index = list(TAIWAN["out_index"] if out_index is None else out_index)
    crop = int(TAIWAN["crop"] if crop is None else crop)
    cin, cout = len(in_index), len(out_index)
    if cin != len(base.inputs) or cout != len(base.outputs):
        raise ValueError(
            f"the package's model takes {cin} inputs and gives {cout} outputs, the card template "
            f"{base.name!r} declares {len(base.inputs)} and {len(base.outputs)}"
        )
    full_shape = data["XLAT"].shape
    if data["XLONG"].shape != full_shape or len(full_shape) != 2:
        raise ValueError(f"XLAT {full_shape} and XLONG {data['XLONG'].shape} must be one 2-D grid")
    fine_shape = (full_shape[0] - 2 * crop, full_shape[1] - 2 * crop)
    reg_in = int(reg_info["args"]["img_in_channels"]) - _extra_channels(reg_info)
    dif_in = int(dif_info["args"]["img_in_channels"]) - _extra_channels(dif_info)
    if reg_in not in (cin, cin + 4):
        raise ValueError(f"the regression network takes {reg_in} input channels, not {cin} (+4)")
    if dif_in not in (cin, cin + cout):
        raise ValueError(f"the diffusion network takes {dif_in} conditioning channels, not {cin}")
    for info in (reg_info, dif_info):
        res = info["args"]["img_resolution"]
        res = [res, res] if isinstance(res, int) else list(res)
        if tuple(res) != fine_shape:
            raise ValueError(
                f"the {info['class_name']} network works on {tuple(res)}, the package's output "
                f"grid cropped by {crop} is {fine_shape}"
            )
    config = {
        "architecture": "physicsnemo-corrdiff",
        "method": "corrdiff",
        "in_channels": cin,
        "out_channels": cout,
        "coarse_shape": [int(lat.size), int(lon.size)],
        "full_shape": [int(n) for n in full_shape],
        "crop": crop,
        "grid_channels": "sincos" if reg_in == cin + 4 else None,
        "hr_mean_conditioning": dif_in == cin + cout,
        "regression": {"class": reg_info["class_name"], "args": reg_info["args"]},
        "diffusion": {"class": dif_info["class_name"], "args": dif_info["args"]},
        "sampler": dict(TAIWAN["sampler"] if sampler is None else sampler),
        "physicsnemo_version": (dif_info["metadata"] or {}).get("physicsnemo_version"),
    }
    module = CorrDiffPackageDownscaler(config)
    module.regression.load_state_dict(reg.state_dict(), strict=True)
    module.diffusion.load_state_dict(dif.state_dict(), strict=True)
    index, weight = bilinear_latlon_map(lat, lon, data["XLAT"], data["XLONG"])
    c = crop
    inner = (slice(c, full_shape[0] - c), slice(c, full_shape[1] - c))
    buffers = {
        "in_center": data["era5_center"][in_index],
        "in_scale": data["era5_scale"][in_index],
        "out_center": data["cwb_center"][out_index],
        "out_scale": data["cwb_scale"][out_index],
        "interp_index": index,
        "interp_weight": weight,
        "out_lat": data["XLAT"][inner],
        "out_lon": data["XLONG"][inner],
    }
    for key, value in buffers.items():
        target = module.get_buffer(key)
        target.copy_(torch.as_tensor(np.asarray(value)).to(target.dtype))
    card = _card(base, name, config, lat, lon, fine_shape, buffers)
    if out.exists() and overwrite:
        shutil.rmtree(out)
    save_model_files(out, card, module.state_dict())
    return out


def _card(
    base: ModelCard,
    name: str | None,
    config: dict[str, Any],
    lat: np.ndarray,
    lon: np.ndarray,
    fine_shape: tuple[int, int],
    buffers: dict[str, Any],
) -> ModelCard:
    def axis(values: np.ndarray, key: str, sn: str, units: str) -> dict[str, Any]:
        step = float(values[1] - values[0])
        return {"start": float(values[0]), "step": step, "size": int(values.size), "name": key,
                "units": units, "standard_name": sn, "long_name": sn}  # fmt: skip

    def index_axis(key: str, size: int, what: str) -> dict[str, Any]:
        return {"start": 0.0, "step": 1.0, "size": size, "name": key, "units": "1",
                "long_name": f"{what} of the CorrDiff output grid"}  # fmt: skip

    grids = {
        "coarse": {
            "lat": axis(lat, "lat", "latitude", "degrees_north"),
            "lon": axis(lon, "lon", "longitude", "degrees_east"),
            "periodic": False,
        },
        "fine": {
            "y": index_axis("y", fine_shape[0], "row"),
            "x": index_axis("x", fine_shape[1], "column"),
            "periodic": False,
            "latlon": {"lat": "out_lat", "lon": "out_lon", "lat_name": "lat", "lon_name": "lon"},
            "note": "curvilinear: 2-D latitude/longitude from the package (XLAT/XLONG, cropped)",
        },
    }
    normalisation = {
        k: [float(v) for v in np.ravel(buffers[k])]
        for k in ("in_center", "in_scale", "out_center", "out_scale")
    }
    sampler = config["sampler"]
    return base.replace(
        name=name or base.name,
        version="corrdiff-import-1",
        method="corrdiff",
        description=(
            f"{base.description.split('.')[0]}. Imported from NVIDIA's CorrDiff package "
            "(PhysicsNeMo checkpoints: regression mean + residual EDM diffusion); run by xsfm's "
            "equivalent networks."
        ),
        network=config,
        grids=grids,
        normalisation=normalisation,
        sampler={"solver": sampler.get("solver"), "steps": sampler.get("num_steps")},
        training={"command": "xsfm import corrdiff PACKAGE OUT", "source": "NVIDIA NGC"},
        licence="see the package's licence on NGC",
        extra={
            **base.extra,
            "weights_available": True,
            "imported": json.dumps(
                {
                    "regression": config["regression"]["class"],
                    "diffusion": config["diffusion"]["class"],
                }
            ),
        },
    )
