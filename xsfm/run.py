"""Runs of one chunk: numpy rows -> tensors -> model -> numpy rows.

What a dask task (or an eager call) executes. Downscaling: every member of every sample of the
chunk, in batches. Time-stepping models: the chunk's states
become sample-major rows (``[n * members, L, *state]``, or each member's own state for an initial
ensemble), its observations rows alongside, and the random streams come from the seed and each
sample's global position (:func:`xsfm.sampling.rng.stream_generators`), so a sample's result does
not depend on which chunk it is in. Arrays cross to torch only through :mod:`xsfm.backend`; torch
is imported when a chunk runs, never at import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from xsfm.errors import InvalidValuesError
from xsfm.progress import tick

if TYPE_CHECKING:
    from xsfm.model import Model

__all__ = ["MIN_ROWS", "downscale_chunk", "filter_chunk", "flowdas_chunk"]

#: rows the FlowDAS drift network sees at least, per call, on the CPU (see :func:`flowdas_chunk`)
MIN_ROWS = 32


def _flat_hist(hist: np.ndarray, index: np.ndarray, label: str) -> np.ndarray:
    """``[n, [M,] L, *state]`` float64 of one chunk, checked for NaN and inf."""
    h = np.asarray(hist, dtype=np.float64).reshape(index.size, *hist.shape[index.ndim :])
    if not np.isfinite(h).all():
        raise InvalidValuesError(f"{label} holds NaN or inf values; fill or drop them first")
    return h


def _rows(
    hist: np.ndarray, index: np.ndarray, members: int, ensemble: bool, label: str
) -> np.ndarray:
    """``[n * members, L, *state]`` rows of one chunk, sample-major."""
    h = _flat_hist(hist, index, label)
    if ensemble:
        return h.reshape(index.size * members, *h.shape[2:])
    return np.repeat(h, members, axis=0)


def _obs_rows(y: np.ndarray | None, index: np.ndarray, repeat: int) -> np.ndarray | None:
    if y is None:
        return None
    flat = np.asarray(y, dtype=np.float64).reshape(index.size, *y.shape[index.ndim :])
    if np.isinf(flat).any():
        raise InvalidValuesError("obs holds inf values; missing observations are NaN, never inf")
    return np.repeat(flat, repeat, axis=0)


def flowdas_chunk(
    hist: np.ndarray, index: np.ndarray, y: np.ndarray | None = None, **kw: Any
) -> np.ndarray:
    """One chunk of FlowDAS: ``hist [..., [M,] L, *state]`` -> ``[..., M, T, *state]``."""
    from xsfm.backend import cached_network, from_torch, to_torch
    from xsfm.sampling.rng import stream_generators

    members, device = kw["members"], kw["device"]
    rows = to_torch(_rows(hist, index, members, kw["ensemble"], kw["label"]), device=device)
    gens = stream_generators(kw["seed"], index.ravel(), members, device=device)
    network = cached_network(kw["model"], device)
    y_rows = _obs_rows(y, index, members)
    # on the CPU the drift network sees at least MIN_ROWS rows per call (zero rows pad a small
    # chunk): float32 GEMMs round differently only for very few rows, so a trajectory's result
    # does not depend on which others share its chunk (bitwise whatever the chunking)
    min_rows = MIN_ROWS if str(device).startswith("cpu") else None
    if y_rows is None:
        out = network.forecast(rows, kw["n_steps"], gens, steps=kw["steps"], min_rows=min_rows)
    else:
        out = network.assimilate(
            rows,
            to_torch(y_rows, device=device),
            kw["operator"],
            generators=gens,
            steps=kw["steps"],
            guidance=kw["guidance"],
            members=members,
            resample_members=kw["resample_members"],
            min_rows=min_rows,
            **kw["guidance_options"],
        )
    values = from_torch(out.double().cpu())
    return values.reshape(*index.shape, members, *values.shape[1:])


def filter_chunk(hist: np.ndarray, index: np.ndarray, y: np.ndarray, **kw: Any) -> np.ndarray:
    """One chunk of a classical filter: ``hist [..., [P,] 1, *state]`` -> ``[..., K, T, *state]``."""
    from xsfm.backend import from_torch, to_torch
    from xsfm.filters import bootstrap_particle_filter, ensemble_kalman_filter
    from xsfm.sampling.rng import stream_generators

    h = _flat_hist(hist, index, kw["label"])  # [n, [P,] 1, *state]
    x0 = h[:, :, 0] if kw["ensemble"] else h[:, 0]
    x0_t = to_torch(np.ascontiguousarray(x0), device=kw["device"])
    y_t = to_torch(_obs_rows(y, index, 1), device=kw["device"])
    gens = stream_generators(kw["seed"], index.ravel(), 1, device=kw["device"])
    common = {"state_ndim": kw["state_ndim"], "generators": gens}
    if kw["method"] == "bpf":
        result = bootstrap_particle_filter(
            x0_t, y_t, kw["transition"], kw["operator"], particles=kw["particles"],
            keep=kw["members"], **kw["options"], **common,
        )  # fmt: skip
    else:
        options = dict(kw["options"])
        positions = options.pop("obs_positions", None)
        if positions is not None:
            options["obs_positions"] = to_torch(positions, device=kw["device"])
        result = ensemble_kalman_filter(
            x0_t, y_t, kw["transition"], kw["operator"], members=kw["members"], **options,
            **common,
        )  # fmt: skip
    values = np.moveaxis(from_torch(result.ensemble.double().cpu()), 2, 1)  # [n, K, T, *state]
    return values.reshape(*index.shape, *values.shape[1:])


def downscale_chunk(
    array: np.ndarray,
    index: np.ndarray,
    obs: np.ndarray | None = None,
    *,
    model: Model,
    members: int,
    seed: int,
    steps: int | None,
    solver: str | None,
    device: str,
    batch_size: int | None,
    sample_kwargs: dict[str, Any],
    guidance: dict[str, Any] | None = None,
) -> np.ndarray:
    """Sample all members of all samples in one chunk: ``[..., C, h, w] -> [..., M, Cout, H, W]``.

    With ``obs [..., *obs_shape]`` (one row per sample) and ``guidance`` (``operator``,
    ``channel``, ``noise_std``, ``scale``) the sampler is steered toward the observations
    (:mod:`xsfm.models.downscaling.guidance`).
    """
    import torch

    from xsfm.backend import cached_network, from_torch, to_torch
    from xsfm.models.downscaling.guidance import ObservationGuidance
    from xsfm.sampling.rng import stream_generators

    lead = array.shape[:-3]
    flat = array.reshape(-1, *array.shape[-3:])
    obs_flat = None
    if obs is not None:
        obs_flat = np.asarray(obs, dtype=np.float32).reshape(flat.shape[0], *obs.shape[len(lead) :])
    flat_index = np.asarray(index).reshape(-1)
    network = cached_network(model, device)
    # On the CPU the network sees one sample (all its members) per call: float32 convolutions and
    # matmuls round differently with the number of rows, so a fixed batch makes every sample's
    # result bitwise independent of batch_size and chunking (the cost: benchmarks/scale.py,
    # "batching" rows). On a GPU, batch_size samples go together (speed over bitwise identity).
    # On a GPU without batch_size, the first sample runs alone and its measured peak memory sizes
    # the batches of the rest (half the free memory).
    on_cpu = torch.device(device).type == "cpu"
    step = 1 if on_cpu else (batch_size or 1)
    measure = not on_cpu and batch_size is None and torch.device(device).type == "cuda"
    outputs = []
    # guidance differentiates through the network: no inference mode then (sample() runs its own
    # no_grad and enables gradients only inside the guidance step)
    with torch.inference_mode(obs_flat is None):
        start = 0
        while start < flat.shape[0]:
            if measure:
                torch.cuda.reset_peak_memory_stats(device)
                before = torch.cuda.memory_allocated(device)
            x = to_torch(flat[start : start + step], device=device, dtype=torch.float32)
            gens = stream_generators(seed, flat_index[start : start + step], members, device=device)
            extra = dict(sample_kwargs)
            if obs_flat is not None and guidance is not None:
                rows = to_torch(obs_flat[start : start + step], device=device)
                extra["guidance"] = ObservationGuidance(rows, **guidance)
            y = network.sample(x, gens, members=members, steps=steps, solver=solver, **extra)
            outputs.append(from_torch(y.float(), like=array))
            tick(x.shape[0])
            start += x.shape[0]
            if measure:
                step = gpu_batch_size(torch.cuda.max_memory_allocated(device) - before, device)
                measure = False
    out = np.concatenate(outputs, axis=0) if outputs else np.empty((0,))
    return out.reshape(*lead, *out.shape[1:])


def gpu_batch_size(per_sample_bytes: int, device: str, fraction: float = 0.5) -> int:
    """Samples per network call on a GPU: ``fraction`` of its free memory over one sample's peak.

    ``per_sample_bytes`` is the peak memory one sample (all its members) took, measured.
    """
    import torch

    free, _ = torch.cuda.mem_get_info(torch.device(device))
    return max(1, int(fraction * free) // max(int(per_sample_bytes), 1))
