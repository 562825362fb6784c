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
    The Taiwan 25 km -> 2 km setting from a zarr store or netCDF-4 file given as ``--data``, see
    :mod:`xsfm.training.presets_cwa`.
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


def preset_options(
    defaults: dict[str, Any], overrides: Mapping[str, Any], preset: str
) -> dict[str, Any]:
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

    opts = preset_options(KOLMOGOROV_DEFAULTS, overrides, "kolmogorov")
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
        from xsfm.training.presets_cwa import train_cwa

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
