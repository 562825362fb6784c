"""FlowDAS on gridded (2-D) states: the U-Net drift, station observations, localised EnKF."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr

import xsfm
from xsfm.errors import InputError
from xsfm.models.flowdas import FlowDAS
from xsfm.observations import AveragePool, PointObservations, SparseMask
from xsfm.sampling.rng import stream_generators
from xsfm.testing import unchanged

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

NET = {"kind": "unet", "channels": 8, "channel_mult": [1, 2], "patch": 2}


def test_drift_unet_config_round_trips_and_checks_its_shape():
    m = FlowDAS((16, 16), history=2, network=NET)
    assert FlowDAS.from_config(m.config).config == m.config
    assert m.config["network"]["state_shape"] == [16, 16]
    with pytest.raises(ValueError, match="does not match"):
        FlowDAS((16, 16), history=2, network={**NET, "history": 3})
    with pytest.raises(ValueError, match="gridded states"):
        FlowDAS((3,), network={"kind": "unet"})


def test_rows_do_not_depend_on_which_rows_share_the_call():
    m = FlowDAS((16, 16), history=2, network=NET)
    torch.nn.init.normal_(m.net.unet.conv_out.weight, std=0.1, generator=torch.Generator())
    hist = torch.randn(3, 2, 16, 16, generator=torch.Generator().manual_seed(1))
    together = m.forecast(hist, 2, stream_generators(0, [0, 1, 2], 1), steps=4, min_rows=32)
    alone = m.forecast(hist[1:2], 2, stream_generators(0, [1], 1), steps=4, min_rows=32)
    assert torch.equal(together[1:2], alone)


@pytest.fixture(scope="module")
def tiny():
    ds = xsfm.datasets.kolmogorov(6, 16, times=6, interval=0.5, spinup=2.0, seed=0)
    model = xsfm.training.fit_assimilator(
        ds.vorticity, ["y", "x"], history=2, network=NET, sampler={"steps": 4},
        steps=4, eval_every=2, batch_size=4, progress=False,
    )  # fmt: skip
    model.card.extra["periodic"] = True
    test = xsfm.datasets.kolmogorov(2, 16, times=5, interval=0.5, spinup=2.0, split="test")
    return model, test.vorticity


def _stations(truth: xr.DataArray, n: int = 5) -> xr.DataArray:
    rng = np.random.default_rng(0)
    pos = rng.uniform(0, 2 * np.pi, size=(n, 2))
    op = PointObservations(pos, y=truth.y.values, x=truth.x.values, periodic=True)
    values = op(torch.tensor(truth.values)).numpy()
    values[0, 1, 2] = np.nan  # a station that did not report
    return xr.DataArray(
        values,
        dims=("sample", "time", "station"),
        coords={
            "sample": truth.sample.values,
            "time": truth.time.values,
            "y": ("station", pos[:, 0]),
            "x": ("station", pos[:, 1]),
        },
        attrs={"units": "s-1", "observation_noise_std": 0.5},
        name="vorticity",
    )


def test_station_observations_assimilate_and_pair_by_label(tiny):
    model, vort = tiny
    state, truth = vort.isel(time=[0, 1]), vort.isel(time=slice(2, None))
    obs = _stations(truth)
    with unchanged(state), unchanged(obs):
        a = state.sfm.assimilate(obs, model=model, members=2, progress=False)
    assert a.vorticity.dims == ("member", "sample", "time", "y", "x")
    assert a.sizes["time"] == 3 and bool(a.observed.all())
    b = state.sfm.assimilate(obs.isel(sample=[1, 0]), model=model, members=2, progress=False)
    np.testing.assert_array_equal(a.vorticity.values, b.vorticity.values)
    swapped = obs.assign_coords(sample=obs.sample.values[::-1])
    c = state.sfm.assimilate(swapped, model=model, members=2, progress=False)
    assert not np.array_equal(a.vorticity.values, c.vorticity.values)


def test_station_outside_a_bounded_grid_is_refused(tiny):
    model, vort = tiny
    state, truth = vort.isel(time=[0, 1]), vort.isel(time=slice(2, None))
    obs = _stations(truth).assign_coords(x=("station", [0.0, 1.0, 2.0, 3.0, 9.0]))
    model.card.extra["periodic"] = False
    try:
        with pytest.raises(InputError, match="outside"):
            state.sfm.assimilate(obs, model=model, members=2, progress=False)
    finally:
        model.card.extra["periodic"] = True


def test_station_observations_need_their_noise(tiny):
    model, vort = tiny
    state, truth = vort.isel(time=[0, 1]), vort.isel(time=slice(2, None))
    obs = _stations(truth)
    del obs.attrs["observation_noise_std"]
    with pytest.raises(InputError, match="noise"):
        state.sfm.assimilate(obs, model=model, members=2, progress=False)


@pytest.mark.parametrize(
    ("op", "expected"),
    [
        (AveragePool(4), [[1.5, 1.5], [1.5, 5.5]]),
        (SparseMask((8, 8), 0.05, seed=0), None),
        (PointObservations([[7.5, 0.25]], periodic=True), [[7.5, 0.25]]),
    ],
)
def test_operators_say_where_they_look(op, expected):
    pos = op.positions((8, 8))
    assert pos.shape == (int(np.prod(op.output_shape((8, 8)))), 2)
    if expected is not None:
        np.testing.assert_allclose(pos[: len(expected)], expected)
    else:  # the mask's positions are the grid indices of its observed pixels
        mask = op.mask.numpy()
        assert mask[pos[:, 0].astype(int), pos[:, 1].astype(int)].all()


def test_localised_enkf_on_pooled_observations_from_the_accessor(tiny):
    _, vort = tiny
    state, truth = vort.isel(time=[1]), vort.isel(time=slice(2, None))
    op = AveragePool(4)
    y = op(torch.tensor(truth.values)).numpy()
    obs = xr.DataArray(
        y, dims=("sample", "time", "oy", "ox"),
        coords={"sample": truth.sample.values, "time": truth.time.values},
        attrs={"units": "s-1", "observation_noise_std": 0.3, "observation_operator": op.to_json()},
    )  # fmt: skip

    def transition(x, noise):
        return x + 0.5 * noise

    out = state.sfm.assimilate(
        obs, method="enkf", transition=transition, members=8, localisation=2.0, period=16, time_step=0.5,
        progress=False,
    )  # fmt: skip
    pooled = op(torch.tensor(out.vorticity.mean("member").values)).numpy()
    prior = op(torch.tensor(np.broadcast_to(state.values, truth.shape).copy())).numpy()
    assert np.abs(pooled - y).mean() < np.abs(prior - y).mean()


def test_shipped_kolmogorov_flowdas_forecasts_and_assimilates():
    card = xsfm.load_model("kolmogorov-flowdas").card
    assert card.grids["state_dims"] == ["y", "x"] and card.extra["periodic"] is True
    flow = xsfm.datasets.kolmogorov(1, 64, times=5, interval=0.5, split="test", seed=7)
    state, truth = flow.vorticity.isel(time=[0, 1]), flow.vorticity.isel(time=slice(2, None))
    fc = state.sfm.forecast(model="kolmogorov-flowdas", lead=3, members=2, progress=False)
    err_fc = np.sqrt(((fc.vorticity.mean("member").values - truth.values) ** 2).mean((0, 2, 3)))
    persistence = np.sqrt(((state.values[:, -1:] - truth.values) ** 2).mean((0, 2, 3)))
    assert (err_fc < 0.5 * persistence).all()
    op = AveragePool(4)
    obs = xr.DataArray(
        op(torch.tensor(truth.values)).numpy(), dims=("sample", "time", "oy", "ox"),
        coords={"sample": truth.sample.values, "time": truth.time.values},
        attrs={"units": "s-1", "observation_noise_std": 0.25, "observation_operator": op.to_json()},
    )  # fmt: skip
    ana = state.sfm.assimilate(obs, model="kolmogorov-flowdas", members=2, progress=False)
    err_ana = np.sqrt(((ana.vorticity.mean("member").values - truth.values) ** 2).mean((0, 2, 3)))
    assert err_ana[-1] < err_fc[-1]
