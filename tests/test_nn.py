from __future__ import annotations

import pytest
import torch

from xsfm.nn import (
    Conv1x1Encoder,
    FourierEmbedding,
    PositionalEmbedding,
    UNet,
    UNetEncoder,
    build_encoder,
    grid_channels,
)

SMALL = {"channels": 8, "channel_mult": (1, 2), "num_blocks": 1}


def _randn(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"cond_channels": 3},
        {"grid": "periodic", "padding_mode": "circular"},
        {"grid": "linear", "attention_levels": (1,), "num_heads": 2},
        {"embedding": "positional", "num_blocks": 2},
        {"embedding": "none"},
    ],
)
def test_unet_shapes_and_config_roundtrip(kwargs: dict) -> None:
    net = UNet(2, 2, **{**SMALL, **kwargs})
    cond = _randn(3, kwargs.get("cond_channels", 0), 12, 12) if "cond_channels" in kwargs else None
    out = net(_randn(3, 2, 12, 12), torch.zeros(3), cond)
    assert out.shape == (3, 2, 12, 12)
    again = UNet.from_config(net.config)
    assert again.config == net.config
    for (k, a), (_, b) in zip(net.state_dict().items(), again.state_dict().items(), strict=True):
        assert torch.equal(a, b), k


def test_unet_pads_odd_grids() -> None:
    net = UNet(1, 1, channels=8, channel_mult=(1, 2, 2))
    assert net(_randn(2, 1, 13, 10), torch.zeros(2)).shape == (2, 1, 13, 10)


def test_unet_init_is_seeded_and_leaves_global_rng_alone() -> None:
    before = torch.random.get_rng_state()
    a = UNet(1, 1, **SMALL, seed=1)
    b = UNet(1, 1, **SMALL, seed=1)
    c = UNet(1, 1, **SMALL, seed=2)
    a(_randn(1, 1, 8, 8), torch.zeros(1))
    assert torch.equal(torch.random.get_rng_state(), before)
    assert torch.equal(a.conv_in.weight, b.conv_in.weight)
    assert not torch.equal(a.conv_in.weight, c.conv_in.weight)


def test_unet_periodic_padding_is_translation_equivariant() -> None:
    net = UNet(1, 1, channels=8, channel_mult=(1, 2), padding_mode="circular")
    # make the output non-trivial (the last conv starts near zero)
    with torch.no_grad():
        net.conv_out.weight.mul_(1e5)
    x = _randn(1, 1, 16, 16)
    out = net(x, torch.zeros(1))
    shifted = net(torch.roll(x, shifts=(4, 6), dims=(2, 3)), torch.zeros(1))
    torch.testing.assert_close(shifted, torch.roll(out, shifts=(4, 6), dims=(2, 3)))


def test_unet_noise_label_changes_output() -> None:
    net = UNet(1, 1, **SMALL)
    with torch.no_grad():
        net.conv_out.weight.mul_(1e5)
    x = _randn(1, 1, 8, 8)
    assert not torch.allclose(net(x, torch.tensor([0.0])), net(x, torch.tensor([-1.0])))


def test_unet_channels_last_and_bf16() -> None:
    net = UNet(1, 1, cond_channels=1, **SMALL)
    with torch.no_grad():
        net.conv_out.weight.mul_(1e5)
    x, cond = _randn(2, 1, 8, 8), _randn(2, 1, 8, 8, seed=1)
    ref = net(x, torch.zeros(2), cond)
    net_cl = UNet.from_config(net.config)
    net_cl.load_state_dict(net.state_dict())
    net_cl = net_cl.to(memory_format=torch.channels_last)
    out = net_cl(x.contiguous(memory_format=torch.channels_last), torch.zeros(2), cond)
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = net(x, torch.zeros(2), cond)
    assert torch.allclose(low.float(), ref, rtol=0.1, atol=0.1 * ref.abs().max().item())


def test_unet_requires_cond() -> None:
    net = UNet(1, 1, cond_channels=2, **SMALL)
    with pytest.raises(ValueError, match="conditioning"):
        net(torch.zeros(1, 1, 8, 8), torch.zeros(1))


def test_embeddings() -> None:
    fe = FourierEmbedding(16, generator=torch.Generator().manual_seed(0))
    e = fe(torch.tensor([0.0, 1.0]))
    assert e.shape == (2, 16)
    torch.testing.assert_close(e[0, :8], torch.ones(8))  # cos(0) = 1
    assert PositionalEmbedding(8)(torch.zeros(4)).shape == (4, 8)
    with pytest.raises(ValueError, match="even"):
        FourierEmbedding(5)


def test_grid_channels() -> None:
    g = grid_channels(4, 8, "periodic")
    assert g.shape == (4, 4, 8)
    torch.testing.assert_close(g[0] ** 2 + g[1] ** 2, torch.ones(4, 8))
    # continuous across the wrap: the step from the last to the first column equals the others
    step = g[2:, :, 1] - g[2:, :, 0]
    wrap_back = g[2:, :, 0] - g[2:, :, -1]
    assert torch.allclose(step.abs().sum(), wrap_back.abs().sum(), atol=1e-5)
    assert grid_channels(3, 3, "none").shape == (0, 3, 3)
    with pytest.raises(ValueError, match="grid kind"):
        grid_channels(3, 3, "spherical")


def test_encoders() -> None:
    enc = Conv1x1Encoder(3, 2)
    assert torch.equal(enc(torch.ones(1, 3, 4, 4)), torch.zeros(1, 2, 4, 4))  # zero start
    assert build_encoder(enc.config).config == enc.config
    unet_enc = UNetEncoder(3, 2, channels=8, channel_mult=(1, 2))
    assert unet_enc(_randn(2, 3, 8, 8)).shape == (2, 2, 8, 8)
    assert build_encoder(unet_enc.config).config == unet_enc.config
    with pytest.raises(ValueError, match="encoder kind"):
        build_encoder({"kind": "transformer", "in_channels": 1, "out_channels": 1})


def test_unet_patch_space_to_depth_shapes_and_locality():
    from xsfm.nn.unet import UNet

    net = UNet(1, 2, cond_channels=1, channels=8, channel_mult=(1, 2), patch=4, seed=0)
    x, cond = torch.zeros(2, 1, 64, 64), torch.zeros(2, 1, 64, 64)
    assert net(x, torch.zeros(2), cond).shape == (2, 2, 64, 64)
    # a grid that is not a multiple of patch * 2**(levels-1) is padded and cropped back
    assert net(torch.zeros(1, 1, 20, 36), torch.zeros(1), torch.zeros(1, 1, 20, 36)).shape == (
        1,
        2,
        20,
        36,
    )
    assert UNet.from_config(net.config).config == net.config
    with pytest.raises(ValueError, match="patch"):
        UNet(1, 1, patch=0)
