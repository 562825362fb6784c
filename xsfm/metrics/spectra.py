"""Power spectra: isotropic spectral density, spectral error and spread-skill per octave."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Literal

import numpy as np
import xarray as xr

from xsfm.errors import InputError
from xsfm.metrics._plumbing import (
    Dims,
    T,
    _align,
    _as_tuple,
    _attrs,
    _check_units,
    _describe,
    _finish,
    _label,
    _need_members,
    _per_variable,
    _single_chunk,
)


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
    spec = power_spectrum(ens, dims=dims)
    spec = spec.mean([d for d in spec.dims if d != "wavenumber"])
    spec_t = power_spectrum(truth, dims=dims)
    spec_t = spec_t.mean([d for d in spec_t.dims if d != "wavenumber"])
    spec_t = spec_t.assign_coords(wavenumber=spec.wavenumber)

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
) -> tuple[xr.DataArray, xr.DataArray, int, float]:
    """Members' variance and the mean's squared error per octave (band integrals of their spectra).

    Shared by :func:`spread_skill_by_octave` and :func:`xsfm.plot.spread_skill`: returns the
    unbiased member variance and the squared error of the ensemble mean carried by each octave of
    :func:`spectrum_error_by_octave` (averaged over every non-spatial dimension; by Parseval they
    add up, with ``k = 0`` and the corners beyond Nyquist, to the mean variance and the mean
    squared error over all points), the ensemble size and the fundamental angular wavenumber.
    """
    m = _need_members(ens, member_dim, "the spread-skill ratio by octave", 2)
    _check_units(ens, truth)
    ens, truth = _align(ens, truth, member_dim)
    grid = _SpectralGrid(ens, dims, cycles=False)
    lower, upper, weights = _octave_bands(grid, ens)
    mean = ens.mean(member_dim)
    error = power_spectrum(mean - truth, dims=dims)
    error = error.mean([d for d in error.dims if d != "wavenumber"])
    spread = power_spectrum(ens - mean, dims=dims).sum(member_dim) / (m - 1)
    spread = spread.mean([d for d in spread.dims if d != "wavenumber"])

    def bands(psd: xr.DataArray) -> xr.DataArray:
        return _octave_coords(xr.dot(psd, weights, dim="wavenumber") * grid.dk, lower, upper, grid)

    return bands(spread), bands(error), m, grid.dk


def _ssr_octave_da(
    ens: xr.DataArray, truth: xr.DataArray, dims: Sequence[Hashable], member_dim: Hashable
) -> xr.DataArray:
    spread, error, m, _ = octave_spread_and_error(ens, truth, dims, member_dim)
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
