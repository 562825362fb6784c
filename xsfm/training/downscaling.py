"""Tensor-level training loop for the downscaling methods (pure torch, no xarray).

:func:`train_downscaler` trains a :class:`~xsfm.models.downscaling.Downscaler` on physical pairs
``coarse[N, Cin, h, w]``, ``fine[N, Cout, H, W]``:

* a train/validation split drawn from the seed; per-channel normalisation statistics of the training
  split (:func:`normalisation_stats`) written into the module's buffers;
* Adam with a cosine learning-rate decay (or constant), gradient-norm clipping, an exponential
  moving average (EMA) of the weights with the usual warm-up
  ``decay_t = min(decay, (1 + t) / (10 + t))``; the returned module holds the EMA weights;
* for methods with adaptive ``sigma_z``: every ``sigma_z_every`` steps the encoder's per-channel
  RMSE on the validation split is passed to ``module.update_sigma_z`` (and, for
  ``base_noise="spectral"``, its error power per radial band to ``module.update_noise_spectrum``);
* two-stage methods (``sfm-two-stage``, ``corrdiff``): stage 1 (encoder) for the first
  ``two_stage_fraction`` of the steps, then stage 2 (flow or diffusion, encoder frozen);
* a tqdm progress bar with the running loss;
* periodic checkpoints in one safetensors file (never pickle): the live weights and buffers, the EMA
  weights, Adam's moment and step tensors, the states of the batch and noise generators (as
  ``uint8`` tensors), the loss history, and in the metadata the step, the module config and the
  training settings (:mod:`xsfm.training.checkpoint`). ``resume=True`` continues from the file
  **exactly**: an interrupted and resumed run ends with the same weights, bit for bit on CPU, as an
  uninterrupted one.

All randomness comes from explicit generators derived from ``seed`` with
:class:`numpy.random.SeedSequence` (split, batch indices, training noise: three streams), never from
torch's global generator. The initial weights come from the module's own config seed.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from xsfm.models.downscaling import Downscaler
from xsfm.models.downscaling.base_noise import BANDS
from xsfm.training.checkpoint import load_checkpoint, restore_checkpoint, save_checkpoint

__all__ = ["TrainResult", "load_checkpoint", "normalisation_stats", "train_downscaler"]


@dataclass
class TrainResult:
    """What :func:`train_downscaler` returns.

    Attributes
    ----------
    module
        The trained module, holding the EMA weights (or the last weights when ``ema_decay=0``).
    history
        ``loss`` (one value per step), ``sigma_z`` and ``val_rmse`` (one per-channel list per
        ``sigma_z`` update, normalised units).
    steps
        Steps done in total (including those before a resume).
    raw_state
        The last (non-averaged) weights and buffers, as a state dict.
    stats
        Normalisation statistics used (physical units).
    seconds
        Wall time of this call.
    val_indices
        Positions of the held-out pairs in the input (for checks on data the weights never saw).
    """

    module: Downscaler
    history: dict[str, list[Any]]
    steps: int
    raw_state: dict[str, torch.Tensor] = field(repr=False)
    stats: dict[str, torch.Tensor] = field(repr=False)
    seconds: float = 0.0
    val_indices: torch.Tensor = field(default_factory=lambda: torch.zeros(0, dtype=torch.long))


def normalisation_stats(
    coarse: torch.Tensor, fine: torch.Tensor, min_std: float = 1e-12
) -> dict[str, torch.Tensor]:
    """Per-channel mean and standard deviation of inputs and outputs (physical units).

    Parameters
    ----------
    coarse
        ``[N, Cin, h, w]``.
    fine
        ``[N, Cout, H, W]``.
    min_std
        A channel whose standard deviation is below this (a constant field) gets std 1.

    Returns
    -------
    dict
        ``in_mean``, ``in_std`` ``[Cin]``, ``out_mean``, ``out_std`` ``[Cout]`` (float32), computed
        in float64.

    Examples
    --------
    >>> g = torch.Generator().manual_seed(0)
    >>> s = normalisation_stats(torch.full((4, 1, 2, 2), 3.0), torch.randn(4, 2, 4, 4, generator=g))
    >>> s["in_mean"], s["in_std"]
    (tensor([3.]), tensor([1.]))
    """
    out = {}
    for prefix, t in (("in", coarse), ("out", fine)):
        if t.ndim != 4:
            raise ValueError(f"{prefix}put tensor must be [N, C, H, W], got {list(t.shape)}")
        t64 = t.detach().to("cpu", torch.float64)
        mean = t64.mean(dim=(0, 2, 3))
        std = t64.std(dim=(0, 2, 3), unbiased=False)
        std = torch.where(std < min_std, torch.ones_like(std), std)
        out[f"{prefix}_mean"] = mean.float()
        out[f"{prefix}_std"] = std.float()
    return out


def _stream(seed: int, purpose: int) -> torch.Generator:
    state = np.random.SeedSequence([int(seed), 0x5846_4D54, int(purpose)]).generate_state(2)
    value = ((int(state[0]) << 32) | int(state[1])) & ((1 << 63) - 1)
    return torch.Generator().manual_seed(value)


def _ema_decay(decay: float, step: int) -> float:
    return min(decay, (1 + step) / (10 + step))


def _lr_at(lr: float, schedule: str, step: int, steps: int, switch: int) -> float:
    if schedule == "constant":
        return lr
    begin, end = (0, switch) if step < switch else (switch, steps)
    frac = (step - begin) / max(1, end - begin)
    return lr * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * frac)))


def _val_rmse(
    module: Downscaler, coarse: torch.Tensor, fine: torch.Tensor, batch: int, device: torch.device
) -> torch.Tensor:
    total = torch.zeros(module.out_channels, dtype=torch.float64)
    count = 0
    with torch.no_grad():
        for i in range(0, coarse.shape[0], batch):
            c = coarse[i : i + batch].to(device)
            f = fine[i : i + batch].to(device)
            rmse = module.encoder_rmse(c, f).double().cpu()
            n = c.shape[0]
            total += rmse.pow(2) * n
            count += n
    return (total / count).sqrt()


def _val_spectrum(
    module: Downscaler, coarse: torch.Tensor, fine: torch.Tensor, batch: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """The encoder's error power per band on the held-out pairs (for ``base_noise="spectral"``)."""
    total = torch.zeros(module.out_channels, BANDS, dtype=torch.float64)
    for i in range(0, coarse.shape[0], batch):
        c, f = coarse[i : i + batch].to(device), fine[i : i + batch].to(device)
        power, count = module.encoder_error_spectrum(c, f)  # count: modes per band, every batch
        total += power * c.shape[0]
    return total / coarse.shape[0], count


def train_downscaler(
    module: Downscaler,
    coarse: torch.Tensor,
    fine: torch.Tensor,
    *,
    steps: int = 1000,
    batch_size: int = 16,
    lr: float = 1e-3,
    lr_schedule: str = "cosine",
    val_fraction: float = 0.1,
    ema_decay: float = 0.999,
    grad_clip: float | None = 1.0,
    sigma_z_every: int = 10,
    seed: int = 0,
    checkpoint_path: str | os.PathLike[str] | None = None,
    checkpoint_every: int | None = None,
    resume: bool = False,
    progress: bool = True,
    normalise: bool = True,
    callback: Callable[[int, dict[str, float]], None] | None = None,
) -> TrainResult:
    """Train ``module`` on physical pairs (see the module docstring).

    Parameters
    ----------
    module
        A downscaler from :func:`~xsfm.models.downscaling.build_downscaler`; trained in place.
    coarse
        ``[N, Cin, h, w]`` in physical units (CPU tensors; batches move to the module's device).
    fine
        ``[N, Cout, H, W]`` in physical units.
    steps
        Total optimisation steps (a resumed run continues up to this number).
    batch_size
        Pairs per step (drawn with replacement from the training split).
    lr
        Adam learning rate (the peak of the schedule).
    lr_schedule
        ``"cosine"``: decay from ``lr`` to ``lr / 100`` over the run (restarted at the stage switch
        of two-stage methods); ``"constant"``.
    val_fraction
        Share of pairs held out (for the ``sigma_z`` estimate); at least one when positive.
    ema_decay
        Decay of the weight average (0 disables it).
    grad_clip
        Maximum gradient norm (``None`` or 0 disables clipping).
    sigma_z_every
        Steps between ``sigma_z`` updates (methods with adaptive ``sigma_z``).
    seed
        Seed of the split, the batches and the training noise.
    checkpoint_path
        Safetensors file for checkpoints.
    checkpoint_every
        Steps between checkpoints (also written at the end when set).
    resume
        Continue from ``checkpoint_path`` when it exists.
    progress
        Show a tqdm progress bar.
    normalise
        Set the module's normalisation statistics from the training split.
    callback
        Called as ``callback(step, logs)`` after each step.

    Returns
    -------
    TrainResult

    Examples
    --------
    >>> from xsfm.models.downscaling import build_downscaler
    >>> g = torch.Generator().manual_seed(0)
    >>> coarse = torch.randn(16, 1, 4, 4, generator=g)
    >>> fine = torch.randn(16, 1, 8, 8, generator=g)
    >>> m = build_downscaler({"method": "sfm", "factor": 2,
    ...                       "unet": {"channels": 8, "channel_mult": [1]}})
    >>> res = train_downscaler(m, coarse, fine, steps=3, batch_size=4, sigma_z_every=1,
    ...                        progress=False)
    >>> len(res.history["loss"]), len(res.history["sigma_z"])
    (3, 3)
    """
    t_start = time.perf_counter()
    if not isinstance(module, Downscaler):
        raise TypeError(f"module must be a Downscaler, got {type(module).__name__}")
    if coarse.ndim != 4 or fine.ndim != 4:
        raise ValueError(
            f"coarse and fine must be [N, C, H, W], got {list(coarse.shape)} and {list(fine.shape)}"
        )
    n = coarse.shape[0]
    if fine.shape[0] != n:
        raise ValueError(f"coarse has {n} samples but fine has {fine.shape[0]}")
    if coarse.shape[1] != module.in_channels or fine.shape[1] != module.out_channels:
        raise ValueError(
            f"the module takes {module.in_channels} input and {module.out_channels} output "
            f"channels, got {coarse.shape[1]} and {fine.shape[1]}"
        )
    expected = module.fine_shape(*coarse.shape[-2:])
    if tuple(fine.shape[-2:]) != expected:
        raise ValueError(
            f"fine grid must be {expected[0]}x{expected[1]} for a {coarse.shape[-2]}x"
            f"{coarse.shape[-1]} coarse grid, got {fine.shape[-2]}x{fine.shape[-1]}"
        )
    if steps < 0 or batch_size < 1:
        raise ValueError(f"need steps >= 0 and batch_size >= 1, got {steps} and {batch_size}")
    if not 0 <= val_fraction < 1:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    if lr_schedule not in ("cosine", "constant"):
        raise ValueError(f"lr_schedule must be 'cosine' or 'constant', got {lr_schedule!r}")
    if checkpoint_every is not None and checkpoint_path is None:
        raise ValueError("checkpoint_every needs a checkpoint_path")
    adaptive = module.adaptive_sigma_z
    sigma_z_every = int(sigma_z_every)
    if adaptive and sigma_z_every < 1:
        raise ValueError(f"sigma_z_every must be >= 1, got {sigma_z_every}")

    # split
    g_split, g_batch, g_noise = _stream(seed, 0), _stream(seed, 1), _stream(seed, 2)
    perm = torch.randperm(n, generator=g_split)
    n_val = max(1, round(n * val_fraction)) if val_fraction > 0 else 0
    if adaptive and n_val == 0:
        raise ValueError(
            f"method {module.method!r} estimates sigma_z on held-out pairs; set val_fraction > 0"
        )
    if n - n_val < 1:
        raise ValueError(f"no training pairs left: {n} pairs, {n_val} held out")
    val_idx, train_idx = perm[:n_val], perm[n_val:]
    coarse_tr, fine_tr = coarse[train_idx], fine[train_idx]
    coarse_val, fine_val = coarse[val_idx], fine[val_idx]

    stats = normalisation_stats(coarse_tr, fine_tr)
    if normalise:
        module.set_normalisation(**stats)

    device = next(iter(module.parameters())).device
    params = list(module.parameters())
    names = [k for k, _ in module.named_parameters()]
    optimizer = torch.optim.Adam(params, lr=lr)
    ema = {k: p.detach().clone() for k, p in module.named_parameters()} if ema_decay > 0 else {}
    history: dict[str, list[Any]] = {"loss": [], "sigma_z": [], "val_rmse": []}
    settings = {
        "batch_size": int(batch_size),
        "lr": float(lr),
        "lr_schedule": lr_schedule,
        "val_fraction": float(val_fraction),
        "ema_decay": float(ema_decay),
        "grad_clip": float(grad_clip or 0.0),
        "sigma_z_every": sigma_z_every,
        "seed": int(seed),
        "n_samples": int(n),
        "steps": int(steps),
    }
    generators = {"batch": g_batch, "noise": g_noise}
    ckpt = Path(checkpoint_path) if checkpoint_path is not None else None

    start = 0
    if resume and ckpt is not None and ckpt.exists():
        start = restore_checkpoint(
            ckpt, module, ema, optimizer, generators, history, settings, device
        )

    two_stage = module.num_stages == 2
    switch = round(steps * float(module.config["two_stage_fraction"])) if two_stage else 0

    from tqdm.auto import tqdm

    bar = tqdm(
        total=steps, initial=min(start, steps), disable=not progress, desc=f"train {module.method}"
    )
    window: list[float] = []
    try:
        for step in range(start, steps):
            if two_stage:
                module.set_stage(1 if step < switch else 2)
            for group in optimizer.param_groups:
                group["lr"] = _lr_at(lr, lr_schedule, step, steps, switch if two_stage else 0)
            idx = torch.randint(coarse_tr.shape[0], (batch_size,), generator=g_batch)
            c = coarse_tr[idx].to(device)
            f = fine_tr[idx].to(device)
            loss, logs = module.loss(c, f, g_noise)
            if not math.isfinite(logs["loss"]):
                raise FloatingPointError(
                    f"loss is {logs['loss']} at step {step}; lower lr or check the data for NaN"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if grad_clip:
                torch.nn.utils.clip_grad_norm_(params, float(grad_clip))
            optimizer.step()
            if ema:
                decay = _ema_decay(float(ema_decay), step)
                with torch.no_grad():
                    for name, p in zip(names, params, strict=True):
                        ema[name].lerp_(p.detach(), 1 - decay)
            history["loss"].append(logs["loss"])
            done = step + 1
            if adaptive and done % sigma_z_every == 0:
                rmse = _val_rmse(module, coarse_val, fine_val, max(batch_size, 64), device)
                sz = module.update_sigma_z(rmse)
                if module.base_noise == "spectral":
                    module.update_noise_spectrum(
                        *_val_spectrum(module, coarse_val, fine_val, max(batch_size, 64), device)
                    )
                history["val_rmse"].append(rmse.tolist())
                history["sigma_z"].append(sz.double().cpu().tolist())
                logs["sigma_z"] = float(sz.mean())
            if ckpt is not None and checkpoint_every and done % checkpoint_every == 0:
                save_checkpoint(ckpt, module, ema, optimizer, generators, history, done, settings)
            window.append(logs["loss"])
            if progress and (done % 10 == 0 or done == steps):
                bar.set_postfix(loss=f"{sum(window) / len(window):.4g}")
                window.clear()
            bar.update(1)
            if callback is not None:
                callback(done, logs)
    finally:
        bar.close()

    if ckpt is not None and checkpoint_every and steps > start and steps % checkpoint_every:
        save_checkpoint(ckpt, module, ema, optimizer, generators, history, steps, settings)

    raw_state = {k: v.detach().clone() for k, v in module.state_dict().items()}
    if ema:
        with torch.no_grad():
            for name, p in module.named_parameters():
                p.copy_(ema[name])
    if two_stage:
        module.set_stage(2)
    return TrainResult(
        module=module,
        history=history,
        steps=max(start, steps),
        raw_state=raw_state,
        stats=stats,
        seconds=time.perf_counter() - t_start,
        val_indices=val_idx.clone(),
    )
