"""Presets for ``xsfm train``: data, network size and schedule of the models xsfm ships or documents.

``xsfm train METHOD --preset NAME --out DIR [--data PATH] [--steps N] [--seed S] [--set key=value ...]``

Presets
-------
``kolmogorov``
    Misaligned Kolmogorov-flow downscaling (16x16 -> 64x64 vorticity) on data simulated by
    :func:`xsfm.datasets.kolmogorov_pairs`; options ``tau`` (misalignment lag), ``samples``,
    ``test_samples``, ``encoder`` (``conv1x1`` or ``unet``), ``batch_size``, ``lr``, ``channels``,
    ``condition_on_input`` (SFM; default: the method's), ``lambda_reg`` and ``encoder_flow_grad``
    (the SFM loss's regression weight and whether the flow loss trains the encoder through ``z``;
    default: the method's),
    ``base_noise`` (SFM: ``white`` or ``spectral``, see :mod:`xsfm.models.downscaling.base_noise`),
    ``calibration_pairs`` (held-out pairs for the card's calibration check, see
    :func:`xsfm.training.fit_downscaler`), ``name``. Writes the model and an ``example.safetensors`` of held-out pairs.
``cwa-2km``
    The Taiwan 25 km -> 2 km setting. ``--data`` is a zarr store or netCDF-4 file with two groups:
    ``era5`` holds the card's 12 inputs (found by standard name and pressure level, as
    ``ds.sfm.downscale`` finds them, so cfgrib-style ``t`` on ``isobaricInhPa`` works) on a regular
    latitude/longitude grid, ``cwa`` the 4 outputs on the fine projection grid; both share ``time``.
    The card's variable declarations are kept; the grids come from the data.
``lorenz63``
    FlowDAS on the paper's Lorenz-63 data (method ``flowdas``), see :mod:`xsfm.training.presets_lorenz63`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from xsfm.model import Model
from xsfm.models.io import EXAMPLE_FILE

__all__ = ["KOLMOGOROV_DEFAULTS", "PRESETS", "parse_overrides", "run_preset"]

KOLMOGOROV_DEFAULTS: dict[str, Any] = {
    "tau": 2.0,
    "samples": 2048,
    "test_samples": 256,
    "example_samples": 8,
    "encoder": "conv1x1",
    "channels": 40,
    "channel_mult": [1, 2],
    "patch": 4,
    "condition_on_input": None,
    "lambda_reg": None,
    "encoder_flow_grad": None,
    "base_noise": None,
    "calibration_pairs": 0,
    "batch_size": 16,
    "lr": 2e-3,
    "steps": 2000,
    "name": None,
    "cache_dir": ".cache/xsfm",
}

PRESETS = ("kolmogorov", "cwa-2km", "lorenz63")


def parse_overrides(overrides: Mapping[str, str] | None) -> dict[str, Any]:
    """Turn ``{"tau": "2", "encoder": "unet"}`` into typed values (JSON where it parses).

    Examples
    --------
    >>> parse_overrides({"tau": "2.5", "encoder": "unet", "mult": "[1, 2]"})
    {'tau': 2.5, 'encoder': 'unet', 'mult': [1, 2]}
    """
    out: dict[str, Any] = {}
    for key, value in (overrides or {}).items():
        try:
            out[key] = json.loads(value)
        except (json.JSONDecodeError, TypeError):
            out[key] = value
    return out


def _options(defaults: dict[str, Any], overrides: Mapping[str, Any], preset: str) -> dict[str, Any]:
    unknown = sorted(set(overrides) - set(defaults))
    if unknown:
        raise KeyError(
            f"unknown option(s) {unknown} for preset {preset!r}; known: {sorted(defaults)}"
        )
    return {**defaults, **overrides}


def write_example(path: Path, coarse: np.ndarray, fine: np.ndarray, meta: dict[str, Any]) -> None:
    """Write ``example.safetensors`` (held-out pairs shown by ``xsfm demo`` and ``example_input``)."""
    import torch
    from safetensors.torch import save_file

    save_file(
        {
            "coarse": torch.from_numpy(np.ascontiguousarray(coarse, dtype=np.float32)),
            "fine": torch.from_numpy(np.ascontiguousarray(fine, dtype=np.float32)),
        },
        str(path / EXAMPLE_FILE),
        metadata={"xsfm_example": json.dumps(meta)},
    )


def kolmogorov_data(
    tau: float, samples: int, split: str, seed: int, cache_dir: str | None
) -> tuple[xr.Dataset, xr.Dataset]:
    """Coarse/fine Kolmogorov pairs of one split (cached on disk when ``cache_dir`` is set)."""
    from xsfm.datasets import kolmogorov_pairs

    return kolmogorov_pairs(tau=tau, samples=samples, split=split, seed=seed, cache_dir=cache_dir)


def _sfm_loss_options(method: str, opts: Mapping[str, Any]) -> dict[str, Any]:
    """``lambda_reg`` / ``encoder_flow_grad`` overrides, checked (``None``: the method's default)."""
    out: dict[str, Any] = {}
    given = opts["lambda_reg"] is not None or opts["encoder_flow_grad"] is not None
    if given and method not in ("sfm", "sfm-fixed-sigma", "corrdiff"):
        raise ValueError(
            f"lambda_reg and encoder_flow_grad are options of the SFM loss (sfm, "
            f"sfm-fixed-sigma; lambda_reg also corrdiff), not of {method!r}: drop them"
        )
    if opts["lambda_reg"] is not None:
        lam = opts["lambda_reg"]
        if isinstance(lam, bool) or not isinstance(lam, (int, float)) or not lam >= 0:
            raise ValueError(f"lambda_reg must be a number >= 0, got {lam!r}")
        out["lambda_reg"] = float(lam)
    if opts["encoder_flow_grad"] is not None:
        if not isinstance(opts["encoder_flow_grad"], bool):
            raise ValueError(
                f"encoder_flow_grad must be true or false, got {opts['encoder_flow_grad']!r}"
            )
        if method == "corrdiff":
            raise ValueError("encoder_flow_grad is an option of sfm, not of corrdiff")
        out["encoder_flow_grad"] = opts["encoder_flow_grad"]
    return out


def train_kolmogorov(
    method: str,
    out: str | Path,
    *,
    steps: int | None,
    seed: int,
    overrides: Mapping[str, Any],
    progress: bool = True,
) -> Model:
    """Train one method on misaligned Kolmogorov pairs and save it (with an example) to ``out``."""
    from xsfm.training.fit import fit_downscaler

    opts = _options(KOLMOGOROV_DEFAULTS, overrides, "kolmogorov")
    loss_options = _sfm_loss_options(method, opts)
    start = time.perf_counter()
    coarse, fine = kolmogorov_data(opts["tau"], opts["samples"], "train", seed, opts["cache_dir"])
    data_seconds = time.perf_counter() - start
    network: dict[str, Any] = {
        "unet": {
            "channels": opts["channels"],
            "channel_mult": list(opts["channel_mult"]),
            "patch": int(opts["patch"]),
        },
        # The U-Net encoder works on the backbone's patches too: at full 64x64 resolution it
        # would cost more than the flow network it feeds.
        "encoder": (
            {"kind": "unet", "patch": int(opts["patch"])}
            if opts["encoder"] == "unet"
            else {"kind": opts["encoder"]}
        ),
    }
    sfm_family = method in ("sfm", "sfm-two-stage", "sfm-fixed-sigma")
    if sfm_family and opts["condition_on_input"] is not None:
        network["condition_on_input"] = bool(opts["condition_on_input"])
    if opts["base_noise"] is not None:
        if method not in ("sfm", "sfm-two-stage") or opts["base_noise"] not in (
            "white",
            "spectral",
        ):
            raise ValueError(
                f"base_noise is 'white' or 'spectral', an option of sfm and sfm-two-stage; got "
                f"{opts['base_noise']!r} for {method!r}"
            )
        network["base_noise"] = opts["base_noise"]
    network.update(loss_options)
    name = opts["name"] or f"kolmogorov-{method}"
    n_steps = int(steps if steps is not None else opts["steps"])
    command = (
        f"xsfm train {method} --preset kolmogorov --out {out} --steps {n_steps} --seed {seed}"
        + "".join(
            f" --set {k}={json.dumps(v) if not isinstance(v, str) else v}"
            for k, v in overrides.items()
        )
    )
    model = fit_downscaler(
        coarse[["vorticity"]],
        fine[["vorticity"]],
        method=method,
        name=name,
        network=network,
        periodic=True,
        steps=n_steps,
        batch_size=int(opts["batch_size"]),
        lr=float(opts["lr"]),
        seed=seed,
        calibration_pairs=int(opts["calibration_pairs"]),
        progress=progress,
        description=(
            f"Misaligned Kolmogorov-flow downscaling, 16x16 -> 64x64 relative vorticity, method {method}, "
            f"lag tau = {opts['tau']} (coarse simulation restarted from the coarsened truth tau time units "
            "earlier). Trained on simulated data by an xsfm preset anyone can rerun."
        ),
        training_info={
            "command": command,
            "data": {
                "generator": "xsfm.datasets.kolmogorov_pairs",
                "tau": opts["tau"],
                "samples": opts["samples"],
                "split": "train",
                "seed": seed,
                "attrs": {k: v for k, v in fine.attrs.items() if isinstance(v, (int, float, str))},
            },
            "data_seconds": round(data_seconds, 1),
            "preset": "kolmogorov",
            "options": opts,
        },
    )
    model.card.extra["tau"] = opts["tau"]
    path = model.save(out)
    test_c, test_f = kolmogorov_data(
        opts["tau"], int(opts["example_samples"]), "test", seed + 1, opts["cache_dir"]
    )
    write_example(
        path,
        test_c["vorticity"].values[:, None],
        test_f["vorticity"].values[:, None],
        {
            "sample_dim": "sample",
            "attrs": {
                "source": "xsfm.datasets.kolmogorov_pairs held-out split",
                "tau": opts["tau"],
                "seed": seed + 1,
            },
        },
    )
    return model


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
    opts = _options(CWA_DEFAULTS, overrides, "cwa-2km")
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


def run_preset(
    method: str,
    preset: str,
    out: str | Path,
    data: str | Path | None = None,
    steps: int | None = None,
    seed: int = 0,
    overrides: Mapping[str, str] | None = None,
    progress: bool = True,
) -> Model:
    """Run a training preset (what ``xsfm train`` calls) and return the saved model."""
    opts = parse_overrides(overrides)
    if preset == "kolmogorov" and method == "flowdas":
        from xsfm.training.presets_kolmogorov_flowdas import train_kolmogorov_flowdas

        model = train_kolmogorov_flowdas(out=out, steps=steps, seed=seed, progress=progress, **opts)
    elif preset == "kolmogorov":
        model = train_kolmogorov(
            method, out, steps=steps, seed=seed, overrides=opts, progress=progress
        )
    elif preset == "cwa-2km":
        model = train_cwa(
            method, data, out, steps=steps, seed=seed, overrides=opts, progress=progress
        )
    elif preset == "lorenz63":
        if method != "flowdas":
            raise ValueError(f"the lorenz63 preset trains method 'flowdas', not {method!r}")
        from xsfm.training.presets_lorenz63 import train_lorenz63

        model = train_lorenz63(out=out, steps=steps, seed=seed, **opts)
    else:
        raise ValueError(f"unknown preset {preset!r}; choose one of {list(PRESETS)}")
    print(f"saved {model.name} to {out}")
    return model
