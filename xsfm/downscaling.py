"""Downscaling for xarray objects: CF-annotated input in, labelled ensemble with units out.

:func:`downscale` is prepare -> run -> label, each step a plain function tested on its own:

1. :func:`xsfm.xr.prepare.prepare_inputs` finds the card's variables (:mod:`xsfm.xr.variables`),
   converts units (:mod:`xsfm.xr.units`) and puts them on the card's coarse grid (cut to the domain, or
   regridded on request, :mod:`xsfm.xr.regrid`), reporting every problem at once, and stacks the fields
   into one ``channel`` dim;
2. the rows are sent through the network chunk by chunk (:mod:`xsfm.xr.chunks`, :mod:`xsfm.backend`);
   each sample's random streams derive from the seed and its global position, so results do not depend
   on chunking or ``batch_size``;
3. :func:`xsfm.xr.label.assemble_output` labels the result: ``member`` dim, the fine grid's coordinates
   with CF attrs, every variable with the card's ``units``/``standard_name``/``long_name``, provenance in
   ``source`` and ``history``, and every non-spatial dim and coordinate of the input passed through.

``MEMBER_ATTRS``, ``check_members`` and ``extend_history`` are importable from here as before; they live
in :mod:`xsfm.xr.label` and :mod:`xsfm.xr.params`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import xarray as xr

from xsfm.model import Model, load_model
from xsfm.progress import reporting
from xsfm.run import downscale_chunk
from xsfm.xr.label import MEMBER_ATTRS, assemble_output, extend_history
from xsfm.xr.params import check_members
from xsfm.xr.prepare import as_dataset, fine_axes, prepare_inputs

__all__ = [
    "DEFAULT_DOWNSCALING_MODEL",
    "MEMBER_ATTRS",
    "check_members",
    "downscale",
    "extend_history",
]

DEFAULT_DOWNSCALING_MODEL = "kolmogorov-sfm"


def downscale(
    obj: xr.DataArray | xr.Dataset,
    model: str | Model | None = None,
    members: int = 16,
    steps: int | None = None,
    seed: int = 0,
    device: str | None = None,
    batch_size: int | None = None,
    *,
    variables: Mapping[str, str] | None = None,
    regrid: str | None = None,
    solver: str | None = None,
    progress: bool | None = None,
    dtype: str | None = None,
    obs: xr.DataArray | xr.Dataset | None = None,
    obs_noise_std: float | None = None,
    guidance_scale: float | None = None,
    **sample_kwargs: Any,
) -> xr.Dataset:
    """Downscale coarse fields to the model's fine grid as an ensemble.

    Parameters
    ----------
    obj
        Coarse input: a Dataset holding the model card's inputs (found by ``standard_name``, then name),
        or a DataArray for single-input models. Any dims besides the two spatial ones (time, level, ...)
        pass through. numpy, dask (stays lazy) or cupy backed.
    model
        Registry name, path, or :class:`~xsfm.model.Model`; default ``"kolmogorov-sfm"``.
    members
        Ensemble size (>= 1).
    steps, solver
        Sampler steps and solver (``"euler"`` or ``"heun"``); default from the card.
    seed
        Results are reproducible bit for bit on the CPU for a given seed, whatever the chunking,
        ``batch_size``, dask scheduler or number of workers.
    device
        ``"auto"`` (GPU for cupy input or when CUDA is available), ``"cpu"`` or ``"cuda"``.
    batch_size
        Samples per network call on a GPU (each with all its members). Default: the first
        sample runs alone and its measured peak memory sizes the batches to half the GPU's free
        memory. On the CPU the network always sees one sample's members per call, so that
        results do not depend on batching.
    variables
        Explicit mapping ``{card_name: name_in_obj}`` when names and standard names do not match.
    regrid
        ``"bilinear"`` to accept input at another resolution by interpolating it to the card's grid.
    progress
        Progress bar over the samples of an eager (numpy) call: True, False, or None (default: on a
        terminal or in Jupyter). Lazy (dask) results show progress when computed, by the scheduler.
    dtype
        ``"bfloat16"`` runs the network under bfloat16 autocast (weights and the sampler's
        state stay float32; faster where the hardware has bfloat16 units, rounding differs from
        float32), ``"float32"``, or None: the card's.
    obs
        Observations inside the fine domain that every member should agree with (see
        :mod:`xsfm.xr.fine_observations`): station values along one dim with ``y``/``x``
        coordinates (the fine grid's coordinate names and units; bilinear, need not lie on grid
        points), or a field on the fine grid with NaN where unobserved; other dims pair with the
        input's pass-through dims by label (NaN: missing). Each ODE step of the sampler is then
        steered toward them (likelihood guidance through the network,
        :mod:`xsfm.models.downscaling.guidance`); None: plain downscaling.
    obs_noise_std
        Observation noise standard deviation in the observations' units (default:
        ``obs.attrs["observation_noise_std"]``).
    guidance_scale
        Multiplier of the guidance correction (default: the card's ``sampler.guidance_scale``,
        else :data:`~xsfm.models.downscaling.guidance.DEFAULT_SCALE`).
    **sample_kwargs
        Passed to the network's ``sample`` (e.g. ``rho``).

    Returns
    -------
    xarray.Dataset
        One variable per card output, dims ``(member, *pass-through dims, y, x)`` on the fine grid.

    Examples
    --------
    >>> import xsfm
    >>> coarse = xsfm.load_model("interpolation").example_input()
    >>> fine = xsfm.downscaling.downscale(coarse, model="interpolation", members=2)
    >>> fine["tas"].dims
    ('member', 'time', 'y', 'x')
    >>> fine["tas"].attrs["units"]
    'K'
    """
    m = load_model(model if model is not None else DEFAULT_DOWNSCALING_MODEL)
    if m.card.kind != "downscaling":
        raise ValueError(
            f"model {m.name!r} is a {m.card.kind} model; downscale needs a downscaling model "
            f"(see xsfm.list_models())"
        )
    members = check_members(members)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an integer, got {seed!r}")
    ds = as_dataset(obj, m)
    prepared = prepare_inputs(ds, m, variables=variables, regrid=regrid)
    data = prepared.data
    grid = prepared.grid
    fine_shape = tuple(len(v) for v, _ in fine_axes(m, prepared).values())
    from xsfm.backend import device_for

    dev = device_for(data.data, device)
    _check_size(data, prepared.sample_dims, members, len(prepared.output_specs), fine_shape)
    from xsfm.xr.chunks import map_rows

    inputs: list[tuple[xr.DataArray, list[Any]]] = [(data, ["channel", grid.y_dim, grid.x_dim])]
    guidance = None
    if obs is not None:
        fine_obs, guidance = _guidance(m, obs, prepared, obs_noise_std, guidance_scale)
        inputs.append((fine_obs.data, fine_obs.core_dims))
    n_samples = int(np.prod([data.sizes[d] for d in prepared.sample_dims]))
    with reporting(n_samples, "downscale", progress if data.chunks is None else False, "sample"):
        result = map_rows(
            downscale_chunk,
            inputs,
            core_out={
                "member": members,
                "_out": len(prepared.output_specs),
                "_fy": fine_shape[0],
                "_fx": fine_shape[1],
            },
            sample_dims=prepared.sample_dims,
            kwargs={
                "model": m,
                "members": members,
                "seed": int(seed),
                "steps": steps,
                "solver": solver,
                "device": dev,
                "batch_size": batch_size,
                "sample_kwargs": {**sample_kwargs, **({"dtype": dtype} if dtype else {})},
                "guidance": guidance,
            },
        )
    call = (
        f"downscale(model={m.name!r}, members={members}, steps={steps}, seed={seed}, "
        f"solver={solver!r}, device={dev!r}" + (f", dtype={dtype!r}" if dtype else "")
    )
    if guidance is not None:
        call += (
            f", obs=<{fine_obs.description} of {fine_obs.variable!r}, noise std "
            f"{fine_obs.noise_std:.4g}>, guidance_scale={guidance['scale']:.4g}"
        )
    return assemble_output(result, m, prepared, ds, call + ")")


def _guidance(
    m: Model,
    obs: xr.DataArray | xr.Dataset,
    prepared: Any,
    noise_std: float | None,
    scale: float | None,
) -> tuple[Any, dict[str, Any]]:
    """Check the observations and the model before any sampling: rows and guidance options."""
    from xsfm.models.downscaling.guidance import DEFAULT_SCALE
    from xsfm.observations import as_operator
    from xsfm.xr.fine_observations import prepare_fine_observations

    network = m.network()
    if not getattr(network, "supports_guidance", False):
        raise ValueError(
            f"model {m.name!r} ({m.card.method}) cannot be guided by observations: guidance "
            "steers the sampler of a flow or diffusion model (sfm, cfm, edm, corrdiff trained "
            "by xsfm)"
        )
    if scale is None:
        scale = float(m.card.sampler.get("guidance_scale", DEFAULT_SCALE))
    if not np.isfinite(scale) or scale < 0:
        raise ValueError(f"guidance_scale must be a finite number >= 0, got {scale!r}")
    fine_obs = prepare_fine_observations(
        obs,
        outputs=prepared.output_specs,
        fine_axes=fine_axes(m, prepared),
        inputs=prepared.data,
        sample_dims=prepared.sample_dims,
        periodic=bool(getattr(network, "periodic", False)),
        noise_std=noise_std,
    )
    options = {
        "operator": as_operator(fine_obs.operator, fine_obs.noise_std),
        "channel": fine_obs.channel,
        "noise_std": fine_obs.noise_std,
        "scale": float(scale),
    }
    return fine_obs, options


def _check_size(
    data: xr.DataArray,
    sample_dims: Any,
    members: int,
    outputs: int,
    fine_shape: tuple[int, ...],
) -> None:
    """Refuse a call whose output (one chunk's, for dask input) cannot fit in memory."""
    from xsfm.xr.params import check_fits_in_memory, rows_at_once

    per_sample = 4 * members * outputs * int(np.prod(fine_shape))
    samples = rows_at_once(data, sample_dims)
    hint = (
        "use fewer members, or chunk the input with dask (obj.chunk(...)) and write to zarr"
        if data.chunks is None
        else "use fewer members or smaller chunks along the pass-through dims"
    )
    check_fits_in_memory(
        samples * per_sample,
        f"downscale(members={members}) on {samples} sample(s) of {fine_shape[0]}x{fine_shape[1]}",
        hint,
    )
