"""Scores per octave of wavenumber: the spectrum's relative error and the spread-skill ratio."""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np
import xarray as xr

from xsfm.errors import InputError
from xsfm.metrics._plumbing import (
    T,
    _align,
    _attrs,
    _check_units,
    _describe,
    _finish,
    _label,
    _need_members,
    _per_variable,
)
from xsfm.metrics.spectra import _SpectralGrid, power_spectrum


def _mean_power(da: xr.DataArray, dims: Sequence[Hashable]) -> xr.DataArray:
    """:func:`power_spectrum` over ``dims``, averaged over every other dimension."""
    spec = power_spectrum(da, dims=dims)
    return spec.mean([d for d in spec.dims if d != "wavenumber"])


def _octave_bands(
    grid: _SpectralGrid, da: xr.DataArray
) -> tuple[np.ndarray, np.ndarray, xr.DataArray]:
    """Octaves ``[1, 2), [2, 4), ..., [k_max/2, k_max]`` of the radial index: bounds and weights."""
    k_max = int(np.floor(grid.nyquist / grid.dk + 1e-9))
    if k_max < 2:
        raise InputError(
            f"the grid of {_label(da)} ({grid.ny}x{grid.nx}) is too small for octave bins"
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
    return lower, upper, xr.DataArray(member.astype(np.float64), dims=("octave", "wavenumber"))


def _octave_coords(
    out: xr.DataArray, lower: np.ndarray, upper: np.ndarray, grid: _SpectralGrid
) -> xr.DataArray:
    k_units = grid.k_units
    return out.assign_coords(
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
    spec = _mean_power(ens, dims)
    spec_t = _mean_power(truth, dims).assign_coords(wavenumber=spec.wavenumber)

    lower, upper, weights = _octave_bands(grid, ens)
    ratio = xr.dot(spec, weights, dim="wavenumber") / xr.dot(spec_t, weights, dim="wavenumber")
    out = _octave_coords(ratio - 1.0, lower, upper, grid)
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


def octave_spread_and_error(
    ens: xr.DataArray, truth: xr.DataArray, dims: Sequence[Hashable], member_dim: Hashable
) -> tuple[xr.DataArray, xr.DataArray, int]:
    """Members' variance and the mean's squared error per octave (band integrals of their spectra).

    Shared by :func:`spread_skill_by_octave` and :func:`xsfm.plot.spread_skill`: returns the
    unbiased member variance and the squared error of the ensemble mean carried by each octave of
    :func:`spectrum_error_by_octave` (averaged over every non-spatial dimension; by Parseval they
    add up, with ``k = 0`` and the corners beyond Nyquist, to the mean variance and the mean
    squared error over all points), and the ensemble size.
    """
    m = _need_members(ens, member_dim, "the spread-skill ratio by octave", 2)
    _check_units(ens, truth)
    ens, truth = _align(ens, truth, member_dim)
    grid = _SpectralGrid(ens, dims, cycles=False)
    lower, upper, weights = _octave_bands(grid, ens)
    mean = ens.mean(member_dim)
    error = _mean_power(mean - truth, dims)
    spread = _mean_power(ens - mean, dims) * (m / (m - 1))  # summed over members / (M - 1)

    def bands(psd: xr.DataArray) -> xr.DataArray:
        return _octave_coords(xr.dot(psd, weights, dim="wavenumber") * grid.dk, lower, upper, grid)

    return bands(spread), bands(error), m


def _ssr_octave_da(
    ens: xr.DataArray, truth: xr.DataArray, dims: Sequence[Hashable], member_dim: Hashable
) -> xr.DataArray:
    spread, error, m = octave_spread_and_error(ens, truth, dims, member_dim)
    return _finish(
        np.sqrt((m + 1) / m * spread / error),
        ens.name,
        _attrs(
            "1",
            f"spread-skill ratio of {_describe(ens)} per octave",
            metric="spread_skill_by_octave",
            ensemble_size=m,
        ),
    )


def spread_skill_by_octave(
    ens: T,
    truth: T,
    dims: Sequence[Hashable] = ("y", "x"),
    member_dim: Hashable = "member",
) -> T:
    r"""Spread-skill ratio per octave of wavenumber: the ensemble's calibration scale by scale.

    The :func:`~xsfm.metrics.spread_skill_ratio` computed from Fourier power: the members'
    deviations from the ensemble mean and the ensemble mean's error are transformed over ``dims``
    (:func:`power_spectrum`), their power is averaged over every other dimension and summed over
    the octaves of :func:`spectrum_error_by_octave` (``[1, 2), [2, 4), ..., [k_max/2, k_max]`` in
    fundamental wavenumbers), and per octave

    .. math::
        \mathrm{SSR} = \sqrt{\frac{M+1}{M}\,
        \frac{\sum_{\text{octave}} \overline{|\widehat{x_m - \bar x}|^2} \,/\, (M - 1)}
        {\sum_{\text{octave}} \overline{|\widehat{\bar x - y}|^2}}}.

    1 means the spread matches the error at those scales, below 1 too little spread (the truth
    too often outside the ensemble there), above 1 too much. By Parseval the octaves together
    (with the mean, ``k = 0``) give the spread-skill ratio over all points.

    Parameters
    ----------
    ens
        Ensemble with at least 2 members along ``member_dim`` and both ``dims``; a Dataset is
        handled per data variable.
    truth
        Verifying field(s) on the same grid, without ``member_dim``; paired with ``ens`` by
        coordinate label.
    dims
        The (row, column) spatial dimensions, evenly spaced (the fields are treated as periodic).
    member_dim
        Name of the ensemble dimension.

    Returns
    -------
    DataArray or Dataset
        Dimensionless ratio with dimension ``octave`` and the coordinates of
        :func:`spectrum_error_by_octave`.

    Examples
    --------
    Truth and members drawn from the same distribution: calibrated at every scale.

    >>> import numpy as np
    >>> import xarray as xr
    >>> rng = np.random.default_rng(0)
    >>> draws = xr.DataArray(rng.normal(size=(9, 64, 32, 32)), dims=("member", "sample", "y", "x"))
    >>> ssr = spread_skill_by_octave(draws.isel(member=slice(1, None)), draws.isel(member=0))
    >>> ssr.round(1).values, ssr.octave_lower.values
    (array([1., 1., 1., 1.]), array([1, 2, 4, 8]))

    Halving the members' deviations halves the ratio at every scale:

    >>> ens = draws.isel(member=slice(1, None))
    >>> narrow = ens.mean("member") + 0.5 * (ens - ens.mean("member"))
    >>> bool((spread_skill_by_octave(narrow, draws.isel(member=0)) < 0.6).all())
    True
    """
    return _per_variable(_ssr_octave_da, ens, truth, dims=tuple(dims), member_dim=member_dim)
