"""Elementwise operators: a function of chosen components, optionally of their standardised value."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from xsfm.observations.base import Observation

__all__ = ["Elementwise"]

_FUNCTIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "identity": lambda v: v,
    "arctan": torch.atan,
    "cube": lambda v: v**3,
}


class Elementwise(Observation):
    r"""Elementwise map of chosen components: ``y = f((x[components] - loc) / scale)``.

    Parameters
    ----------
    function
        ``"identity"``, ``"arctan"`` or ``"cube"``.
    components
        ``None`` (all), an int (that component; the axis is dropped) or a list of ints (kept as an
        axis).
    axis
        Axis of the components, counted from the end for a negative value (``-1`` for vector states,
        ``-3`` for ``[channel, y, x]`` fields).
    loc, scale
        Standardisation applied before ``function`` (floats, or one value per selected component).
    noise_std, units
        Noise standard deviation :math:`\gamma` and units of the output; see
        :class:`~xsfm.observations.base.Observation`.

    Examples
    --------
    The Lorenz-63 observation of FlowDAS, arctan of the standardised first component:

    >>> op = Elementwise("arctan", components=0, scale=8.0, noise_std=0.25)
    >>> op(torch.tensor([[8.0, 1.0, 25.0]]))
    tensor([0.7854])
    >>> Elementwise("cube", components=[0, 2])(torch.tensor([2.0, 5.0, -1.0]))
    tensor([ 8., -1.])
    """

    kind = "elementwise"

    def __init__(
        self,
        function: str = "identity",
        components: int | Sequence[int] | None = None,
        *,
        axis: int = -1,
        loc: float | Sequence[float] = 0.0,
        scale: float | Sequence[float] = 1.0,
        noise_std: float = 0.0,
        units: str | None = None,
    ) -> None:
        super().__init__(noise_std, units=units)
        if function not in _FUNCTIONS:
            raise ValueError(
                f"elementwise function must be one of {sorted(_FUNCTIONS)}, got {function!r}; "
                "wrap other maps in CallableObservation"
            )
        self.function = function
        if components is None or isinstance(components, int):
            self.components: int | list[int] | None = components
        else:
            self.components = [int(c) for c in components]
        self.axis = int(axis)
        self.loc = loc if isinstance(loc, (int, float)) else [float(v) for v in loc]
        self.scale = scale if isinstance(scale, (int, float)) else [float(v) for v in scale]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        axis: int | None = self.axis if self.axis < 0 else self.axis - x.ndim
        if self.components is None:
            v = x
        elif isinstance(self.components, int):
            v = x.select(axis, self.components)
            axis = None
        else:
            index = torch.as_tensor(self.components, device=x.device)
            v = x.index_select(axis, index)
        loc = torch.as_tensor(self.loc, dtype=x.dtype, device=x.device)
        scale = torch.as_tensor(self.scale, dtype=x.dtype, device=x.device)
        if axis is not None:  # per-component statistics along the component axis
            trailing = [1] * (-axis - 1)
            loc = loc.reshape(-1, *trailing) if loc.ndim else loc
            scale = scale.reshape(-1, *trailing) if scale.ndim else scale
        return _FUNCTIONS[self.function]((v - loc) / scale)

    def _params(self) -> dict[str, Any]:
        return {
            "function": self.function,
            "components": self.components,
            "axis": self.axis,
            "loc": self.loc,
            "scale": self.scale,
        }

    @classmethod
    def _from_params(cls, p: dict[str, Any]) -> Elementwise:
        return cls(
            p.get("function", "identity"),
            p.get("components"),
            axis=p.get("axis", -1),
            loc=p.get("loc", 0.0),
            scale=p.get("scale", 1.0),
            noise_std=p.get("noise_std", 0.0),
            units=p.get("units"),
        )
