"""SFM's base noise shaped like the encoder's error spectrum (``base_noise="spectral"``).

SFM starts its flow from ``z = E(y) + sigma_z eps``. With white ``eps`` every Fourier mode gets the
same variance, while the encoder's error ``x - E(y)`` puts most of its power at the large scales; the
flow then has to create the large-scale spread, and a briefly trained one does not (the Kolmogorov
study measured spread-skill ratios of 0.41-0.45 at wavenumbers 2-8 against 0.92 at the smallest
scales). The spectral variant keeps SFM's idea -- base noise scaled by the encoder's own held-out
error -- and gives it the error's shape as well: ``eps`` is coloured by an isotropic amplitude per
radial wavenumber band measured, like ``sigma_z``, on held-out pairs during training.

Bands are half-octaves of the radial frequency ``f = sqrt(fy^2 + fx^2)`` in cycles per pixel (band 0
is the mean, ``f = 0``; band ``j = 1 .. 16`` holds ``2^((j - 17)/2) <= f < 2^((j - 16)/2)``, band 1
also everything lower, band 16 everything higher), so one table serves every grid size. The shaped
noise has unit variance per pixel on any grid (its mode amplitudes are divided by their root mean
square), so ``sigma_z`` keeps its meaning (the encoder's
RMSE) and the per-pixel statistics that observation guidance uses hold unchanged. Fourier
transforms are orthonormal, the noise is periodic (stationary; it is drawn, not simulated, so it
is equally valid on non-periodic domains).
"""

from __future__ import annotations

import torch

__all__ = ["BANDS", "band_index", "band_power", "fill_empty_bands", "shape_noise"]

BANDS = 17
"""Number of radial bands: the mean, then 16 half-octaves of radial frequency."""


def _radial_frequency(height: int, width: int, half: bool, device: torch.device) -> torch.Tensor:
    fy = torch.fft.fftfreq(height, device=device, dtype=torch.float64)
    fx = (torch.fft.rfftfreq if half else torch.fft.fftfreq)(
        width, device=device, dtype=torch.float64
    )
    return (fy[:, None] ** 2 + fx[None, :] ** 2).sqrt()


def band_index(
    height: int, width: int, half: bool = False, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """Radial band of every Fourier mode of a ``height x width`` field (``[H, W]`` or rfft ``[H, W//2+1]``).

    Examples
    --------
    >>> idx = band_index(64, 64)
    >>> int(idx[0, 0]), int(idx[0, 1]), int(idx[0, 32]), int(idx.max())
    (0, 5, 15, 15)
    """
    f = _radial_frequency(height, width, half, torch.device(device))
    j = torch.floor(2 * torch.log2(f.clamp_min(1e-12))) + 17
    return torch.where(f > 0, j.clamp(1, BANDS - 1), torch.zeros_like(j)).long()


def band_power(error: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean Fourier power per channel and band of fields ``[B, C, H, W]`` (orthonormal FFT).

    Returns
    -------
    power
        ``[C, BANDS]`` float64; zero where a band has no mode on this grid.
    count
        ``[BANDS]`` number of modes per band (all fields together).

    With an orthonormal transform the mean power over all modes is the mean square (Parseval), so
    the band powers weighted by their mode counts average to the squared RMSE.

    Examples
    --------
    >>> e = torch.randn(64, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    >>> power, count = band_power(e)
    >>> bool(((power[0, count > 0] - 1).abs() < 0.15).all())  # white noise: flat
    True
    """
    _, c, h, w = error.shape
    spec = torch.fft.fft2(error.double(), norm="ortho").abs().pow(2).mean(dim=0)  # [C, H, W]
    idx = band_index(h, w, device=error.device).reshape(-1)
    count = torch.bincount(idx, minlength=BANDS).double()
    total = torch.zeros(c, BANDS, dtype=torch.float64, device=error.device)
    total.index_add_(1, idx, spec.reshape(c, -1))
    power = torch.where(count > 0, total / count.clamp_min(1), torch.zeros_like(total))
    return power.cpu(), count.cpu()


def fill_empty_bands(amplitude: torch.Tensor, seen: torch.Tensor) -> torch.Tensor:
    """Give bands never measured (``seen`` False) the amplitude of the nearest measured band.

    Band 0 (the mean) counts as adjacent to band 1. Without any measured band the input is returned.

    Examples
    --------
    >>> fill_empty_bands(torch.tensor([[0.0, 0.0, 2.0, 3.0, 0.0]]),
    ...                  torch.tensor([False, False, True, True, False]))
    tensor([[2., 2., 2., 3., 3.]])
    """
    where = torch.nonzero(seen).reshape(-1)
    if where.numel() == 0:
        return amplitude.clone()
    bands = torch.arange(amplitude.shape[-1])
    nearest = where[(bands[:, None] - where[None, :]).abs().argmin(dim=1)]
    return amplitude[..., nearest]


def shape_noise(eps: torch.Tensor, amplitude: torch.Tensor) -> torch.Tensor:
    """Colour white noise ``[B, C, H, W]`` by a per-channel band amplitude ``[C, BANDS]``.

    Each field is transformed (orthonormal real FFT), every mode multiplied by its band's amplitude
    divided by the root mean square of those amplitudes over the grid's modes, and transformed back:
    unit variance per pixel, the band amplitudes' spectral shape, fields independent of each other.

    Examples
    --------
    >>> eps = torch.randn(256, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    >>> amp = torch.ones(1, BANDS)
    >>> torch.allclose(shape_noise(eps, amp), eps, atol=1e-5)  # flat amplitude: unchanged
    True
    >>> amp[0, 8:] = 0.1  # red noise: most variance at the large scales
    >>> out = shape_noise(eps, amp)
    >>> round(float(out.var()), 1)
    1.0
    """
    h, w = eps.shape[-2:]
    amp = amplitude.to(eps.device, torch.float64)
    full = amp[:, band_index(h, w, device=eps.device)]  # [C, H, W]
    rms = full.pow(2).mean(dim=(1, 2)).sqrt().clamp_min(1e-12)
    gain = amp[:, band_index(h, w, half=True, device=eps.device)] / rms[:, None, None]
    spec = torch.fft.rfft2(eps.double(), norm="ortho") * gain
    return torch.fft.irfft2(spec, s=(h, w), norm="ortho").to(eps.dtype)
