"""Shared plumbing of the scores: per-variable dispatch, alignment with the truth, dims, attributes.

Every score function is written for one :class:`xarray.DataArray` and lifted to Datasets by
:func:`_per_variable`; :func:`_prepare` checks units, aligns the truth with the ensemble and resolves
the dimensions to reduce over.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from typing import Any, TypeVar

import numpy as np
import xarray as xr

from xsfm.errors import InputError

T = TypeVar("T", xr.DataArray, xr.Dataset)
Dims = str | Iterable[Hashable] | None


def _label(da: xr.DataArray) -> str:
    return repr(da.name) if da.name is not None else "<unnamed DataArray>"


def _per_variable(
    func: Callable[..., xr.DataArray],
    ens: T,
    truth: xr.DataArray | xr.Dataset | None,
    **kwargs: Any,
) -> T:
    """Apply ``func(ens_da, truth_da, **kwargs)`` to a DataArray or each variable of a Dataset."""
    if isinstance(ens, xr.DataArray):
        if isinstance(truth, xr.Dataset):
            raise TypeError(
                "ens is a DataArray but truth is a Dataset; "
                "pass truth[name] for the variable to score"
            )
        if truth is not None and not isinstance(truth, xr.DataArray):
            raise TypeError(f"truth must be an xarray DataArray, got {type(truth).__name__}")
        return func(ens, truth, **kwargs)
    if not isinstance(ens, xr.Dataset):
        raise TypeError(f"expected an xarray DataArray or Dataset, got {type(ens).__name__}")
    if truth is not None:
        if not isinstance(truth, xr.Dataset):
            raise TypeError(
                "ens is a Dataset, so truth must be a Dataset with the same data variables "
                f"(got {type(truth).__name__}); score one variable with ens[name], truth"
            )
        missing = [name for name in ens.data_vars if name not in truth.data_vars]
        if missing:
            raise InputError(
                f"truth lacks the data variable(s) {missing} present in ens; "
                "select the variables to score, e.g. ens[[...]]"
            )
    out = {
        name: func(ens[name], None if truth is None else truth[name], **kwargs)
        for name in ens.data_vars
    }
    return xr.Dataset(out)


def _as_tuple(dim: Dims) -> tuple[Hashable, ...] | None:
    if dim is None:
        return None
    if isinstance(dim, str):
        return (dim,)
    return tuple(dim)


def _resolve_dims(
    dim: Dims, ens: xr.DataArray, truth: xr.DataArray | None, member_dim: Hashable
) -> tuple[Hashable, ...]:
    """The dimensions to reduce over: ``dim``, or all dims of ens/truth except the member dim."""
    all_dims = list(ens.dims)
    if truth is not None:
        all_dims += [d for d in truth.dims if d not in all_dims]
    dims = _as_tuple(dim)
    if dims is None:
        return tuple(d for d in all_dims if d != member_dim)
    if member_dim in dims:
        raise InputError(
            f"dim {dims} contains the member dimension {member_dim!r} of {_label(ens)}; the "
            "ensemble dimension is reduced by the score itself, leave it out of dim"
        )
    unknown = [d for d in dims if d not in all_dims]
    if unknown:
        raise InputError(
            f"dimension(s) {unknown} to reduce over are not dimensions of {_label(ens)} "
            f"(its dimensions: {tuple(all_dims)})"
        )
    return dims


def _check_units(ens: xr.DataArray, truth: xr.DataArray) -> str | None:
    ue, ut = ens.attrs.get("units"), truth.attrs.get("units")
    if ue is not None and ut is not None and str(ue).strip() != str(ut).strip():
        raise InputError(
            f"units of {_label(ens)} ({ue!r}) and of its truth ({ut!r}) differ; convert the truth "
            f"to {ue!r} first (e.g. with pint-xarray or xsfm.xr.units)"
        )
    return ue if ue is not None else ut


def _align(
    ens: xr.DataArray, truth: xr.DataArray, member_dim: Hashable
) -> tuple[xr.DataArray, xr.DataArray]:
    """Align truth with ens by label: exactly, in another order, or up to floating-point round-off."""
    if member_dim in truth.dims:
        raise InputError(
            f"the truth for {_label(ens)} has the member dimension {member_dim!r}; pass a single "
            "field (or set member_dim to the name of the ensemble dimension)"
        )
    try:
        return xr.align(ens, truth, join="exact")
    except ValueError:
        pass
    for d in set(ens.indexes) & set(truth.indexes):
        ce, ct = ens.indexes[d], truth.indexes[d]
        if (
            len(ce) == len(ct)
            and ce.is_unique
            and not ce.equals(ct)
            and ce.sort_values().equals(ct.sort_values())
        ):
            truth = truth.reindex({d: ce})  # the same labels in another order: pair by label
            ct = truth.indexes[d]
        same = len(ce) == len(ct)
        if same and ce.dtype.kind in "fiu" and ct.dtype.kind in "fiu":
            same = bool(
                np.allclose(np.asarray(ce, float), np.asarray(ct, float), rtol=1e-6, atol=0)
            )
        elif same:
            same = bool(ce.equals(ct))
        if not same:
            raise InputError(
                f"coordinate {d!r} of {_label(ens)} and of its truth differ (sizes {len(ce)} and "
                f"{len(ct)}); select or interpolate the truth onto the ensemble's grid first "
                "(e.g. truth.sel(...) or truth.interp_like(ens))"
            )
    return xr.align(ens, truth, join="override")


def _prepare(
    ens: xr.DataArray, truth: xr.DataArray, member_dim: Hashable, dim: Dims
) -> tuple[xr.DataArray, xr.DataArray, tuple[Hashable, ...], str | None]:
    units = _check_units(ens, truth)
    ens, truth = _align(ens, truth, member_dim)
    dims = _resolve_dims(dim, ens, truth, member_dim)
    return ens, truth, dims, units


def _need_members(ens: xr.DataArray, member_dim: Hashable, score: str, minimum: int = 1) -> int:
    if member_dim not in ens.dims:
        raise InputError(
            f"{score} needs an ensemble, but {_label(ens)} has no member dimension {member_dim!r} "
            f"(dimensions: {tuple(ens.dims)}); set member_dim to the ensemble dimension"
        )
    m = int(ens.sizes[member_dim])
    if m < minimum:
        raise InputError(
            f"{score} needs at least {minimum} members, {_label(ens)} has {m} along {member_dim!r}"
        )
    return m


def _single_chunk(da: xr.DataArray, dims: Iterable[Hashable]) -> xr.DataArray:
    """Rechunk dask-backed ``da`` so that ``dims`` are one chunk each (a no-op for numpy)."""
    if da.chunks is None:
        return da
    return da.chunk({d: -1 for d in dims if d in da.dims})


def _attrs(units: str | None, long_name: str, **extra: Any) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    if units is not None:
        attrs["units"] = units
    attrs["long_name"] = long_name
    attrs.update(extra)
    return attrs


def _describe(da: xr.DataArray) -> str:
    return str(da.attrs.get("long_name", da.name if da.name is not None else "field"))


def _finish(result: xr.DataArray, name: Hashable, attrs: dict[str, Any]) -> xr.DataArray:
    result = result.rename(name)
    result.attrs = attrs
    return result
