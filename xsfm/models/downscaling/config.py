"""Configs of the downscaling methods: defaults per method, merging overrides, :data:`METHODS`.

A config is a JSON-serialisable dict; :func:`default_config` completes a partial one. The networks
are built from it by :func:`xsfm.models.downscaling.build_downscaler`.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

__all__ = ["METHODS", "RELEASED_SFM", "default_config"]

_FLOW_SAMPLER = {"solver": "euler", "steps": 50, "sigma_min": 0.01, "sigma_max": 1.0, "rho": 7.0}
_EDM_SAMPLER = {"solver": "heun", "steps": 18, "sigma_min": 0.002, "sigma_max": 80.0, "rho": 7.0}

_DEFAULTS: dict[str, Any] = {
    "method": "sfm",
    "in_channels": 1,
    "out_channels": 1,
    "factor": 4,
    "fine_shape": None,
    "periodic": False,
    "unet": {
        "channels": 32,
        "channel_mult": [1, 2, 2],
        "num_blocks": 1,
        "attention_levels": [],
        "num_heads": 1,
        "embedding": "fourier",
        "emb_mult": 4,
        "grid": "none",
        "patch": 1,
        # "songunet": PhysicsNeMo's SongUNet (the CorrDiff/SFM papers' network), whose arguments
        # go in "songunet" (model_channels, channel_mult, num_blocks, attn_resolutions, ...)
        "backbone": "xsfm",
        "songunet": {},
    },
    "encoder": {"kind": "conv1x1"},
    "condition_on_input": False,
    "encoder_flow_grad": False,
    "lambda_reg": 0.25,
    "sigma_z_init": 1.0,
    "sigma_z_floor": 0.05,
    # SFM's base noise: "white" (the released method) or "spectral" (coloured like the encoder's
    # held-out error spectrum, see xsfm.models.downscaling.base_noise)
    "base_noise": "white",
    # sampling only: the base noise is sigma_z_scale * sigma_z (sigma_z stays the encoder's RMSE);
    # set on held-out data by xsfm.training.calibrate_spread
    "sigma_z_scale": 1.0,
    "sigma_z_ema": 0.99,
    "sigma_min_train": 1e-3,
    "p_mean": -1.2,
    "p_std": 1.2,
    "two_stage_fraction": 0.5,
    "corrdiff_joint": False,
    "sampler": dict(_FLOW_SAMPLER),
    "dtype": "float32",
    "channels_last": False,
    "seed": 0,
}

# SFM's defaults are those of the shipped kolmogorov-sfm 2.1: white base noise scaled by the
# encoder's error, flow network conditioned on the input (the best-measured SFM variant at the
# shipped sampler, docs/benchmarks/kolmogorov-study.md); base_noise="spectral" is an option and
# RELEASED_SFM gives the authors' released configuration.
_SFM_DEFAULTS: dict[str, Any] = {"base_noise": "white", "condition_on_input": True}

RELEASED_SFM: dict[str, Any] = {"base_noise": "white", "condition_on_input": False}
"""Overrides that give the released SFM configuration (white base noise, flow network not
conditioned on the input): ``default_config("sfm", **RELEASED_SFM)``."""

_METHOD_DEFAULTS: dict[str, dict[str, Any]] = {
    "sfm": dict(_SFM_DEFAULTS),
    "sfm-two-stage": dict(_SFM_DEFAULTS),
    "sfm-fixed-sigma": {},
    "regression": {},
    "cfm": {"condition_on_input": True},
    "edm": {"condition_on_input": True, "sampler": dict(_EDM_SAMPLER)},
    "corrdiff": {"condition_on_input": True, "sampler": dict(_EDM_SAMPLER)},
}

METHODS: tuple[str, ...] = tuple(_METHOD_DEFAULTS)
"""Names of the downscaling methods."""


def _merge(base: dict[str, Any], update: dict[str, Any], where: str = "config") -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in update.items():
        if key not in base:
            raise KeyError(f"unknown {where} key {key!r}; known keys are {sorted(base)}")
        if isinstance(base[key], dict) and key not in ("encoder", "songunet"):
            if not isinstance(value, dict):
                raise TypeError(f"{where}[{key!r}] must be a dict, got {type(value).__name__}")
            out[key] = _merge(base[key], value, f"{where}[{key!r}]")
        else:
            out[key] = copy.deepcopy(value)
    return out


def default_config(method: str = "sfm", **overrides: Any) -> dict[str, Any]:
    """Complete config of ``method`` with ``overrides`` applied (nested dicts merged).

    Parameters
    ----------
    method
        One of :data:`METHODS`.
    **overrides
        Top-level keys to change (``unet`` and ``sampler`` may be partial dicts).

    Examples
    --------
    >>> cfg = default_config("edm", in_channels=2, unet={"channels": 16})
    >>> cfg["unet"]["channels"], cfg["unet"]["channel_mult"], cfg["sampler"]["solver"]
    (16, [1, 2, 2], 'heun')
    """
    if method not in _METHOD_DEFAULTS:
        raise ValueError(f"unknown downscaling method {method!r}; choose one of {list(METHODS)}")
    cfg = _merge(_DEFAULTS, _METHOD_DEFAULTS[method])
    cfg["method"] = method
    overrides = dict(overrides)
    overrides.pop("method", None)
    cfg = _merge(cfg, overrides)
    if method in ("cfm", "edm", "corrdiff"):
        cfg["condition_on_input"] = True  # these methods see y only through conditioning
    return cfg


def _pair(value: int | Sequence[int], name: str) -> tuple[int, int]:
    if isinstance(value, int | float):
        value = (int(value), int(value))
    pair = tuple(int(v) for v in value)
    if len(pair) != 2 or min(pair) < 1:
        raise ValueError(f"{name} must be a positive integer or a pair of them, got {value!r}")
    return pair  # type: ignore[return-value]
