"""The ``cwa-2km`` preset: train the Taiwan 25 km -> 2 km setting on data you hold.

``xsfm train METHOD --preset cwa-2km --data PATH --out DIR``. ``PATH`` is a zarr store or netCDF-4
file with two groups: ``era5`` holds the card's 12 inputs (found by standard name and pressure
level, as ``ds.sfm.downscale`` finds them, so cfgrib-style ``t`` on ``isobaricInhPa`` works) on a
regular latitude/longitude grid, ``cwa`` the 4 outputs on the fine projection grid; both share
``time``. The card's variable declarations are kept; the grids come from the data.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import xarray as xr

from xsfm.model import Model
from xsfm.training.presets import preset_options

__all__ = ["CWA_DEFAULTS", "train_cwa"]

CWA_DEFAULTS: dict[str, Any] = {
    "batch_size": 4,
    "lr": 1e-3,
    "steps": 20000,
    # the flow network: PhysicsNeMo's SongUNet as in CorrDiff's CWA configuration (model_channels
    # 128, channel_mult [1, 2, 2, 2, 2], self-attention at the 28 x 28 bottleneck of a 448 x 448
    # grid; CorrDiff paper, Fig. S1); backbone=xsfm uses xsfm's U-Net with channels/channel_mult
    "backbone": "songunet",
    "model_channels": 128,
    "songunet_channel_mult": [1, 2, 2, 2, 2],
    "attn_resolutions": [28],
    "num_blocks": 4,
    "channels": 64,
    "channel_mult": [1, 2, 2, 2],
    "encoder": "unet",
    "name": "cwa-2km-sfm",
}


def _cwa_network(opts: Mapping[str, Any], outputs: Mapping[str, xr.DataArray]) -> dict[str, Any]:
    """The network overrides of the cwa-2km preset (SongUNet by default, see CWA_DEFAULTS)."""
    network: dict[str, Any] = {"encoder": {"kind": opts["encoder"]}}
    if opts["backbone"] == "songunet":
        first = next(iter(outputs.values()))
        network["fine_shape"] = [int(n) for n in first.shape[-2:]]
        network["unet"] = {
            "backbone": "songunet",
            "songunet": {
                "model_channels": int(opts["model_channels"]),
                "channel_mult": list(opts["songunet_channel_mult"]),
                "attn_resolutions": list(opts["attn_resolutions"]),
                "num_blocks": int(opts["num_blocks"]),
                "embedding_type": "positional",
                "channel_mult_noise": 1,
                "resample_filter": [1, 1],
            },
        }
    elif opts["backbone"] == "xsfm":
        network["unet"] = {"channels": opts["channels"], "channel_mult": list(opts["channel_mult"])}
    else:
        raise ValueError(f"backbone must be 'songunet' or 'xsfm', got {opts['backbone']!r}")
    return network


def train_cwa(
    method: str,
    data: str | Path | None,
    out: str | Path,
    *,
    steps: int | None,
    seed: int,
    overrides: Mapping[str, Any],
    progress: bool = True,
) -> Model:
    """Train the ``cwa-2km`` setting from a CWA-layout store (see the module docstring)."""
    import xsfm
    from xsfm.training.fit import fit_downscaler
    from xsfm.xr.prepare import convert_all
    from xsfm.xr.variables import select_inputs

    if data is None:
        raise ValueError(
            "the cwa-2km preset needs --data: a zarr store or netCDF file with the 12 ERA5 inputs on a "
            "latitude/longitude grid and the 4 CWA outputs on the 2 km grid (see `xsfm train --help`)"
        )
    opts = preset_options(CWA_DEFAULTS, overrides, "cwa-2km")
    path = Path(data)
    if not path.exists():
        raise FileNotFoundError(f"cwa-2km training data {path} does not exist")
    groups = {}
    for group in ("era5", "cwa"):
        try:
            if path.suffix == ".zarr" or path.is_dir():
                groups[group] = xr.open_zarr(path, group=group)
            else:
                groups[group] = xr.open_dataset(path, group=group)
        except (OSError, KeyError, ValueError) as err:
            raise ValueError(
                f"cwa-2km training data {path} needs a group {group!r} (the ERA5 inputs in 'era5', "
                f"the CWA outputs in 'cwa'): {err}"
            ) from None
    reference = xsfm.load_model("cwa-2km").card
    inputs = convert_all(select_inputs(groups["era5"], reference.inputs), reference.inputs)
    outputs = convert_all(select_inputs(groups["cwa"], reference.outputs), reference.outputs)

    def as_dataset(fields: dict[str, xr.DataArray], specs: list[dict[str, Any]]) -> xr.Dataset:
        return xr.Dataset(
            {
                s["name"]: fields[s["name"]]
                .drop_vars([c for c in fields[s["name"]].coords if c not in fields[s["name"]].dims])
                .assign_attrs({k: s[k] for k in ("standard_name", "units", "long_name") if k in s})
                for s in specs
            }
        )

    n_steps = int(steps if steps is not None else opts["steps"])
    model = fit_downscaler(
        as_dataset(inputs, reference.inputs),
        as_dataset(outputs, reference.outputs),
        method=method,
        name=opts["name"],
        steps=n_steps,
        batch_size=int(opts["batch_size"]),
        lr=float(opts["lr"]),
        seed=seed,
        progress=progress,
        network=_cwa_network(opts, outputs),
        description=reference.description.replace(
            " Weights are not shipped", " Trained here"
        ).split(": the training data")[0],
        training_info={
            "command": f"xsfm train {method} --preset cwa-2km --data {data} --out {out}",
            "data": str(data),
            "preset": "cwa-2km",
            "options": opts,
        },
    )
    model.card = model.card.replace(
        inputs=list(reference.inputs), outputs=list(reference.outputs), version=reference.version
    )
    model.save(out)
    return model
