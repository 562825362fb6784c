"""Simulators that return CF-annotated xarray datasets (Lorenz-63, 2-D Kolmogorov flow).

The simulators import torch, so they load on first use: ``import xsfm.datasets`` stays light.
:func:`lorenz63`, :func:`kolmogorov` and :func:`kolmogorov_pairs` are plain functions, looked up
lazily in the submodules named after their concepts:

* :mod:`xsfm.datasets.lorenz` -- Lorenz-63 with model noise (simulator, transition, operator);
* :mod:`xsfm.datasets.kolmogorov_solver` -- the pseudo-spectral solver (with
  :mod:`~xsfm.datasets.kolmogorov_diagnostics` and the grid helpers of
  :mod:`~xsfm.datasets.kolmogorov_grid`);
* :mod:`xsfm.datasets.kolmogorov_data` -- trajectories as Datasets;
* :mod:`xsfm.datasets.kolmogorov_misaligned` -- misaligned coarse/fine pairs;
* :mod:`xsfm.datasets.kolmogorov_lag_rmse` -- the input's error per lag.

``xsfm.datasets.lorenz63`` is also kept as a deprecated module alias of :mod:`xsfm.datasets.lorenz`
(``from xsfm.datasets.lorenz63 import lorenz63_transition`` still works); import from
:mod:`xsfm.datasets.lorenz` in new code.

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
    from xsfm.datasets.kolmogorov_data import kolmogorov
    from xsfm.datasets.kolmogorov_misaligned import kolmogorov_pairs
    from xsfm.datasets.lorenz import lorenz63

__all__ = ["kolmogorov", "kolmogorov_pairs", "lorenz63"]

_LAZY = {
    "kolmogorov": "xsfm.datasets.kolmogorov_data",
    "kolmogorov_pairs": "xsfm.datasets.kolmogorov_misaligned",
    "lorenz63": "xsfm.datasets.lorenz",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'xsfm.datasets' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])


def _lorenz_attribute(name: str) -> Any:
    return getattr(importlib.import_module("xsfm.datasets.lorenz"), name)


# The old module path ``xsfm.datasets.lorenz63`` (``from xsfm.datasets.lorenz63 import ...``),
# registered in sys.modules so that importing it never rebinds the package attribute ``lorenz63``
# (the function) to a module. It loads xsfm.datasets.lorenz on first attribute access.
_alias = types.ModuleType(f"{__name__}.lorenz63", "Deprecated alias of xsfm.datasets.lorenz.")
_alias.__getattr__ = _lorenz_attribute
sys.modules.setdefault(_alias.__name__, _alias)
del _alias
