"""Periodic fields on cell-centred square grids: spectral resampling, velocity, Taylor-Green vorticity.

Grid conversion between sizes (:func:`resample`) is spectral and accounts for cell-centred points,
so the coarse and fine grids cover the same square and bilinear upsampling with
``align_corners=False`` maps one onto the other.
"""

from __future__ import annotations

import math

import torch

from xsfm.datasets.kolmogorov_solver import DEFAULTS

__all__ = ["resample", "taylor_green_vorticity", "velocity_from_vorticity"]


def _centre_phase(n: int, m: torch.Tensor) -> torch.Tensor:
    """``exp(i pi m / n)``: DFT coefficient / (n * physical coefficient) on cell-centred points."""
    return torch.exp(1j * math.pi * m / n)


def resample(field: torch.Tensor, size: int, *, max_mode: int | None = None) -> torch.Tensor:
    """Spectrally resample periodic ``field[..., n, n]`` on cell centres to ``size x size``.

    Keeps the Fourier modes ``|m| < min(n, size) / 2`` (Nyquist modes dropped), and at most
    ``max_mode``; coarsening is therefore a sharp spectral truncation, refining is exact
    trigonometric interpolation.

    Examples
    --------
    >>> import torch
    >>> w = taylor_green_vorticity(64, dtype=torch.float64)
    >>> bool(torch.allclose(resample(w, 16), taylor_green_vorticity(16, dtype=torch.float64)))
    True
    """
    n = field.shape[-1]
    if field.shape[-2] != n:
        raise ValueError(
            f"field must be square in its last two dimensions, got {tuple(field.shape)}"
        )
    limit = (min(n, size) - 1) // 2
    if max_mode is not None:
        limit = min(limit, int(max_mode))
    real = field.dtype
    c = torch.fft.rfft2(field.to(torch.float64))
    m_y = torch.cat([torch.arange(0, limit + 1), torch.arange(-limit, 0)]).to(torch.float64)
    m_x = torch.arange(0, limit + 1, dtype=torch.float64)
    rows = torch.cat([torch.arange(0, limit + 1), torch.arange(n - limit, n)])
    kept = c[..., rows, : limit + 1]
    scale = (size / n) ** 2
    phase = (_centre_phase(size, m_y) / _centre_phase(n, m_y))[:, None] * (
        _centre_phase(size, m_x) / _centre_phase(n, m_x)
    )[None, :]
    kept = kept * (phase * scale)
    out = kept.new_zeros((*field.shape[:-2], size, size // 2 + 1))
    out_rows = torch.cat([torch.arange(0, limit + 1), torch.arange(size - limit, size)])
    out[..., out_rows, : limit + 1] = kept
    return torch.fft.irfft2(out, s=(size, size)).to(real)


def velocity_from_vorticity(
    vorticity: torch.Tensor, length: float = DEFAULTS["length"]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Divergence-free velocity ``(u, v)`` of periodic ``vorticity[..., n, n]`` (``[y, x]``).

    Examples
    --------
    >>> import torch
    >>> u, v = velocity_from_vorticity(taylor_green_vorticity(16, dtype=torch.float64))
    >>> u.shape
    torch.Size([16, 16])
    """
    n = vorticity.shape[-1]
    k0 = 2 * math.pi / length
    ky = k0 * torch.fft.fftfreq(n, 1.0 / n, dtype=torch.float64)[:, None]
    kx = k0 * torch.fft.rfftfreq(n, 1.0 / n, dtype=torch.float64)[None, :]
    k2 = kx**2 + ky**2
    inv_k2 = torch.where(k2 > 0, 1.0 / torch.where(k2 > 0, k2, 1.0), 0.0)
    w = torch.fft.rfft2(vorticity.to(torch.float64))
    if n % 2 == 0:  # Nyquist modes have no well-defined derivative: drop them
        w[..., n // 2, :] = 0
        w[..., :, n // 2] = 0
    u = torch.fft.irfft2(1j * ky * inv_k2 * w, s=(n, n))
    v = torch.fft.irfft2(-1j * kx * inv_k2 * w, s=(n, n))
    return u.to(vorticity.dtype), v.to(vorticity.dtype)


def taylor_green_vorticity(
    size: int,
    *,
    length: float = DEFAULTS["length"],
    mode: int = 1,
    speed: float = 1.0,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Taylor-Green vorticity ``2 U kappa sin(kappa x) sin(kappa y)`` on cell centres, ``[y, x]``.

    ``kappa = 2 pi mode / length``; the velocity is ``u = U sin(kappa x) cos(kappa y)``,
    ``v = -U cos(kappa x) sin(kappa y)`` with ``U = speed``.

    Examples
    --------
    >>> taylor_green_vorticity(8).shape
    torch.Size([8, 8])
    """
    kappa = 2 * math.pi * mode / length
    x = (torch.arange(size, dtype=torch.float64) + 0.5) * length / size
    w = 2 * speed * kappa * torch.sin(kappa * x)[None, :] * torch.sin(kappa * x)[:, None]
    return w.to(dtype)
