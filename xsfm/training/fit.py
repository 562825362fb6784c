"""xarray front ends of the trainers: CF-annotated data in, a :class:`~xsfm.model.Model` out.

:func:`fit_downscaler` reads the variables' names, standard names and units into the card, derives the
coarse and fine grid specs and the refinement factor from the coordinates, stacks every non-spatial dim
into samples, computes normalisation statistics and runs
:func:`xsfm.training.downscaling.train_downscaler`. The result is a model that ``ds.sfm.downscale`` uses
like any shipped one; save it with ``model.save(path)``.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

from xsfm.errors import InputError, raise_all
from xsfm.model import Model
from xsfm.models.card import ModelCard
from xsfm.xr.grid import find_spatial_grid
from xsfm.xr.gridspec import grid_spec_from_dataarray
from xsfm.xr.pairing import pair_samples
from xsfm.xr.standardise import standardise_grid

__all__ = ["fit_downscaler", "stack_fields"]

_ATTRS = ("standard_name", "units", "long_name")


def _field_names(ds: xr.Dataset, names: Sequence[Hashable] | None, role: str) -> list[str]:
    if names is not None:
        missing = [n for n in names if n not in ds.data_vars]
        if missing:
            raise InputError(
                f"{role} variables {missing} are not in the {role} dataset; it has "
                f"{sorted(map(str, ds.data_vars))}"
            )
        return [str(n) for n in names]
    grid = find_spatial_grid(ds)
    found = [str(n) for n, da in ds.data_vars.items() if {grid.y_dim, grid.x_dim} <= set(da.dims)]
    if not found:
        raise InputError(f"the {role} dataset has no variable on its spatial grid {grid.dims}")
    return found


def stack_fields(
    ds: xr.Dataset,
    names: Sequence[str],
    role: str,
    sample_dims: Sequence[Hashable] | None = None,
) -> tuple[np.ndarray, list[str], list[dict[str, Any]], dict[str, Any], dict[str, int]]:
    """Stack variables into ``[N, C, ny, nx]`` float32 with their specs, grid spec and sample sizes.

    Samples are flattened in the order of ``sample_dims`` (default: the first variable's), so two
    datasets stacked with the same ``sample_dims`` pair sample by sample.
    """
    problems: list[Exception] = []
    fields = {}
    for name in names:
        da = ds[name]
        if "units" not in da.attrs:
            problems.append(
                InputError(
                    f"{role} variable {name!r} has no 'units' attribute; set it (e.g. "
                    f"ds[{name!r}].attrs['units'] = 's-1') so the model card can declare it"
                )
            )
            continue
        try:
            fields[name] = standardise_grid(da, name=name)
        except ValueError as err:
            problems.extend(getattr(err, "exceptions", [err]))
    raise_all(problems, f"the {role} variables")
    first = fields[names[0]]
    grid = find_spatial_grid(first)
    if sample_dims is None:
        sample_dims = [str(d) for d in first.dims if d not in grid.dims]
    sample_dims = [str(d) for d in sample_dims]
    arrays = []
    for name in names:
        da = fields[name]
        if set(map(str, da.dims)) != set(sample_dims) | set(map(str, grid.dims)):
            raise InputError(
                f"{role} variable {name!r} has dims {da.dims}, but {names[0]!r} has {first.dims}; "
                "all variables of a training set need the same dims"
            )
        arrays.append(np.asarray(da.transpose(*sample_dims, *grid.dims).values, dtype=np.float32))
    stacked = np.stack(arrays, axis=-3)
    sizes = {d: int(first.sizes[d]) for d in sample_dims}
    stacked = stacked.reshape(-1, *stacked.shape[-3:])
    specs = [{"name": n, **{k: ds[n].attrs[k] for k in _ATTRS if k in ds[n].attrs}} for n in names]
    return stacked, names, specs, grid_spec_from_dataarray(first), sizes


def fit_downscaler(
    coarse: xr.Dataset,
    fine: xr.Dataset,
    method: str = "sfm",
    *,
    name: str | None = None,
    inputs: Sequence[Hashable] | None = None,
    outputs: Sequence[Hashable] | None = None,
    network: Mapping[str, Any] | None = None,
    periodic: bool = False,
    steps: int = 2000,
    batch_size: int = 16,
    lr: float = 2e-3,
    val_fraction: float = 0.1,
    ema_decay: float = 0.999,
    grad_clip: float | None = 1.0,
    sigma_z_every: int = 10,
    seed: int = 0,
    calibration_pairs: int = 0,
    checkpoint_path: str | None = None,
    checkpoint_every: int | None = None,
    resume: bool = False,
    progress: bool = True,
    description: str = "",
    training_info: Mapping[str, Any] | None = None,
) -> Model:
    """Train a downscaling model on coarse/fine pairs.

    Parameters
    ----------
    coarse, fine
        Datasets with the same non-spatial dims (the samples, e.g. ``time``), the coarse input and the
        fine truth; every variable needs ``units`` (and should have ``standard_name``/``long_name``).
        The fine grid must be an integer multiple of the coarse one.
    method
        ``sfm``, ``sfm-two-stage``, ``sfm-fixed-sigma``, ``regression``, ``cfm``, ``edm`` or ``corrdiff``.
    name
        Model name for the card (default ``f"{method}-custom"``).
    inputs, outputs
        Variable names (default: every variable on the spatial grid).
    network
        Overrides of :func:`xsfm.models.downscaling.default_config` (``unet``, ``encoder``, ...).
    periodic
        Whether the domain is periodic (wrap-around interpolation and convolutions).
    steps, batch_size, lr, val_fraction, ema_decay, grad_clip, sigma_z_every, seed
        Optimiser steps, batch size, Adam learning rate, held-out share (for ``sigma_z``), EMA decay
        of the weights, gradient-norm clip, steps between ``sigma_z`` updates, seed; see
        :func:`xsfm.training.downscaling.train_downscaler`.
    calibration_pairs
        After training, draw 8-member ensembles for up to this many held-out pairs and record their
        spread against their error, overall and per octave of wavenumber
        (:func:`xsfm.training.calibration.calibration_check`), in ``card.training["calibration_check"]``;
        a warning when the spread-skill ratio is outside [0.8, 1.2]. 0 (default): no check;
        deterministic methods are never checked.
    checkpoint_path, checkpoint_every, resume, progress
        Periodic checkpoint file and interval, exact resume from it, progress bar.
    description, training_info
        Recorded in the card.

    Returns
    -------
    Model
        Ready for ``ds.sfm.downscale(model=...)``; save it with ``Model.save(path)``.

    Examples
    --------
    >>> import numpy as np, xarray as xr, xsfm
    >>> def field(n, size):
    ...     xy = (np.arange(size) + 0.5) / size
    ...     return xr.Dataset({"w": (("time", "y", "x"), np.random.default_rng(0).normal(size=(n, size, size)),
    ...                              {"units": "s-1", "standard_name": "atmosphere_relative_vorticity"})},
    ...                       coords={"y": ("y", xy, {"axis": "Y", "units": "m"}),
    ...                               "x": ("x", xy, {"axis": "X", "units": "m"})})
    >>> model = xsfm.training.fit_downscaler(field(8, 4), field(8, 8), method="regression",
    ...                                      steps=2, batch_size=4, progress=False)
    >>> model.card.network["factor"]
    [2, 2]
    """
    import time

    import torch

    from xsfm.backend import to_torch
    from xsfm.models.downscaling import build_downscaler, default_config
    from xsfm.training.downscaling import train_downscaler

    if isinstance(calibration_pairs, bool) or not isinstance(calibration_pairs, int | np.integer):
        raise TypeError(f"calibration_pairs must be an integer, got {calibration_pairs!r}")
    if calibration_pairs < 0:
        raise ValueError(f"calibration_pairs must be >= 0, got {calibration_pairs}")
    coarse_names = _field_names(coarse, inputs, "coarse")
    grid = find_spatial_grid(coarse[coarse_names[0]])
    sample_dims = [d for d in coarse[coarse_names[0]].dims if d not in grid.dims]
    fine = pair_samples(coarse, fine, sample_dims)
    x_in, in_names, in_specs, coarse_grid, in_sizes = stack_fields(
        coarse, coarse_names, "coarse", sample_dims
    )
    x_out, out_names, out_specs, fine_grid, out_sizes = stack_fields(
        fine, _field_names(fine, outputs, "fine"), "fine", sample_dims
    )
    if in_sizes != out_sizes:
        raise InputError(
            f"coarse and fine samples differ: coarse has non-spatial dims {in_sizes}, fine has "
            f"{out_sizes}; pair them sample by sample (same dims and sizes)"
        )
    factors = []
    for axis in ("y", "x"):
        n_c, n_f = coarse_grid[axis]["size"], fine_grid[axis]["size"]
        if n_f % n_c:
            raise InputError(
                f"the fine grid's {fine_grid[axis]['name']} ({n_f} points) is not an integer multiple "
                f"of the coarse grid's {coarse_grid[axis]['name']} ({n_c} points)"
            )
        factors.append(n_f // n_c)
    coarse_grid["periodic"] = fine_grid["periodic"] = bool(periodic)
    config = default_config(
        method,
        in_channels=len(in_names),
        out_channels=len(out_names),
        factor=factors,
        periodic=bool(periodic),
        seed=int(seed),
        **dict(network or {}),
    )
    module = build_downscaler(config)
    start = time.perf_counter()
    result = train_downscaler(
        module,
        to_torch(x_in),
        to_torch(x_out),
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        val_fraction=val_fraction,
        ema_decay=ema_decay,
        grad_clip=grad_clip,
        sigma_z_every=sigma_z_every,
        seed=seed,
        checkpoint_path=checkpoint_path,
        checkpoint_every=checkpoint_every,
        resume=resume,
        progress=progress,
    )
    seconds = time.perf_counter() - start
    stats = {k: [float(v) for v in t.tolist()] for k, t in result.stats.items()}
    losses = result.history.get("loss", [])
    info = {
        "method": method,
        "steps": int(result.steps),
        "batch_size": int(batch_size),
        "lr": float(lr),
        "seed": int(seed),
        "samples": int(x_in.shape[0]),
        "val_fraction": float(val_fraction),
        "ema_decay": float(ema_decay),
        "seconds": round(seconds, 1),
        "torch_threads": torch.get_num_threads(),
        "final_loss": float(np.mean(losses[-50:])) if losses else None,
        "command": " ".join(sys.argv) if sys.argv and sys.argv[0] else None,
        **dict(training_info or {}),
    }
    sigma_z = getattr(result.module, "sigma_z", None)
    if sigma_z is not None:
        info["sigma_z"] = [float(v) for v in sigma_z.tolist()]
    if int(calibration_pairs) > 0 and result.module.uses_flow_net and len(result.val_indices):
        from xsfm.training.calibration import calibration_check

        idx = result.val_indices[: int(calibration_pairs)]
        check = calibration_check(result.module, to_torch(x_in)[idx], to_torch(x_out)[idx])
        info["calibration_check"] = check
        if check["ssr"] is not None and not 0.8 <= check["ssr"] <= 1.2:
            warnings.warn(
                f"held-out spread-skill ratio of the trained {method} model is {check['ssr']:.2f} "
                f"on {check['pairs']} pairs ({'under' if check['ssr'] < 1 else 'over'}-dispersed; "
                "1 is calibrated): see card.training['calibration_check'] for the ratio per "
                "octave of wavenumber",
                stacklevel=2,
            )
    card = ModelCard(
        name=name or f"{method}-custom",
        version="1.0",
        kind="downscaling",
        method=method,
        description=description,
        network=result.module.config,
        inputs=in_specs,
        outputs=out_specs,
        grids={"coarse": coarse_grid, "fine": fine_grid},
        normalisation={
            "inputs": {
                n: {"mean": stats["in_mean"][i], "std": stats["in_std"][i]}
                for i, n in enumerate(in_names)
            },
            "outputs": {
                n: {"mean": stats["out_mean"][i], "std": stats["out_std"][i]}
                for i, n in enumerate(out_names)
            },
        },
        sampler=dict(result.module.config.get("sampler", {})),
        training=info,
    )
    return Model(card, network=result.module)
