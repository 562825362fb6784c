from __future__ import annotations

import pytest
import torch

from xsfm.datasets.lorenz import LORENZ63_MEAN, LORENZ63_STD, lorenz63_operator
from xsfm.models.flowdas import FlowDAS, build_flowdas
from xsfm.observations import Elementwise
from xsfm.sampling.rng import stream_generators
from xsfm.training.assimilation import train_assimilator

TINY = {"width": 16, "blocks": 1, "s_frequencies": 4, "history_frequencies": 2}


def lorenz_model(history: int = 1) -> FlowDAS:
    return FlowDAS((3,), history, network=TINY, mean=LORENZ63_MEAN, std=LORENZ63_STD)


def test_config_round_trip_and_build():
    model = lorenz_model(history=2)
    cfg = model.config
    again = build_flowdas(cfg)
    assert again.config == cfg
    again.load_state_dict(model.state_dict())
    for key, value in model.state_dict().items():
        torch.testing.assert_close(again.state_dict()[key], value)
    assert set(model.state_dict()) >= {"mean", "std"}
    with pytest.raises(ValueError, match="unknown FlowDAS config keys"):
        FlowDAS.from_config({**cfg, "lead": 3})
    with pytest.raises(ValueError, match="does not broadcast"):
        FlowDAS((3,), mean=[0.0, 1.0])
    with pytest.raises(ValueError, match="std must be > 0"):
        FlowDAS((3,), std=[1.0, 0.0, 1.0])


def test_initialisation_is_deterministic_and_leaves_global_rng_alone():
    state = torch.random.get_rng_state()
    a, b = lorenz_model(), lorenz_model()
    assert torch.equal(torch.random.get_rng_state(), state)
    for key, value in a.state_dict().items():
        assert torch.equal(value, b.state_dict()[key])


def test_forecast_and_assimilate_shapes_and_units():
    model = lorenz_model()
    hist = torch.tensor([[1.0, 2.0, 20.0], [-5.0, -3.0, 30.0]])
    out = model.forecast(hist, lead=3, generators=stream_generators(0, range(2), 1), steps=5)
    assert out.shape == (2, 3, 3)
    assert not out.requires_grad
    # physical units: an untrained drift barely moves the state (initial output layer is small)
    assert float((out[:, 0] - hist).abs().max()) < 30
    obs = torch.zeros(2, 4)
    ana = model.assimilate(
        hist.unsqueeze(1),
        obs,
        lorenz63_operator(),
        generators=stream_generators(0, range(2), 1),
        steps=5,
        draws=3,
    )
    assert ana.shape == (2, 4, 3)
    assert torch.isfinite(ana).all()


def test_input_errors():
    model = lorenz_model(history=2)
    gens = stream_generators(0, range(2), 1)
    with pytest.raises(ValueError, match="history must have shape"):
        model.forecast(torch.zeros(2, 3), 1, gens)
    with pytest.raises(ValueError, match="generators"):
        model.forecast(torch.zeros(2, 2, 3), 1, gens[:1])
    with pytest.raises(ValueError, match="obs must have shape"):
        model.assimilate(
            torch.zeros(2, 2, 3), torch.zeros(2, 4, 2), lorenz63_operator(), generators=gens
        )
    with pytest.raises(ValueError, match="noise_std > 0"):
        model.assimilate(
            torch.zeros(2, 2, 3), torch.zeros(2, 4), Elementwise(components=0), generators=gens
        )
    with pytest.raises(ValueError, match="unknown guidance options"):
        model.assimilate(
            torch.zeros(2, 2, 3), torch.zeros(2, 4), lorenz63_operator(), generators=gens, step=3
        )


def test_rows_do_not_depend_on_batch_companions():
    model = lorenz_model()
    hist = torch.tensor([[1.0, 2.0, 20.0], [-5.0, -3.0, 30.0], [8.0, 8.0, 27.0]])
    obs = torch.tensor([[0.1, 0.2], [-0.5, -0.4], [0.7, 0.7]])
    full = model.assimilate(
        hist,
        obs,
        lorenz63_operator(),
        generators=stream_generators(7, range(3), 1),
        steps=6,
        draws=4,
    )
    alone = model.assimilate(
        hist[[2]],
        obs[[2]],
        lorenz63_operator(),
        generators=stream_generators(7, [2], 1),
        steps=6,
        draws=4,
    )
    torch.testing.assert_close(alone, full[[2]], rtol=1e-5, atol=1e-5)


def test_missing_observation_times_are_forecast_steps():
    model = lorenz_model()
    hist = torch.tensor([[1.0, 2.0, 20.0]])
    obs = torch.tensor([[float("nan"), 0.3, float("nan")]])
    out = model.assimilate(
        hist, obs, lorenz63_operator(), generators=stream_generators(0, [0], 1), steps=4, draws=2
    )
    assert torch.isfinite(out).all()


def test_training_is_deterministic():
    data = torch.cumsum(torch.randn(6, 30, 3, generator=torch.Generator().manual_seed(0)), 1)
    weights = []
    for _ in range(2):
        model = lorenz_model()
        res = train_assimilator(
            model, data, steps=15, eval_every=5, batch_size=8, progress=False, seed=4, ema=0.9
        )
        weights.append(model.state_dict())
        assert res.steps == 15
        assert len(res.history) == 3
    for key in weights[0]:
        assert torch.equal(weights[0][key], weights[1][key])


@pytest.fixture(scope="module")
def ar1_model():
    """A small FlowDAS trained on the AR(1) chain x' = 0.8 x + 0.5 xi, physical units 10 + 3 x."""
    g = torch.Generator().manual_seed(0)
    n, length = 64, 200
    x = torch.zeros(n, length, 1)
    x[:, 0] = 0.8 * torch.randn(n, 1, generator=g)
    for k in range(length - 1):
        x[:, k + 1] = 0.8 * x[:, k] + 0.5 * torch.randn(n, 1, generator=g)
    model = FlowDAS((1,), network={"width": 64, "blocks": 2}, mean=[10.0], std=[3.0])
    res = train_assimilator(
        model,
        10 + 3 * x,
        steps=700,
        batch_size=256,
        lr=3e-3,
        eval_every=100,
        patience=50,
        progress=False,
    )
    return model, res


def test_trained_forecast_reproduces_the_transition(ar1_model):
    model, res = ar1_model
    assert res.history[-1]["val_loss"] < res.history[0]["val_loss"]
    n = 2000
    hist = torch.full((n, 1), 13.0)  # x = 1 in normalised units
    out = model.forecast(hist, 1, stream_generators(0, range(n), 1), steps=100)[:, 0, 0]
    assert float(out.mean()) == pytest.approx(10 + 3 * 0.8, abs=0.25)
    assert float(out.std()) == pytest.approx(3 * 0.5, rel=0.2)


def test_trained_assimilation_moves_toward_kalman_posterior(ar1_model):
    model, _ = ar1_model
    n = 500
    hist = torch.full((n, 1), 13.0)
    gamma = 0.75  # physical units (0.25 normalised)
    y = 17.0  # physical; x = 7/3 normalised
    prior_mean, prior_var = 12.4, 1.5**2
    gain = prior_var / (prior_var + gamma**2)
    post_mean = prior_mean + gain * (y - prior_mean)
    op = Elementwise("identity", noise_std=gamma)
    obs = torch.full((n, 1, 1), y)
    free = model.forecast(hist, 1, stream_generators(0, range(n), 1), steps=100)
    guided = model.assimilate(
        hist, obs, op, generators=stream_generators(0, range(n), 1), steps=100, zeta=1e-3, draws=11
    )
    free_err = abs(float(free.mean()) - post_mean)
    guided_err = abs(float(guided.mean()) - post_mean)
    assert guided_err < 0.5 * free_err


def _spread_members(model: FlowDAS, members: int, obs: torch.Tensor, **kwargs):
    """Two trajectories x ``members`` rows, each member started at a different x (component 0)."""
    starts = torch.tensor([[-12.0 + 6.0 * m, 0.0, 25.0] for m in range(members)] * 2)
    gens = stream_generators(3, range(2), members)
    return model.assimilate(
        starts,
        obs.repeat_interleave(members, dim=0),
        Elementwise(components=0, noise_std=0.05),
        generators=gens,
        steps=4,
        members=members,
        zeta=0.0,
        **kwargs,
    )


def test_member_resampling_keeps_the_members_the_observation_favours():
    model = lorenz_model()
    obs = torch.tensor([[12.0, 12.0], [-12.0, -12.0]])  # trajectory 0 near x = 12, 1 near -12
    free = _spread_members(model, 5, obs)
    picked = _spread_members(model, 5, obs, resample_members=True)
    # without selection the members stay spread out; with it each trajectory keeps the member
    # whose analysis is nearest its observation (noise 0.05 makes the weights decisive)
    assert float(free[:5, 0, 0].std()) > 5
    for traj, target in ((0, 12.0), (1, -12.0)):
        rows = picked[5 * traj : 5 * (traj + 1), :, 0]
        nearest = free[5 * traj : 5 * (traj + 1), 0, 0].sub(target).abs().argmin()
        torch.testing.assert_close(rows[:, 0], free[5 * traj + nearest, 0, 0].expand(5))
        assert float((rows[:, 1] - target).abs().max()) < float(
            (free[5 * traj :, 1, 0] - target).abs().max()
        )
    again = _spread_members(model, 5, obs, resample_members=True)
    assert torch.equal(picked, again)


def test_member_resampling_skips_unobserved_times_and_checks_the_grouping():
    model = lorenz_model()
    obs = torch.tensor([[float("nan"), 12.0], [float("nan"), -12.0]])
    free = _spread_members(model, 4, obs)
    picked = _spread_members(model, 4, obs, resample_members=True)
    torch.testing.assert_close(picked[:, 0], free[:, 0])  # nothing observed: nothing selected
    assert float(picked[:4, 1, 0].std()) < 1e-3 < float(free[:4, 1, 0].std())
    with pytest.raises(ValueError, match="members=3 must divide the 8 rows"):
        model.assimilate(
            torch.zeros(8, 3),
            torch.zeros(8, 1),
            lorenz63_operator(),
            generators=stream_generators(0, range(8), 1),
            steps=2,
            members=3,
            resample_members=True,
        )


def test_member_resampling_replaces_members_that_diverged():
    model = lorenz_model()
    starts = torch.tensor([[1.0, 2.0, 20.0]] * 4)
    starts[1] = float("nan")  # a member already lost
    obs = torch.zeros(4, 2)
    kw = {"generators": stream_generators(0, [0], 4), "steps": 3, "members": 4, "draws": 2}
    with pytest.raises(FloatingPointError, match="non-finite states in rows \\[1\\]"):
        model.assimilate(starts, obs, lorenz63_operator(), **kw)
    out = model.assimilate(starts, obs, lorenz63_operator(), resample_members=True, **kw)
    assert torch.isfinite(out).all()
    starts[:] = float("nan")
    with pytest.raises(
        FloatingPointError, match="every member of trajectories \\[0\\] is non-finite"
    ):
        model.assimilate(starts, obs, lorenz63_operator(), resample_members=True, **kw)


def test_member_resampling_with_one_member_changes_nothing():
    model = lorenz_model()
    starts = torch.tensor([[1.0, 2.0, 20.0], [-5.0, -3.0, 30.0]])
    obs = torch.tensor([[0.1, 0.2], [-0.5, -0.4]])
    kw = {"generators": stream_generators(0, range(2), 1), "steps": 3, "members": 1, "draws": 2}
    plain = model.assimilate(starts, obs, lorenz63_operator(), **kw)
    for mode in (True, "predictive", "diverged"):
        kw["generators"] = stream_generators(0, range(2), 1)
        same = model.assimilate(starts, obs, lorenz63_operator(), resample_members=mode, **kw)
        assert torch.equal(plain, same), mode


THREE_STARTS = torch.tensor([[1.0, 2.0, 20.0], [-5.0, -3.0, 30.0], [8.0, 8.0, 27.0]])


def _three_members(
    model: FlowDAS, first: torch.Tensor, obs: torch.Tensor, mode: bool | str, members: int = 3
) -> torch.Tensor:
    """One trajectory of three rows (``members`` per trajectory), three SDE steps, two draws."""
    return model.assimilate(
        first,
        obs,
        lorenz63_operator(),
        generators=stream_generators(0, [0], 3),
        steps=3,
        members=members,
        draws=2,
        resample_members=mode,
    )


def test_replacing_only_diverged_members_leaves_the_others_alone():
    model = lorenz_model()
    starts = THREE_STARTS.clone()
    obs = torch.tensor([[0.1, 0.2, 0.3]]).repeat(3, 1)

    def run(first: torch.Tensor, mode: bool | str = "diverged") -> torch.Tensor:
        return _three_members(model, first, obs, mode)

    plain = run(starts, False)
    lost = starts.clone()
    lost[1] = float("nan")
    out = run(lost)
    torch.testing.assert_close(out[[0, 2]], plain[[0, 2]], rtol=1e-5, atol=1e-5)
    # the lost member restarts from a copy of a survivor's first analysis
    assert any(torch.allclose(out[1, 0], out[m, 0]) for m in (0, 2))
    assert torch.isfinite(out).all()
    # a member thrown far outside the training range (finite, but 1e6 training stds away) is lost
    far = starts.clone()
    far[1] = 1e7
    assert float(run(far).abs().max()) < 1e3
    with pytest.raises(ValueError, match="resample_members must be False"):
        run(starts, "all")


def test_predictive_member_resampling_draws_ancestors_by_the_predictive_likelihood(ar1_model):
    """Without guidance, each member restarts from an ancestor drawn with weight p(y | x_k).

    Prior members x_k ~ N(0, 1) (normalised), transition x' = 0.8 x + 0.5 xi, y = x' + noise
    0.25 observed at y = 2: the ancestors then follow p(x_k | y), of mean 0.8 * 2 / (0.64 +
    0.3125) = 1.68, so the analyses (fresh transitions from them) have mean 0.8 * 1.68 = 1.34;
    independent members keep the prior's 0.
    """
    model, _ = ar1_model
    members = 512
    prior = torch.randn(members, 1, generator=torch.Generator().manual_seed(5))
    hist = 10 + 3 * prior
    obs = torch.full((members, 1, 1), 10 + 3 * 2.0)
    op = Elementwise("identity", noise_std=3 * 0.25)

    def run(mode: bool | str) -> torch.Tensor:
        out = model.assimilate(
            hist,
            obs,
            op,
            generators=stream_generators(0, [0], members),
            steps=100,
            members=members,
            zeta=0.0,
            resample_members=mode,
        )
        return (out[:, 0, 0] - 10) / 3

    free, picked = run(False), run("predictive")
    assert abs(float(free.mean()) - 0.8 * float(prior.mean())) < 0.1
    assert float(picked.mean()) == pytest.approx(0.8 * 0.8 * 2 / (0.64 + 0.3125), abs=0.12)
    assert torch.equal(picked, run("predictive"))  # deterministic per seed


def test_predictive_member_resampling_skips_unobserved_times_and_lost_members():
    model = lorenz_model()
    starts = THREE_STARTS.clone()
    obs = torch.tensor([[float("nan"), 0.2, 0.3]]).repeat(3, 1)
    plain = _three_members(model, starts, obs, False)
    picked = _three_members(model, starts, obs, "predictive")
    torch.testing.assert_close(picked[:, 0], plain[:, 0])  # nothing observed: nothing drawn
    lost = starts.clone()
    lost[1] = float("nan")
    out = _three_members(model, lost, obs, "predictive")
    assert torch.isfinite(out).all()  # the lost member is replaced, then never an ancestor
    with pytest.raises(ValueError, match="members=2 must divide the 3 rows"):
        _three_members(model, starts, obs, "predictive", members=2)
