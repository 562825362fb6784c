from __future__ import annotations

import pytest
import torch

from xsfm.sampling.paths import edm_sigmas, gaussian_denoiser
from xsfm.sampling.rng import randn, stream_generators
from xsfm.sampling.solvers import EulerSampler, HeunSampler, Sampler, make_sampler

MU, S, M0, S0 = 3.0, 0.5, -1.0, 2.0  # data N(MU, S^2), base N(M0, S0^2) at sigma = 1


def _affine_map(sampler_cls: type[Sampler], steps: int) -> tuple[float, float]:
    """The sampler is affine in its input for a Gaussian denoiser: out = a * x + b."""
    sampler = sampler_cls(gaussian_denoiser(MU, S, M0, S0), edm_sigmas(steps, 0.01, 1.0, 7.0))
    out = sampler(torch.tensor([0.0, 1.0], dtype=torch.float64))
    b = out[0].item()
    return out[1].item() - b, b


@pytest.mark.parametrize(
    ("cls", "steps", "std_tol"),
    [
        # First-order Euler at the released 50 steps carries a ~3 % spread error on this path (it
        # shrinks as 1/steps: about 1.5 % at 100 steps); the mean is exact for any step count.
        (EulerSampler, 50, 0.05),
        (EulerSampler, 150, 0.02),
        (HeunSampler, 15, 0.02),
    ],
)
def test_samplers_reach_target_mean_and_std(cls: type[Sampler], steps: int, std_tol: float) -> None:
    a, b = _affine_map(cls, steps)
    mean, std = a * M0 + b, abs(a) * S0
    assert mean == pytest.approx(MU, rel=0.02)
    assert std == pytest.approx(S, rel=std_tol)
    # and by Monte Carlo, with base draws from per-member generators
    gens = stream_generators(0, range(4), members=2)
    z = M0 + S0 * randn(gens, (20_000,), dtype=torch.float64)
    sampler = cls(gaussian_denoiser(MU, S, M0, S0), edm_sigmas(steps, 0.01, 1.0, 7.0))
    out = sampler(z)
    assert out.mean().item() == pytest.approx(MU, rel=0.02)
    assert out.std().item() == pytest.approx(S, rel=std_tol + 0.005)


def test_heun_error_shrinks_faster_than_euler() -> None:
    ref_a, ref_b = _affine_map(HeunSampler, 4096)

    def err(cls: type[Sampler], steps: int) -> float:
        a, b = _affine_map(cls, steps)
        return abs(a - ref_a) * S0 + abs(b - ref_b)

    euler = [err(EulerSampler, n) for n in (8, 16, 32, 64)]
    heun = [err(HeunSampler, n) for n in (8, 16, 32, 64)]
    euler_rates = [euler[i] / euler[i + 1] for i in range(3)]
    heun_rates = [heun[i] / heun[i + 1] for i in range(3)]
    # first order: error halves when the steps double; second order: quarters
    assert all(1.6 < r < 2.6 for r in euler_rates[1:]), euler_rates
    assert all(r > 3.2 for r in heun_rates[1:]), heun_rates
    assert heun[-1] < euler[-1] / 10


def test_sampler_loop_calls_step_per_interval() -> None:
    calls = []

    class Recording(Sampler):
        def step(self, x: torch.Tensor, t_cur: torch.Tensor, t_next: torch.Tensor) -> torch.Tensor:
            calls.append((float(t_cur), float(t_next)))
            return x

    sig = edm_sigmas(5)
    Recording(lambda x, s: x, sig)(torch.zeros(1, dtype=torch.float64))
    assert calls == [(float(sig[i]), float(sig[i + 1])) for i in range(5)]


def test_last_step_returns_denoised_and_nfe() -> None:
    den = gaussian_denoiser(MU, S, M0, S0)
    euler = EulerSampler(den, torch.tensor([0.3, 0.0]))
    x = torch.tensor([1.0, 2.0])
    assert torch.equal(euler(x), den(x, torch.tensor(0.3)))
    heun = HeunSampler(den, edm_sigmas(6))
    heun(x)
    assert heun.nfe == 2 * 6 - 1
    assert type(make_sampler("Euler", den, edm_sigmas(2))) is EulerSampler


def test_sampler_validation() -> None:
    with pytest.raises(ValueError, match="unknown solver"):
        make_sampler("rk4", lambda x, s: x, edm_sigmas(2))
    with pytest.raises(ValueError, match="decreasing"):
        EulerSampler(lambda x, s: x, torch.tensor([0.0, 1.0]))
