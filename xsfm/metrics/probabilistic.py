"""Probabilistic scores of an ensemble: CRPS, spread-skill ratio and rank histogram."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any, Literal

import numpy as np
import xarray as xr

from xsfm.metrics._plumbing import (
    Dims,
    T,
    _attrs,
    _describe,
    _finish,
    _need_members,
    _per_variable,
    _prepare,
    _single_chunk,
)

CRPS_ESTIMATORS = ("fair", "nrg", "pwm")
# Most float64 elements of the (n, M, M) temporary built by the energy-form CRPS estimators.
_CRPS_BLOCK_ELEMENTS = 2**21


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
