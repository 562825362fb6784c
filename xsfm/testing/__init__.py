"""Testing helpers for xsfm and for code built on it: hypothesis strategies and assertions.

Strategies (they need hypothesis, imported only when a strategy is built):

* :func:`cf_dataarrays` -- CF-annotated DataArrays on projection x/y, 1-D or 2-D
  latitude/longitude grids, with ``units``, ``standard_name``, ``long_name`` and optional
  pass-through dims (time, ...);
* :func:`cf_datasets` -- several such variables on one grid.

Both are built on :mod:`xarray.testing.strategies` (``dimension_sizes`` for the pass-through dims,
``variables`` for the data, ``attrs`` for optional extra attributes).

Assertions: :func:`assert_units_equal`, :func:`assert_cf_attrs`, :func:`assert_unchanged` and the
context manager :func:`unchanged`.

Examples
--------
>>> import numpy as np, xarray as xr
>>> da = xr.DataArray(np.zeros(2), dims="x", attrs={"units": "m/s"})
>>> assert_units_equal(da, "m s-1")
>>> with unchanged(da):
...     _ = da + 1
"""

from __future__ import annotations

from xsfm.testing.assertions import (
    assert_cf_attrs,
    assert_unchanged,
    assert_units_equal,
    unchanged,
)
from xsfm.testing.strategies import CF_VARIABLES, cf_dataarrays, cf_datasets

__all__ = [
    "CF_VARIABLES",
    "assert_cf_attrs",
    "assert_unchanged",
    "assert_units_equal",
    "cf_dataarrays",
    "cf_datasets",
    "unchanged",
]
