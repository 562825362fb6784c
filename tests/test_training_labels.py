"""Training from xarray: samples paired by label; FlowDAS end to end (train, save, register, assimilate)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr

import xsfm
from xsfm.datasets.lorenz import lorenz63_operator
from xsfm.errors import InputError


def _field(n: int, size: int, seed: int) -> xr.Dataset:
    xy = (np.arange(size) + 0.5) / size
    values = np.random.default_rng(seed).normal(size=(n, size, size))
    return xr.Dataset(
        {"w": (("time", "y", "x"), values, {"units": "s-1"})},
        coords={
            "time": np.arange(n) * 10,
            "y": ("y", xy, {"axis": "Y", "units": "m"}),
            "x": ("x", xy, {"axis": "X", "units": "m"}),
        },
    )


def _fit(coarse: xr.Dataset, fine: xr.Dataset) -> dict[str, torch.Tensor]:
    model = xsfm.training.fit_downscaler(
        coarse, fine, method="regression", steps=3, batch_size=4, progress=False, seed=1
    )
    return {k: v.clone() for k, v in model.network("cpu").state_dict().items()}


def test_fit_downscaler_pairs_samples_by_label():
    coarse, fine = _field(8, 4, 0), _field(8, 8, 1)
    aligned = _fit(coarse, fine)
    reversed_ = _fit(coarse, fine.isel(time=slice(None, None, -1)))
    for key in aligned:
        torch.testing.assert_close(aligned[key], reversed_[key], rtol=0, atol=0)
    # positions alone would pair differently: relabelling the reversed samples changes the model
    wrong = _fit(coarse, fine.isel(time=slice(None, None, -1)).assign_coords(time=fine.time))
    assert any(not torch.equal(aligned[k], wrong[k]) for k in aligned)


def test_fit_downscaler_refuses_unpaired_samples():
    coarse, fine = _field(8, 4, 0), _field(8, 8, 1)
    with pytest.raises(InputError, match=r"2 coarse sample\(s\) have no fine partner"):
        xsfm.training.fit_downscaler(coarse, fine.isel(time=slice(0, 6)), steps=1, progress=False)


@pytest.fixture(scope="module")
def tiny_flowdas():
    ds = xsfm.datasets.lorenz63(trajectories=6, steps=30, burn_in=64, seed=2)
    model = xsfm.training.fit_assimilator(
        ds.state,
        ["component"],
        name="tiny-l63",
        network={"width": 16, "blocks": 1},
        observation_operator=lorenz63_operator(0.25),
        steps=20,
        batch_size=32,
        eval_every=10,
        progress=False,
    )
    return ds, model


def test_fit_assimilator_end_to_end(tiny_flowdas, tmp_path):
    ds, model = tiny_flowdas
    card = model.card
    assert card.kind == "assimilation"
    assert card.grids["time_step"] == 1
    assert card.grids["component"] == ["x", "y", "z"]
    assert card.inputs[0]["units"] == ds.state.attrs["units"]
    model.save(tmp_path / "tiny")
    xsfm.register_model("tiny-l63-test", tmp_path / "tiny")
    assert "tiny-l63-test" in xsfm.list_models()
    test = xsfm.datasets.lorenz63(trajectories=2, steps=3, burn_in=64, seed=9)
    ana = test.state.isel(time=[0]).sfm.assimilate(
        test.obs.drop_attrs(), model="tiny-l63-test", members=2, steps=10
    )
    assert ana["state"].dims == ("member", "trajectory", "time", "component")
    assert np.isfinite(ana["state"].values).all()
    assert "tiny-l63" in ana.attrs["source"]
    again = xsfm.load_model("tiny-l63-test")
    torch.testing.assert_close(
        again.network("cpu").state_dict()["mean"], model.network("cpu").state_dict()["mean"]
    )


def test_fit_assimilator_reads_the_time_step_and_refuses_uneven_times():
    ds = xsfm.datasets.lorenz63(trajectories=2, steps=6, burn_in=64)
    with pytest.raises(InputError, match="evenly spaced"):
        xsfm.training.fit_assimilator(
            ds.state.isel(time=[0, 1, 2, 4, 5]), ["component"], steps=1, progress=False
        )
    with pytest.raises(InputError, match="no dim 'comp'"):
        xsfm.training.fit_assimilator(ds.state, ["comp"], steps=1, progress=False)


def test_cli_trains_both_kinds_on_own_files(tmp_path, capsys):
    from xsfm.cli import main

    coarse, fine = _field(8, 4, 0), _field(8, 8, 1)
    coarse.to_netcdf(tmp_path / "coarse.nc")
    fine.isel(time=slice(None, None, -1)).to_zarr(tmp_path / "fine.zarr")
    args = ["train", "regression", "--coarse", str(tmp_path / "coarse.nc")]
    args += ["--fine", str(tmp_path / "fine.zarr"), "--out", str(tmp_path / "ds-model")]
    args += ["--set", "batch_size=4", "--set", "progress=false", "--steps", "2"]
    assert main(args) == 0
    model = xsfm.load_model(tmp_path / "ds-model")
    assert model.card.kind == "downscaling"
    out = coarse.isel(time=[0]).sfm.downscale(model=model, members=1)
    assert out["w"].sizes["x"] == 8

    traj = xsfm.datasets.lorenz63(trajectories=4, steps=20, burn_in=64)
    traj[["state"]].to_zarr(tmp_path / "traj.zarr")
    args = ["train", "flowdas", "--data", str(tmp_path / "traj.zarr"), "--state-dim", "component"]
    args += ["--out", str(tmp_path / "da-model"), "--steps", "5", "--name", "cli-l63"]
    args += ["--set", 'network={"width": 8, "blocks": 1}', "--set", "progress=false"]
    args += ["--set", "eval_every=5"]
    assert main(args) == 0
    flowdas = xsfm.load_model(tmp_path / "da-model")
    assert (flowdas.name, flowdas.card.grids["time_step"]) == ("cli-l63", 1)

    traj.state.isel(time=[0]).to_netcdf(tmp_path / "x0.nc")
    traj.obs.isel(time=[3, 1]).to_netcdf(tmp_path / "obs.nc")
    args = ["assimilate", str(tmp_path / "x0.nc"), str(tmp_path / "obs.nc"), str(tmp_path / "a.nc")]
    args += ["--model", "lorenz63-flowdas", "--members", "2", "--steps", "10"]
    assert main(args) == 0
    with xr.open_dataset(tmp_path / "a.nc") as ana:
        assert ana["time"].values.tolist() == [1, 2, 3]
        assert ana["observed"].values.tolist() == [True, False, True]
    assert main(["train", "flowdas", "--data", str(tmp_path / "traj.zarr"), "--out", "x"]) != 0
