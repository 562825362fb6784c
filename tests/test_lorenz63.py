from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from xsfm.datasets.lorenz import (
    LORENZ63_MEAN,
    LORENZ63_STD,
    lorenz63,
    lorenz63_operator,
    lorenz63_rhs,
    lorenz63_transition,
    noisy_rk4_step,
    rk4_step,
    simulate,
)
from xsfm.observations import from_dict


@pytest.fixture(scope="module")
def ds():
    return lorenz63(trajectories=16, steps=200, seed=0, burn_in=256)


def test_structure_and_attrs(ds):
    assert ds.state.dims == ("trajectory", "time", "component")
    assert ds.obs.dims == ("trajectory", "time")
    assert ds.sizes == {"trajectory": 16, "time": 201, "component": 3}
    assert list(ds.time.values[:3]) == [0, 1, 2]
    np.testing.assert_allclose(ds.model_time.values[:3], [0.0, 0.025, 0.05])
    assert list(ds.component.values) == ["x", "y", "z"]
    for name in ("state", "obs"):
        for key in ("units", "standard_name", "long_name"):
            assert key in ds[name].attrs
    assert ds.obs.isel(time=0).isnull().all()
    assert not ds.obs.isel(time=slice(1, None)).isnull().any()
    assert not ds.state.isnull().any()
    op = from_dict(json.loads(ds.obs.attrs["observation_operator"]))
    assert op == lorenz63_operator(0.25)
    assert ds.obs.attrs["observation_noise_std"] == 0.25
    assert ds.attrs["model_noise_variance"] == 0.025


def test_model_noise_and_observation_noise(ds):
    x = torch.from_numpy(ds.state.values)
    residual = x[:, 1:] - rk4_step(x[:, :-1], 0.025)
    var = residual.var(dim=(0, 1))
    torch.testing.assert_close(var, torch.full((3,), 0.025, dtype=var.dtype), rtol=0.06, atol=0)
    y = torch.from_numpy(ds.obs.values[:, 1:])
    obs_residual = y - torch.atan(x[:, 1:, 0] / 8.0)
    assert float(obs_residual.std()) == pytest.approx(0.25, rel=0.05)


def test_on_the_attractor_with_paper_normalisation():
    x, _ = simulate(64, 500, seed=1, burn_in=1024)
    std = x.std(dim=(0, 1))
    # FlowDAS normalises by (8, 9, 8.6) around (0, 0, 25): close to the attractor's statistics
    torch.testing.assert_close(std, torch.tensor(LORENZ63_STD, dtype=std.dtype), rtol=0.1, atol=0)
    assert abs(float(x[..., 2].mean()) - LORENZ63_MEAN[2]) < 2.5
    assert abs(float(x[..., 0].mean())) < 1.5


def test_reproducible_and_independent_of_trajectory_count():
    a, ya = simulate(5, 20, seed=3, burn_in=50)
    b, yb = simulate(2, 20, seed=3, burn_in=50, first_trajectory=3)
    torch.testing.assert_close(a[3:], b, rtol=0, atol=0)
    torch.testing.assert_close(ya[3:], yb, rtol=0, atol=0)
    c, _ = simulate(5, 20, seed=4, burn_in=50)
    assert not torch.equal(a, c)
    # a shorter run is a prefix of a longer one (same burn-in)
    ds1 = lorenz63(trajectories=3, steps=4, seed=3, burn_in=50)
    np.testing.assert_array_equal(ds1.state.values, a[:3, :5].numpy())
    np.testing.assert_array_equal(ds1.obs.values[:, 1:], ya[:3, :4].numpy())


def test_transition_numpy_and_torch_agree():
    x = np.array([[1.0, 2.0, 20.0], [-5.0, 3.0, 30.0]])
    z = np.array([[0.1, -0.2, 0.3], [1.0, 0.0, -1.0]])
    np.testing.assert_allclose(
        noisy_rk4_step(x, z), noisy_rk4_step(torch.from_numpy(x), torch.from_numpy(z)).numpy()
    )
    np.testing.assert_allclose(lorenz63_transition()(x, z), noisy_rk4_step(x, z))
    # RK4 is 4th order: halving dt twice matches one step closely
    one = rk4_step(x, 0.01)
    two = rk4_step(rk4_step(x, 0.005), 0.005)
    np.testing.assert_allclose(one, two, rtol=1e-6)
    np.testing.assert_allclose(lorenz63_rhs(np.array([1.0, 1.0, 1.0])), [0.0, 26.0, -1 - 2 / 3])


def test_invalid_arguments():
    with pytest.raises(ValueError, match="trajectories"):
        lorenz63(trajectories=0)


def test_datasets_are_plain_functions_and_stay_light():
    code = (
        "import sys, types, xsfm.datasets; assert 'torch' not in sys.modules; "
        "from xsfm.datasets.lorenz import lorenz63_transition; "
        "assert xsfm.datasets.lorenz63_transition is lorenz63_transition; "
        "assert isinstance(xsfm.datasets.lorenz63, types.FunctionType); "
        "assert type(xsfm.datasets) is types.ModuleType; "
        "assert xsfm.datasets.lorenz63(trajectories=1, steps=1, burn_in=1).sizes['time'] == 2"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
