"""Figures of ensembles held in xarray objects (matplotlib, imported lazily; ``xsfm[plot]``).

Every function takes DataArrays (or Datasets with ``variable=``), draws on the objects' own
coordinates with axis labels from their ``long_name``/``standard_name`` and ``units``, accepts an
``ax`` (or ``fig``) to draw into, returns the matplotlib Axes (Figure for the multi-panel
:func:`ensemble_panels`) and names the missing dimension or variable when an input lacks one.

* :func:`ensemble_panels`: coarse | truth | members | spread maps for one time or sample;
* :func:`spectra`: radially averaged power spectra up to the Nyquist wavenumber;
* :func:`rank_histogram`: Talagrand diagram with the flat reference;
* :func:`spread_skill`: spread against RMSE by spatial scale or lead time, with the 1:1 line;
* :func:`assimilation_series`: truth, observations and the ensemble's mean and band over time.

Figures are created with ``matplotlib.pyplot`` (so they show in notebooks); the backend is left to
matplotlib (set ``MPLBACKEND=Agg`` to draw without a display).
"""

from __future__ import annotations

from xsfm.plot._calibration import rank_histogram, spread_skill
from xsfm.plot._fields import downscaling_panel, ensemble_panels
from xsfm.plot._series import assimilation_series
from xsfm.plot._spectral import spectra

__all__ = [
    "assimilation_series",
    "downscaling_panel",
    "ensemble_panels",
    "rank_histogram",
    "spectra",
    "spread_skill",
]
