"""Validation of the faces' parameters, done once at the face and passed down typed."""

from __future__ import annotations

from collections.abc import Hashable
from typing import TYPE_CHECKING, Any

import numpy as np

from xsfm.errors import InputError

if TYPE_CHECKING:
    from xsfm.xr.state import PreparedState

__all__ = [
    "check_fits_in_memory",
    "check_int",
    "check_members",
    "ensemble_size",
    "memory_bytes",
    "particle_count",
    "rows_at_once",
]


def check_members(members: Any) -> int:
    """Validate the ensemble size."""
    if isinstance(members, bool) or not isinstance(members, (int, np.integer)):
        raise TypeError(
            f"members must be an integer >= 1, got {members!r} ({type(members).__name__})"
        )
    if members < 1:
        raise ValueError(f"members must be >= 1 (the ensemble size), got {members}")
    return int(members)


def check_int(value: Any, name: str, minimum: int) -> int:
    """An integer parameter >= ``minimum`` (bools refused), named in the error."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def ensemble_size(members: int | None, state: PreparedState, member_dim: Hashable) -> int:
    """The ensemble size: ``members`` (default 8), or an initial ensemble's, which must agree."""
    if state.members is None:
        return check_members(8 if members is None else members)
    if members is not None and check_members(members) != state.members:
        raise InputError(
            f"{state.label} is an initial ensemble of {state.members} along {member_dim!r}, but "
            f"members={members}; drop members= (the ensemble size comes from the state) or select "
            f"members of the state"
        )
    return state.members


def particle_count(particles: int | None, state: PreparedState, member_dim: Hashable) -> int:
    """Particles of the bootstrap filter: ``particles`` (default 1024), or an initial ensemble's."""
    if state.members is None:
        return check_int(1024 if particles is None else particles, "particles", 1)
    if particles is not None and particles != state.members:
        raise InputError(
            f"{state.label} is an initial ensemble of {state.members} along {member_dim!r}, but "
            f"particles={particles}; drop particles= (the particles come from the state)"
        )
    return state.members


def memory_bytes() -> int:
    """Physical memory of this machine in bytes (0 when the system does not tell)."""
    import os

    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 0


def rows_at_once(data: Any, dims: Any) -> int:
    """Samples along ``dims`` one task holds at once: all for numpy data, a largest chunk's for dask.

    Examples
    --------
    >>> import xarray as xr
    >>> da = xr.DataArray(np.zeros((6, 4)), dims=("time", "x"))
    >>> rows_at_once(da, ["time"]), rows_at_once(da.chunk(time=4), ["time"])
    (6, 4)
    """
    if data.chunks is None:
        sizes = [data.sizes[d] for d in dims]
    else:
        chunks = dict(zip(data.dims, data.chunks, strict=True))
        sizes = [max(chunks[d]) for d in dims]
    return max(int(np.prod(sizes)), 1)


def check_fits_in_memory(nbytes: int, call: str, hint: str, *, limit: int | None = None) -> None:
    """Refuse a request whose arrays would not fit in memory, before anything is allocated.

    ``nbytes`` is the estimate of what one task must hold at once (the whole result for numpy
    input, one chunk's for dask input); ``limit`` defaults to the machine's physical memory.

    Examples
    --------
    >>> check_fits_in_memory(10**6, "downscale(members=4)", "use fewer members")
    >>> check_fits_in_memory(10**15, "downscale(members=10**9)", "use fewer", limit=2**30)
    Traceback (most recent call last):
    ...
    xsfm.errors.InputError: downscale(members=10**9) would hold about 931323 GiB at once, ...
    """
    limit = memory_bytes() if limit is None else limit
    if limit and nbytes > limit:
        raise InputError(
            f"{call} would hold about {nbytes / 2**30:.0f} GiB at once, more than the "
            f"{limit / 2**30:.0f} GiB of memory here; {hint}"
        )
