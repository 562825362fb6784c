"""Simulators that return CF-annotated xarray datasets (Lorenz-63, 2-D Kolmogorov flow).

The simulators import torch, so they load on first use: ``import xsfm.datasets`` stays light.
:func:`lorenz63`, :func:`kolmogorov` and :func:`kolmogorov_pairs` are plain functions, looked up
lazily in the submodules named after their concepts:

* :mod:`xsfm.datasets.lorenz` -- Lorenz-63 with model noise (simulator, transition, operator);
* :mod:`xsfm.datasets.lorenz_96` -- the Lorenz-96 ring (simulator, transition);
* :mod:`xsfm.datasets.kolmogorov_solver` -- the pseudo-spectral solver (with
  :mod:`~xsfm.datasets.kolmogorov_diagnostics` and the grid helpers of
  :mod:`~xsfm.datasets.kolmogorov_grid`);
* :mod:`xsfm.datasets.kolmogorov_data` -- trajectories as Datasets;
* :mod:`xsfm.datasets.kolmogorov_misaligned` -- misaligned coarse/fine pairs;
* :mod:`xsfm.datasets.kolmogorov_lag_rmse` -- the input's error per lag.

The Lorenz-63 transition and observation operator used by the classical filters and FlowDAS are
here too: ``xsfm.datasets.lorenz63_transition()``, ``xsfm.datasets.lorenz63_operator(0.25)``.

Examples
--------
>>> import xsfm.datasets
>>> callable(xsfm.datasets.kolmogorov)
True
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from xsfm.datasets.kolmogorov_data import kolmogorov
    from xsfm.datasets.kolmogorov_misaligned import kolmogorov_pairs
    from xsfm.datasets.lorenz import lorenz63, lorenz63_operator, lorenz63_transition
    from xsfm.datasets.lorenz_96 import lorenz96, lorenz96_transition

__all__ = [
    "kolmogorov",
    "kolmogorov_pairs",
    "lorenz63",
    "lorenz63_operator",
    "lorenz63_transition",
    "lorenz96",
    "lorenz96_transition",
]

_LAZY = {
    "kolmogorov": "xsfm.datasets.kolmogorov_data",
    "kolmogorov_pairs": "xsfm.datasets.kolmogorov_misaligned",
    "lorenz63": "xsfm.datasets.lorenz",
    "lorenz63_operator": "xsfm.datasets.lorenz",
    "lorenz63_transition": "xsfm.datasets.lorenz",
    "lorenz96": "xsfm.datasets.lorenz_96",
    "lorenz96_transition": "xsfm.datasets.lorenz_96",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'xsfm.datasets' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
