"""Simulators that return CF-annotated xarray datasets (Lorenz-63, 2-D Kolmogorov flow).

The simulators import torch, so they load on first use: ``import xsfm.datasets`` stays light.
``xsfm.datasets.kolmogorov`` and ``xsfm.datasets.lorenz63`` are always the *functions*, even after
their submodules were imported (``from xsfm.datasets.kolmogorov import KolmogorovSolver`` reaches
the rest).

Examples
--------
>>> import xsfm.datasets
>>> callable(xsfm.datasets.kolmogorov)
True
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from xsfm.datasets.kolmogorov import kolmogorov, kolmogorov_pairs
    from xsfm.datasets.lorenz63 import lorenz63

__all__ = ["kolmogorov", "kolmogorov_pairs", "lorenz63"]

_LAZY = {
    "kolmogorov": "xsfm.datasets.kolmogorov",
    "kolmogorov_pairs": "xsfm.datasets.kolmogorov",
    "lorenz63": "xsfm.datasets.lorenz63",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'xsfm.datasets' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])


class _DatasetsModule(types.ModuleType):
    """Keeps the simulator functions visible when the import system binds a same-named submodule."""

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, types.ModuleType) and _LAZY.get(name) == value.__name__:
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _DatasetsModule
