"""Running a model over xarray objects chunk by chunk.

:func:`map_samples` applies a tensor function to every sample (every point of the pass-through dims) with
``xr.apply_ufunc(dask="parallelized")``: dask inputs stay lazy and each chunk is processed by one task with
no probe call. The global position of each sample travels with it, so random streams (see
:mod:`xsfm.sampling.rng`) do not depend on chunking.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import xarray as xr

__all__ = ["map_samples", "sample_index"]


def sample_index(template: xr.DataArray, sample_dims: Sequence[str]) -> xr.DataArray:
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


def map_samples(
    func: Callable[..., np.ndarray],
    data: xr.DataArray,
    *,
    core_in: Sequence[str],
    core_out: dict[str, int],
    sample_dims: Sequence[str],
    dtype: Any = np.float32,
    kwargs: dict[str, Any] | None = None,
) -> xr.DataArray:
    """Apply ``func(array[N..., *core_in], index[N...], **kwargs)`` over all samples.

    ``func`` receives the samples of one chunk with their global indices and returns
    ``[N..., *core_out sizes]``. Core input dims are made single-chunk first.
    """
    if data.chunks is not None:
        data = data.chunk(dict.fromkeys(core_in, -1))
    index = sample_index(data, sample_dims)
    return xr.apply_ufunc(
        func,
        data,
        index,
        input_core_dims=[list(core_in), []],
        output_core_dims=[list(core_out)],
        dask="parallelized",
        output_dtypes=[dtype],
        dask_gufunc_kwargs={"output_sizes": dict(core_out)},
        kwargs=kwargs or {},
        keep_attrs=False,
    )
