from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from xsfm.models.downscaling import (
    METHODS,
    RELEASED_SFM,
    Downscaler,
    build_downscaler,
    default_config,
)
from xsfm.models.downscaling.base_noise import BANDS, shape_noise
from xsfm.sampling.rng import stream_generators

TINY = {"channels": 8, "channel_mult": [1, 2], "num_blocks": 1}


def _model(method: str, **kw: object) -> Downscaler:
    cfg = {"method": method, "in_channels": 2, "out_channels": 2, "factor": 2, "unet": TINY}
    cfg.update(kw)
    m = build_downscaler(cfg)
    # non-trivial weights everywhere (the encoder and last convolutions start at ~0)
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=g))
    m.set_normalisation([1.0, -2.0], [2.0, 0.5], [280.0, 5.0], [10.0, 3.0])
    return m


def _data(b: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    coarse = torch.randn(b, 2, 4, 4, generator=g) * 2 + 1
    fine = torch.randn(b, 2, 8, 8, generator=g) * 10 + 280
    return coarse, fine


def _hand_y_x(m: Downscaler, coarse: torch.Tensor, fine: torch.Tensor):
    y = (coarse - torch.tensor([1.0, -2.0])[:, None, None]) / torch.tensor([2.0, 0.5])[
        :, None, None
    ]
    y = F.interpolate(y, scale_factor=2, mode="bilinear", align_corners=False)
    x = (fine - torch.tensor([280.0, 5.0])[:, None, None]) / torch.tensor([10.0, 3.0])[
        :, None, None
    ]
    return y, x


def _hand_d(m: Downscaler, x_t: torch.Tensor, sigma: torch.Tensor, cond: torch.Tensor | None):
    sd = 0.5
    s = sigma[:, None, None, None]
    c_skip = sd**2 / (s**2 + sd**2)
    c_out = s * sd / torch.sqrt(s**2 + sd**2)
    c_in = 1 / torch.sqrt(s**2 + sd**2)
    return c_skip * x_t + c_out * m.net(c_in * x_t, torch.log(sigma) / 4, cond)


def _w(sigma: torch.Tensor) -> torch.Tensor:
    return (sigma**2 + 0.25) / (0.25 * sigma**2)


@pytest.mark.parametrize(
    "method",
    ["sfm", "sfm-spectral", "sfm-released", "sfm-fixed-sigma", "cfm", "edm", "regression"],
)
def test_loss_equals_hand_computation(method: str) -> None:
    if method == "sfm-released":
        m = _model("sfm", **RELEASED_SFM)
    elif method == "sfm-spectral":  # spectral base noise, given a non-flat shape
        m = _model("sfm", base_noise="spectral")
        m.noise_band_amplitude.copy_(torch.linspace(3.0, 0.2, BANDS).expand(2, BANDS))
    else:
        m = _model(method)
    if method == "sfm":  # the default: white base noise and y conditioning
        assert m.base_noise == "white" and m.cond_on_y
    coarse, fine = _data()
    loss, logs = m.loss(coarse, fine, torch.Generator().manual_seed(3))
    y, x = _hand_y_x(m, coarse, fine)
    g = torch.Generator().manual_seed(3)
    b = x.shape[0]
    if method == "regression":
        expected = ((x - m.encoder(y)) ** 2).mean()
    elif method in ("sfm", "sfm-spectral", "sfm-released", "sfm-fixed-sigma", "cfm"):
        sigma = 1e-3 + (1 - 1e-3) * torch.rand(b, generator=g)
        eps = torch.randn(x.shape, generator=g)
        s = sigma[:, None, None, None]
        if method == "cfm":
            z = eps
            x_t = s * z + (1 - s) * x
            d = _hand_d(m, x_t, sigma, y)
            expected = (_w(sigma) * ((d - x) ** 2).mean(dim=(1, 2, 3))).mean()
        else:
            mu = m.encoder(y)
            if method == "sfm-spectral":
                eps = shape_noise(eps, m.noise_band_amplitude)
            z = mu + m.sigma_z[None, :, None, None] * eps
            x_t = s * z + (1 - s) * x
            # the released configuration does not condition the flow on y; the default does
            d = _hand_d(m, x_t, sigma, y if method in ("sfm", "sfm-spectral") else None)
            flow = (_w(sigma) * ((d - x) ** 2).mean(dim=(1, 2, 3))).mean()
            expected = flow + 0.25 * ((x - mu) ** 2).mean()
    else:  # edm
        sigma = torch.exp(-1.2 + 1.2 * torch.randn(b, generator=g))
        eps = torch.randn(x.shape, generator=g)
        x_t = x + sigma[:, None, None, None] * eps
        d = _hand_d(m, x_t, sigma, y)
        expected = (_w(sigma) * ((d - x) ** 2).mean(dim=(1, 2, 3))).mean()
    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-6)
    assert logs["loss"] == pytest.approx(expected.item(), rel=1e-5)


def test_corrdiff_and_two_stage_losses_by_stage() -> None:
    coarse, fine = _data()
    for method in ("corrdiff", "sfm-two-stage"):
        m = _model(method)
        y, x = _hand_y_x(m, coarse, fine)
        mu = m.encoder(y)
        m.set_stage(1)
        loss, _ = m.loss(coarse, fine, torch.Generator().manual_seed(5))
        torch.testing.assert_close(loss, ((x - mu) ** 2).mean())
        m.set_stage(2)
        loss, _ = m.loss(coarse, fine, torch.Generator().manual_seed(5))
        g = torch.Generator().manual_seed(5)
        if method == "corrdiff":
            sigma = torch.exp(-1.2 + 1.2 * torch.randn(2, generator=g))
            eps = torch.randn(x.shape, generator=g)
            r = x - mu
            d = _hand_d(m, r + sigma[:, None, None, None] * eps, sigma, y)
            expected = (_w(sigma) * ((d - r) ** 2).mean(dim=(1, 2, 3))).mean()
        else:
            sigma = 1e-3 + (1 - 1e-3) * torch.rand(2, generator=g)
            eps = torch.randn(x.shape, generator=g)
            s = sigma[:, None, None, None]
            eps = m.base_noise_sample(eps)  # identity for white noise
            x_t = s * (mu + m.sigma_z[None, :, None, None] * eps) + (1 - s) * x
            d = _hand_d(m, x_t, sigma, y if m.cond_on_y else None)
            expected = (_w(sigma) * ((d - x) ** 2).mean(dim=(1, 2, 3))).mean()
        torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-6)
        m.zero_grad()
        loss.backward()
        assert all(p.grad is None for p in m.encoder.parameters())  # encoder frozen in stage 2


def test_sfm_flow_gradient_reaches_encoder_only_when_asked() -> None:
    coarse, fine = _data()
    grads = {}
    for flag in (False, True):
        m = _model("sfm", encoder_flow_grad=flag, lambda_reg=0.0)
        loss, _ = m.loss(coarse, fine, torch.Generator().manual_seed(0))
        loss.backward()
        grads[flag] = m.encoder.conv.weight.grad
    assert grads[False] is None or torch.count_nonzero(grads[False]) == 0
    assert torch.count_nonzero(grads[True]) > 0


@pytest.mark.parametrize("method", METHODS)
def test_sample_shape_and_physical_units(method: str, monkeypatch: pytest.MonkeyPatch) -> None:
    m = _model(method)
    coarse, _ = _data(3)
    gens = stream_generators(0, range(3), 4)
    out = m.sample(coarse, gens, members=4, steps=3)
    assert out.shape == (3, 4, 2, 8, 8)
    assert torch.isfinite(out).all()
    # With E = 0 and a denoiser that always answers 1 (normalised), the result is
    # out_mean + 1 * out_std for the generative methods: statistics are applied on the way out.
    if m.encoder is not None:
        with torch.no_grad():
            for p in m.encoder.parameters():
                p.zero_()
    if m.net is not None:
        monkeypatch.setattr(m, "denoise", lambda x, sigma, y=None: torch.ones_like(x))
        expected = torch.tensor([290.0, 8.0])
    else:
        expected = torch.tensor([280.0, 5.0])
    out = m.sample(coarse, stream_generators(0, range(3), 2), members=2)
    torch.testing.assert_close(out, expected[None, None, :, None, None].expand_as(out))


def test_regression_applies_input_statistics() -> None:
    m = build_downscaler({"method": "regression", "factor": 2})
    m.set_normalisation([10.0], [2.0], [100.0], [5.0])
    with torch.no_grad():
        m.encoder.conv.weight.fill_(1.0)
    coarse = torch.full((1, 1, 3, 3), 10.0 + 2.0 * 3.0)  # normalised value 3
    out = m.sample(coarse, stream_generators(0, [0], 2), members=2)
    torch.testing.assert_close(out, torch.full((1, 2, 1, 6, 6), 100.0 + 5.0 * 3.0))


def test_sampling_is_reproducible_and_per_member() -> None:
    m = _model("sfm")
    coarse, _ = _data(2)
    a = m.sample(coarse, stream_generators(11, range(2), 3), members=3, steps=4)
    b = m.sample(coarse, stream_generators(11, range(2), 3), members=3, steps=4)
    assert torch.equal(a, b)
    assert not torch.allclose(a[:, 0], a[:, 1])
    # sample 1 alone, with its own streams, gives the same members as in the batch
    one = m.sample(coarse[1:], stream_generators(11, [1], 3), members=3, steps=4)
    torch.testing.assert_close(one[0], a[1], rtol=1e-5, atol=1e-4)


def test_bf16_and_channels_last_sampling_close_to_float32() -> None:
    coarse, _ = _data(1)
    ref = _model("sfm").sample(coarse, stream_generators(0, [0], 2), members=2, steps=4)
    for kw in ({"dtype": "bfloat16"}, {"channels_last": True}):
        m = _model("sfm", **kw)
        out = m.sample(coarse, stream_generators(0, [0], 2), members=2, steps=4)
        assert (out - ref).abs().max() < 0.1 * ref.std()


def test_update_sigma_z_ema_bias_correction_and_floor() -> None:
    m = _model("sfm")
    assert torch.allclose(m.sigma_z, torch.ones(2))
    r1, r2 = torch.tensor([0.4, 0.01]), torch.tensor([0.2, 0.02])
    m.update_sigma_z(r1)
    out = m.update_sigma_z(r2)
    ema = 0.99 * (0.01 * r1) + 0.01 * r2
    expected = (ema / (1 - 0.99**2)).clamp_min(0.05)
    torch.testing.assert_close(out, expected.float())
    assert out[1].item() == pytest.approx(0.05)
    torch.testing.assert_close(m.sigma_z_physical, out * torch.tensor([10.0, 3.0]))
    fixed = _model("sfm-fixed-sigma", sigma_z_init=0.7)
    fixed.update_sigma_z([0.1, 0.1])
    torch.testing.assert_close(fixed.sigma_z, torch.full((2,), 0.7))


def test_periodic_interpolation_commutes_with_shifts() -> None:
    m = build_downscaler({"method": "regression", "factor": 4, "periodic": True})
    g = torch.Generator().manual_seed(0)
    c = torch.randn(1, 1, 5, 6, generator=g)
    up = m.interpolate(c)
    torch.testing.assert_close(m.interpolate(torch.roll(c, 1, dims=3)), torch.roll(up, 4, dims=3))
    # the interior agrees with plain bilinear interpolation
    plain = F.interpolate(c, scale_factor=4, mode="bilinear", align_corners=False)
    torch.testing.assert_close(up[..., 4:-4, 4:-4], plain[..., 4:-4, 4:-4])
    assert m.fine_shape(5, 6) == (20, 24)


def test_config_roundtrip_and_errors() -> None:
    for method in METHODS:
        m = build_downscaler({"method": method, "unet": TINY})
        again = build_downscaler(m.config)
        assert again.config == m.config
        assert type(again) is type(m)
        assert set(again.state_dict()) == set(m.state_dict())
    with pytest.raises(ValueError, match="unknown downscaling method"):
        build_downscaler({"method": "gan"})
    with pytest.raises(KeyError, match="unknown config key"):
        build_downscaler({"method": "sfm", "lamda_reg": 0.1})
    with pytest.raises(KeyError, match="unknown config"):
        default_config("sfm", unet={"chanels": 8})
    m = _model("sfm")
    with pytest.raises(ValueError, match="one generator per"):
        m.sample(torch.zeros(2, 2, 4, 4), stream_generators(0, [0], 2), members=2)
    with pytest.raises(ValueError, match="coarse input must have shape"):
        m.sample(torch.zeros(2, 3, 4, 4), stream_generators(0, [0, 1], 1), members=1)
    assert math.isfinite(m.config["lambda_reg"])


def test_state_dict_roundtrip_through_safetensors(tmp_path) -> None:
    from safetensors.torch import load_file, save_file

    m = _model("corrdiff")
    save_file({k: v.contiguous() for k, v in m.state_dict().items()}, str(tmp_path / "w.st"))
    again = build_downscaler(m.config)
    again.load_state_dict(load_file(str(tmp_path / "w.st")), strict=True)
    coarse, _ = _data(1)
    a = m.sample(coarse, stream_generators(0, [0], 2), members=2, steps=3)
    b = again.sample(coarse, stream_generators(0, [0], 2), members=2, steps=3)
    assert torch.equal(a, b)


def test_rho_override_changes_the_time_grid_and_is_checked() -> None:
    m = _model("sfm")
    coarse, _ = _data(1)
    gens = lambda: stream_generators(3, [0], 2)  # noqa: E731
    default = m.sample(coarse, gens(), members=2, steps=4)
    same = m.sample(coarse, gens(), members=2, steps=4, rho=7.0)
    uniform = m.sample(coarse, gens(), members=2, steps=4, rho=1.0)
    assert torch.equal(default, same)  # 7 is the config's value
    assert not torch.allclose(default, uniform)
    with pytest.raises(ValueError, match="rho"):
        m.sample(coarse, gens(), members=2, steps=4, rho=0.0)


def test_downscale_takes_a_bfloat16_dtype():
    import xsfm

    coarse = xsfm.load_model("kolmogorov-sfm").example_input().isel(sample=[0])
    kw = {"model": "kolmogorov-sfm", "members": 2, "steps": 2, "seed": 1}
    f32 = coarse.sfm.downscale(**kw)
    bf16 = coarse.sfm.downscale(dtype="bfloat16", **kw)
    assert "dtype='bfloat16'" in bf16.attrs["history"]
    assert bf16["vorticity"].dtype == f32["vorticity"].dtype
    diff = abs(bf16["vorticity"] - f32["vorticity"]).max().item()
    scale = abs(f32["vorticity"]).max().item()
    assert 0 < diff < 0.1 * scale  # bfloat16 rounds differently, but it is the same model
    with pytest.raises(ValueError, match="dtype must be"):
        coarse.sfm.downscale(dtype="float16", **kw)


def test_bfloat16_training_keeps_float32_weights_and_loss():
    from xsfm.models.downscaling import build_downscaler

    cfg = {"method": "sfm", "in_channels": 1, "out_channels": 1, "factor": 2,
           "unet": {"channels": 8, "channel_mult": [1]}}  # fmt: skip
    gen = torch.Generator().manual_seed(0)
    coarse, fine = torch.randn(2, 1, 8, 8), torch.randn(2, 1, 16, 16)
    f32 = build_downscaler(cfg)
    with torch.no_grad():  # no zero-initialised layers: the network's output must matter
        for p in f32.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))
    bf16 = build_downscaler({**cfg, "dtype": "bfloat16"})
    bf16.load_state_dict(f32.state_dict())
    l32, _ = f32.loss(coarse, fine, torch.Generator().manual_seed(0))
    l16, _ = bf16.loss(coarse, fine, gen)
    assert l16.dtype == torch.float32 and l16.requires_grad
    l16.backward()
    grads = [p.grad for p in bf16.parameters() if p.grad is not None]
    assert grads and all(g.dtype == torch.float32 for g in grads)
    assert all(p.dtype == torch.float32 for p in bf16.parameters())
    # the same pairs and noise: the losses agree to bfloat16 rounding, not bit for bit
    assert l16.item() != l32.item() and abs(l16.item() - l32.item()) < 0.05 * abs(l32.item())
