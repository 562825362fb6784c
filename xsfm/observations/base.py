r"""The observation-operator base class, the registry of kinds and :func:`from_dict`.

An operator applies :math:`A` in ``op(x)``, holds the noise :math:`\gamma` as ``op.noise_std``,
draws noisy observations with ``op.sample(x, generators)`` and describes itself with
``op.to_dict()``; every subclass with a ``kind`` registers itself, so :func:`from_dict` rebuilds it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch

__all__ = ["Observation", "from_dict"]

_REGISTRY: dict[str, type[Observation]] = {}


class Observation:
    r"""Base class of observation operators.

    Subclasses implement :meth:`__call__` and :meth:`_params` (their JSON parameters) and set
    ``kind``.

    Parameters
    ----------
    noise_std
        Observation noise standard deviation :math:`\gamma`.
    units
        UDUNITS units of the operator's output (e.g. ``"1"`` for the arctan of a normalised
        component, the state's units for an identity or a selection), or ``None`` (not stated).
        Written by :meth:`to_dict` only when given.

    Examples
    --------
    >>> from xsfm.observations import Elementwise
    >>> op = Elementwise("arctan", components=0, scale=8.0, noise_std=0.25, units="1")
    >>> op.units, op.to_dict()["units"], from_dict(op.to_json()) == op
    ('1', '1', True)
    >>> "units" in Elementwise("arctan").to_dict()
    False
    """

    kind: ClassVar[str] = ""

    def __init__(self, noise_std: float = 0.0, *, units: str | None = None) -> None:
        noise_std = float(noise_std)
        if not (noise_std >= 0 and math.isfinite(noise_std)):
            raise ValueError(f"observation noise_std must be a finite number >= 0, got {noise_std}")
        if units is not None and not isinstance(units, str):
            raise TypeError(
                f"observation units must be a UDUNITS string (e.g. '1', 'm s-1') or None, got "
                f"{type(units).__name__}"
            )
        self.noise_std = noise_std
        self.units = units

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.kind:
            _REGISTRY[cls.kind] = cls

    def __call__(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        """Apply the operator to states ``x[..., *state]``."""
        raise NotImplementedError

    def _params(self) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    def output_shape(self, state_shape: Sequence[int]) -> tuple[int, ...]:
        """Shape of one observation for one state of ``state_shape``."""
        with torch.no_grad():
            return tuple(self(torch.zeros(1, *state_shape)).shape[1:])

    def positions(self, state_shape: Sequence[int]) -> np.ndarray | None:
        """Grid-index positions ``[m, D]`` of the observed elements, for localisation.

        ``None`` when the operator does not say (an EnKF then needs ``obs_positions``, unless
        the observations have the state's shape). Gridded operators give the place each
        observation describes (a block's centre, a point's fractional index).
        """
        return None

    def sample(self, x: torch.Tensor, generators: Sequence[torch.Generator]) -> torch.Tensor:
        """Noisy observations ``A(x) + noise_std * eta``, one generator per row of ``x``.

        Parameters
        ----------
        x
            States ``[B, ..., *state]``.
        generators
            ``B`` generators (see :mod:`xsfm.sampling.rng`).
        """
        y = self(x)
        if self.noise_std == 0:
            return y
        if len(generators) != y.shape[0]:
            raise ValueError(
                f"{len(generators)} generators for {y.shape[0]} rows; give one per row"
            )
        eta = torch.stack(
            [
                torch.randn(tuple(y.shape[1:]), generator=g, dtype=y.dtype, device=g.device)
                for g in generators
            ]
        ).to(y.device)
        return y + self.noise_std * eta

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable description (``kind``, parameters, ``noise_std``, ``units`` if set)."""
        data = {"kind": self.kind, **self._params(), "noise_std": self.noise_std}
        if self.units is not None:
            data["units"] = self.units
        return data

    def to_json(self) -> str:
        """The description as JSON text (for netCDF attrs)."""
        return json.dumps(self.to_dict())

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.to_dict().items() if k != "kind")
        return f"{type(self).__name__}({params})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Observation) and self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]


def from_dict(data: dict[str, Any] | str) -> Observation:
    """Rebuild an operator from :meth:`Observation.to_dict` output (or its JSON text).

    Examples
    --------
    >>> from xsfm.observations import Elementwise
    >>> op = Elementwise("arctan", components=0, scale=8.0, noise_std=0.25)
    >>> from_dict(op.to_json()) == op
    True
    """
    if isinstance(data, str):
        data = json.loads(data)
    data = dict(data)
    kind = data.pop("kind", None)
    if kind not in _REGISTRY:
        raise ValueError(
            f"unknown observation operator kind {kind!r}; known kinds are {sorted(_REGISTRY)}"
        )
    return _REGISTRY[kind]._from_params(data)
