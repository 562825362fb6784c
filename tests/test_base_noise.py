"""SFM's spectrally shaped base noise (``base_noise="spectral"``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import xsfm
from xsfm.models.downscaling import build_downscaler
from xsfm.models.downscaling.base_noise import (
    BANDS,
    band_index,
    band_power,
    fill_empty_bands,
    shape_noise,
)
from xsfm.sampling.rng import stream_generators
from xsfm.training.downscaling import train_downscaler

TINY = {"channels": 4, "channel_mult": [1], "num_blocks": 1}


def _red(n: int, size: int, seed: int) -> torch.Tensor:
    """Fields whose power falls off with wavenumber (smoothed white noise)."""
    g = torch.Generator().manual_seed(seed)
    e = torch.randn(n, 1, size, size, generator=g)
    k = torch.fft.fftfreq(size)
    gain = 1 / (1 + ((k[:, None] ** 2 + k[None, :] ** 2).sqrt() / 0.05) ** 2)
    return torch.fft.ifft2(torch.fft.fft2(e) * gain).real


def test_bands_are_half_octaves_of_cycles_per_pixel() -> None:
    idx = band_index(64, 64)
    assert idx[0, 0] == 0  # the mean
    # f = 1/64 = 2^-6 opens band 2 * -6 + 17 = 5; f = 2^-5 band 7; f = 0.5 band 15
    assert (idx[0, 1], idx[0, 2], idx[0, 32]) == (5, 7, 15)
    assert idx[1, 1] == 6  # f = sqrt(2)/64 = 2^-5.5
    # the same frequency falls in the same band on another grid
    assert band_index(128, 128)[0, 2] == idx[0, 1]
    # the half (rfft) layout agrees with the full one on its columns
    assert torch.equal(band_index(16, 12, half=True), band_index(16, 12)[:, :7])


def test_band_power_obeys_parseval() -> None:
    e = _red(8, 32, 0)
    power, count = band_power(e)
    weighted = (power[0] * count).sum() / count.sum()
    assert float(weighted) == pytest.approx(float(e.double().pow(2).mean()), rel=1e-9)
    assert int(count.sum()) == 32 * 32


def test_shaped_noise_has_unit_variance_and_the_amplitudes_shape() -> None:
    eps = torch.randn(512, 1, 32, 32, generator=torch.Generator().manual_seed(1))
    amp = torch.linspace(3.0, 0.1, BANDS)[None, :]
    out = shape_noise(eps, amp)
    assert float(out.var()) == pytest.approx(1.0, rel=0.03)
    power, count = band_power(out)
    seen = count > 0
    ratio = power[0, seen] / amp[0, seen].double() ** 2
    # power proportional to amplitude^2 in every band (one common factor)
    assert float(ratio.std() / ratio.mean()) < 0.1
    # each field is shaped on its own: a result does not depend on the batch around it
    torch.testing.assert_close(shape_noise(eps[3:4], amp)[0], out[3])


def test_fill_empty_bands_takes_the_nearest_measured_band() -> None:
    amp = torch.arange(BANDS, dtype=torch.float64)[None, :]
    seen = torch.zeros(BANDS, dtype=torch.bool)
    seen[[0, 9, 12]] = True
    filled = fill_empty_bands(amp, seen)[0].tolist()
    assert filled[:5] == [0, 0, 0, 0, 0]
    assert filled[5:11] == [9, 9, 9, 9, 9, 9]
    assert filled[11:] == [12] * 6


def test_training_measures_the_encoders_error_spectrum() -> None:
    # x = y + red noise: the encoder (1x1 conv) learns the identity, its error is the red noise,
    # and the amplitude per band must follow that noise's spectrum, not a flat one.
    n, size = 96, 16
    g = torch.Generator().manual_seed(2)
    y = torch.randn(n, 1, size, size, generator=g)
    noise = 3 * _red(n, size, 3)
    x = y + noise
    m = build_downscaler(
        {"method": "sfm", "factor": 1, "base_noise": "spectral", "sigma_z_ema": 0.8, "unet": TINY}
    )
    res = train_downscaler(
        m, y, x, steps=150, batch_size=16, lr=5e-2, sigma_z_every=1, val_fraction=0.5,
        progress=False,
    )  # fmt: skip
    amp = res.module.noise_band_amplitude[0].double()
    std = float(res.module.out_std)
    truth, count = band_power(noise / std)
    seen = count > 0
    np.testing.assert_allclose(amp[seen] ** 2, truth[0, seen], rtol=0.3)
    assert float(amp[7] / amp[15]) > 5  # red: much more at the large scales
    # the base sample's spectrum follows the error's (up to sigma_z, the overall RMSE)
    eps = torch.randn(256, 1, size, size, generator=torch.Generator().manual_seed(4))
    base = res.module.sigma_z * res.module.base_noise_sample(eps)
    p_base, _ = band_power(base)
    np.testing.assert_allclose(p_base[0, 5:], truth[0, 5:], rtol=0.35)


def test_spectral_model_saves_loads_and_samples_the_same(tmp_path) -> None:
    import xarray as xr

    rng = np.random.default_rng(0)
    ny = nx = 8
    coarse = xr.Dataset(
        {"t": (("time", "y", "x"), rng.normal(280, 3, (24, ny, nx)).astype("f4"), {"units": "K"})},
        coords={"time": np.arange(24), "y": np.arange(ny) * 4.0, "x": np.arange(nx) * 4.0},
    )
    fine = xr.Dataset(
        {"t": (("time", "y", "x"), rng.normal(280, 3, (24, 16, 16)).astype("f4"), {"units": "K"})},
        coords={"time": np.arange(24), "y": np.arange(16) * 2.0 - 1, "x": np.arange(16) * 2.0 - 1},
    )
    for ds in (coarse, fine):
        ds["y"].attrs.update(axis="Y", units="km")
        ds["x"].attrs.update(axis="X", units="km")
    model = xsfm.training.fit_downscaler(
        coarse, fine, method="sfm", network={"base_noise": "spectral", "unet": TINY},
        steps=12, batch_size=4, progress=False,
    )  # fmt: skip
    net = model.network("cpu")
    assert net.base_noise == "spectral"
    assert int(net.noise_band_updates) > 0
    path = model.save(tmp_path / "m")
    loaded = xsfm.load_model(path).network("cpu")
    assert torch.equal(loaded.noise_band_amplitude, net.noise_band_amplitude)
    c = torch.randn(2, 1, ny, nx) + 280
    gens = lambda: stream_generators(0, [0, 1], 2)  # noqa: E731
    torch.testing.assert_close(
        loaded.sample(c, gens(), members=2, steps=3), net.sample(c, gens(), members=2, steps=3)
    )


def test_white_base_noise_is_unchanged() -> None:
    m = build_downscaler({"method": "sfm", "base_noise": "white", "unet": TINY})
    eps = torch.randn(2, 1, 8, 8)
    assert m.base_noise == "white" and m.base_noise_sample(eps) is eps
    assert not hasattr(m, "noise_band_amplitude")  # released cards keep their buffers


def test_bad_base_noise_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="base_noise must be 'white' or 'spectral'"):
        build_downscaler({"method": "sfm", "base_noise": "pink", "unet": TINY})
    with pytest.raises(ValueError, match="method 'cfm' has none"):
        build_downscaler({"method": "cfm", "base_noise": "spectral", "unet": TINY})
    with pytest.raises(TypeError, match="white base noise"):
        build_downscaler(
            {"method": "sfm", "base_noise": "white", "unet": TINY}
        ).update_noise_spectrum(torch.zeros(1, BANDS), torch.ones(BANDS))
    m = build_downscaler({"method": "sfm", "base_noise": "spectral", "unet": TINY})
    with pytest.raises(ValueError, match=r"power must be \[1, 17\]"):
        m.update_noise_spectrum(torch.zeros(2, BANDS), torch.ones(BANDS))


def test_cards_from_before_base_noise_load_as_white(tmp_path) -> None:
    import json

    from xsfm.models.downscaling import RELEASED_SFM

    net = build_downscaler({"method": "sfm", **RELEASED_SFM, "unet": TINY})
    assert build_downscaler({"method": "sfm", "unet": TINY}).base_noise == "white"  # default
    model = xsfm.Model(
        xsfm.load_model("kolmogorov-sfm").card.replace(network=net.config, name="old-sfm"),
        network=net,
    )
    path = model.save(tmp_path / "old")
    card = json.loads((path / "card.json").read_text())
    del card["network"]["base_noise"], card["network"]["sigma_z_scale"]  # as written before
    (path / "card.json").write_text(json.dumps(card))
    loaded = xsfm.load_model(path).network()  # strict weights: no spectral buffers expected
    assert loaded.base_noise == "white" and loaded.config["sigma_z_scale"] == 1.0
