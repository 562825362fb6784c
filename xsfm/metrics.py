"""Verification metrics for ensembles and fields held in xarray objects.

Every function takes :class:`xarray.DataArray` or :class:`xarray.Dataset` input (a Dataset is
scored variable by variable and gives a Dataset back), works lazily on dask-backed data (nothing is
computed until the result is) and never modifies its input. The ensemble dimension is ``member``
unless told otherwise; ``dim=None`` reduces over every dimension of ``ens`` and ``truth`` other than
the member dimension, ``dim=[]`` keeps them all (point-wise scores). NaNs are skipped in the
reductions over ``dim`` (xarray's default); a point where the truth or a member is NaN has a NaN
point-wise score.

Scores in the units of the variable (RMSE, MAE, CRPS) carry its ``units``; ratios and counts
(spread-skill ratio, rank histogram, spectral error) are dimensionless (``units: "1"``). The truth
is aligned with the ensemble on their shared coordinates: they must be equal (up to floating-point
round-off, in which case the ensemble's coordinates are kept).

The module is pure numpy/xarray (``scoringrules`` is used for the CRPS); it never imports torch.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import Any, Literal, TypeVar

import numpy as np
import xarray as xr

from xsfm.errors import InputError

__all__ = [
    "crps",
    "mae",
    "power_spectrum",
    "rank_histogram",
    "rmse",
    "single_member_rmse",
    "spectrum_error_by_octave",
    "spread_skill_ratio",
]

T = TypeVar("T", xr.DataArray, xr.Dataset)
Dims = str | Iterable[Hashable] | None

CRPS_ESTIMATORS = ("fair", "nrg", "pwm")
# Most float64 elements of the (n, M, M) temporary built by the energy-form CRPS estimators.
_CRPS_BLOCK_ELEMENTS = 2**21


# --------------------------------------------------------------------------------------------------
# shared plumbing
# --------------------------------------------------------------------------------------------------


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
    """Align truth with ens exactly, tolerating floating-point round-off in the coordinates."""
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


# --------------------------------------------------------------------------------------------------
# deterministic scores of the ensemble mean
# --------------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------------
# CRPS
# --------------------------------------------------------------------------------------------------


def _crps_kernel(obs: np.ndarray, fct: np.ndarray, estimator: str) -> np.ndarray:
    """Point-wise ensemble CRPS; ``fct`` has the members on its last axis."""
    import scoringrules as sr

    out_dtype = np.result_type(obs.dtype, fct.dtype, np.float32)
    m = fct.shape[-1]
    shape = np.broadcast_shapes(np.shape(obs), fct.shape[:-1])
    obs_flat = np.broadcast_to(obs, shape).reshape(-1).astype(np.float64)
    fct_flat = np.broadcast_to(fct, (*shape, m)).reshape(-1, m).astype(np.float64)
    out = np.empty(obs_flat.shape, dtype=np.float64)
    # the energy-form estimators build an (n, M, M) temporary: work in blocks to bound memory
    block = max(1, _CRPS_BLOCK_ELEMENTS // (m * m))
    for start in range(0, obs_flat.size, block):
        sl = slice(start, start + block)
        out[sl] = sr.crps_ensemble(
            obs_flat[sl], fct_flat[sl], m_axis=-1, estimator=estimator, backend="numpy"
        )
    return out.reshape(shape).astype(out_dtype, copy=False)


def _crps_da(
    ens: xr.DataArray, truth: xr.DataArray, member_dim: Hashable, dim: Dims, estimator: str
) -> xr.DataArray:
    minimum = 1 if estimator == "nrg" else 2
    m = _need_members(ens, member_dim, "CRPS", minimum)
    ens, truth, dims, units = _prepare(ens, truth, member_dim, dim)
    pointwise = xr.apply_ufunc(
        _crps_kernel,
        truth,
        _single_chunk(ens, [member_dim]),
        input_core_dims=[[], [member_dim]],
        kwargs={"estimator": estimator},
        dask="parallelized",
        output_dtypes=[np.result_type(ens.dtype, truth.dtype, np.float32)],
    )
    out = pointwise.mean(dims)
    return _finish(
        out,
        ens.name,
        _attrs(
            units,
            f"CRPS of ensemble of {_describe(ens)}",
            metric="crps",
            estimator=estimator,
            ensemble_size=m,
        ),
    )


def crps(
    ens: T,
    truth: T,
    member_dim: Hashable = "member",
    dim: Dims = None,
    estimator: Literal["fair", "nrg", "pwm"] = "fair",
) -> T:
    r"""Continuous ranked probability score of an ensemble, averaged over ``dim``.

    With members :math:`x_1, \dots, x_M` and truth :math:`y` (computed with ``scoringrules``):

    * ``"nrg"`` (energy form of the empirical distribution):
      :math:`\frac1M\sum_i|x_i-y| - \frac{1}{2M^2}\sum_{i,j}|x_i-x_j|`;
    * ``"fair"`` (unbiased for the CRPS of the distribution the members are drawn from; Ferro 2014):
      :math:`\frac1M\sum_i|x_i-y| - \frac{1}{2M(M-1)}\sum_{i,j}|x_i-x_j|`;
    * ``"pwm"`` (probability-weighted moments, Zamo & Naveau 2018): algebraically equal to
      ``"fair"``, computed from the sorted members in :math:`O(M \log M)` instead of :math:`O(M^2)`.

    The estimator used is stated in the result's ``estimator`` attribute.

    Parameters
    ----------
    ens
        Ensemble with dimension ``member_dim`` (at least 2 members for "fair" and "pwm").
    truth
        Verifying field without the member dimension.
    member_dim
        Name of the ensemble dimension.
    dim
        Dimension(s) to average the point-wise CRPS over; ``None``: all but ``member_dim``.
    estimator
        ``"fair"`` (default), ``"nrg"`` or ``"pwm"``.

    Returns
    -------
    DataArray or Dataset
        Mean CRPS in the units of the variable.

    Examples
    --------
    >>> import xarray as xr
    >>> ens = xr.DataArray([0.0, 1.0, 2.0], dims="member", attrs={"units": "m"})
    >>> truth = xr.DataArray(1.0, attrs={"units": "m"})
    >>> float(crps(ens, truth, estimator="nrg"))  # 2/3 - 0.5 * 8/9
    0.2222222222222222
    >>> out = crps(ens, truth)  # fair: 2/3 - 0.5 * 8/6
    >>> round(float(out), 12), out.attrs["estimator"], out.attrs["units"]
    (0.0, 'fair', 'm')
    """
    if estimator not in CRPS_ESTIMATORS:
        raise ValueError(f"estimator must be one of {CRPS_ESTIMATORS}, got {estimator!r}")
    return _per_variable(_crps_da, ens, truth, member_dim=member_dim, dim=dim, estimator=estimator)


# --------------------------------------------------------------------------------------------------
# spread-skill ratio
# --------------------------------------------------------------------------------------------------


def _ssr_da(
    ens: xr.DataArray, truth: xr.DataArray, member_dim: Hashable, dim: Dims
) -> xr.DataArray:
    m = _need_members(ens, member_dim, "the spread-skill ratio", 2)
    ens, truth, dims, _ = _prepare(ens, truth, member_dim, dim)
    spread = np.sqrt(ens.var(member_dim, ddof=1).mean(dims))
    skill = np.sqrt(((ens.mean(member_dim) - truth) ** 2).mean(dims))
    out = np.sqrt((m + 1) / m) * spread / skill
    return _finish(
        out,
        ens.name,
        _attrs(
            "1",
            f"spread-skill ratio of {_describe(ens)}",
            metric="spread_skill_ratio",
            ensemble_size=m,
        ),
    )


def spread_skill_ratio(ens: T, truth: T, member_dim: Hashable = "member", dim: Dims = None) -> T:
    r"""Spread-skill ratio with the finite-ensemble correction of Fortin et al. (2014).

    .. math::
        \mathrm{SSR} = \sqrt{\frac{M+1}{M}}\;
        \frac{\sqrt{\overline{s^2}}}{\sqrt{\overline{(\bar x - y)^2}}}

    where :math:`s^2` is the unbiased (``ddof=1``) variance over the :math:`M` members,
    :math:`\bar x` the ensemble mean and the overbar the mean over ``dim``. If truth and members
    are exchangeable draws, :math:`E[(\bar x-y)^2] = \frac{M+1}{M} E[s^2]`, so SSR = 1 means
    calibrated; SSR < 1 means under-dispersive (over-confident), SSR > 1 over-dispersive.

    Parameters
    ----------
    ens
        Ensemble with at least 2 members along ``member_dim``.
    truth
        Verifying field without the member dimension.
    member_dim
        Name of the ensemble dimension.
    dim
        Dimension(s) the variance and squared error are averaged over before the ratio is taken.

    Returns
    -------
    DataArray or Dataset
        Dimensionless ratio (``units: "1"``).

    References
    ----------
    Fortin, V., Abaza, M., Anctil, F. and Turcotte, R. (2014): Why should ensemble spread match the
    RMSE of the ensemble mean? J. Hydrometeor., 15, 1708-1713.

    Examples
    --------
    >>> import xarray as xr
    >>> ens = xr.DataArray([[0.0, 0.0], [2.0, 2.0]], dims=("member", "x"))
    >>> truth = xr.DataArray([0.0, 2.0], dims="x")
    >>> round(float(spread_skill_ratio(ens, truth)), 4)  # sqrt(3/2) * sqrt(2) / 1
    1.7321
    """
    return _per_variable(_ssr_da, ens, truth, member_dim=member_dim, dim=dim)


# --------------------------------------------------------------------------------------------------
# rank histogram
# --------------------------------------------------------------------------------------------------


def _count_codes(codes: xr.DataArray, dims: tuple[Hashable, ...], nbins: int) -> tuple[Any, list]:
    """Histogram of integer ``codes`` (negative = skip) along ``dims``: array (kept..., nbins)."""
    kept = [d for d in codes.dims if d not in dims]
    codes = codes.transpose(*kept, *dims)
    data = codes.data
    nk = len(kept)
    nr = len(dims)

    def block_counts(block: np.ndarray) -> np.ndarray:
        kshape = block.shape[:nk]
        nkept = int(np.prod(kshape, dtype=np.int64))
        flat = block.reshape(nkept, -1)
        shifted = flat + np.arange(nkept, dtype=np.int64)[:, None] * nbins
        counts = np.bincount(shifted[flat >= 0], minlength=nkept * nbins)
        return counts.reshape(*kshape, *([1] * nr), nbins)

    if codes.chunks is None:
        out = block_counts(np.asarray(data)).reshape(*data.shape[:nk], nbins)
    else:
        import dask.array as dsa

        partial = dsa.map_blocks(
            block_counts,
            data,
            new_axis=[data.ndim],
            chunks=(*data.chunks[:nk], *[(1,) * len(c) for c in data.chunks[nk:]], (nbins,)),
            dtype=np.int64,
        )
        out = partial.sum(axis=tuple(range(nk, nk + nr)))
    return out, kept


def _break_ties(counts: np.ndarray, position: np.ndarray, seed: int) -> np.ndarray:
    """Turn counts over (rank among strictly smaller members, number of ties) into rank counts.

    A truth tied with ``e`` members has rank ``a + U{0..e}``: the counts of each ``(a, e)`` cell are
    spread over ranks ``a..a+e`` by a multinomial draw from a generator seeded with ``[seed,
    position]``, so the result depends on neither the chunking nor the order of the points.
    """
    k = counts.shape[-1]
    lead = counts.shape[:-2]
    flat = counts.reshape(-1, k, k)
    pos = np.broadcast_to(position, lead).reshape(-1)
    out = flat[:, :, 0].copy()
    for i in np.flatnonzero(flat[:, :, 1:].any(axis=(1, 2))):
        rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, int(pos[i])])))
        for e in range(1, k):
            below = np.flatnonzero(flat[i, :, e])
            if below.size == 0:
                continue
            draws = rng.multinomial(flat[i, below, e], np.full(e + 1, 1.0 / (e + 1)))
            for a, d in zip(below, draws, strict=True):
                out[i, a : a + e + 1] += d
    return out.reshape(*lead, k)


def _rank_histogram_da(
    ens: xr.DataArray, truth: xr.DataArray, member_dim: Hashable, dim: Dims, seed: int
) -> xr.DataArray:
    m = _need_members(ens, member_dim, "the rank histogram", 1)
    ens, truth, dims, _ = _prepare(ens, truth, member_dim, dim)
    k = m + 1
    ens = _single_chunk(ens, [member_dim])
    below = (ens < truth).sum(member_dim)
    ties = (ens == truth).sum(member_dim)
    valid = truth.notnull() & ens.notnull().all(member_dim)
    codes = xr.where(valid, below * k + ties, -1).astype(np.int64)
    counts, kept = _count_codes(codes, dims, k * k)
    kept_shape = tuple(codes.sizes[d] for d in kept)
    counts = counts.reshape(*kept_shape, k, k)
    position = np.arange(int(np.prod(kept_shape, dtype=np.int64))).reshape(kept_shape)
    if not isinstance(counts, np.ndarray):
        import dask.array as dsa

        position = dsa.from_array(position, chunks=counts.chunks[: len(kept)])
    kept_coords = {name: c for name, c in codes.coords.items() if set(c.dims) <= set(kept)}
    counts_da = xr.DataArray(counts, dims=(*kept, "_below", "_ties"), coords=kept_coords)
    position_da = xr.DataArray(position, dims=kept)
    out = xr.apply_ufunc(
        _break_ties,
        counts_da,
        position_da,
        input_core_dims=[["_below", "_ties"], []],
        output_core_dims=[["rank"]],
        kwargs={"seed": seed},
        dask="parallelized",
        output_dtypes=[np.int64],
        dask_gufunc_kwargs={"output_sizes": {"rank": k}},
    )
    out = out.assign_coords(rank=("rank", np.arange(k), {"long_name": "rank of truth"}))
    return _finish(
        out,
        ens.name,
        _attrs(
            "1",
            f"rank histogram of {_describe(ens)}",
            metric="rank_histogram",
            ensemble_size=m,
            seed=seed,
            ties="broken at random",
        ),
    )


def rank_histogram(
    ens: T, truth: T, member_dim: Hashable = "member", dim: Dims = None, seed: int = 0
) -> T:
    """Counts of the rank of the truth among the ensemble members (Talagrand diagram).

    The rank of ``truth`` is the number of members strictly below it, ``0..M``, so there are
    ``M + 1`` bins. A truth equal to ``e`` members gets a rank drawn uniformly from the ``e + 1``
    possible positions; the draws come from explicit generators seeded with ``seed`` and the
    position of the histogram (never from global state), so results are reproducible and
    independent of the dask chunking. Points where the truth or any member is NaN are not counted.
    A flat histogram means calibrated, a U shape under-dispersive, a dome over-dispersive; divide
    by ``.sum("rank")`` for frequencies.

    Parameters
    ----------
    ens
        Ensemble with dimension ``member_dim``.
    truth
        Verifying field without the member dimension.
    member_dim
        Name of the ensemble dimension.
    dim
        Dimension(s) over which points are counted; ``None``: all but ``member_dim``. Dimensions
        not in ``dim`` are kept (one histogram each).
    seed
        Seed for the random tie-breaking (a non-negative integer).

    Returns
    -------
    DataArray or Dataset
        Integer counts with the new dimension ``rank`` (``0..M``), dimensionless.

    Examples
    --------
    >>> import xarray as xr
    >>> ens = xr.DataArray([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]], dims=("member", "x"))
    >>> truth = xr.DataArray([-1.0, 0.5, 2.0], dims="x")
    >>> rank_histogram(ens, truth).values
    array([1, 1, 1])
    """
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return _per_variable(
        _rank_histogram_da, ens, truth, member_dim=member_dim, dim=dim, seed=int(seed)
    )


# --------------------------------------------------------------------------------------------------
# power spectra
# --------------------------------------------------------------------------------------------------


def _spacing(da: xr.DataArray, d: Hashable) -> tuple[float, str | None]:
    """Grid spacing along ``d`` from its 1-D coordinate (1 per grid step without one) and units."""
    if d not in da.coords:
        return 1.0, None
    coord = da.coords[d]
    values = np.asarray(coord.values)
    if coord.ndim != 1 or values.dtype.kind not in "fiu":
        raise InputError(
            f"coordinate {d!r} of {_label(da)} is not a 1-D numeric coordinate; power spectra need "
            "a regular grid in projection (or index) coordinates"
        )
    if values.size < 2:
        raise InputError(f"dimension {d!r} of {_label(da)} needs at least 2 points for a spectrum")
    steps = np.diff(values.astype(np.float64))
    step = float(np.mean(steps))
    if step == 0 or not np.allclose(steps, step, rtol=1e-5, atol=0):
        raise InputError(
            f"coordinate {d!r} of {_label(da)} is not evenly spaced; regrid to a regular grid first"
        )
    return abs(step), coord.attrs.get("units")


class _SpectralGrid:
    """Wavenumbers of the 2-D real FFT over ``dims`` and their radial bins."""

    def __init__(self, da: xr.DataArray, dims: Sequence[Hashable], cycles: bool) -> None:
        if len(dims) != 2:
            raise ValueError(f"dims must name exactly two spatial dimensions, got {tuple(dims)}")
        missing = [d for d in dims if d not in da.dims]
        if missing:
            raise InputError(
                f"{_label(da)} lacks the spatial dimension(s) {missing} (its dimensions: "
                f"{tuple(da.dims)}); pass dims=(row_dim, column_dim)"
            )
        (dy, uy), (dx, ux) = (_spacing(da, d) for d in dims)
        if uy != ux:
            raise InputError(
                f"coordinates {tuple(dims)} of {_label(da)} have different units ({uy!r}, {ux!r})"
            )
        self.ny, self.nx = (int(da.sizes[d]) for d in dims)
        scale = 1.0 if cycles else 2.0 * np.pi
        ky = scale * np.fft.fftfreq(self.ny, dy)
        kx = scale * np.fft.rfftfreq(self.nx, dx)
        self.dk = max(scale / (self.ny * dy), scale / (self.nx * dx))
        self.nyquist = min(scale / (2 * dy), scale / (2 * dx))
        kabs = np.hypot(ky[:, None], kx[None, :])
        self.index = np.rint(kabs / self.dk).astype(np.int64)
        self.nbins = int(self.index.max()) + 1
        # rfft keeps x-wavenumbers 0..nx//2: the others are complex conjugates, counted twice
        self.weight = np.full(kx.size, 2.0)
        self.weight[0] = 1.0
        if self.nx % 2 == 0:
            self.weight[-1] = 1.0
        self.wavenumber = np.arange(self.nbins) * self.dk
        self.coord_units = ux
        self.cycles = cycles
        if ux is None:
            self.k_units = None
        else:
            self.k_units = f"({ux})-1" if " " in ux or "/" in ux else f"{ux}-1"

    def coord(self) -> xr.Variable:
        kind = "wavenumber (cycles per" if self.cycles else "angular wavenumber (radians per"
        unit = self.coord_units if self.coord_units is not None else "grid step"
        attrs = _attrs(
            self.k_units,
            f"{kind} {unit})",
            fundamental_wavenumber=self.dk,
            nyquist_wavenumber=self.nyquist,
        )
        return xr.Variable("wavenumber", self.wavenumber, attrs)

    def kernel(self, field: np.ndarray) -> np.ndarray:
        """Shell-summed spectral density of the last two axes of ``field``."""
        ny, nx = field.shape[-2:]
        lead = field.shape[:-2]
        spec = np.fft.rfft2(np.asarray(field, dtype=np.float64), axes=(-2, -1))
        power = (spec.real**2 + spec.imag**2) * (self.weight / float(ny * nx) ** 2)
        n = int(np.prod(lead, dtype=np.int64))
        flat = power.reshape(n, -1)
        idx = self.index.reshape(-1)[None, :] + np.arange(n, dtype=np.int64)[:, None] * self.nbins
        out = np.bincount(idx.reshape(-1), weights=flat.reshape(-1), minlength=n * self.nbins)
        return out.reshape(*lead, self.nbins) / self.dk


def _power_units(da: xr.DataArray, grid: _SpectralGrid) -> str | None:
    u = da.attrs.get("units")
    if u is None:
        return None
    u = str(u).strip()
    squared = "1" if u in ("1", "") else f"({u})^2"
    if grid.coord_units is None:
        return squared
    length = grid.coord_units if " " not in grid.coord_units else f"({grid.coord_units})"
    return length if squared == "1" else f"{squared} {length}"


def _power_spectrum_da(
    da: xr.DataArray,
    _unused: None,
    dims: Sequence[Hashable],
    mean_over: Dims,
    wavenumber: str,
) -> xr.DataArray:
    grid = _SpectralGrid(da, dims, cycles=wavenumber == "cycles")
    over = _as_tuple(mean_over) or ()
    unknown = [d for d in over if d not in da.dims or d in dims]
    if unknown:
        raise InputError(
            f"mean_over names {unknown}, which are not non-spatial dimensions of {_label(da)} "
            f"(its dimensions: {tuple(da.dims)})"
        )
    out = xr.apply_ufunc(
        grid.kernel,
        _single_chunk(da, dims),
        input_core_dims=[list(dims)],
        output_core_dims=[["wavenumber"]],
        dask="parallelized",
        output_dtypes=[np.float64],
        dask_gufunc_kwargs={"output_sizes": {"wavenumber": grid.nbins}},
    )
    out = out.assign_coords(wavenumber=grid.coord())
    if over:
        out = out.mean(over)
    return _finish(
        out,
        da.name,
        _attrs(
            _power_units(da, grid),
            f"isotropic power spectral density of {_describe(da)}",
            metric="power_spectrum",
        ),
    )


def power_spectrum(
    da: T,
    dims: Sequence[Hashable] = ("y", "x"),
    mean_over: Dims = None,
    wavenumber: Literal["angular", "cycles"] = "angular",
) -> T:
    r"""Radially binned (isotropic) power spectral density over two spatial dimensions.

    The field is treated as periodic (no window, no detrending). With :math:`\hat f` the 2-D
    discrete Fourier transform of the :math:`N = N_y N_x` values, the power at each 2-D wavenumber
    is :math:`|\hat f|^2/N^2`; it is summed over shells :math:`|k| \in [(n - \tfrac12)\Delta k,
    (n + \tfrac12)\Delta k)` and divided by the shell width :math:`\Delta k`, the larger of the two
    fundamental wavenumbers. So :math:`\sum_n E(k_n)\,\Delta k = \overline{f^2}` (Parseval: the mean
    square of the field, the ``k = 0`` bin holding the squared mean). Shells above the Nyquist
    wavenumber (attribute ``nyquist_wavenumber`` of the coordinate) collect the corners of the
    spectral square only and are not full circles.

    Wavenumbers are physical, from the spacing of the 1-D coordinates of ``dims`` (one per grid step
    where a dimension has no coordinate): angular, :math:`k = 2\pi/\lambda` in radians per
    coordinate unit (``units`` e.g. ``"m-1"``) by default, or in cycles per coordinate unit
    (:math:`1/\lambda`) with ``wavenumber="cycles"``. The density has units of the variable squared
    times the coordinate unit, e.g. ``"(s-1)^2 m"``.

    Parameters
    ----------
    da
        Field(s) with both ``dims``; a Dataset is handled per data variable (variables without both
        dimensions are left out).
    dims
        The (row, column) spatial dimensions, evenly spaced.
    mean_over
        Other dimensions (e.g. ``("member", "time")``) to average the spectra over; all other
        dimensions are kept.
    wavenumber
        ``"angular"`` (radians per unit) or ``"cycles"`` (cycles per unit).

    Returns
    -------
    DataArray or Dataset
        Spectral density with dimension ``wavenumber`` replacing ``dims``.

    Examples
    --------
    >>> import numpy as np
    >>> import xarray as xr
    >>> x = np.arange(8.0)
    >>> f = xr.DataArray(np.cos(2 * np.pi * x / 4) * np.ones((8, 1)), dims=("y", "x"),
    ...                  coords={"y": x, "x": x})
    >>> ps = power_spectrum(f, wavenumber="cycles")
    >>> ps.wavenumber.values[:4]
    array([0.   , 0.125, 0.25 , 0.375])
    >>> float(ps.sel(wavenumber=0.25) * 0.125)  # all of mean(f**2) = 0.5 at 1/4 cycles per unit
    0.5
    """
    if wavenumber not in ("angular", "cycles"):
        raise ValueError(f"wavenumber must be 'angular' or 'cycles', got {wavenumber!r}")
    dims = tuple(dims)
    if isinstance(da, xr.Dataset):
        keep = [name for name in da.data_vars if all(d in da[name].dims for d in dims)]
        if not keep:
            raise InputError(f"no data variable of the Dataset has both dimensions {dims}")
        da = da[keep]
    return _per_variable(
        _power_spectrum_da, da, None, dims=dims, mean_over=mean_over, wavenumber=wavenumber
    )


def _octave_da(
    ens: xr.DataArray, truth: xr.DataArray, dims: Sequence[Hashable], member_dim: Hashable
) -> xr.DataArray:
    if member_dim in truth.dims:
        raise InputError(
            f"the truth for {_label(ens)} has the member dimension {member_dim!r}; pass a single "
            "field per sample"
        )
    grid = _SpectralGrid(ens, dims, cycles=False)
    grid_t = _SpectralGrid(truth, dims, cycles=False)
    if (grid.ny, grid.nx) != (grid_t.ny, grid_t.nx) or not np.isclose(grid.dk, grid_t.dk):
        raise InputError(
            f"{_label(ens)} and its truth are on different grids ({grid.ny}x{grid.nx} and "
            f"{grid_t.ny}x{grid_t.nx} points); compare spectra on the same grid"
        )
    spec = power_spectrum(ens, dims=dims)
    spec = spec.mean([d for d in spec.dims if d != "wavenumber"])
    spec_t = power_spectrum(truth, dims=dims)
    spec_t = spec_t.mean([d for d in spec_t.dims if d != "wavenumber"])
    spec_t = spec_t.assign_coords(wavenumber=spec.wavenumber)

    k_max = int(np.floor(grid.nyquist / grid.dk + 1e-9))
    if k_max < 2:
        raise InputError(
            f"the grid of {_label(ens)} ({grid.ny}x{grid.nx}) is too small for octave bins"
        )
    edges = [1]
    while edges[-1] * 2 < k_max:
        edges.append(edges[-1] * 2)
    edges.append(k_max)
    lower = np.array(edges[:-1])
    upper = np.array(edges[1:])
    n = np.arange(grid.nbins)
    member = (n[None, :] >= lower[:, None]) & (n[None, :] < upper[:, None])
    member[-1, n == k_max] = True  # last octave is closed: [k_max/2, k_max]
    weights = xr.DataArray(member.astype(np.float64), dims=("octave", "wavenumber"))
    ratio = xr.dot(spec, weights, dim="wavenumber") / xr.dot(spec_t, weights, dim="wavenumber")
    out = ratio - 1.0
    k_units = grid.k_units
    out = out.assign_coords(
        octave=("octave", np.arange(lower.size)),
        octave_lower=("octave", lower, {"long_name": "lower bound (fundamental wavenumbers)"}),
        octave_upper=(
            "octave",
            upper,
            {"long_name": "upper bound (fundamental wavenumbers; exclusive except the last)"},
        ),
        wavenumber_lower=("octave", lower * grid.dk, _attrs(k_units, "lower angular wavenumber")),
        wavenumber_upper=("octave", upper * grid.dk, _attrs(k_units, "upper angular wavenumber")),
    )
    return _finish(
        out,
        ens.name,
        _attrs(
            "1",
            f"relative error of the power spectrum of {_describe(ens)} per octave",
            metric="spectrum_error_by_octave",
        ),
    )


def spectrum_error_by_octave(
    ens_or_field: T,
    truth: T,
    dims: Sequence[Hashable] = ("y", "x"),
    member_dim: Hashable = "member",
) -> T:
    """Relative error of the mean power spectrum per octave of wavenumber.

    The spectra (:func:`power_spectrum`) of the ensemble, averaged over the members and every other
    non-spatial dimension, and of the truth, averaged over its non-spatial dimensions, are summed
    over octaves of the radial wavenumber index ``n = k / dk`` (``dk`` the fundamental wavenumber):
    ``[1, 2), [2, 4), [4, 8), ..., [k_max/2, k_max]`` with ``k_max`` the Nyquist index (the last
    octave is closed and shorter when ``k_max`` is not a power of two; the mean, ``n = 0``, is left
    out). The result is ``ensemble power / truth power - 1`` per octave: 0 means the right amount of
    variance at those scales, negative too smooth, positive too rough.

    Parameters
    ----------
    ens_or_field
        Ensemble or single field(s) with both ``dims``.
    truth
        Verifying field(s) on the same grid, without ``member_dim``.
    dims
        The (row, column) spatial dimensions.
    member_dim
        Name of the ensemble dimension (only used to check that the truth lacks it).

    Returns
    -------
    DataArray or Dataset
        Dimensionless relative error with dimension ``octave`` and coordinates ``octave_lower``,
        ``octave_upper`` (in fundamental wavenumbers) and ``wavenumber_lower``,
        ``wavenumber_upper`` (angular, physical units).

    Examples
    --------
    >>> import numpy as np
    >>> import xarray as xr
    >>> rng = np.random.default_rng(0)
    >>> truth = xr.DataArray(rng.normal(size=(16, 16)), dims=("y", "x"))
    >>> err = spectrum_error_by_octave(2 * truth, truth)  # twice the amplitude: 4x the power
    >>> err.values
    array([3., 3., 3.])
    >>> err.octave_lower.values, err.octave_upper.values
    (array([1, 2, 4]), array([2, 4, 8]))
    """
    return _per_variable(_octave_da, ens_or_field, truth, dims=tuple(dims), member_dim=member_dim)
