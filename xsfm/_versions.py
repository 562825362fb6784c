"""Versions of everything a bug report needs."""

from __future__ import annotations

import platform
import sys
from importlib.metadata import PackageNotFoundError, version

_PACKAGES = (
    "xsfm",
    "numpy",
    "xarray",
    "pint",
    "cf-xarray",
    "dask",
    "torch",
    "safetensors",
    "scoringrules",
    "cupy-cuda12x",
    "distributed",
    "netcdf4",
    "h5netcdf",
    "zarr",
    "matplotlib",
)


def versions() -> dict[str, str]:
    """Return ``{package: version}`` (``"not installed"`` where absent)."""
    out = {"python": sys.version.split()[0], "platform": platform.platform()}
    for name in _PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def show_versions() -> None:
    """Print :func:`versions`, one per line."""
    for name, ver in versions().items():
        print(f"{name:>14}: {ver}")
