"""File-to-file jobs of the command line: chunking, the dask scheduler, running and writing.

``xsfm downscale`` and ``xsfm assimilate`` build their (lazy) result with :func:`run_job`: the
call runs once unchunked to validate everything without computing, is chunked along its first
pass-through dim (``--chunks``, or regions of about 64 MB), and is written by
:func:`xsfm.xr.files.write_output` on the scheduler asked for (:func:`scheduler`).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Hashable, Iterator, Sequence
from typing import Any

import xarray as xr

__all__ = ["REGION_BYTES", "default_chunks", "run_job", "scheduler", "weights_id"]

#: output bytes one region (one dask task) aims at when no chunks are given
REGION_BYTES = 64 * 2**20


def default_chunks(
    out: xr.Dataset, source: xr.Dataset, dims: Sequence[Hashable]
) -> dict[Hashable, int]:
    """Chunks of ``source`` along the first of ``dims`` it has, so one output region is ~64 MB.

    Examples
    --------
    >>> import numpy as np
    >>> src = xr.Dataset({"a": (("time", "x"), np.zeros((100, 4)))})
    >>> out = xr.Dataset({"b": (("time", "x"), np.zeros((100, 2**20)))})
    >>> default_chunks(out, src, ["time"])
    {'time': 8}
    """
    dim = next((d for d in dims if d in source.dims and source.sizes[d] > 1), None)
    if dim is None:
        return {}
    per_row = sum(
        v.dtype.itemsize * math.prod(n for d, n in v.sizes.items() if d != dim)
        for v in out.data_vars.values()
        if dim in v.dims
    )
    return {dim: max(1, min(source.sizes[dim], REGION_BYTES // max(per_row, 1)))}


def weights_id(model: str) -> str | None:
    """The model's weights sha256, so a resumed job never mixes two versions of a model."""
    import xsfm

    return xsfm.load_model(model).card.weights_sha256


@contextlib.contextmanager
def scheduler(workers: int | None = None, address: str | None = None) -> Iterator[Any]:
    """The dask scheduler of a job.

    A new local cluster of ``workers`` processes, the running one at ``address``, or (neither)
    dask's default.
    """
    if workers is None and address is None:
        yield None
        return
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise SystemExit(
            "xsfm: --workers/--scheduler need dask.distributed: pip install 'xsfm[distributed]'"
        ) from None
    if address is not None:
        with Client(address) as client:
            yield client
        return
    with (
        LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


def run_job(
    target: Any,
    source: xr.Dataset,
    chunks: dict[Hashable, int],
    run: Callable[[xr.Dataset], xr.Dataset],
    pass_dims: Callable[[tuple[Hashable, ...]], slice],
    *,
    workers: int | None = None,
    address: str | None = None,
    progress: bool | None = None,
) -> int:
    """Run ``run(source)`` lazily (validating everything first), chunked, and write the result.

    Without ``chunks``, ``source`` is chunked along its first pass-through dim
    (``pass_dims(output dims)`` slices them out) so that one output region is about 64 MB.
    ``target`` is a checked output (:func:`xsfm.xr.files.check_output`).
    """
    from xsfm.xr.files import write_output

    out = run(source)  # lazy: validates the inputs, computes nothing
    if not chunks:
        dims = next(iter(out.data_vars.values())).dims
        chunks = default_chunks(out, source, dims[pass_dims(dims)])
    if chunks:
        out = run(source.chunk(chunks))
    with scheduler(workers, address):
        write_output(out, target, progress=progress)
    print(f"wrote {target.path}: {dict(out.sizes)}")
    return 0
