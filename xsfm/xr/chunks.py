"""Running a model over xarray objects chunk by chunk.

:func:`map_rows` applies a tensor function to every sample (every point of the pass-through dims)
of one or more inputs with ``xr.apply_ufunc(dask="parallelized")``: dask inputs stay lazy and each
chunk is processed by one task with no probe call. The global position of each sample travels
with it, so random streams (see :mod:`xsfm.sampling.rng`) do not depend on chunking.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

from xsfm.xr.label import OUT_TIME
from xsfm.xr.observations import STEP_DIM, PreparedObservations
from xsfm.xr.state import HIST_DIM, PreparedState

__all__ = ["map_rows", "map_steps", "sample_index"]


def sample_index(template: xr.DataArray, sample_dims: Sequence[Hashable]) -> xr.DataArray:
    """Global flat position of every sample, chunked like ``template`` along ``sample_dims``.

    Examples
    --------
    >>> da = xr.DataArray(np.zeros((2, 3)), dims=("time", "level"))
    >>> sample_index(da, ["time", "level"]).values.tolist()
    [[0, 1, 2], [3, 4, 5]]
    """
    shape = tuple(template.sizes[d] for d in sample_dims)
    index = xr.DataArray(
        np.arange(int(np.prod(shape)), dtype=np.int64).reshape(shape), dims=sample_dims
    )
    if template.chunks is not None:
        chunks = dict(zip(template.dims, template.chunks, strict=True))
        index = index.chunk({d: chunks[d] for d in sample_dims})
    return index


def map_rows(
    func: Callable[..., np.ndarray],
    inputs: Sequence[tuple[xr.DataArray, Sequence[Hashable]]],
    *,
    sample_dims: Sequence[Hashable],
    core_out: Mapping[Hashable, int],
    dtype: Any = np.float32,
    kwargs: Mapping[str, Any] | None = None,
) -> xr.DataArray:
    """Apply ``func(first[N..., *core], index[N...], *others[N..., *core], **kwargs)`` per chunk.

    ``inputs`` are ``(DataArray, core dims)`` pairs; the first must hold every sample dim, the
    others may lack some (they are broadcast). One dask task runs per chunk of the sample dims,
    chunked as the first dask-backed input is (so a state chunked along ``trajectory`` gives one
    task per trajectory chunk); core dims are made single-chunk. Without dask, ``func`` runs once.
    ``func`` returns ``[N..., *core_out sizes]``.
    """
    lazy = next((da for da, _ in inputs if da.chunks is not None), None)
    sizes = inputs[0][0].sizes
    arrays = []
    for da, core in inputs:
        # an input without some sample dim (observations shared by every trajectory) is
        # broadcast along it (a view, no copy), so each chunk gets one row per sample
        missing = {d: sizes[d] for d in sample_dims if d not in da.dims}
        if missing:
            da = da.expand_dims(missing)
        if lazy is not None:
            along = {d: lazy.chunksizes[d] for d in sample_dims if d in lazy.chunksizes}
            da = da.chunk(
                {**dict.fromkeys(core, -1), **{d: c for d, c in along.items() if d in da.dims}}
            )
        arrays.append(da)
    first = arrays[0]
    index = sample_index(first, list(sample_dims)) if sample_dims else xr.DataArray(0)
    cores = [list(core) for _, core in inputs]
    return xr.apply_ufunc(
        func,
        first,
        index,
        *arrays[1:],
        input_core_dims=[cores[0], [], *cores[1:]],
        output_core_dims=[list(core_out)],
        dask="parallelized",
        output_dtypes=[dtype],
        dask_gufunc_kwargs={"output_sizes": dict(core_out)},
        kwargs=dict(kwargs or {}),
        keep_attrs=False,
    )


def map_steps(
    func: Callable[..., np.ndarray],
    state: PreparedState,
    obs: PreparedObservations | None,
    *,
    members: int,
    n_steps: int,
    member_dim: Hashable,
    kwargs: dict[str, Any],
) -> xr.DataArray:
    """Run a time-stepping model's chunk runner over a prepared state and observations.

    ``func(hist, index, [y], **kwargs)`` gets one chunk of the pass-through dims: the state rows
    ``[..., [M,] L, *state]``, their global positions and the observations ``[..., K, *obs]``,
    and returns ``[..., members, n_steps, *state]``. Lazy for dask input (see :func:`map_rows`).
    """
    lead = [member_dim] if state.members is not None else []
    inputs = [(state.data, [*lead, HIST_DIM, *state.state_dims])]
    if obs is not None:
        # the observations' own core dims get private names: they may share a name (``component``)
        # but not the size with the state's
        renamed = {d: f"_obs_{d}" for d in obs.obs_dims}
        y = obs.data.drop_vars([n for n in obs.data.coords if n in obs.obs_dims]).rename(renamed)
        inputs.append((y, [STEP_DIM, *renamed.values()]))
    state_sizes = {d: state.data.sizes[d] for d in state.state_dims}
    return map_rows(
        func,
        inputs,
        sample_dims=state.pass_dims,
        core_out={"_member": members, OUT_TIME: n_steps, **state_sizes},
        dtype=np.float64,
        kwargs=kwargs,
    )
