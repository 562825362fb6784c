"""Figures for downscaled ensembles (matplotlib, imported lazily; install ``xsfm[plot]``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

__all__ = ["downscaling_panel"]


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("plotting needs matplotlib: pip install 'xsfm[plot]'") from err
    return plt


def downscaling_panel(
    coarse: xr.DataArray,
    ensemble: xr.DataArray,
    truth: xr.DataArray | None = None,
    *,
    path: str | Path | None = None,
    spectra: dict[str, xr.DataArray] | None = None,
    members_shown: int = 3,
    title: str | None = None,
) -> Any:
    """Coarse | truth | a few members | ensemble std | spectra, for one sample.

    Parameters
    ----------
    coarse, truth
        2-D fields ``(y, x)`` (truth optional).
    ensemble
        ``(member, y, x)``.
    spectra
        ``{label: 1-D spectrum DataArray with dim "wavenumber"}`` drawn log-log in the last panel.
    members_shown
        Number of ensemble members drawn.
    title
        Figure title.
    path
        Where to save the PNG (the figure is returned either way).
    """
    plt = _pyplot()
    shown = [ensemble.isel(member=k) for k in range(min(members_shown, ensemble.sizes["member"]))]
    panels: list[tuple[str, xr.DataArray, str]] = [("coarse input", coarse, "field")]
    if truth is not None:
        panels.append(("truth", truth, "field"))
    panels += [(f"member {k}", da, "field") for k, da in enumerate(shown)]
    panels.append(("ensemble std", ensemble.std("member"), "std"))
    ncols = len(panels) + (1 if spectra else 0)
    fig, axes = plt.subplots(1, ncols, figsize=(2.6 * ncols, 2.9), constrained_layout=True)
    ref = truth if truth is not None else shown[0]
    vmin, vmax = np.nanpercentile(np.asarray(ref), [1, 99])
    for ax, (label, da, kind) in zip(axes, panels, strict=False):
        values = np.asarray(da)
        if kind == "field":
            im = ax.imshow(values, origin="lower", cmap="RdBu_r", vmin=vmin, vmax=vmax)
        else:
            im = ax.imshow(values, origin="lower", cmap="viridis")
        ax.set_title(label, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        fig.colorbar(im, ax=ax, shrink=0.7)
    if spectra:
        ax = axes[-1]
        for label, spec in spectra.items():
            k = np.asarray(spec["wavenumber"])
            ok = k > 0
            ax.loglog(k[ok], np.asarray(spec)[ok], label=label)
        ax.set_xlabel("wavenumber", fontsize=8)
        ax.set_title("power spectra", fontsize=9)
        ax.legend(fontsize=7)
    units = ensemble.attrs.get("units", "")
    name = ensemble.attrs.get("long_name", ensemble.name or "")
    fig.suptitle(title or f"{name} [{units}]", fontsize=10)
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig
