from __future__ import annotations

import json
import math

import pytest
import torch

from xsfm.observations import (
    AveragePool,
    CallableObservation,
    Compose,
    Elementwise,
    PointObservations,
    SparseMask,
    as_operator,
    from_dict,
)
from xsfm.sampling.rng import stream_generators


def _x(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_elementwise_functions_and_components():
    x = _x(5, 3)
    torch.testing.assert_close(Elementwise("identity")(x), x)
    torch.testing.assert_close(Elementwise("arctan", components=1)(x), torch.atan(x[:, 1]))
    torch.testing.assert_close(Elementwise("cube", components=[0, 2])(x), x[:, [0, 2]] ** 3)
    # standardisation before the map (Lorenz-63: arctan of x / 8)
    op = Elementwise("arctan", components=0, loc=0.0, scale=8.0)
    torch.testing.assert_close(op(x * 8), torch.atan(x[:, 0]))
    # per-component loc/scale on a field's channel axis
    field = _x(2, 3, 4, 4)
    op = Elementwise("identity", components=[0, 2], axis=-3, loc=[1.0, 2.0], scale=[2.0, 4.0])
    out = op(field)
    assert out.shape == (2, 2, 4, 4)
    torch.testing.assert_close(out[:, 1], (field[:, 2] - 2.0) / 4.0)
    with pytest.raises(ValueError, match="function"):
        Elementwise("exp")


def test_shapes_with_leading_dims():
    x = _x(7, 4, 8, 8)  # batch, draws?, y, x
    assert SparseMask((8, 8), 0.25, seed=1)(x).shape == (7, 4, 16)
    assert AveragePool(4)(x).shape == (7, 4, 2, 2)
    assert PointObservations([[1, 2], [3.5, 4.5], [7, 7]])(x).shape == (7, 4, 3)
    assert Elementwise("cube")(x).shape == x.shape
    assert SparseMask((8, 8), 0.1).output_shape((3, 8, 8)) == (3, 6)


def test_sparse_mask_is_seeded_and_consistent():
    a, b, c = (
        SparseMask((16, 16), 0.1, seed=3),
        SparseMask((16, 16), 0.1, seed=3),
        SparseMask((16, 16), 0.1, seed=4),
    )
    assert (a.indices == b.indices).all()
    assert not (a.indices == c.indices).all()
    assert int(a.mask.sum()) == round(0.1 * 256)
    x = _x(2, 16, 16)
    torch.testing.assert_close(a(x), x[:, a.mask])
    with pytest.raises(ValueError, match="trailing axes"):
        a(_x(2, 8, 8))
    with pytest.raises(ValueError, match="fraction"):
        SparseMask((4, 4), 0.0)


def test_average_pool_values():
    x = torch.arange(16.0).reshape(1, 4, 4)
    torch.testing.assert_close(AveragePool(2)(x), torch.tensor([[[2.5, 4.5], [10.5, 12.5]]]))
    torch.testing.assert_close(AveragePool(4)(x), torch.tensor([[[7.5]]]))
    with pytest.raises(ValueError, match="divisible"):
        AveragePool(3)(x)


def test_point_observations_bilinear_exact_on_linear_field():
    rows, cols = torch.meshgrid(torch.arange(6.0), torch.arange(5.0), indexing="ij")
    field = 2.0 * rows - 3.0 * cols + 1.0
    pts = [[0.0, 0.0], [2.5, 1.25], [5.0, 4.0], [4.75, 0.5]]
    out = PointObservations(pts)(field)
    expected = torch.tensor([2 * r - 3 * c + 1 for r, c in pts])
    torch.testing.assert_close(out, expected)
    # coordinates in physical units (descending y, as for latitudes)
    y = [50.0, 40.0, 30.0, 20.0, 10.0, 0.0]
    xcoord = [0.0, 100.0, 200.0, 300.0, 400.0]
    op = PointObservations([[35.0, 150.0]], y=y, x=xcoord)
    torch.testing.assert_close(op(field), torch.tensor([2 * 1.5 - 3 * 1.5 + 1]))
    with pytest.raises(ValueError, match="outside"):
        PointObservations([[60.0, 0.0]], y=y, x=xcoord)
    with pytest.raises(ValueError, match="outside"):
        PointObservations([[9.0, 0.0]])(field)


def test_noise_has_the_stated_std():
    op = Elementwise("arctan", components=0, scale=8.0, noise_std=0.25)
    n = 4000
    x = _x(n, 3).float()
    y = op.sample(x, stream_generators(0, range(n), 1))
    residual = y - op(x)
    assert float(residual.std()) == pytest.approx(0.25, rel=0.05)
    assert abs(float(residual.mean())) < 4 * 0.25 / math.sqrt(n)
    # one generator per row: row i does not depend on the other rows
    y3 = op.sample(x[[3]], stream_generators(0, [3], 1))
    torch.testing.assert_close(y3, y[[3]])
    assert torch.equal(Elementwise().sample(x, []), x)  # no noise, no generators needed


def test_dict_round_trip_all_kinds():
    ops = [
        Elementwise("arctan", components=0, scale=8.0, noise_std=0.25),
        Elementwise("cube", components=[0, 2], axis=-3, loc=[1.0, 0.0], noise_std=0.1),
        SparseMask((8, 8), 0.3, seed=5, noise_std=0.05),
        AveragePool(4, noise_std=0.2),
        PointObservations([[1.0, 2.0]], y=[0.0, 1.0, 2.0], x=[0.0, 1.0, 2.0, 3.0], noise_std=1.0),
        Compose([Elementwise("arctan"), AveragePool(2)], noise_std=0.3),
    ]
    x = _x(2, 3, 8, 8)
    for op in ops:
        text = json.dumps(op.to_dict())
        back = from_dict(json.loads(text))
        assert back == op
        assert back.noise_std == op.noise_std
        torch.testing.assert_close(back(x), op(x))
    with pytest.raises(ValueError, match="unknown observation operator kind"):
        from_dict({"kind": "radar"})


def test_callable_and_as_operator():
    fn = lambda x: x.sum(-1, keepdim=True)  # noqa: E731
    op = as_operator(fn, noise_std=0.5)
    assert isinstance(op, CallableObservation)
    assert op.noise_std == 0.5
    torch.testing.assert_close(op(torch.ones(2, 3)), torch.full((2, 1), 3.0))
    assert op.to_dict()["kind"] == "callable"
    with pytest.raises(ValueError, match="user function"):
        from_dict(op.to_dict())
    base = Elementwise("arctan", noise_std=0.25)
    changed = as_operator(base, noise_std=0.5)
    assert changed.noise_std == 0.5
    assert base.noise_std == 0.25  # input not modified
    assert as_operator(base) is base
    assert as_operator(base.to_json()) == base
    with pytest.raises(TypeError, match="observation operator"):
        as_operator(3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="noise_std"):
        Elementwise(noise_std=-1.0)


def test_operators_are_differentiable():
    x = _x(3, 8, 8).requires_grad_(True)
    for op in (
        SparseMask((8, 8), 0.2),
        AveragePool(2),
        PointObservations([[2.3, 4.1]]),
        Elementwise("cube"),
    ):
        (grad,) = torch.autograd.grad(op(x).sum(), x)
        assert torch.isfinite(grad).all()
        assert grad.abs().sum() > 0


# ---------------------------------------------------------------------------------- output units
def _operators_with_units(units):
    return [
        Elementwise("arctan", components=0, scale=8.0, noise_std=0.25, units=units),
        SparseMask((8, 8), 0.3, seed=5, noise_std=0.05, units=units),
        AveragePool(4, noise_std=0.2, units=units),
        PointObservations([[1.0, 2.0]], noise_std=1.0, units=units),
        Compose([Elementwise("arctan"), AveragePool(2)], noise_std=0.3, units=units),
        CallableObservation(torch.sin, noise_std=0.1, name="sin", units=units),
    ]


@pytest.mark.parametrize("op", _operators_with_units("m s-1"), ids=lambda op: op.kind)
def test_every_operator_accepts_and_records_units(op):
    assert op.units == "m s-1"
    assert op.to_dict()["units"] == "m s-1"
    assert "units='m s-1'" in repr(op)


@pytest.mark.parametrize("op", _operators_with_units(None), ids=lambda op: op.kind)
def test_units_default_to_none_and_are_not_serialised(op):
    assert op.units is None
    assert "units" not in op.to_dict()
    assert "units" not in json.loads(op.to_json())
    assert "units" not in repr(op)


def test_units_round_trip_through_dict_and_json():
    for op in _operators_with_units("1")[:-1]:  # a user function cannot be rebuilt
        assert from_dict(op.to_dict()).units == "1"
        back = from_dict(op.to_json())
        assert back == op
        assert back.units == "1"
        assert json.loads(back.to_json()) == json.loads(op.to_json())
    # the parts of a composite keep their own units
    inner = Compose([Elementwise("identity", units="K")], units="1")
    back = from_dict(json.loads(json.dumps(inner.to_dict())))
    assert back.units == "1"
    assert back.operators[0].units == "K"


def test_units_take_part_in_equality():
    a = Elementwise("arctan", components=0, noise_std=0.25, units="1")
    assert a == Elementwise("arctan", components=0, noise_std=0.25, units="1")
    assert a != Elementwise("arctan", components=0, noise_std=0.25, units="rad")
    assert a != Elementwise("arctan", components=0, noise_std=0.25)  # stated vs not stated
    assert repr(a) != repr(Elementwise("arctan", components=0, noise_std=0.25))


def test_as_operator_reads_units_and_keeps_them_when_overriding_noise():
    op = as_operator({"kind": "elementwise", "function": "identity", "units": "K"})
    assert isinstance(op, Elementwise)
    assert op.units == "K"
    assert as_operator(json.dumps(op.to_dict())).units == "K"
    noisier = as_operator(op, noise_std=0.5)
    assert (noisier.noise_std, noisier.units) == (0.5, "K")
    assert op.noise_std == 0.0  # input not modified
    fn = CallableObservation(torch.sin, units="1")
    assert as_operator(fn, noise_std=0.2).units == "1"
    assert as_operator({"kind": "average_pool", "factor": 2}).units is None


def test_units_must_be_a_string():
    with pytest.raises(TypeError, match="units"):
        Elementwise(units=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="units"):
        from_dict({"kind": "average_pool", "factor": 2, "units": ["K"]})
