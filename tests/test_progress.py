"""Progress bars on long eager calls; silenced by ``progress=False``; none inside dask tasks."""

from __future__ import annotations

import pytest

import xsfm
from xsfm.datasets.lorenz import lorenz63_transition


@pytest.fixture(scope="module")
def coarse():
    return xsfm.load_model("kolmogorov-sfm").example_input().isel(sample=slice(0, 3))


def test_downscale_shows_progress_over_samples(coarse, capsys):
    coarse.sfm.downscale(model="kolmogorov-sfm", members=2, steps=2, progress=True)
    err = capsys.readouterr().err
    assert "downscale" in err and "3/3" in err and "sample" in err
    coarse.sfm.downscale(model="kolmogorov-sfm", members=2, steps=2, progress=False)
    assert capsys.readouterr().err == ""
    coarse.chunk(sample=1).sfm.downscale(model="kolmogorov-sfm", members=2, progress=True)
    assert capsys.readouterr().err == ""  # lazy: nothing runs, nothing to show


@pytest.mark.parametrize("method", ["flowdas", "enkf", "bpf"])
def test_assimilate_and_forecast_show_progress_over_steps(method, capsys):
    ds = xsfm.datasets.lorenz63(trajectories=2, steps=4, seed=1, burn_in=16)
    x0 = ds.state.isel(time=[0])
    kw = {"steps": 5} if method == "flowdas" else {"transition": lorenz63_transition()}
    x0.sfm.assimilate(ds.obs, method=method, members=4, progress=True, **kw)
    err = capsys.readouterr().err
    assert "assimilate" in err and "4/4" in err
    x0.sfm.assimilate(ds.obs, method=method, members=4, progress=False, **kw)
    assert capsys.readouterr().err == ""
    if method == "flowdas":
        x0.sfm.forecast(lead=3, members=2, steps=5, progress=True)
        assert "3/3" in capsys.readouterr().err


def test_tqdm_disable_silences_the_default(coarse, capsys, monkeypatch):
    from xsfm.progress import show_progress

    monkeypatch.setenv("TQDM_DISABLE", "1")
    assert show_progress(None) is False and show_progress(True) is True
    coarse.sfm.downscale(model="kolmogorov-sfm", members=2, steps=2)
    assert capsys.readouterr().err == ""
