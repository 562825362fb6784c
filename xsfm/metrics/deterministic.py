"""Deterministic scores of the ensemble mean (or of a single field): RMSE, MAE, single-member RMSE."""

from __future__ import annotations

from collections.abc import Hashable

import numpy as np
import xarray as xr

from xsfm.metrics._plumbing import (
    Dims,
    T,
    _attrs,
    _describe,
    _finish,
    _per_variable,
    _prepare,
)


def _ensemble_mean(ens: xr.DataArray, member_dim: Hashable) -> xr.DataArray:
    return ens.mean(member_dim) if member_dim in ens.dims else ens


def _rmse_da(
    ens: xr.DataArray, truth: xr.DataArray, dim: Dims, member_dim: Hashable
) -> xr.DataArray:
    ens, truth, dims, units = _prepare(ens, truth, member_dim, dim)
    err = _ensemble_mean(ens, member_dim) - truth
    out = np.sqrt((err**2).mean(dims))
    what = "ensemble mean" if member_dim in ens.dims else "field"
    return _finish(
        out, ens.name, _attrs(units, f"RMSE of {what} of {_describe(ens)}", metric="rmse")
    )


def rmse(ens: T, truth: T, dim: Dims = None, member_dim: Hashable = "member") -> T:
    """Root-mean-square error of the ensemble mean.

    ``sqrt(mean_dim((mean_member(ens) - truth) ** 2))``. When ``ens`` has no ``member_dim`` it is
    taken as a single (deterministic) field.

    Parameters
    ----------
    ens
        Ensemble (or single field), DataArray or Dataset.
    truth
        Verifying field without the member dimension, of the same type as ``ens``.
    dim
        Dimension(s) to average the squared error over; ``None`` means every dimension except
        ``member_dim``.
    member_dim
        Name of the ensemble dimension.

    Returns
    -------
    DataArray or Dataset
        RMSE in the units of the variable.

    Examples
    --------
    >>> import xarray as xr
    >>> ens = xr.DataArray([[1.0, 3.0], [3.0, 5.0]], dims=("member", "x"), attrs={"units": "K"})
    >>> truth = xr.DataArray([2.0, 2.0], dims="x", attrs={"units": "K"})
    >>> out = rmse(ens, truth)
    >>> float(out), out.attrs["units"]
    (1.4142135623730951, 'K')
    """
    return _per_variable(_rmse_da, ens, truth, dim=dim, member_dim=member_dim)


def _mae_da(
    ens: xr.DataArray, truth: xr.DataArray, dim: Dims, member_dim: Hashable
) -> xr.DataArray:
    ens, truth, dims, units = _prepare(ens, truth, member_dim, dim)
    out = abs(_ensemble_mean(ens, member_dim) - truth).mean(dims)
    what = "ensemble mean" if member_dim in ens.dims else "field"
    return _finish(out, ens.name, _attrs(units, f"MAE of {what} of {_describe(ens)}", metric="mae"))


def mae(ens: T, truth: T, dim: Dims = None, member_dim: Hashable = "member") -> T:
    """Mean absolute error of the ensemble mean.

    ``mean_dim(|mean_member(ens) - truth|)``; a field without ``member_dim`` is scored as it is.

    Parameters
    ----------
    ens, truth, dim, member_dim
        As in :func:`rmse`.

    Returns
    -------
    DataArray or Dataset
        MAE in the units of the variable.

    Examples
    --------
    >>> import xarray as xr
    >>> ens = xr.DataArray([[1.0, 3.0], [3.0, 5.0]], dims=("member", "x"))
    >>> float(mae(ens, xr.DataArray([2.0, 2.0], dims="x")))
    1.0
    """
    return _per_variable(_mae_da, ens, truth, dim=dim, member_dim=member_dim)


def _single_member_rmse_da(
    ens: xr.DataArray, truth: xr.DataArray, dim: Dims, member_dim: Hashable
) -> xr.DataArray:
    ens, truth, dims, units = _prepare(ens, truth, member_dim, dim)
    per_member = np.sqrt(((ens - truth) ** 2).mean(dims))
    out = per_member.mean(member_dim) if member_dim in per_member.dims else per_member
    return _finish(
        out,
        ens.name,
        _attrs(units, f"mean single-member RMSE of {_describe(ens)}", metric="single_member_rmse"),
    )


def single_member_rmse(ens: T, truth: T, dim: Dims = None, member_dim: Hashable = "member") -> T:
    """RMSE of a single ensemble draw, averaged over the members.

    ``mean_member(sqrt(mean_dim((ens - truth) ** 2)))``: the error a user sees when taking one
    sample as the forecast. For a calibrated ensemble it is about ``sqrt(2)`` times the ensemble
    spread.

    Parameters
    ----------
    ens, truth, dim, member_dim
        As in :func:`rmse`.

    Returns
    -------
    DataArray or Dataset
        Mean single-member RMSE in the units of the variable.

    Examples
    --------
    >>> import xarray as xr
    >>> ens = xr.DataArray([[1.0, 3.0], [3.0, 5.0]], dims=("member", "x"))
    >>> round(float(single_member_rmse(ens, xr.DataArray([2.0, 2.0], dims="x"))), 4)
    1.618
    """
    return _per_variable(_single_member_rmse_da, ens, truth, dim=dim, member_dim=member_dim)
