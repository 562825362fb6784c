"""What keeps an ensemble on the Lorenz-63 trajectory over 200 steps? The true model, nudged and resampled.

A diagnostic for the long window of ``lorenz63_report.py``, with the *true* noisy RK4 transition in
place of the learned drift (seconds on one core)::

    OMP_NUM_THREADS=1 python studies/lorenz63_nudging.py

Each member takes one true transition, is then nudged toward the observation by a gradient step on
``0.5 (y - arctan(x_1 / 8))^2 / gamma^2`` with gain ``k`` (the physical-units change of x_1 is
``k r / (1 + (x_1/8)^2) / (8 gamma^2)``, ``r`` the residual), and optionally the members of each
trajectory are resampled (systematic resampling): after the nudge by the likelihood of their
states, or before the step by the likelihood of one un-nudged forecast each (the predictive
likelihood, as ``resample_members="predictive"``). ``k = 0`` with resampling after the step is a
bootstrap particle filter; ``k > 0`` without resampling is FlowDAS's mechanism (independent guided
members) with a perfect transition. FlowDAS's guidance with the shipped model acts like ``k`` of
about 0.13, 0.56, 1.55 and 2.4 for zeta = 2e-4, 1e-3, 3e-3 and 5e-3 (median over 64 held-out
states, N = 500; measured by :func:`effective_gain`).

Prints the window single-draw RMSE (member 0, normalised units) on the long window's 32 held-out
trajectories x 200 steps.
"""

from __future__ import annotations

import torch

import xsfm
from xsfm.datasets.lorenz import LORENZ63_STD, lorenz63_operator, lorenz63_transition
from xsfm.sampling.resampling import systematic_resample
from xsfm.sampling.rng import stream_generators

GAMMA = 0.25


def long_window(n: int = 32, steps: int = 200):
    ds = xsfm.datasets.lorenz63(trajectories=n, steps=steps, seed=0, first_trajectory=8000)
    x0 = torch.from_numpy(ds.state.isel(time=0).values)
    truth = torch.from_numpy(ds.state.isel(time=slice(1, None)).values)
    y = torch.from_numpy(ds.obs.isel(time=slice(1, None)).values)
    return x0, truth, y


def _resample(x: torch.Tensor, loglik: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Systematic resampling of ``x [traj, members, 3]`` with ``loglik [traj, members]``."""
    u = torch.rand(x.shape[0], generator=g, dtype=x.dtype)
    parent = systematic_resample(torch.softmax(loglik, -1), u)
    return torch.gather(x, 1, parent[..., None].expand(-1, -1, 3))


def _loglik(y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return -0.5 * ((y[:, None] - torch.atan(x[..., 0] / 8)) / GAMMA) ** 2


def nudged_filter(
    data: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    members: int,
    gain: float,
    resample: bool | str,
    seed: int = 0,
) -> float:
    """Window single-draw RMSE (normalised) of the true model on ``long_window()`` data.

    ``resample``: ``False`` (independent members), ``True`` (after each nudged step, by the
    likelihood of the members' states) or ``"predictive"`` (before each step, by the likelihood
    of one un-nudged forecast per member, as ``resample_members="predictive"`` does).
    """
    x0, truth, y = data
    g = torch.Generator().manual_seed(seed)
    step = lorenz63_transition()
    x = x0[:, None, :].repeat(1, members, 1).double()
    out = []
    for t in range(y.shape[1]):
        if resample == "predictive":
            guess = step(x, torch.randn(x.shape, generator=g, dtype=x.dtype))
            x = _resample(x, _loglik(y[:, t], guess), g)
        x = step(x, torch.randn(x.shape, generator=g, dtype=x.dtype))
        if gain:
            xn = x[..., 0] / 8
            r = y[:, t, None] - torch.atan(xn)
            x[..., 0] = x[..., 0] + gain * r / (1 + xn**2) / 8 / GAMMA**2
        if resample is True:
            x = _resample(x, _loglik(y[:, t], x), g)
        out.append(x[:, 0])
    err = (torch.stack(out, 1) - truth) / torch.tensor(LORENZ63_STD)
    return float(err.pow(2).mean().sqrt())


def effective_gain(zeta: float, offset: float = 0.3, n: int = 64, steps: int = 500) -> float:
    """Median gain ``k`` of one guided FlowDAS step of the shipped model (see the module doc)."""
    model = xsfm.load_model("lorenz63-flowdas").network("cpu")
    ds = xsfm.datasets.lorenz63(trajectories=n, steps=1, seed=0, first_trajectory=8000)
    x0 = torch.from_numpy(ds.state.isel(time=0).values).float()
    op = lorenz63_operator()
    free = model.assimilate(
        x0,
        torch.full((n, 1), float("nan")),
        op,
        generators=stream_generators(0, range(n), 1),
        steps=steps,
    )[:, 0]
    target = (torch.atan(free[:, 0] / 8) + offset)[:, None]
    guided = model.assimilate(
        x0, target, op, generators=stream_generators(0, range(n), 1), steps=steps, zeta=zeta
    )[:, 0]
    xn = free[:, 0] / 8
    unit = offset / (1 + xn**2) / 8 / GAMMA**2
    return float(((guided[:, 0] - free[:, 0]) / unit).median())


def main() -> None:
    torch.set_num_threads(1)
    print("FlowDAS guidance as a gain (shipped model, N = 500):")
    for zeta in (2e-4, 1e-3, 3e-3, 5e-3):
        print(f"  zeta {zeta:g}: k = {effective_gain(zeta):.2f}")
    print("\nTrue model, 32 trajectories x 200 steps, window single-draw RMSE (normalised):")
    print(
        "| members | gain k | independent members | resampled by likelihood "
        "| drawn by predictive likelihood |"
    )
    print("|---|---|---|---|---|")
    data = long_window()
    for members in (4, 8, 16, 32):
        for gain in (0.0, 0.5, 1.0, 2.0, 3.0, 4.0):
            free = nudged_filter(data, members, gain, resample=False)
            picked = nudged_filter(data, members, gain, resample=True)
            ahead = nudged_filter(data, members, gain, resample="predictive")
            print(f"| {members} | {gain:g} | {free:.3f} | {picked:.3f} | {ahead:.3f} |")


if __name__ == "__main__":
    main()
