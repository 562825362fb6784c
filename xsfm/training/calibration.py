"""Calibration check of a trained downscaler on held-out pairs: spread against error, scale by scale.

A model's ensemble is calibrated when its spread matches the error of its mean. The check draws
``members`` fine fields for each held-out coarse input with the model's own sampler and compares:

* the spread-skill ratio ``sqrt((M + 1) / M) * spread / RMSE(mean)`` over all pixels (1:
  calibrated, below 1: under-dispersed);
* the same ratio per octave of radial wavenumber (fundamental units ``[1, 2), [2, 4), ...``), from
  the Fourier power of the members' deviations and of the mean's error -- where the spread is
  missing;
* the share of pixels whose truth lies outside every member (``2 / (M + 1)`` when calibrated).

:func:`xsfm.training.fit_downscaler` runs it on the training run's held-out split when
``calibration_pairs > 0`` and records the result in the card (``training["calibration_check"]``).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from xsfm.models.downscaling import Downscaler
from xsfm.sampling.rng import stream_generators

__all__ = ["calibration_check", "ensemble_calibration"]


def _octave_ratios(
    ens: torch.Tensor, truth: torch.Tensor
) -> tuple[list[list[int]], list[float | None]]:
    """SSR per octave of radial wavenumber from ``ens [N, M, C, H, W]`` and ``truth [N, C, H, W]``."""
    _, m, _, h, w = ens.shape
    mean = ens.mean(dim=1)
    err = torch.fft.fft2(mean - truth).abs().pow(2).sum(dim=(0, 1))  # [H, W]
    spread = torch.fft.fft2(ens - mean[:, None]).abs().pow(2).sum(dim=(0, 1, 2)) / (m - 1)
    ky = torch.fft.fftfreq(h, dtype=torch.float64) * h
    kx = torch.fft.fftfreq(w, dtype=torch.float64) * w
    kr = (ky[:, None] ** 2 + kx[None, :] ** 2).sqrt()
    octaves, ratios = [], []
    lo = 1
    while lo < max(h, w) // 2:
        band = (kr >= lo) & (kr < 2 * lo)
        e = float(err[band].sum())
        s = float(spread[band].sum()) * (m + 1) / m
        octaves.append([lo, 2 * lo])
        ratios.append(math.sqrt(s / e) if e > 0 else None)
        lo *= 2
    return octaves, ratios


@torch.no_grad()
def calibration_check(
    module: Downscaler,
    coarse: torch.Tensor,
    fine: torch.Tensor,
    members: int = 8,
    seed: int = 0,
    batch_size: int = 8,
) -> dict[str, Any]:
    """Spread against error of ``module``'s ensembles on held-out physical pairs.

    Parameters
    ----------
    module
        A trained flow or diffusion downscaler (its config's sampler is used).
    coarse, fine
        Held-out pairs ``[N, Cin, h, w]`` and ``[N, Cout, H, W]``, physical units.
    members
        Ensemble size (at least 2).
    seed
        Seed of the members' noise.
    batch_size
        Inputs per call of the sampler.

    Returns
    -------
    dict
        ``pairs``, ``members``, ``sampler``, ``ssr``, ``octaves`` (fundamental wavenumbers),
        ``ssr_by_octave`` (None where the mean has no error power), ``outside_fraction`` and the
        calibrated value ``expected_outside_fraction``.

    Examples
    --------
    >>> from xsfm.models.downscaling import build_downscaler
    >>> m = build_downscaler({"method": "sfm", "factor": 2,
    ...                       "unet": {"channels": 4, "channel_mult": [1]}})
    >>> g = torch.Generator().manual_seed(0)
    >>> out = calibration_check(m, torch.randn(4, 1, 8, 8, generator=g),
    ...                         torch.randn(4, 1, 16, 16, generator=g), members=3)
    >>> out["pairs"], out["members"], len(out["ssr_by_octave"])
    (4, 3, 3)
    """
    if not module.uses_flow_net:
        raise TypeError(
            f"method {module.method!r} is deterministic: there is no ensemble to calibrate"
        )
    members = int(members)
    if members < 2:
        raise ValueError(f"a calibration check needs at least 2 members, got {members}")
    n = coarse.shape[0]
    if n < 1 or fine.shape[0] != n:
        raise ValueError(
            f"need at least one held-out pair and as many fine as coarse fields, got {n} and "
            f"{fine.shape[0]}"
        )
    device = module.in_mean.device
    parts = []
    for i in range(0, n, batch_size):
        c = coarse[i : i + batch_size]
        gens = stream_generators(seed, range(i, i + c.shape[0]), members, device=device)
        parts.append(module.sample(c.to(device), gens, members=members).double().cpu())
    ens = parts[0] if len(parts) == 1 else torch.cat(parts)
    sampler = dict(module.config["sampler"])
    return {
        "pairs": int(n),
        "members": members,
        "sampler": {k: sampler[k] for k in ("solver", "steps", "rho") if k in sampler},
        **ensemble_calibration(ens, fine),
    }


def ensemble_calibration(ens: torch.Tensor, truth: torch.Tensor) -> dict[str, Any]:
    """Spread against error of ensembles ``[N, M, C, H, W]`` for truths ``[N, C, H, W]``.

    Returns ``ssr``, ``octaves``, ``ssr_by_octave``, ``outside_fraction`` and
    ``expected_outside_fraction`` (see :func:`calibration_check`).

    Examples
    --------
    >>> g = torch.Generator().manual_seed(0)
    >>> draws = torch.randn(64, 9, 1, 16, 16, generator=g)  # truth: one more member
    >>> out = ensemble_calibration(draws[:, 1:], draws[:, 0])
    >>> round(out["ssr"], 1), round(out["outside_fraction"], 2), round(out["expected_outside_fraction"], 2)
    (1.0, 0.22, 0.22)
    """
    ens, truth = ens.double().cpu(), truth.double().cpu()
    members = ens.shape[1]
    mean = ens.mean(dim=1)
    rmse = (mean - truth).pow(2).mean().sqrt()
    spread = ens.var(dim=1, unbiased=True).mean().sqrt() * math.sqrt((members + 1) / members)
    octaves, ratios = _octave_ratios(ens, truth)
    outside = ((truth < ens.amin(dim=1)) | (truth > ens.amax(dim=1))).double().mean()
    return {
        "ssr": float(spread / rmse) if float(rmse) > 0 else None,
        "octaves": octaves,
        "ssr_by_octave": ratios,
        "outside_fraction": float(outside),
        "expected_outside_fraction": 2 / (members + 1),
    }
