from __future__ import annotations

import math

import pytest
import torch

from xsfm.sampling.interpolants import (
    alpha,
    beta,
    drift_target,
    endpoint_std,
    interpolant,
    sigma,
)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_schedules():
    assert (alpha(0.0), alpha(1.0)) == (1, 0)
    assert (beta(0.0), beta(1.0)) == (0, 1)
    assert (sigma(0.0), sigma(1.0)) == (1, 0)
    assert sigma(0.5, eps=2.0) == 1.0


def test_boundary_conditions():
    g = _gen()
    x0, x1, z = (torch.randn(5, 3, generator=g, dtype=torch.float64) for _ in range(3))
    torch.testing.assert_close(interpolant(x0, x1, 0.0, z), x0, rtol=0, atol=0)
    torch.testing.assert_close(interpolant(x0, x1, 1.0, z), x1, rtol=0, atol=0)
    # per-sample times, mixed 0 and 1
    s = torch.tensor([0.0, 1.0, 0.0, 1.0, 0.0], dtype=torch.float64)
    out = interpolant(x0, x1, s, z)
    torch.testing.assert_close(out[0::2], x0[0::2], rtol=0, atol=0)
    torch.testing.assert_close(out[1::2], x1[1::2], rtol=0, atol=0)


@pytest.mark.parametrize("s", [0.05, 0.3, 0.5, 0.8, 0.97])
def test_target_is_time_derivative_with_wiener_fixed(s):
    g = _gen(1)
    x0, x1, z = (torch.randn(4, 3, generator=g, dtype=torch.float64) for _ in range(3))
    w = math.sqrt(s) * z
    h = 1e-6
    fd = (interpolant(x0, x1, s + h, z, wiener=w) - interpolant(x0, x1, s - h, z, wiener=w)) / (
        2 * h
    )
    torch.testing.assert_close(drift_target(x0, x1, s, z, wiener=w), fd, rtol=1e-6, atol=1e-6)
    # and the z form is the same target: R_s = -x0 + 2 s x1 - sqrt(s) z
    torch.testing.assert_close(drift_target(x0, x1, s, z), -x0 + 2 * s * x1 - math.sqrt(s) * z)


def test_target_formula_eps():
    g = _gen(2)
    x0, x1, z = (torch.randn(4, 2, generator=g, dtype=torch.float64) for _ in range(3))
    s = torch.rand(4, generator=g, dtype=torch.float64)
    eps = 0.7
    sv = s[:, None]
    expected_i = (1 - sv) * x0 + sv**2 * x1 + eps * (1 - sv) * torch.sqrt(sv) * z
    expected_r = -x0 + 2 * sv * x1 - eps * torch.sqrt(sv) * z
    torch.testing.assert_close(interpolant(x0, x1, s, z, eps), expected_i)
    torch.testing.assert_close(drift_target(x0, x1, s, z, eps), expected_r)


def _exact_gain(s: float, c: float, eps: float = 1.0) -> float:
    """Slope of E[R_s | I_s] in I_s for x1 = a x0 + c xi (derived in test_guidance)."""
    return (2 * s**2 * c**2 - eps**2 * (1 - s)) / (s**3 * c**2 + eps**2 * (1 - s) ** 2)


@pytest.mark.parametrize("s", [0.1, 0.5, 0.9])
def test_conditional_expectation_of_target_linear_gaussian(s):
    # regress R_s on I_s over samples of the chain x1 = a x0 + c xi: slope and intercept must match
    # the closed-form drift used by the sampler tests
    a, c, x0v = 0.8, 0.5, 1.0
    n = 400_000
    g = _gen(3)
    x0 = torch.full((n, 1), x0v, dtype=torch.float64)
    x1 = a * x0 + c * torch.randn(n, 1, generator=g, dtype=torch.float64)
    z = torch.randn(n, 1, generator=g, dtype=torch.float64)
    i_s = interpolant(x0, x1, s, z).squeeze(1)
    r_s = drift_target(x0, x1, s, z).squeeze(1)
    di, dr = i_s - i_s.mean(), r_s - r_s.mean()
    slope = float((di * dr).mean() / (di * di).mean())
    assert slope == pytest.approx(_exact_gain(s, c), abs=0.02)
    m_i = (1 - s) * x0v + s**2 * a * x0v
    m_r = -x0v + 2 * s * a * x0v
    assert float(i_s.mean()) == pytest.approx(m_i, abs=0.01)
    assert float(r_s.mean()) == pytest.approx(m_r, abs=0.01)


@pytest.mark.parametrize("s", [0.0, 0.4, 0.9])
def test_endpoint_std_exact_matches_noise_integral(s):
    # std of int_s^1 (1 - u) dB_u, by a fine Riemann-Ito sum
    n_steps, n = 400, 20_000
    u = torch.linspace(s, 1.0, n_steps + 1, dtype=torch.float64)
    du = u[1:] - u[:-1]
    mid = u[:-1]
    xi = torch.randn(n, n_steps, generator=_gen(4), dtype=torch.float64)
    total = (sigma(mid) * torch.sqrt(du) * xi).sum(1)
    expected = endpoint_std(s, "exact")
    assert float(total.std()) == pytest.approx(expected, rel=0.03)
    assert expected == pytest.approx((1 - s) ** 1.5 / math.sqrt(3))


def test_endpoint_std_code_formula():
    # the released code's kappa is int_s^1 (1 - u) d sqrt(u)
    for s in (0.0, 0.25, 0.7, 1.0):
        u = torch.linspace(s, 1.0, 200_001, dtype=torch.float64)
        integral = float(((1 - u[:-1]) * (torch.sqrt(u[1:]) - torch.sqrt(u[:-1]))).sum())
        assert endpoint_std(s, "code") == pytest.approx(integral, abs=1e-4)
    s = torch.tensor([0.0, 0.5, 1.0])
    assert torch.all(endpoint_std(s, "exact") >= 0)
    assert float(endpoint_std(torch.tensor(1.0), "code")) == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="kappa kind"):
        endpoint_std(0.5, "other")  # type: ignore[arg-type]
