"""The held-out calibration check of trained downscalers (xsfm.training.calibration)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr

import xsfm
from xsfm.training.calibration import ensemble_calibration

TINY = {"unet": {"channels": 4, "channel_mult": [1], "num_blocks": 1}}


def _smooth(n: int, m: int, size: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    e = torch.randn(n, m, 1, size, size, generator=g)
    k = torch.fft.fftfreq(size)
    gain = 1 / (1 + (k[:, None] ** 2 + k[None, :] ** 2).sqrt() / 0.1)
    return torch.fft.ifft2(torch.fft.fft2(e) * gain).real


def test_exchangeable_truth_is_calibrated_at_every_scale() -> None:
    draws = _smooth(48, 13, 32, 0)  # truth = member 0 of the same distribution
    out = ensemble_calibration(draws[:, 1:], draws[:, 0])
    assert out["ssr"] == pytest.approx(1.0, abs=0.05)
    assert out["octaves"] == [[1, 2], [2, 4], [4, 8], [8, 16]]
    np.testing.assert_allclose(out["ssr_by_octave"], 1.0, atol=0.1)
    assert out["outside_fraction"] == pytest.approx(2 / 13, abs=0.02)


def test_missing_large_scale_spread_shows_in_its_octaves() -> None:
    draws = _smooth(48, 13, 32, 1)
    truth, members = draws[:, 0], draws[:, 1:]
    # shrink the members' deviations at wavenumbers below 4 only
    mean = members.mean(dim=1, keepdim=True)
    k = torch.fft.fftfreq(32) * 32
    low = ((k[:, None] ** 2 + k[None, :] ** 2).sqrt() < 4).double()
    dev = torch.fft.ifft2(torch.fft.fft2(members - mean) * (1 - 0.7 * low)).real
    out = ensemble_calibration(mean + dev, truth)
    ratios = out["ssr_by_octave"]
    assert ratios[0] < 0.6 and ratios[1] < 0.6  # [1, 2), [2, 4): under-dispersed
    assert ratios[3] == pytest.approx(1.0, abs=0.15)  # small scales untouched
    assert out["ssr"] < 0.9


def _pairs(n: int = 24) -> tuple[xr.Dataset, xr.Dataset]:
    rng = np.random.default_rng(0)
    coarse = xr.Dataset(
        {"t": (("time", "y", "x"), rng.normal(280, 3, (n, 4, 4)).astype("f4"), {"units": "K"})},
        coords={"time": np.arange(n), "y": np.arange(4) * 2.0, "x": np.arange(4) * 2.0},
    )
    fine = xr.Dataset(
        {"t": (("time", "y", "x"), rng.normal(280, 3, (n, 8, 8)).astype("f4"), {"units": "K"})},
        coords={"time": np.arange(n), "y": np.arange(8) - 0.5, "x": np.arange(8) - 0.5},
    )
    for ds in (coarse, fine):
        ds["y"].attrs.update(axis="Y", units="km")
        ds["x"].attrs.update(axis="X", units="km")
    return coarse, fine


def test_fit_downscaler_records_the_check_of_held_out_pairs() -> None:
    coarse, fine = _pairs()
    kw = {"steps": 3, "batch_size": 4, "progress": False, "val_fraction": 0.25, "network": TINY}
    net = {**TINY, "sampler": {"steps": 3}}
    with pytest.warns(UserWarning, match="held-out spread-skill ratio"):
        model = xsfm.training.fit_downscaler(
            coarse, fine, method="sfm", calibration_pairs=4, **{**kw, "network": net}
        )
    check = model.card.training["calibration_check"]
    assert check["pairs"] == 4 and check["members"] == 8
    assert check["sampler"]["steps"] == 3
    assert len(check["ssr_by_octave"]) == 2 and check["ssr"] > 0
    # the card stays JSON and the check survives a round trip
    assert (
        xsfm.models.card.ModelCard.from_dict(model.card.to_dict()).training == model.card.training
    )
    plain = xsfm.training.fit_downscaler(
        coarse, fine, method="regression", calibration_pairs=4, **kw
    )
    assert "calibration_check" not in plain.card.training  # deterministic: nothing to calibrate


def test_bad_calibration_pairs_is_refused_before_training() -> None:
    coarse, fine = _pairs()
    with pytest.raises(ValueError, match="calibration_pairs must be >= 0"):
        xsfm.training.fit_downscaler(coarse, fine, calibration_pairs=-1, steps=10**9)
    with pytest.raises(TypeError, match="calibration_pairs must be an integer"):
        xsfm.training.fit_downscaler(coarse, fine, calibration_pairs=True, steps=10**9)


@pytest.fixture(scope="module")
def tiny_sfm():
    coarse, fine = _pairs(48)
    model = xsfm.training.fit_downscaler(
        coarse.isel(time=slice(0, 32)), fine.isel(time=slice(0, 32)), method="sfm",
        network={**TINY, "sampler": {"solver": "euler", "steps": 4}}, steps=20, batch_size=8,
        progress=False,
    )  # fmt: skip
    return model, coarse.isel(time=slice(32, 48)), fine.isel(time=slice(32, 48))


def test_calibrate_spread_reaches_the_target_on_held_out_pairs(tiny_sfm) -> None:
    model, coarse, fine = tiny_sfm
    before = model.network().config["sigma_z_scale"]
    out = xsfm.training.calibrate_spread(model, coarse, fine, members=8, tolerance=0.05)
    record = out.card.training["spread_calibration"]
    scale = record["sigma_z_scale"]
    assert out.network().config["sigma_z_scale"] == scale != 1.0
    assert model.network().config["sigma_z_scale"] == before == 1.0  # input model unchanged
    assert record["pairs"] == 16 and record["members"] == 8 and len(record["trials"]) >= 2
    # an independent measurement with the returned model gives the recorded, calibrated ratio
    ens = coarse.sfm.downscale(model=out, members=8, seed=0, progress=False)
    ssr = float(xsfm.metrics.spread_skill_ratio(ens["t"], fine["t"]))
    assert ssr == pytest.approx(1.0, abs=0.05)
    assert ssr == pytest.approx(min(record["trials"], key=lambda t: abs(t["ssr"] - 1))["ssr"])
    # sigma_z itself (the encoder's held-out RMSE) is untouched; only sampling is scaled
    torch.testing.assert_close(out.network().sigma_z, model.network().sigma_z)
    torch.testing.assert_close(out.network().sampling_sigma_z, model.network().sigma_z * scale)


def test_calibrate_spread_refuses_what_it_cannot_calibrate(tiny_sfm) -> None:
    model, coarse, fine = tiny_sfm
    with pytest.raises(ValueError, match="fine truth lacks the model's output"):
        xsfm.training.calibrate_spread(model, coarse, fine.rename(t="temp"))
    regression = xsfm.training.fit_downscaler(
        coarse, fine, method="regression", steps=2, batch_size=4, progress=False
    )
    with pytest.raises(ValueError, match="no adaptive sigma_z"):
        xsfm.training.calibrate_spread(regression, coarse, fine)
    with pytest.raises(ValueError, match="no sigma_z_scale brought"):
        xsfm.training.calibrate_spread(model, coarse, fine, members=4, max_iterations=1, target=3.0)
