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
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np
import torch

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

_REGISTRY: dict[str, type[Observation]] = {}


class Observation:
    """Base class of observation operators.

    Subclasses implement :meth:`__call__` and :meth:`_params` (their JSON parameters) and set
    ``kind``.
    """

    kind: ClassVar[str] = ""

    def __init__(self, noise_std: float = 0.0) -> None:
        noise_std = float(noise_std)
        if not (noise_std >= 0 and math.isfinite(noise_std)):
            raise ValueError(f"observation noise_std must be a finite number >= 0, got {noise_std}")
        self.noise_std = noise_std

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
        """JSON-serialisable description (``kind``, parameters, ``noise_std``)."""
        return {"kind": self.kind, **self._params(), "noise_std": self.noise_std}

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
    noise_std
        Observation noise standard deviation :math:`\gamma`.

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
    ) -> None:
        super().__init__(noise_std)
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
        )


class SparseMask(Observation):
    """Observe a random fraction of the grid points of the last ``len(shape)`` axes (flattened).

    The points are chosen once, from ``seed``, with NumPy's PCG64 generator seeded by
    ``numpy.random.SeedSequence(seed)``; they are sorted in row-major order.

    Parameters
    ----------
    shape
        Grid shape, e.g. ``(64, 64)``.
    fraction
        Fraction of points observed, in ``(0, 1]`` (at least one point).
    seed
        Seed of the choice of points.
    noise_std
        Observation noise standard deviation.

    Examples
    --------
    >>> op = SparseMask((4, 4), fraction=0.25, seed=0)
    >>> op(torch.zeros(2, 3, 4, 4)).shape
    torch.Size([2, 3, 4])
    """

    kind = "sparse_mask"

    def __init__(
        self, shape: Sequence[int], fraction: float, seed: int = 0, *, noise_std: float = 0.0
    ) -> None:
        super().__init__(noise_std)
        self.shape = tuple(int(n) for n in shape)
        if not 0 < fraction <= 1:
            raise ValueError(f"sparse mask fraction must be in (0, 1], got {fraction}")
        self.fraction = float(fraction)
        self.seed = int(seed)
        size = math.prod(self.shape)
        n_obs = max(1, round(self.fraction * size))
        rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(self.seed)))
        self.indices = np.sort(rng.permutation(size)[:n_obs])

    @property
    def mask(self) -> torch.Tensor:
        """Boolean mask of the observed points, of ``shape``."""
        m = torch.zeros(math.prod(self.shape), dtype=torch.bool)
        m[torch.as_tensor(self.indices)] = True
        return m.reshape(self.shape)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        k = len(self.shape)
        if tuple(x.shape[-k:]) != self.shape:
            raise ValueError(
                f"sparse mask expects trailing axes {self.shape}, got a state of shape "
                f"{tuple(x.shape)}"
            )
        flat = x.reshape(*x.shape[:-k], -1)
        return flat[..., torch.as_tensor(self.indices, device=x.device)]

    def _params(self) -> dict[str, Any]:
        return {"shape": list(self.shape), "fraction": self.fraction, "seed": self.seed}

    @classmethod
    def _from_params(cls, p: dict[str, Any]) -> SparseMask:
        return cls(p["shape"], p["fraction"], p.get("seed", 0), noise_std=p.get("noise_std", 0.0))


class AveragePool(Observation):
    """Average pooling of the last two axes by ``factor`` (the super-resolution setting).

    Examples
    --------
    >>> AveragePool(2)(torch.arange(16.0).reshape(1, 4, 4))
    tensor([[[ 2.5000,  4.5000],
             [10.5000, 12.5000]]])
    """

    kind = "average_pool"

    def __init__(self, factor: int, *, noise_std: float = 0.0) -> None:
        super().__init__(noise_std)
        if int(factor) < 1:
            raise ValueError(f"average pooling factor must be >= 1, got {factor}")
        self.factor = int(factor)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        f = self.factor
        h, w = x.shape[-2:]
        if h % f or w % f:
            raise ValueError(
                f"average pooling by {f} needs the last two axes divisible by {f}, got {h} x {w}"
            )
        v = x.reshape(*x.shape[:-2], h // f, f, w // f, f)
        return v.mean(dim=(-3, -1))

    def _params(self) -> dict[str, Any]:
        return {"factor": self.factor}

    @classmethod
    def _from_params(cls, p: dict[str, Any]) -> AveragePool:
        return cls(p["factor"], noise_std=p.get("noise_std", 0.0))


class PointObservations(Observation):
    """Values at points of the grid of the last two axes, by bilinear interpolation.

    Parameters
    ----------
    points
        ``[[row, col], ...]`` positions in (fractional) grid index units, or in coordinate units
        when ``y`` and ``x`` (the grid's 1-D, monotonic coordinates) are given.
    y, x
        Optional grid coordinates of the rows and columns.
    noise_std
        Observation noise standard deviation.

    Examples
    --------
    >>> grid = torch.arange(9.0).reshape(3, 3)
    >>> PointObservations([[0.5, 0.5], [2, 1]])(grid)
    tensor([2., 7.])
    >>> PointObservations([[15.0, 0.0]], y=[10.0, 20.0, 30.0], x=[0.0, 1.0, 2.0])(grid)
    tensor([1.5000])
    """

    kind = "points"

    def __init__(
        self,
        points: Sequence[Sequence[float]],
        *,
        y: Sequence[float] | None = None,
        x: Sequence[float] | None = None,
        noise_std: float = 0.0,
    ) -> None:
        super().__init__(noise_std)
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        self.points = pts.tolist()
        self.y = None if y is None else [float(v) for v in y]
        self.x = None if x is None else [float(v) for v in x]
        rows, cols = pts[:, 0], pts[:, 1]
        if self.y is not None:
            rows = _fractional_index(np.asarray(self.y), rows, "y")
        if self.x is not None:
            cols = _fractional_index(np.asarray(self.x), cols, "x")
        self._rows, self._cols = rows, cols

    def __call__(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        h, w = x.shape[-2:]
        rows = np.clip(self._rows, 0, h - 1)
        cols = np.clip(self._cols, 0, w - 1)
        if np.any(rows != self._rows) or np.any(cols != self._cols):
            raise ValueError(f"observation points lie outside the {h} x {w} grid")
        r0 = np.clip(np.floor(rows).astype(np.int64), 0, max(h - 2, 0))
        c0 = np.clip(np.floor(cols).astype(np.int64), 0, max(w - 2, 0))
        r1, c1 = np.minimum(r0 + 1, h - 1), np.minimum(c0 + 1, w - 1)
        fr = torch.as_tensor(rows - r0, dtype=x.dtype, device=x.device)
        fc = torch.as_tensor(cols - c0, dtype=x.dtype, device=x.device)
        flat = x.reshape(*x.shape[:-2], h * w)

        def at(r: np.ndarray, c: np.ndarray) -> torch.Tensor:
            return flat[..., torch.as_tensor(r * w + c, device=x.device)]

        return (
            at(r0, c0) * (1 - fr) * (1 - fc)
            + at(r0, c1) * (1 - fr) * fc
            + at(r1, c0) * fr * (1 - fc)
            + at(r1, c1) * fr * fc
        )

    def _params(self) -> dict[str, Any]:
        return {"points": self.points, "y": self.y, "x": self.x}

    @classmethod
    def _from_params(cls, p: dict[str, Any]) -> PointObservations:
        return cls(p["points"], y=p.get("y"), x=p.get("x"), noise_std=p.get("noise_std", 0.0))


def _fractional_index(coord: np.ndarray, values: np.ndarray, name: str) -> np.ndarray:
    """Fractional index of ``values`` on the monotonic coordinate ``coord``."""
    if coord.size < 2:
        return np.zeros_like(values)
    if coord[0] > coord[-1]:
        coord, flip = coord[::-1], True
    else:
        flip = False
    if np.any(np.diff(coord) <= 0):
        raise ValueError(f"coordinate {name!r} of the observation grid must be strictly monotonic")
    if np.any(values < coord[0]) or np.any(values > coord[-1]):
        raise ValueError(
            f"observation points lie outside the grid's {name!r} range [{coord[0]}, {coord[-1]}]"
        )
    index = np.interp(values, coord, np.arange(coord.size, dtype=np.float64))
    return coord.size - 1 - index if flip else index


class Compose(Observation):
    """Apply operators in turn; the noise is the composite's ``noise_std``, not the parts'.

    Examples
    --------
    >>> op = Compose([Elementwise("cube"), SparseMask((2, 2), fraction=0.5, seed=1)], noise_std=0.1)
    >>> op(torch.ones(3, 2, 2)).shape
    torch.Size([3, 2])
    """

    kind = "compose"

    def __init__(self, operators: Sequence[Observation], *, noise_std: float = 0.0) -> None:
        super().__init__(noise_std)
        self.operators = [as_operator(op) for op in operators]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        for op in self.operators:
            x = op(x)
        return x

    def _params(self) -> dict[str, Any]:
        return {"operators": [op.to_dict() for op in self.operators]}

    @classmethod
    def _from_params(cls, p: dict[str, Any]) -> Compose:
        return cls([from_dict(d) for d in p["operators"]], noise_std=p.get("noise_std", 0.0))


class CallableObservation(Observation):
    """Wrap a user function ``x[..., *state] -> y[..., *obs]`` (differentiable, for guidance).

    Its :meth:`to_dict` records only a name: it cannot be rebuilt from attrs.

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
    ) -> None:
        super().__init__(noise_std)
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
    modified).

    Examples
    --------
    >>> as_operator(torch.sin, noise_std=0.1).noise_std
    0.1
    >>> as_operator({"kind": "average_pool", "factor": 2}).factor
    2
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
            op = CallableObservation(op.function, noise_std=noise_std, name=op.name)
        else:
            data = op.to_dict()
            data["noise_std"] = float(noise_std)
            op = from_dict(data)
    return op
