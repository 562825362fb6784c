"""Guided Euler-Maruyama sampler on a linear-Gaussian chain whose exact drift is known.

Chain: x1 = a x0 + c xi (componentwise), x0 known. Given x0, the interpolant
I_s = (1-s) x0 + s^2 x1 + eps (1-s) sqrt(s) z and the target R_s = -x0 + 2 s x1 - eps sqrt(s) z are
jointly Gaussian, so the drift b(x, s) = E[R_s | I_s = x] is

    b(x, s) = m_R(s) + k(s) (x - m_I(s)),
    m_I = (1-s) x0 + s^2 a x0,  m_R = -x0 + 2 s a x0,
    k(s) = Cov(R, I) / Var(I) = (2 s^3 c^2 - eps^2 s (1-s)) / (s^4 c^2 + eps^2 s (1-s)^2)
         = (2 s^2 c^2 - eps^2 (1-s)) / (s^3 c^2 + eps^2 (1-s)^2)   (finite at s = 0: k = -1).

(test_interpolants checks this slope by regression.) The SDE with that drift takes x0 to the law
N(a x0, c^2) of x1.
"""

from __future__ import annotations

import math

import pytest
import torch

from xsfm.sampling.guidance import Guidance, sample, time_grid
from xsfm.sampling.resampling import (
    effective_sample_size,
    softmax_weights,
    systematic_resample,
    weights_with_resampling,
)
from xsfm.sampling.rng import stream_generators


def exact_drift(
    x0: torch.Tensor, a: torch.Tensor | float, c: torch.Tensor | float, eps: float = 1.0
):
    def b(x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        s = s.reshape(-1, *([1] * (x.ndim - 1)))
        m_i = (1 - s) * x0 + s**2 * a * x0
        m_r = -x0 + 2 * s * a * x0
        k = (2 * s**2 * c**2 - eps**2 * (1 - s)) / (s**3 * c**2 + eps**2 * (1 - s) ** 2)
        return m_r + k * (x - m_i)

    return b


def test_time_grid():
    grid = time_grid(500)
    assert len(grid) == 501
    assert grid[0] == 0.0
    assert grid[-1] == pytest.approx(0.999)
    with pytest.raises(ValueError, match="steps"):
        time_grid(0)


def test_unguided_reproduces_linear_gaussian_transition():
    n = 20_000
    a = torch.tensor([0.8, -0.5])
    c = torch.tensor([0.5, 1.2])
    x0 = torch.tensor([1.0, 2.0]).expand(n, 2).clone()
    out = sample(exact_drift(x0, a, c), x0, stream_generators(0, range(n), 1), steps=100)
    mean, var = out.mean(0), out.var(0)
    expected_mean = a * x0[0]
    se = c / math.sqrt(n)
    assert torch.all((mean - expected_mean).abs() < 4 * se + 0.01), (mean, expected_mean)
    torch.testing.assert_close(var, c**2, rtol=0.05, atol=0.0)


def test_unguided_wrong_drift_fails():
    # the check above is able to fail: a drift for another chain gives another law
    n = 5000
    x0 = torch.ones(n, 1)
    out = sample(exact_drift(x0, 0.8, 0.5), x0, stream_generators(0, range(n), 1), steps=50)
    wrong = sample(exact_drift(x0, 0.8, 1.0), x0, stream_generators(0, range(n), 1), steps=50)
    assert float(wrong.var()) > 2 * float(out.var())


def test_results_do_not_depend_on_batching():
    n = 12
    x0 = torch.linspace(-1, 1, n).reshape(n, 1)
    gens = lambda idx: stream_generators(3, idx, 1)  # noqa: E731
    y = torch.full((n, 1), 0.5)
    opts = Guidance(zeta=1e-3, draws=5)
    drift = exact_drift(x0, 0.8, 0.5)
    full = sample(
        drift, x0, gens(range(n)), steps=40, guidance=opts, observe=lambda x: x, y=y, noise_std=0.3
    )
    idx = [2, 7, 9]
    sub_drift = exact_drift(x0[idx], 0.8, 0.5)
    part = sample(
        sub_drift,
        x0[idx],
        gens(idx),
        steps=40,
        guidance=opts,
        observe=lambda x: x,
        y=y[idx],
        noise_std=0.3,
    )
    torch.testing.assert_close(part, full[idx], rtol=0, atol=0)


def _kalman(a: float, c: float, x0: float, y: float, gamma: float) -> tuple[float, float]:
    gain = c**2 / (c**2 + gamma**2)
    mean = a * x0 + gain * (y - a * x0)
    return mean, c**2 * (1 - gain)


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"weighting": "jensen"},
        {"weighting": "mean-residual"},
        {"order": 2},
        {"kappa": "code"},
        {"norm": "plain", "zeta": 1e-2},
        {"resample": False},
        {"estimator": "dps"},
        {"estimator": "dps", "dps_cutoff": 0.3},
    ],
)
def test_guidance_moves_mean_toward_kalman_posterior(options):
    n, a, c, gamma, y_value = 1000, 0.8, 0.5, 0.25, 2.0
    x0 = torch.ones(n, 1)
    y = torch.full((n, 1), y_value)
    post_mean, _ = _kalman(a, c, 1.0, y_value, gamma)
    gens = stream_generators(0, range(n), 1)
    drift = exact_drift(x0, a, c)
    opts = Guidance(**{"zeta": 1e-3, "draws": 11, **options})
    if opts.weighting == "mean-residual":  # one misfit for all draws: a J times larger gradient
        opts = Guidance(**{**opts.to_dict(), "zeta": opts.zeta / opts.draws})
    free = sample(drift, x0, gens, steps=100)
    gens = stream_generators(0, range(n), 1)
    guided = sample(
        drift, x0, gens, steps=100, guidance=opts, observe=lambda x: x, y=y, noise_std=gamma
    )
    free_err = abs(float(free.mean()) - post_mean)
    guided_err = abs(float(guided.mean()) - post_mean)
    assert free_err > 0.8
    assert guided_err < 0.5 * free_err, (guided.mean(), post_mean)


def test_guidance_near_kalman_posterior_at_tuned_zeta():
    # with zeta chosen for this setting (see the kappa measurement in the guidance docs) the guided
    # law is close to the Kalman posterior in mean and spread
    n, a, c, gamma, y_value = 2000, 0.8, 0.5, 0.25, 2.0
    x0 = torch.ones(n, 1)
    post_mean, post_var = _kalman(a, c, 1.0, y_value, gamma)
    out = sample(
        exact_drift(x0, a, c),
        x0,
        stream_generators(0, range(n), 1),
        steps=200,
        guidance=Guidance(zeta=7e-4, draws=21),
        observe=lambda x: x,
        y=torch.full((n, 1), y_value),
        noise_std=gamma,
    )
    assert float(out.mean()) == pytest.approx(post_mean, abs=0.1)
    assert float(out.var()) == pytest.approx(post_var, rel=0.5)


def test_missing_observations_do_not_guide():
    n = 50
    x0 = torch.ones(n, 1)
    drift = exact_drift(x0, 0.8, 0.5)
    opts = Guidance(zeta=1e-2, draws=4)
    nan = torch.full((n, 1), float("nan"))
    a = sample(
        drift,
        x0,
        stream_generators(1, range(n), 1),
        steps=30,
        guidance=opts,
        observe=lambda x: x,
        y=nan,
        noise_std=0.3,
    )
    b = sample(
        drift,
        x0,
        stream_generators(1, range(n), 1),
        steps=30,
        guidance=Guidance(zeta=0.0, draws=4),
        observe=lambda x: x,
        y=nan,
        noise_std=0.3,
    )
    torch.testing.assert_close(a, b)


def test_softmax_weights_and_ess_constructed():
    d = torch.tensor([[0.0, 0.0, 0.0, 0.0], [0.0, math.log(2.0), math.log(4.0), 50.0]])
    w = softmax_weights(d)
    torch.testing.assert_close(w[0], torch.full((4,), 0.25))
    torch.testing.assert_close(w[1, :3], torch.tensor([4.0, 2.0, 1.0]) / 7, atol=1e-6, rtol=0)
    assert float(w[1, 3]) < 1e-20
    ess = effective_sample_size(w)
    assert float(ess[0]) == pytest.approx(4.0)
    assert float(ess[1]) == pytest.approx(49 / 21, rel=1e-5)  # 1 / ((16 + 4 + 1) / 49)


def test_systematic_resample_counts():
    g = torch.Generator().manual_seed(0)
    w = torch.softmax(torch.randn(200, 10, generator=g), dim=1)
    u = torch.rand(200, generator=g)
    idx = systematic_resample(w, u)
    counts = torch.zeros_like(w).scatter_add_(1, idx, torch.ones_like(w))
    expected = w * 10
    assert torch.all(counts >= torch.floor(expected) - 1e-6)
    assert torch.all(counts <= torch.ceil(expected) + 1e-6)
    assert torch.all(counts.sum(1) == 10)


def test_weights_with_resampling_only_below_threshold():
    w = torch.tensor(
        [[0.25, 0.25, 0.25, 0.25], [0.7, 0.1, 0.1, 0.1], [0.4, 0.3, 0.2, 0.1]]
    )  # ESS: 4, ~1.92, ~3.33
    u = torch.tensor([0.3, 0.3, 0.3])
    out = weights_with_resampling(w, u, 0.5)
    torch.testing.assert_close(out[0], w[0])
    torch.testing.assert_close(out[2], w[2])
    # row 1 resampled: cdf 0.7, 0.8, 0.9, 1; positions (0.3 + i) / 4 = 0.075, 0.325, 0.575, 0.825
    # -> draws 0, 0, 0, 2
    torch.testing.assert_close(out[1], torch.tensor([0.75, 0.0, 0.25, 0.0]))
    torch.testing.assert_close(out.sum(1), torch.ones(3))


def test_guidance_options_validation():
    with pytest.raises(ValueError, match="weighting"):
        Guidance(weighting="uniform")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="order"):
        Guidance(order=3)
    with pytest.raises(ValueError, match="draws"):
        Guidance(draws=0)
    with pytest.raises(ValueError, match="unknown guidance options"):
        Guidance.from_dict({"zeta": 1.0, "steps": 3})
    assert Guidance(estimator="dps").n_draws == 1
    with pytest.raises(ValueError, match="observe, y and noise_std"):
        sample(lambda x, s: x, torch.zeros(1, 1), stream_generators(0, [0], 1), guidance={})
    with pytest.raises(ValueError, match="generators"):
        sample(lambda x, s: x, torch.zeros(2, 1), stream_generators(0, [0], 1))


def test_gradients_only_inside_guidance():
    seen = []

    def drift(x, s):
        seen.append((torch.is_grad_enabled(), torch.is_inference_mode_enabled()))
        return -x

    x0 = torch.zeros(2, 1)
    sample(drift, x0, stream_generators(0, range(2), 1), steps=3)
    assert seen == [(False, True)] * 3
    seen.clear()
    out = sample(
        drift,
        x0,
        stream_generators(0, range(2), 1),
        steps=3,
        guidance=Guidance(draws=2),
        observe=lambda x: x,
        y=torch.zeros(2, 1),
        noise_std=1.0,
    )
    assert seen == [(True, False)] * 3
    assert not out.requires_grad


def test_divergence_is_reported():
    x0 = torch.ones(3, 1)
    with pytest.raises(FloatingPointError, match="lower zeta"):
        sample(
            exact_drift(x0, 0.8, 0.5),
            x0,
            stream_generators(0, range(3), 1),
            steps=50,
            guidance=Guidance(zeta=10.0, draws=2),
            observe=lambda x: x**3,
            y=torch.full((3, 1), 5.0),
            noise_std=0.1,
        )
