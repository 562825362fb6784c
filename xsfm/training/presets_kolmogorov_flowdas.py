"""The ``kolmogorov`` FlowDAS preset: train and save the shipped ``kolmogorov-flowdas`` model.

Data: :func:`xsfm.datasets.kolmogorov` trajectories of relative vorticity on the 64 x 64 grid
(simulated on 96 x 96, spun up for 20 s), ``times`` states ``time_step`` seconds apart, training
split of ``seed``; held-out evaluation uses the test split. Network:
:class:`~xsfm.nn.drift_unet.DriftUNet` (the downscaling models' EDM-style U-Net, circular padding,
4 x 4 patches) conditioned on the previous ``history`` vorticity frames. Training goes through the
public :func:`xsfm.training.fit_assimilator` (Adam, EMA of the weights, plateau-halved learning
rate) until the validation loss stops improving or ``time_limit`` seconds have passed.

Run it with ``xsfm train flowdas --preset kolmogorov --out DIR`` or
``python -m xsfm.training.presets_kolmogorov_flowdas --out DIR``; with ``OMP_NUM_THREADS=1`` for
one thread.
"""

from __future__ import annotations

import dataclasses
import json
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["KOLMOGOROV_FLOWDAS_DEFAULTS", "train_kolmogorov_flowdas"]

KOLMOGOROV_FLOWDAS_DEFAULTS: dict[str, Any] = {
    "trajectories": 128,
    "times": 64,
    "time_step": 0.5,
    "size": 64,
    "history": 2,
    "channels": 48,
    "channel_mult": [1, 2],
    "patch": 4,
    "batch_size": 16,
    "lr": 1e-3,
    "ema": 0.999,
    "eval_every": 500,
    "val_fraction": 0.1,
    "val_size": 1024,
    "patience": 8,
    "time_limit": 2400.0,
    "max_steps": 100_000,
    "sde_steps": 50,
    "name": "kolmogorov-flowdas",
    "version": "1.0",
}
"""Options of the preset (override with ``--set key=value``)."""

DESCRIPTION = (
    "FlowDAS (stochastic-interpolant data assimilation, Chen et al. 2025) for 2-D Kolmogorov flow "
    "(periodic, vorticity form, xsfm.datasets.kolmogorov with its default physics) on a 64 x 64 "
    "grid: the transition over {time_step} s conditioned on the previous {history} vorticity "
    "frames, drift U-Net (EDM-style, circular padding). Trained by the xsfm kolmogorov FlowDAS "
    "preset on simulated data; observation operators (super-resolution, sparse pixels, stations) "
    "are given at assimilation time."
)


def train_kolmogorov_flowdas(
    out: str | Path | None = None,
    *,
    steps: int | None = None,
    seed: int = 0,
    threads: int | None = None,
    progress: bool = False,
    log: Callable[[str], None] | None = None,
    command: str | None = None,
    **options: Any,
) -> Any:
    """Simulate Kolmogorov-flow trajectories, train FlowDAS on them and save it to ``out``.

    Parameters
    ----------
    out
        Model directory to write; ``None``: do not save.
    steps
        Maximum optimiser steps (default ``max_steps``; training stops earlier on a plateau or at
        ``time_limit`` seconds).
    seed
        Seed of the data (training split), the split into validation and the batches.
    threads
        ``torch.set_num_threads(threads)`` first (``None``: leave torch's setting alone).
    progress
        Show a progress bar.
    log
        Where progress lines go (default: print with flush).
    command
        Command line recorded in the card.
    **options
        Overrides of :data:`KOLMOGOROV_FLOWDAS_DEFAULTS`.

    Returns
    -------
    xsfm.Model

    Examples
    --------
    A tiny run (the shipped model uses the defaults):

    >>> m = train_kolmogorov_flowdas(None, trajectories=4, times=6, size=16, channels=8,
    ...                              batch_size=4, eval_every=2, steps=4, log=lambda s: None)
    >>> m.card.grids["state_dims"], m.card.grids["time_step"]
    (['y', 'x'], 0.5)
    """
    import torch

    from xsfm.datasets import kolmogorov
    from xsfm.training.assimilator import fit_assimilator

    unknown = sorted(set(options) - set(KOLMOGOROV_FLOWDAS_DEFAULTS))
    if unknown:
        raise KeyError(
            f"unknown option(s) {unknown} for the kolmogorov FlowDAS preset; known: "
            f"{sorted(KOLMOGOROV_FLOWDAS_DEFAULTS)}"
        )
    opts = {**KOLMOGOROV_FLOWDAS_DEFAULTS, **options}
    if log is None:

        def log(line: str) -> None:
            print(line, flush=True)

    if threads is not None:
        torch.set_num_threads(int(threads))
    if command is None:
        command = f"xsfm train flowdas --preset kolmogorov --out {out} --seed {seed}" + "".join(
            f" --set {k}={json.dumps(v)}" for k, v in options.items()
        )
    log(f"kolmogorov FlowDAS preset: {json.dumps(opts)}; torch threads {torch.get_num_threads()}")
    start = time.perf_counter()
    data = kolmogorov(
        int(opts["trajectories"]),
        int(opts["size"]),
        times=int(opts["times"]),
        interval=float(opts["time_step"]),
        seed=seed,
        split="train",
    )
    data_seconds = time.perf_counter() - start
    log(f"data {dict(data.vorticity.sizes)} simulated in {data_seconds:.1f} s")
    network = {
        "kind": "unet",
        "channels": int(opts["channels"]),
        "channel_mult": [int(m) for m in opts["channel_mult"]],
        "patch": int(opts["patch"]),
        "padding_mode": "circular",
    }
    model = fit_assimilator(
        data.vorticity,
        ["y", "x"],
        name=str(opts["name"]),
        history=int(opts["history"]),
        network=network,
        sampler={"steps": int(opts["sde_steps"])},
        steps=int(steps if steps is not None else opts["max_steps"]),
        batch_size=int(opts["batch_size"]),
        lr=float(opts["lr"]),
        ema=opts["ema"],
        val_fraction=float(opts["val_fraction"]),
        val_size=int(opts["val_size"]),
        eval_every=int(opts["eval_every"]),
        patience=int(opts["patience"]),
        time_limit=float(opts["time_limit"]),
        seed=seed,
        progress=progress,
        description=DESCRIPTION.format(**opts),
    )
    card = model.card
    training = {
        **card.training,
        "command": command,
        "data": {
            "generator": "xsfm.datasets.kolmogorov",
            "samples": int(opts["trajectories"]),
            "times": int(opts["times"]),
            "interval_s": float(opts["time_step"]),
            "size": int(opts["size"]),
            "split": "train",
            "seed": seed,
            "validation": f"{opts['val_fraction']:.0%} of the trajectories",
            "simulation_seconds": round(data_seconds, 1),
        },
        "options": opts,
        "optimiser": "Adam",
        "wall_time_s": round(time.perf_counter() - start, 1),
        "threads": torch.get_num_threads(),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "torch": torch.__version__,
    }
    extra = {
        **card.extra,
        "dataset": "xsfm.datasets.kolmogorov",
        "periodic": True,
        "references": [
            "Chen, Y., et al. (2025). FlowDAS: A Stochastic Interpolant-based Framework for "
            "Data Assimilation. arXiv:2501.16642",
        ],
    }
    model.card = dataclasses.replace(card, training=training, licence="Apache-2.0", extra=extra)
    log(f"training done: {json.dumps({k: training[k] for k in ('steps', 'stopped')})}")
    if out is not None:
        model.save(out)
        log(f"saved {card.name} to {out}")
    return model


def main(argv: list[str] | None = None) -> None:
    """``python -m xsfm.training.presets_kolmogorov_flowdas --out DIR [--set k=v ...]``."""
    from xsfm.training.presets_lorenz63 import preset_cli

    preset_cli(
        train_kolmogorov_flowdas, "xsfm.training.presets_kolmogorov_flowdas", argv, progress=True
    )


if __name__ == "__main__":
    main()
