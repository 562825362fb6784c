"""Bootstrap particle filter and stochastic EnKF against the Kalman filter, linear-Gaussian case."""

from __future__ import annotations

import pytest
import torch

from xsfm.filters import bootstrap_particle_filter, ensemble_kalman_filter
from xsfm.observations import Elementwise
from xsfm.sampling.rng import stream_generators

F = torch.tensor([[0.9, 0.3], [-0.2, 0.85]], dtype=torch.float64)
Q_STD = 0.4
R_STD = 0.5
H = torch.tensor([[1.0, 0.0]], dtype=torch.float64)


def transition(x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    # x' = F x + q, written componentwise (no batched matmul, so rows are computed alike)
    u, v = x[..., 0], x[..., 1]
    nxt = torch.stack([F[0, 0] * u + F[0, 1] * v, F[1, 0] * u + F[1, 1] * v], dim=-1)
    return nxt + Q_STD * z


OPERATOR = Elementwise("identity", components=[0], noise_std=R_STD)


def simulate(batch: int, steps: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, 2, generator=g, dtype=torch.float64) * 2
    x0, states, obs = x.clone(), [], []
    for _ in range(steps):
        x = transition(x, torch.randn(batch, 2, generator=g, dtype=torch.float64))
        states.append(x)
        obs.append(OPERATOR(x) + R_STD * torch.randn(batch, 1, generator=g, dtype=torch.float64))
    return x0, torch.stack(obs, 1)


def kalman(x0: torch.Tensor, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    batch, steps = obs.shape[:2]
    m = x0.clone()
    p = torch.zeros(batch, 2, 2, dtype=torch.float64)
    q = Q_STD**2 * torch.eye(2, dtype=torch.float64)
    means, variances = [], []
    for t in range(steps):
        m = m @ F.T
        p = F @ p @ F.T + q
        s = H @ p @ H.T + R_STD**2
        k = p @ H.T / s
        m = m + (k @ (obs[:, t] - m @ H.T).unsqueeze(-1)).squeeze(-1)
        p = p - k @ H @ p
        means.append(m)
        variances.append(torch.diagonal(p, dim1=1, dim2=2))
    return torch.stack(means, 1), torch.stack(variances, 1)


@pytest.fixture(scope="module")
def problem():
    x0, obs = simulate(batch=6, steps=20)
    return x0, obs, *kalman(x0, obs)


def test_bootstrap_particle_filter_tracks_kalman(problem):
    x0, obs, km, kv = problem
    res = bootstrap_particle_filter(x0, obs, transition, OPERATOR, particles=4000, keep=32, seed=1)
    assert res.mean.shape == (6, 20, 2)
    assert res.ensemble.shape == (6, 20, 32, 2)
    sd = kv.sqrt()
    assert float(((res.mean - km).abs() / sd).max()) < 0.2
    ratio = res.variance / kv
    assert 0.8 < float(ratio.mean()) < 1.2
    assert float((ratio - 1).abs().max()) < 0.35
    assert torch.all(res.ess > 50)
    # the log-evidence estimate is finite and of the right order
    assert torch.isfinite(res.log_evidence).all()
    # the kept members are a sample of the filtering law
    assert float(((res.ensemble.mean(2) - km).abs() / sd).mean()) < 0.35


def test_bootstrap_particle_filter_with_wrong_noise_fails_the_check(problem):
    # the comparison above can fail: a filter that trusts the observations too much is far off
    x0, obs, km, kv = problem
    res = bootstrap_particle_filter(x0, obs, transition, OPERATOR, 0.05, particles=4000, seed=1)
    assert float(((res.mean - km).abs() / kv.sqrt()).max()) > 0.2


def test_enkf_tracks_kalman(problem):
    x0, obs, km, kv = problem
    res = ensemble_kalman_filter(x0, obs, transition, OPERATOR, members=1000, seed=2)
    assert res.ensemble.shape == (6, 20, 1000, 2)
    sd = kv.sqrt()
    assert float(((res.mean - km).abs() / sd).max()) < 0.25
    ratio = res.variance / kv
    assert 0.8 < float(ratio.mean()) < 1.2
    assert torch.isnan(res.log_evidence).all()


def test_filters_do_not_depend_on_batching(problem):
    x0, obs, _, _ = problem
    idx = [1, 4]
    full = bootstrap_particle_filter(x0, obs, transition, OPERATOR, particles=300, keep=8, seed=5)
    part = bootstrap_particle_filter(
        x0[idx],
        obs[idx],
        transition,
        OPERATOR,
        particles=300,
        keep=8,
        generators=stream_generators(5, idx, 1),
    )
    torch.testing.assert_close(part.mean, full.mean[idx], rtol=0, atol=0)
    torch.testing.assert_close(part.ensemble, full.ensemble[idx], rtol=0, atol=0)
    full = ensemble_kalman_filter(x0, obs, transition, OPERATOR, members=50, seed=5)
    part = ensemble_kalman_filter(
        x0[idx],
        obs[idx],
        transition,
        OPERATOR,
        members=50,
        generators=stream_generators(5, idx, 1),
    )
    torch.testing.assert_close(part.ensemble, full.ensemble[idx])


def test_missing_observations_skip_the_update(problem):
    x0, obs, _, _ = problem
    gap = obs.clone()
    gap[:, 3] = float("nan")
    res = ensemble_kalman_filter(x0, gap, transition, OPERATOR, members=200, seed=0)
    assert torch.isfinite(res.ensemble).all()
    bpf = bootstrap_particle_filter(x0, gap, transition, OPERATOR, particles=200, seed=0)
    assert torch.isfinite(bpf.mean).all()
    assert float(bpf.ess[:, 3].min()) == pytest.approx(200)  # no weighting at the gap


def test_input_checks(problem):
    x0, obs, _, _ = problem
    with pytest.raises(ValueError, match="trajectories"):
        bootstrap_particle_filter(x0[:2], obs, transition, OPERATOR)
    with pytest.raises(ValueError, match="noise_std"):
        ensemble_kalman_filter(x0, obs, transition, Elementwise(), members=10)
    with pytest.raises(ValueError, match="generators"):
        bootstrap_particle_filter(
            x0, obs, transition, OPERATOR, generators=stream_generators(0, [0], 1)
        )


def test_scalar_observations_lorenz63():
    from xsfm.datasets.lorenz import lorenz63_operator, lorenz63_transition, simulate

    x, y = simulate(3, 10, seed=0, burn_in=200)  # obs [B, T]: one scalar per time
    truth = x[:, 1:]
    bpf = bootstrap_particle_filter(
        x[:, 0], y, lorenz63_transition(), lorenz63_operator(), particles=2000, keep=4
    )
    enkf = ensemble_kalman_filter(
        x[:, 0], y, lorenz63_transition(), lorenz63_operator(), members=64
    )
    assert bpf.mean.shape == enkf.mean.shape == truth.shape
    # with x_0 known and the true model, both track the truth within a few model-noise steps
    assert float((bpf.mean - truth).abs().mean()) < 1.0
    assert float((enkf.mean - truth).abs().mean()) < 1.5


def test_particle_paths_are_smoothing_draws_of_a_random_walk():
    # x_t = x_{t-1} + s z, x_0 = 0, only x_T observed: y = x_T + gamma eta. The traced paths must
    # follow the smoothing law: E[x_t | y] = t s^2 / (T s^2 + gamma^2) y (Kalman smoother).
    from xsfm.filters import bootstrap_particle_filter
    from xsfm.observations import Elementwise

    s, gamma, steps, y_last = 1.0, 1.0, 4, 3.0
    obs = torch.full((2, steps, 1), float("nan"), dtype=torch.float64)
    obs[:, -1] = y_last
    res = bootstrap_particle_filter(
        torch.zeros(2, 1, dtype=torch.float64),
        obs,
        lambda x, z: x + s * z,
        Elementwise(),
        gamma,
        particles=20000,
        keep=4,
        paths=4000,
        seed=0,
    )
    assert res.paths.shape == (2, 4000, steps, 1)
    means = res.paths[..., 0].mean(dim=1)  # [B, T]
    expected = torch.tensor(
        [t * s**2 / (steps * s**2 + gamma**2) * y_last for t in range(1, steps + 1)]
    )
    torch.testing.assert_close(means, expected.expand(2, -1).to(means.dtype), atol=0.12, rtol=0)
    # each path is a chain of transitions: increments have the smoothing variance, not 0 or 2 s^2
    inc = res.paths[..., 1:, 0] - res.paths[..., :-1, 0]
    var = s**2 - s**4 / (steps * s**2 + gamma**2)  # Var(x_t - x_{t-1} | y)
    assert abs(float(inc.var()) - var) < 0.15 * var


def test_particle_paths_are_off_by_default_and_checked():
    from xsfm.filters import bootstrap_particle_filter
    from xsfm.observations import Elementwise

    x0, obs = torch.zeros(1, 1), torch.zeros(1, 2, 1)
    res = bootstrap_particle_filter(
        x0, obs, lambda x, z: x + z, Elementwise(), 1.0, particles=8, keep=2
    )
    assert res.paths is None
    with pytest.raises(ValueError, match="paths must be between"):
        bootstrap_particle_filter(
            x0, obs, lambda x, z: x + z, Elementwise(), 1.0, particles=8, paths=9
        )
