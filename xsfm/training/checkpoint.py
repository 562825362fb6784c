"""Checkpoints of the downscaling training loop: one safetensors file, written and restored exactly.

A checkpoint holds the live weights and buffers, the EMA weights, Adam's moment and step tensors, the
states of the batch and noise generators (as ``uint8`` tensors), the loss history, and in the metadata
the step, the module config and the training settings; never pickle. :func:`restore_checkpoint`
continues from it **exactly**: an interrupted and resumed run ends with the same weights, bit for bit
on CPU, as an uninterrupted one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from xsfm.models.downscaling import Downscaler

__all__ = ["load_checkpoint", "restore_checkpoint", "save_checkpoint"]

_CHECKPOINT_FORMAT = "xsfm-train-checkpoint-1"
_SETTINGS_THAT_MUST_MATCH = (
    "batch_size",
    "lr",
    "lr_schedule",
    "val_fraction",
    "ema_decay",
    "grad_clip",
    "sigma_z_every",
    "seed",
    "n_samples",
)


def save_checkpoint(
    path: Path,
    module: Downscaler,
    ema: dict[str, torch.Tensor],
    optimizer: torch.optim.Optimizer,
    generators: dict[str, torch.Generator],
    history: dict[str, list[Any]],
    step: int,
    settings: dict[str, Any],
) -> None:
    """Write a training checkpoint to ``path`` (a temporary file first, then renamed into place)."""
    from safetensors.torch import save_file

    tensors: dict[str, torch.Tensor] = {}
    for k, v in module.state_dict().items():
        tensors[f"model/{k}"] = v.detach().cpu().contiguous().clone()
    for k, v in ema.items():
        tensors[f"ema/{k}"] = v.detach().cpu().contiguous().clone()
    opt_state = optimizer.state_dict()["state"]
    for idx, state in opt_state.items():
        for key, value in state.items():
            tensors[f"optim/{idx}/{key}"] = (
                torch.as_tensor(value).detach().cpu().contiguous().clone()
            )
    for name, g in generators.items():
        tensors[f"rng/{name}"] = g.get_state().clone()
    tensors["history/loss"] = torch.tensor(history["loss"], dtype=torch.float64)
    cout = module.out_channels
    for key in ("sigma_z", "val_rmse"):
        tensors[f"history/{key}"] = torch.tensor(history[key], dtype=torch.float64).reshape(
            -1, cout
        )
    metadata = {
        "format": _CHECKPOINT_FORMAT,
        "step": str(int(step)),
        "config": json.dumps(module.config, sort_keys=True),
        "settings": json.dumps(settings, sort_keys=True),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata=metadata)
    os.replace(tmp, path)


def load_checkpoint(path: str | os.PathLike[str]) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Read a training checkpoint: its tensors and metadata (no unpickling).

    Examples
    --------
    >>> import tempfile
    >>> from xsfm.models.downscaling import build_downscaler
    >>> from xsfm.training.downscaling import train_downscaler
    >>> g = torch.Generator().manual_seed(0)
    >>> c, f = torch.randn(8, 1, 4, 4, generator=g), torch.randn(8, 1, 8, 8, generator=g)
    >>> m = build_downscaler({"method": "regression", "factor": 2})
    >>> path = tempfile.mkdtemp() + "/ckpt.safetensors"
    >>> _ = train_downscaler(m, c, f, steps=2, batch_size=4, checkpoint_path=path,
    ...                      checkpoint_every=2, progress=False)
    >>> tensors, meta = load_checkpoint(path)
    >>> meta["step"], "rng/batch" in tensors
    ('2', True)
    """
    from safetensors import safe_open
    from safetensors.torch import load_file

    path = Path(path)
    with safe_open(str(path), framework="pt") as handle:
        metadata = dict(handle.metadata() or {})
    if metadata.get("format") != _CHECKPOINT_FORMAT:
        raise ValueError(
            f"{path} is not an xsfm training checkpoint (format {metadata.get('format')!r}, "
            f"expected {_CHECKPOINT_FORMAT!r})"
        )
    return load_file(str(path)), metadata


def restore_checkpoint(
    ckpt: Path,
    module: Downscaler,
    ema: dict[str, torch.Tensor],
    optimizer: torch.optim.Optimizer,
    generators: dict[str, torch.Generator],
    history: dict[str, list[Any]],
    settings: dict[str, Any],
    device: torch.device,
) -> int:
    """Load a checkpoint into the module, EMA, optimiser, generators and ``history``; return its step.

    Refuses a checkpoint written for another module config or other training settings.
    """
    tensors, meta = load_checkpoint(ckpt)
    saved_cfg = json.loads(meta["config"])
    if saved_cfg != module.config:
        raise ValueError(
            f"checkpoint {ckpt} was written for another module config; build the module "
            "from the checkpoint's config (metadata 'config') or start without resume"
        )
    saved = json.loads(meta["settings"])
    diff = [k for k in _SETTINGS_THAT_MUST_MATCH if saved.get(k) != settings[k]]
    if diff:
        detail = ", ".join(f"{k}: {saved.get(k)!r} vs {settings[k]!r}" for k in diff)
        raise ValueError(f"cannot resume from {ckpt}: training settings differ ({detail})")
    module.load_state_dict(
        {k[len("model/") :]: v for k, v in tensors.items() if k.startswith("model/")},
        strict=True,
    )
    if ema:
        for k in ema:
            ema[k].copy_(tensors[f"ema/{k}"])
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("optim/"):
            _, idx, name = key.split("/", 2)
            state.setdefault(int(idx), {})[name] = value.to(device) if name != "step" else value
    opt_sd = optimizer.state_dict()
    opt_sd["state"] = state
    optimizer.load_state_dict(opt_sd)
    for name, g in generators.items():
        g.set_state(tensors[f"rng/{name}"])
    history["loss"] = tensors["history/loss"].tolist()
    history["sigma_z"] = tensors["history/sigma_z"].tolist()
    history["val_rmse"] = tensors["history/val_rmse"].tolist()
    return int(meta["step"])
