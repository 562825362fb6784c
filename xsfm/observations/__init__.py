r"""Observation operators :math:`y = A(x) + \gamma \eta` for data assimilation.

Each operator is a small object: ``op(x)`` applies :math:`A` to states with any leading dimensions
(``x[..., *state]`` -> ``y[..., *obs]``), differentiably (guidance back-propagates through it);
``op.noise_std`` is :math:`\gamma`; ``op.sample(x, generators)`` adds noise drawn from per-stream
generators; ``op.to_dict()`` / :func:`from_dict` round-trip through JSON so the operator can be
recorded in attrs.

Operators (FlowDAS's experiments):

* :class:`Elementwise`: ``identity``, ``arctan`` or ``cube`` of chosen components, optionally of the
  standardised value ``(x - loc) / scale`` (Lorenz-63 observes ``arctan(x / 8)``);
* :class:`SparseMask`: a random fraction of grid points (seeded), flattened;
* :class:`AveragePool`: super-resolution setting, average pooling of the last two axes by a factor;
* :class:`PointObservations`: values at given (fractional) grid positions, bilinear interpolation;
* :class:`Compose`: operators applied in turn (e.g. a mask after a nonlinearity);
* :class:`CallableObservation`: any user function ``x -> y``.

The operators live in submodules named after their concept (:mod:`~xsfm.observations.base`,
:mod:`~xsfm.observations.elementwise`, :mod:`~xsfm.observations.grid`,
:mod:`~xsfm.observations.compose`); import them from here.
"""

from __future__ import annotations

from xsfm.observations.base import Observation, from_dict
from xsfm.observations.compose import CallableObservation, Compose, as_operator
from xsfm.observations.elementwise import Elementwise
from xsfm.observations.grid import AveragePool, PointObservations, SparseMask

__all__ = [
    "AveragePool",
    "CallableObservation",
    "Compose",
    "Elementwise",
    "Observation",
    "PointObservations",
    "SparseMask",
    "as_operator",
    "from_dict",
]
