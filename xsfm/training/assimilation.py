"""Training of FlowDAS drift networks on trajectories (tensor level).

:func:`train_assimilator` fits :meth:`xsfm.models.flowdas.FlowDAS.loss` on pairs
``(L previous states, next state)`` cut from trajectories, with Adam, an optional EMA of the
weights, and early stopping on a fixed validation set (held-out trajectories, fixed interpolation
times and noise, so the validation loss is a deterministic function of the weights). All randomness
comes from generators derived from ``seed`` (:func:`xsfm.sampling.rng.stream_seed`): the same call
gives the same weights on CPU.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from collections.abc import Callable
from typing import Any

import torch

from xsfm.sampling.rng import stream_seed

__all__ = ["TrainingResult", "train_assimilator"]


@dataclasses.dataclass
class TrainingResult:
    """What :func:`train_assimilator` did.

    Attributes
    ----------
    best_val_loss
        Lowest validation loss (the returned weights are those of that evaluation).
    best_step
        Optimiser step of the best evaluation.
    steps
        Optimiser steps taken.
    wall_time
        Seconds spent.
    stopped
        Why training stopped: ``"patience"``, ``"steps"`` or ``"time_limit"``.
    history
        One record per evaluation: ``step``, ``train_loss`` (mean since the last evaluation),
        ``val_loss``, ``lr``, ``time``.
    """

    best_val_loss: float
    best_step: int
    steps: int
    wall_time: float
    stopped: str
    history: list[dict[str, float]]

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable summary (without the per-evaluation history)."""
        return {
            "best_val_loss": self.best_val_loss,
            "best_step": self.best_step,
            "steps": self.steps,
            "wall_time_s": round(self.wall_time, 1),
            "stopped": self.stopped,
        }


def _pairs_index(n_traj: int, length: int, history: int) -> tuple[int, int]:
    """Number of (trajectory, start) pairs: starts ``0..length - history - 1``."""
    per_traj = length - history
    if per_traj < 1:
        raise ValueError(
            f"trajectories of {length} times are too short for history {history} (need > {history})"
        )
    return n_traj, per_traj


def _windows(
    data: torch.Tensor, traj: torch.Tensor, start: torch.Tensor, history: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """History windows ``[B, L, *state]`` and targets ``[B, *state]`` at (traj, start)."""
    offsets = torch.arange(history + 1, device=data.device)
    times = start[:, None] + offsets  # [B, L + 1]
    window = data[traj[:, None], times]
    return window[:, :history], window[:, history]


def train_assimilator(
    module: Any,
    trajectories: torch.Tensor,
    *,
    steps: int | None = None,
    epochs: float | None = None,
    batch_size: int = 256,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    warmup: int = 200,
    val_fraction: float = 0.1,
    val_size: int = 16384,
    eval_every: int = 500,
    patience: int = 10,
    lr_patience: int | None = None,
    lr_factor: float = 0.5,
    min_delta: float = 1e-3,
    ema: float | None = None,
    time_limit: float | None = None,
    seed: int = 0,
    progress: bool = True,
    callback: Callable[[dict[str, float]], None] | None = None,
) -> TrainingResult:
    """Fit a FlowDAS module's drift on trajectories.

    Parameters
    ----------
    module
        A :class:`~xsfm.models.flowdas.FlowDAS` (anything with ``normalise``, ``loss``,
        ``history``); trained in place, ending with the weights of the best validation evaluation.
    trajectories
        ``[n_traj, T, *state]`` in physical units.
    steps, epochs
        Budget: optimiser steps, or epochs over the training pairs (default: 100 epochs); training
        usually stops earlier (``patience``, ``time_limit``).
    batch_size, lr, weight_decay
        Adam settings.
    warmup
        The learning rate rises linearly over this many steps.
    val_fraction, val_size
        Fraction of trajectories held out for validation, and the number of validation pairs used.
    eval_every
        Steps between validation evaluations.
    patience
        Stop after this many evaluations without improvement.
    min_delta
        Relative decrease of the validation loss that counts as an improvement.
    lr_patience, lr_factor
        Multiply the learning rate by ``lr_factor`` after ``lr_patience`` evaluations without
        improvement (default ``patience // 2``; the count restarts after each reduction).
    ema
        Decay of an exponential moving average of the weights (e.g. 0.999); evaluated and kept
        instead of the raw weights. ``None``: no EMA.
    time_limit
        Stop after this many seconds (checked at evaluations).
    seed
        Seed of the split, the batches, the interpolation times and the noise.
    progress
        Show a tqdm progress bar.
    callback
        Called with each evaluation record.

    Returns
    -------
    TrainingResult

    Examples
    --------
    >>> from xsfm.models.flowdas import FlowDAS
    >>> model = FlowDAS((1,), network={"width": 16, "blocks": 1})
    >>> data = torch.cumsum(torch.randn(8, 20, 1, generator=torch.Generator().manual_seed(0)), 1)
    >>> res = train_assimilator(model, data, steps=20, eval_every=10, batch_size=16, progress=False)
    >>> res.steps, res.stopped
    (20, 'steps')
    """
    start_time = time.perf_counter()
    if trajectories.ndim < 3:
        raise ValueError(
            f"trajectories must be [n_traj, T, *state]; got shape {tuple(trajectories.shape)}"
        )
    history = int(module.history)
    dtype = next(module.parameters()).dtype
    device = next(module.parameters()).device
    with torch.no_grad():
        data = module.normalise(trajectories.to(device=device, dtype=dtype)).contiguous()
    n_traj, length = data.shape[:2]
    _pairs_index(n_traj, length, history)

    split = torch.Generator().manual_seed(stream_seed(seed, 0, 0))
    order = torch.randperm(n_traj, generator=split)
    n_val = max(1, round(val_fraction * n_traj)) if val_fraction > 0 and n_traj > 1 else 0
    val_traj, train_traj = order[:n_val], order[n_val:]
    if len(train_traj) == 0:
        raise ValueError(
            "no training trajectories left; lower val_fraction or give more trajectories"
        )
    per_traj = length - history
    n_pairs = len(train_traj) * per_traj
    if steps is None:
        steps = math.ceil((100 if epochs is None else epochs) * n_pairs / batch_size)
    steps = int(steps)

    # fixed validation set: pairs, times and noise drawn once
    val_set = None
    if n_val:
        vg = torch.Generator().manual_seed(stream_seed(seed, 1, 0))
        n_v = min(int(val_size), n_val * per_traj)
        vt = val_traj[torch.randint(n_val, (n_v,), generator=vg)].to(device)
        vs = torch.randint(per_traj, (n_v,), generator=vg).to(device)
        vhist, vtarget = _windows(data, vt, vs, history)
        v_s = torch.rand(n_v, generator=vg, dtype=dtype).to(device)
        v_z = torch.randn(vtarget.shape, generator=vg, dtype=dtype).to(device)
        val_set = (vhist, vtarget, v_s, v_z)

    def validate(net: Any) -> float:
        if val_set is None:
            return float("nan")
        vhist, vtarget, v_s, v_z = val_set
        total, count = 0.0, 0
        with torch.no_grad():
            for i in range(0, vtarget.shape[0], 4096):
                sl = slice(i, i + 4096)
                loss = net.loss(
                    vhist[sl], vtarget[sl], s=v_s[sl], z=v_z[sl], normalised=True
                ).item()
                n = vtarget[sl].shape[0]
                total, count = total + loss * n, count + n
        return total / count

    gen = torch.Generator().manual_seed(stream_seed(seed, 2, 0))
    train_traj_dev = train_traj.to(device)
    optimiser = torch.optim.Adam(module.parameters(), lr=lr, weight_decay=weight_decay)
    averaged = copy.deepcopy(module) if ema else None
    if averaged is not None:
        averaged.requires_grad_(False)
    eval_net = averaged if averaged is not None else module
    lr_patience = max(1, patience // 2) if lr_patience is None else int(lr_patience)

    best = float("inf")
    best_step = 0
    best_state = copy.deepcopy(eval_net.state_dict())
    since_best = since_lr = 0
    current_lr = lr
    running, running_n = 0.0, 0
    records: list[dict[str, float]] = []
    stopped = "steps"
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=steps, desc="train FlowDAS", unit="step")
    module.train()
    step = 0
    for step in range(1, steps + 1):
        scale = min(1.0, step / warmup) if warmup else 1.0
        for group in optimiser.param_groups:
            group["lr"] = current_lr * scale
        ti = torch.randint(len(train_traj), (batch_size,), generator=gen).to(device)
        si = torch.randint(per_traj, (batch_size,), generator=gen).to(device)
        hist, target = _windows(data, train_traj_dev[ti], si, history)
        loss = module.loss(hist, target, generator=gen, normalised=True)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        if averaged is not None:
            with torch.no_grad():
                for p_avg, p in zip(averaged.parameters(), module.parameters(), strict=True):
                    p_avg.lerp_(p, 1.0 - float(ema))
        running += loss.item()
        running_n += 1
        if bar is not None:
            bar.update(1)
        if step % eval_every == 0 or step == steps:
            module.eval()
            val = validate(eval_net)
            module.train()
            record = {
                "step": step,
                "train_loss": running / max(running_n, 1),
                "val_loss": val,
                "lr": current_lr,
                "time": time.perf_counter() - start_time,
            }
            records.append(record)
            running, running_n = 0.0, 0
            if bar is not None:
                bar.set_postfix(train=f"{record['train_loss']:.4f}", val=f"{val:.4f}")
            if callback is not None:
                callback(record)
            criterion = val if val_set is not None else record["train_loss"]
            if criterion < best * (1 - min_delta):
                best, best_step = criterion, step
                best_state = copy.deepcopy(eval_net.state_dict())
                since_best = since_lr = 0
            else:
                since_best += 1
                since_lr += 1
                if since_lr >= lr_patience:
                    current_lr *= lr_factor
                    since_lr = 0
            if since_best >= patience:
                stopped = "patience"
                break
            if time_limit is not None and record["time"] >= time_limit:
                stopped = "time_limit"
                break
    if bar is not None:
        bar.close()
    module.load_state_dict(best_state)
    module.eval()
    return TrainingResult(
        best_val_loss=best,
        best_step=best_step,
        steps=step,
        wall_time=time.perf_counter() - start_time,
        stopped=stopped,
        history=records,
    )
