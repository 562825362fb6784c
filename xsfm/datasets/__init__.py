"""Simulators that return CF-annotated xarray datasets (Lorenz-63, 2-D Kolmogorov flow).

The simulators import torch, so they load on first use: ``import xsfm.datasets`` stays light.

``kolmogorov`` and ``lorenz63`` share their names with their submodules. Once a submodule is
imported, Python binds the package attribute to it, so the submodules are made callable: both
``xsfm.datasets.kolmogorov(...)`` and ``import xsfm.datasets.kolmogorov as km`` work.

Examples
--------
>>> import xsfm.datasets
>>> callable(xsfm.datasets.kolmogorov)
True
"""

from __future__ import annotations

import importlib
import inspect
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
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'xsfm.datasets' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])


class _SimulatorModule(types.ModuleType):
    """A submodule that, called, runs its same-named simulator function."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return getattr(self, self.__name__.rpartition(".")[2])(*args, **kwargs)


class _DatasetsModule(types.ModuleType):
    """Makes a submodule callable when the import system binds it under a simulator's name."""

    def __setattr__(self, name: str, value: Any) -> None:
        if (
            isinstance(value, types.ModuleType)
            and _LAZY.get(name) == value.__name__
            and type(value) is types.ModuleType
        ):
            value.__class__ = _SimulatorModule
            function = getattr(value, name, None)
            if callable(function):
                value.__signature__ = inspect.signature(function)  # type: ignore[attr-defined]
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _DatasetsModule
