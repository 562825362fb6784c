"""The xarray front end of FlowDAS training: state trajectories in, a :class:`~xsfm.model.Model` out.

:func:`fit_assimilator` reads the state variable's name, standard name and units into the card, the
state dims' labels into ``grids``, and the model's **time step** from the time coordinate (which
must be evenly spaced: the model learns one step), stacks every other dim into trajectories,
normalises by the per-element mean and standard deviation, and runs
:func:`xsfm.training.assimilation.train_assimilator`. The result assimilates like a shipped model
(``state.sfm.assimilate(obs, model=m)``); ``m.save(path)`` and :func:`xsfm.register_model` keep it.
"""

from __future__ import annotations

import sys
from collections.abc import Hashable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xarray as xr

from xsfm.errors import InputError, raise_all
from xsfm.xr.state import check_values, pick_variable

if TYPE_CHECKING:
    from xsfm.model import Model
    from xsfm.observations import Observation

__all__ = ["fit_assimilator", "time_step_of"]


def time_step_of(times: np.ndarray, time_dim: Hashable) -> Any:
    """The one spacing of evenly spaced times; an error names the first uneven gap.

    Examples
    --------
    >>> time_step_of(np.array([0.0, 0.5, 1.0]), "time")
    0.5
    """
    times = np.asarray(times)
    if times.size < 2:
        raise InputError(f"trajectories need at least 2 times along {time_dim!r}")
    gaps = np.diff(times)
    first = gaps[0]
    if times.dtype.kind == "M":
        uneven = gaps != first
        step: Any = str(pd.Timedelta(first))
        positive = first > np.timedelta64(0, "ns")
    else:
        uneven = ~np.isclose(gaps.astype(float), float(first), rtol=1e-6, atol=0.0)
        step = first.item()
        positive = first > 0
    if not positive or uneven.any():
        k = int(np.flatnonzero(uneven)[0]) if uneven.any() else 0
        raise InputError(
            f"the {time_dim!r} coordinate must increase by one time step, but it goes from "
            f"{times[k]} to {times[k + 1]} where the first step is {first}; give evenly spaced, "
            "sorted times (the model learns one step)"
        )
    return step


def fit_assimilator(
    trajectories: xr.DataArray | xr.Dataset,
    state_dims: Sequence[Hashable],
    *,
    time_dim: str = "time",
    variable: str | None = None,
    name: str = "flowdas-custom",
    history: int = 1,
    network: Mapping[str, Any] | None = None,
    observation_operator: Observation | Mapping[str, Any] | None = None,
    sampler: Mapping[str, Any] | None = None,
    steps: int | None = None,
    epochs: float | None = None,
    batch_size: int = 256,
    lr: float = 1e-3,
    ema: float | None = None,
    val_fraction: float = 0.1,
    val_size: int = 16384,
    eval_every: int = 500,
    patience: int = 10,
    time_limit: float | None = None,
    seed: int = 0,
    progress: bool = True,
    description: str = "",
) -> Model:
    """Train a FlowDAS model on state trajectories.

    Parameters
    ----------
    trajectories
        The state along ``time_dim`` (evenly spaced: its spacing becomes the card's ``time_step``),
        ``state_dims``, and any other dims (trajectories, cases...), which are stacked into
        independent trajectories. Needs a ``units`` attribute.
    state_dims
        The dims of one state (e.g. ``["component"]`` or ``["y", "x"]``).
    time_dim
        Name of the time dim.
    variable
        The state variable when ``trajectories`` is a Dataset with several.
    name
        Model name on the card.
    history
        Number of past states the drift conditions on.
    network
        Drift network options (e.g. ``{"kind": "mlp", "width": 256, "blocks": 5}``).
    observation_operator
        Default observation operator stored on the card (used when ``obs`` carries none).
    sampler
        Sampler defaults (``steps``, ``guidance``...).
    steps, epochs, batch_size, lr, ema, val_fraction, val_size, eval_every, patience, time_limit, \
seed, progress
        Training options of :func:`xsfm.training.assimilation.train_assimilator`.
    description
        Free text for the card.

    Returns
    -------
    xsfm.Model

    Examples
    --------
    >>> import xsfm
    >>> ds = xsfm.datasets.lorenz63(trajectories=8, steps=40, burn_in=64)
    >>> m = xsfm.training.fit_assimilator(ds.state, ["component"], network={"width": 16, "blocks": 1},
    ...                                   steps=10, eval_every=5, progress=False)
    >>> m.card.grids["time_step"], m.card.kind
    (1, 'assimilation')
    """
    import torch

    from xsfm.backend import to_torch
    from xsfm.model import Model
    from xsfm.models.card import ModelCard
    from xsfm.models.flowdas import FlowDAS
    from xsfm.observations import as_operator
    from xsfm.training.assimilation import train_assimilator

    da = pick_variable(
        trajectories, {"name": variable} if variable is not None else None, "trajectories"
    )
    label = f"trajectories variable {da.name!r}" if da.name is not None else "trajectories"
    state_dims = list(state_dims)
    problems: list[Exception] = [
        InputError(f"{label} has no dim {d!r} (its dims are {tuple(da.dims)})")
        for d in [*state_dims, time_dim]
        if d not in da.dims
    ]
    if "units" not in da.attrs:
        problems.append(
            InputError(
                f"{label} has no 'units' attribute; set it (e.g. da.attrs['units'] = '1') so the "
                "model card can declare the state's units"
            )
        )
    raise_all(problems, "the training trajectories")
    time_step = time_step_of(da[time_dim].values, time_dim) if time_dim in da.coords else None
    traj_dims = [d for d in da.dims if d != time_dim and d not in state_dims]
    da = da.transpose(*traj_dims, time_dim, *state_dims)
    values = np.asarray(da.values, dtype=np.float64)
    raise_all(check_values(values, label, allow_nan=False), "the training trajectories")
    state_shape = values.shape[len(traj_dims) + 1 :]
    data = values.reshape(-1, values.shape[len(traj_dims)], *state_shape)
    mean = data.mean(axis=(0, 1))
    std = data.std(axis=(0, 1))
    std = np.where(std > 0, std, 1.0)
    module = FlowDAS(
        state_shape,
        history=history,
        network=dict(network or {}),
        mean=to_torch(mean, dtype=torch.float32),
        std=to_torch(std, dtype=torch.float32),
        sampler=dict(sampler or {}),
    )
    result = train_assimilator(
        module,
        to_torch(data, dtype=torch.float32),
        steps=steps,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        ema=ema,
        val_fraction=val_fraction,
        val_size=val_size,
        eval_every=eval_every,
        patience=patience,
        time_limit=time_limit,
        seed=seed,
        progress=progress,
    )
    spec = {
        "name": str(da.name if da.name is not None else "state"),
        **{k: da.attrs[k] for k in ("standard_name", "units", "long_name") if k in da.attrs},
    }
    grids: dict[str, Any] = {"state_dims": [str(d) for d in state_dims]}
    for d in state_dims:
        if d in da.indexes:
            grids[str(d)] = [v.item() if hasattr(v, "item") else v for v in da.indexes[d]]
    if time_step is not None:
        grids["time_step"] = time_step
    extra: dict[str, Any] = {"history": int(history)}
    if observation_operator is not None:
        extra["observation_operator"] = as_operator(observation_operator).to_dict()
    card = ModelCard(
        name=name,
        version="1.0",
        kind="assimilation",
        method="flowdas",
        description=description,
        network=module.config,
        inputs=[spec],
        outputs=[spec],
        grids=grids,
        normalisation={"mean": mean.tolist(), "std": std.tolist()},
        sampler=dict(module.sampler),
        training={
            **result.to_dict(),
            "trajectories": int(data.shape[0]),
            "times": int(data.shape[1]),
            "seed": int(seed),
            "command": " ".join(sys.argv) if sys.argv and sys.argv[0] else None,
        },
        extra=extra,
    )
    return Model(card, network=module)
