"""Power spectra: the isotropic power spectral density of fields on a regular grid."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Literal

import numpy as np
import xarray as xr

from xsfm.errors import InputError
from xsfm.metrics._plumbing import (
    Dims,
    T,
    _as_tuple,
    _attrs,
    _describe,
    _finish,
    _label,
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
