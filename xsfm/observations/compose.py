"""Operators built from others or from functions (:class:`Compose`, :class:`CallableObservation`).

:func:`as_operator` turns an operator, its description or a plain callable into an operator.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from xsfm.observations.base import Observation, from_dict

__all__ = ["CallableObservation", "Compose", "as_operator"]


class Compose(Observation):
    """Apply operators in turn; the noise is the composite's ``noise_std``, not the parts'.

    Parameters
    ----------
    operators
        Operators (or their descriptions, or callables), applied first to last.
    noise_std, units
        Noise standard deviation and units of the composite's output; see
        :class:`~xsfm.observations.base.Observation`.

    Examples
    --------
    >>> from xsfm.observations import Elementwise, SparseMask
    >>> op = Compose([Elementwise("cube"), SparseMask((2, 2), fraction=0.5, seed=1)], noise_std=0.1)
    >>> op(torch.ones(3, 2, 2)).shape
    torch.Size([3, 2])
    """

    kind = "compose"

    def __init__(
        self,
        operators: Sequence[Observation],
        *,
        noise_std: float = 0.0,
        units: str | None = None,
    ) -> None:
        super().__init__(noise_std, units=units)
        self.operators = [as_operator(op) for op in operators]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        for op in self.operators:
            x = op(x)
        return x

    def _params(self) -> dict[str, Any]:
        return {"operators": [op.to_dict() for op in self.operators]}

    @classmethod
    def _from_params(cls, p: dict[str, Any]) -> Compose:
        return cls(
            [from_dict(d) for d in p["operators"]],
            noise_std=p.get("noise_std", 0.0),
            units=p.get("units"),
        )


class CallableObservation(Observation):
    """Wrap a user function ``x[..., *state] -> y[..., *obs]`` (differentiable, for guidance).

    Its :meth:`to_dict` records only a name: it cannot be rebuilt from attrs.

    Parameters
    ----------
    function
        The map ``x -> y``.
    noise_std, units
        Noise standard deviation and units of the output; see
        :class:`~xsfm.observations.base.Observation`.
    name
        Name recorded by :meth:`to_dict` (default: the function's qualified name).

    Examples
    --------
    >>> op = CallableObservation(lambda x: x.sum(-1, keepdim=True), noise_std=0.5, name="sum")
    >>> op(torch.ones(2, 3))
    tensor([[3.],
            [3.]])
    >>> op.to_dict()["kind"], op.to_dict()["name"]
    ('callable', 'sum')
    """

    kind = "callable"

    def __init__(
        self,
        function: Callable[[torch.Tensor], torch.Tensor],
        *,
        noise_std: float = 0.0,
        name: str | None = None,
        units: str | None = None,
    ) -> None:
        super().__init__(noise_std, units=units)
        if not callable(function):
            raise TypeError(f"observation function must be callable, got {type(function).__name__}")
        self.function = function
        self.name = name or getattr(function, "__qualname__", type(function).__name__)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return self.function(x)

    def _params(self) -> dict[str, Any]:
        return {"name": self.name}

    @classmethod
    def _from_params(cls, p: dict[str, Any]) -> CallableObservation:
        raise ValueError(
            f"observation operator {p.get('name')!r} is a user function and cannot be rebuilt from "
            f"its "
            "description; pass the function again (CallableObservation(fn, noise_std=...))"
        )


def as_operator(
    operator: Observation | dict[str, Any] | str | Callable[[torch.Tensor], torch.Tensor],
    noise_std: float | None = None,
) -> Observation:
    """Turn an operator, its dict/JSON description or a plain callable into an :class:`Observation`.

    ``noise_std``, when given, overrides the operator's noise (a copy is returned; the input is not
    modified). A description's ``units`` are kept.

    Examples
    --------
    >>> as_operator(torch.sin, noise_std=0.1).noise_std
    0.1
    >>> as_operator({"kind": "average_pool", "factor": 2}).factor
    2
    >>> as_operator({"kind": "average_pool", "factor": 2, "units": "K"}, noise_std=0.5).units
    'K'
    """
    if isinstance(operator, Observation):
        op = operator
    elif isinstance(operator, (dict, str)):
        op = from_dict(operator)
    elif callable(operator):
        op = CallableObservation(operator, noise_std=0.0 if noise_std is None else noise_std)
    else:
        raise TypeError(
            "an observation operator must be an xsfm.observations.Observation, its dict "
            f"description or a callable, got {type(operator).__name__}"
        )
    if noise_std is not None and float(noise_std) != op.noise_std:
        if isinstance(op, CallableObservation):
            op = CallableObservation(op.function, noise_std=noise_std, name=op.name, units=op.units)
        else:
            data = op.to_dict()
            data["noise_std"] = float(noise_std)
            op = from_dict(data)
    return op
