"""``xsfm demo`` on the shipped default model (README command 1 runs it)."""

from __future__ import annotations

import xarray as xr

import xsfm
from xsfm.api import DEFAULT_DOWNSCALING_MODEL
from xsfm.demo import run_demo


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
