"""Reproducible random streams, one per (sample, member).

Every random number in xsfm comes from a :class:`torch.Generator` seeded from
``numpy.random.SeedSequence([seed, sample_index, member])``. ``sample_index`` is the position of the sample in
the *whole* input (not in a batch or a dask chunk), so a result does not depend on how the input is chunked,
on ``batch_size`` or on the dask scheduler.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

__all__ = ["randn", "stream_generators", "stream_seed"]


def stream_seed(seed: int, sample_index: int, member: int) -> int:
    """Return the 63-bit torch seed of the stream ``(seed, sample_index, member)``.

    Examples
    --------
    >>> stream_seed(0, 3, 1) == stream_seed(0, 3, 1)
    True
    >>> stream_seed(0, 3, 1) != stream_seed(0, 1, 3)
    True
    """
    state = np.random.SeedSequence([int(seed), int(sample_index), int(member)]).generate_state(
        2, dtype=np.uint32
    )
    return int((int(state[0]) << 31) ^ int(state[1])) & ((1 << 63) - 1)


def stream_generators(
    seed: int,
    sample_indices: Sequence[int] | np.ndarray,
    members: int,
    device: torch.device | str = "cpu",
) -> list[torch.Generator]:
    """One generator per (sample, member), sample-major: ``[(s0, m0), (s0, m1), ..., (s1, m0), ...]``.

    Parameters
    ----------
    seed
        The user's seed.
    sample_indices
        Global positions of the samples in the whole input.
    members
        Ensemble size ``M``.
    device
        Device of the generators (CUDA generators draw on the GPU).

    Examples
    --------
    >>> gens = stream_generators(0, [0, 1], members=2)
    >>> len(gens)
    4
    """
    gens = []
    for index in np.asarray(sample_indices).ravel():
        for member in range(members):
            g = torch.Generator(device=device)
            g.manual_seed(stream_seed(seed, int(index), member))
            gens.append(g)
    return gens


def randn(
    generators: Sequence[torch.Generator],
    shape: Sequence[int],
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Draw ``N(0, 1)`` noise of ``shape`` from each generator and stack: ``[len(generators), *shape]``.

    Examples
    --------
    >>> gens = stream_generators(0, [0], members=3)
    >>> randn(gens, (2, 4)).shape
    torch.Size([3, 2, 4])
    """
    return torch.stack(
        [torch.randn(tuple(shape), generator=g, dtype=dtype, device=device) for g in generators]
    )
