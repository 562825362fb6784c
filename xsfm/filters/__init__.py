"""Classical filters to compare FlowDAS with: particle filters and ensemble Kalman filters.

All are batched over trajectories (``B``) and members or particles in one tensor, take a user-given
stochastic transition ``transition(x [B, P, *state], noise [B, P, *state]) -> [B, P, *state]``
(``noise`` is standard normal; for Lorenz-63 :func:`xsfm.datasets.lorenz63_transition`, for
Lorenz-96 :func:`xsfm.datasets.lorenz96_transition`) and an observation operator
(:mod:`xsfm.observations`, or any callable ``x[..., *state] -> y[..., *obs]``) with Gaussian noise.
Missing observations (NaN) do not update.

* :func:`bootstrap_particle_filter` (:mod:`xsfm.filters.particle`): bootstrap, optionally
  regularised and resampling only on a low effective sample size;
* :func:`ensemble_kalman_filter` (:mod:`xsfm.filters.kalman`): stochastic EnKF with centred
  perturbed observations, or ETKF (``kind="etkf"``); inflation; localisation
  (:mod:`xsfm.filters.localisation`, LETKF for the ETKF).
"""

from __future__ import annotations

from xsfm.filters.common import FilterResult
from xsfm.filters.kalman import ensemble_kalman_filter
from xsfm.filters.localisation import gaspari_cohn
from xsfm.filters.particle import bootstrap_particle_filter

__all__ = [
    "FilterResult",
    "bootstrap_particle_filter",
    "ensemble_kalman_filter",
    "gaspari_cohn",
]
