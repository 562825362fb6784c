"""``xsfm demo`` on the shipped default model (README command 1 runs it)."""

from __future__ import annotations

import xarray as xr

import xsfm
from xsfm.demo import run_demo
from xsfm.downscaling import DEFAULT_DOWNSCALING_MODEL


def test_default_model_ships_with_weights_and_example():
    assert DEFAULT_DOWNSCALING_MODEL in xsfm.list_models()
    m = xsfm.load_model(DEFAULT_DOWNSCALING_MODEL)
    assert m.card.method == "sfm"
    assert m.card.training["command"].startswith("xsfm train sfm --preset kolmogorov")
    assert "held_out" in m.card.metrics
    m.network("cpu")  # weights present and their sha256 matches the card


def test_demo_writes_outputs_and_beats_interpolation(tmp_path, capsys):
    results = run_demo(tmp_path, members=4)
    printed = capsys.readouterr().out
    assert "spread-skill ratio" in printed
    assert (tmp_path / "demo.png").stat().st_size > 10_000
    fine = xr.open_dataset(tmp_path / "downscaled.nc")
    assert fine["vorticity"].dims == ("member", "sample", "y", "x")
    assert fine["vorticity"].attrs["units"] == "s-1"
    assert fine.sizes["member"] == 4
    assert results["rmse"] < results["rmse_interpolation"]
    assert 0 < results["crps"] < results["rmse_interpolation"]


def test_baselines_the_study_compares_against_ship_too():
    from xsfm.xr.examples import example_truth

    for method in ("regression", "cfm", "edm", "corrdiff"):
        m = xsfm.load_model(f"kolmogorov-{method}")
        assert m.card.method == method
        assert m.card.training["command"].startswith(f"xsfm train {method} --preset kolmogorov")
        assert m.card.training["data"]["tau"] == 2.0
        assert "kolmogorov_study.py" in m.card.metrics["held_out"]["protocol"]
        coarse = m.example_input().isel(sample=slice(0, 2))
        out = coarse.sfm.downscale(model=m, members=2, steps=3, seed=0)["vorticity"]
        truth = example_truth(m)["vorticity"].isel(sample=slice(0, 2))
        assert out.attrs["units"] == "s-1" and out.shape == (2, 2, *truth.shape[1:])
        spread = float(out.std("member").mean())
        assert (spread == 0.0) == (method == "regression")  # only regression is deterministic
