from __future__ import annotations

import math

import pytest
import torch

from xsfm.sampling.paths import (
    SIGMA_DATA,
    edm_coefficients,
    edm_sigmas,
    gaussian_denoiser,
    loss_weight,
    precondition,
    sample_sigma_lognormal,
    sample_sigma_uniform,
    sfm_path,
)


@pytest.mark.parametrize("s", [1e-3, 0.01, 0.3, 0.5, 1.0, 80.0])
def test_edm_coefficients_match_formulas(s: float) -> None:
    sd = 0.5
    c = edm_coefficients(torch.tensor(s, dtype=torch.float64))
    assert sd == SIGMA_DATA
    assert c.c_skip.item() == pytest.approx(sd**2 / (s**2 + sd**2), rel=1e-12)
    assert c.c_out.item() == pytest.approx(s * sd / math.sqrt(s**2 + sd**2), rel=1e-12)
    assert c.c_in.item() == pytest.approx(1 / math.sqrt(s**2 + sd**2), rel=1e-12)
    assert c.c_noise.item() == pytest.approx(math.log(s) / 4, rel=1e-12, abs=1e-15)
    # the SFM weight (sigma^2 + 0.25) / (0.25 sigma^2) is 1 / c_out^2
    w = loss_weight(torch.tensor(s, dtype=torch.float64)).item()
    assert w == pytest.approx((s**2 + 0.25) / (0.25 * s**2), rel=1e-12)
    assert w == pytest.approx(1 / c.c_out.item() ** 2, rel=1e-12)


def test_precondition_wiring() -> None:
    seen = {}

    def net(x_in: torch.Tensor, c_noise: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        seen.update(x_in=x_in, c_noise=c_noise, cond=cond)
        return torch.full_like(x_in, 2.0)

    x = torch.tensor([[1.0], [3.0]])
    sigma = torch.tensor([0.5, 2.0])
    cond = torch.zeros(2, 1)
    d = precondition(net, x, sigma, cond)
    sd = 0.5
    for i, s in enumerate([0.5, 2.0]):
        c_skip = sd**2 / (s**2 + sd**2)
        c_out = s * sd / math.sqrt(s**2 + sd**2)
        c_in = 1 / math.sqrt(s**2 + sd**2)
        assert d[i, 0].item() == pytest.approx(c_skip * x[i, 0].item() + c_out * 2.0, rel=1e-6)
        assert seen["x_in"][i, 0].item() == pytest.approx(c_in * x[i, 0].item(), rel=1e-6)
        assert seen["c_noise"][i].item() == pytest.approx(math.log(s) / 4, rel=1e-6)
    assert seen["cond"] is cond


def test_edm_sigmas() -> None:
    rho, smin, smax, n = 7.0, 0.01, 1.0, 50
    sig = edm_sigmas(n, smin, smax, rho)
    assert sig.shape == (n + 1,)
    assert sig[0].item() == pytest.approx(smax)
    assert sig[n - 1].item() == pytest.approx(smin)
    assert sig[-1].item() == 0.0
    assert bool((sig[1:] < sig[:-1]).all())
    i = 17
    expected = (smax ** (1 / rho) + i / (n - 1) * (smin ** (1 / rho) - smax ** (1 / rho))) ** rho
    assert sig[i].item() == pytest.approx(expected, rel=1e-12)
    assert edm_sigmas(1).tolist() == [1.0, 0.0]
    with pytest.raises(ValueError, match="steps"):
        edm_sigmas(0)


def test_sigma_samplers_are_seeded_and_in_range() -> None:
    a = sample_sigma_uniform(1000, torch.Generator().manual_seed(3), sigma_min=1e-3)
    b = sample_sigma_uniform(1000, torch.Generator().manual_seed(3), sigma_min=1e-3)
    assert torch.equal(a, b)
    assert a.min() >= 1e-3
    assert a.max() <= 1.0
    ln = sample_sigma_lognormal(20000, torch.Generator().manual_seed(0)).log()
    assert ln.mean().item() == pytest.approx(-1.2, abs=0.03)
    assert ln.std().item() == pytest.approx(1.2, abs=0.03)


def test_sfm_path_ends() -> None:
    z, x = torch.zeros(2, 3), torch.ones(2, 3)
    assert torch.equal(sfm_path(z, x, torch.tensor([0.0, 1.0]))[0], x[0])
    assert torch.equal(sfm_path(z, x, torch.tensor([0.0, 1.0]))[1], z[1])


def test_gaussian_denoiser_is_the_posterior_mean() -> None:
    mu, s, m0, s0 = 3.0, 0.5, -1.0, 2.0
    d = gaussian_denoiser(mu, s, m0, s0)
    g = torch.Generator().manual_seed(0)
    n = 400_000
    x = mu + s * torch.randn(n, generator=g, dtype=torch.float64)
    z = m0 + s0 * torch.randn(n, generator=g, dtype=torch.float64)
    for sigma in (0.1, 0.5, 0.9):
        xs = sigma * z + (1 - sigma) * x
        resid = x - d(xs, torch.tensor(sigma, dtype=torch.float64))
        # the posterior mean is unbiased and its error is orthogonal to the observation
        assert abs(resid.mean().item()) < 5e-3
        assert abs((resid * (xs - xs.mean())).mean().item()) < 1e-2
    assert torch.allclose(d(torch.tensor([0.7]), torch.tensor(0.0)), torch.tensor([0.7]))
