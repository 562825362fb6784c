from __future__ import annotations

import pytest
import torch

from xsfm.models.downscaling import build_downscaler
from xsfm.training.downscaling import load_checkpoint, normalisation_stats, train_downscaler

TINY = {"channels": 4, "channel_mult": [1], "num_blocks": 1}


def _pairs(n: int = 16, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    coarse = torch.randn(n, 1, 4, 4, generator=g) * 3 + 10
    fine = torch.randn(n, 2, 8, 8, generator=g) * 2 - 1
    return coarse, fine


def _module(method: str = "sfm"):
    return build_downscaler(
        {"method": method, "in_channels": 1, "out_channels": 2, "factor": 2, "unet": TINY}
    )


def test_normalisation_stats() -> None:
    coarse, fine = _pairs()
    s = normalisation_stats(coarse, fine)
    torch.testing.assert_close(s["in_mean"], coarse.double().mean(dim=(0, 2, 3)).float())
    torch.testing.assert_close(
        s["out_std"], fine.double().std(dim=(0, 2, 3), unbiased=False).float()
    )
    const = normalisation_stats(torch.ones(2, 1, 2, 2), fine[:2])
    assert const["in_std"].item() == 1.0


def test_sigma_z_is_the_ml_estimate() -> None:
    # x = a * y + noise of known std s; the encoder (1x1 conv) learns a, and sigma_z, the
    # held-out RMSE of the encoder, must come out as s.
    g = torch.Generator().manual_seed(1)
    n, a, s = 64, 2.0, 0.3
    y = torch.randn(n, 1, 8, 8, generator=g) * 1.5 + 4.0
    x = a * y + s * torch.randn(n, 1, 8, 8, generator=g) - 1.0
    m = build_downscaler({"method": "sfm", "factor": 1, "sigma_z_ema": 0.9, "unet": TINY})
    res = train_downscaler(
        m,
        y,
        x,
        steps=200,
        batch_size=8,
        lr=5e-2,
        sigma_z_every=1,
        val_fraction=0.5,
        progress=False,
    )
    assert res.module.sigma_z_physical.item() == pytest.approx(s, rel=0.05)
    assert len(res.history["sigma_z"]) == 200


@pytest.mark.parametrize("method", ["sfm", "sfm-two-stage", "edm", "corrdiff", "cfm"])
def test_resume_is_exact(method: str, tmp_path) -> None:
    coarse, fine = _pairs()
    kw = {"steps": 8, "batch_size": 4, "lr": 1e-2, "sigma_z_every": 2, "seed": 3, "progress": False}
    full = train_downscaler(_module(method), coarse, fine, **kw)

    ckpt = tmp_path / "ckpt.safetensors"

    def interrupt(step: int, logs: dict) -> None:
        if step == 6:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_downscaler(
            _module(method),
            coarse,
            fine,
            checkpoint_path=ckpt,
            checkpoint_every=4,
            callback=interrupt,
            **kw,
        )
    _tensors, meta = load_checkpoint(ckpt)
    assert meta["step"] == "4"
    resumed = train_downscaler(
        _module(method),
        coarse,
        fine,
        checkpoint_path=ckpt,
        checkpoint_every=4,
        resume=True,
        **kw,
    )
    assert resumed.steps == 8
    for (k, a), (k2, b) in zip(
        full.module.state_dict().items(), resumed.module.state_dict().items(), strict=True
    ):
        assert k == k2
        assert torch.equal(a, b), k
    for k in full.raw_state:
        assert torch.equal(full.raw_state[k], resumed.raw_state[k]), k
    assert full.history == resumed.history


def test_resume_refuses_other_settings(tmp_path) -> None:
    coarse, fine = _pairs()
    ckpt = tmp_path / "c.safetensors"
    kw = {
        "steps": 2,
        "batch_size": 4,
        "progress": False,
        "checkpoint_path": ckpt,
        "checkpoint_every": 2,
    }
    train_downscaler(_module("regression"), coarse, fine, **kw)
    with pytest.raises(ValueError, match="settings differ"):
        train_downscaler(_module("regression"), coarse, fine, resume=True, seed=1, **kw)


def test_training_is_deterministic_and_seeded() -> None:
    coarse, fine = _pairs()
    kw = {"steps": 3, "batch_size": 4, "progress": False}
    a = train_downscaler(_module("cfm"), coarse, fine, seed=0, **kw)
    b = train_downscaler(_module("cfm"), coarse, fine, seed=0, **kw)
    c = train_downscaler(_module("cfm"), coarse, fine, seed=1, **kw)
    assert a.history["loss"] == b.history["loss"]
    assert a.history["loss"] != c.history["loss"]
    before = torch.random.get_rng_state()
    train_downscaler(_module("edm"), coarse, fine, seed=0, **kw)
    assert torch.equal(torch.random.get_rng_state(), before)


def test_two_stage_freezes_encoder_in_stage_two() -> None:
    coarse, fine = _pairs()
    seen = {}
    m = _module("corrdiff")

    def grab(step: int, logs: dict) -> None:
        seen[step] = (m.encoder.conv.weight.detach().clone(), set(logs))

    res = train_downscaler(
        m, coarse, fine, steps=6, batch_size=4, progress=False, ema_decay=0.0, callback=grab
    )
    assert seen[1][1] == {"loss", "reg"}  # stage 1: regression only
    assert "flow" in seen[6][1]
    assert not torch.equal(seen[1][0], seen[3][0])  # trained in stage 1
    assert torch.equal(seen[3][0], seen[6][0])  # frozen in stage 2
    assert res.module.stage == 2


def test_every_method_trains_and_samples() -> None:
    from xsfm.models.downscaling import METHODS
    from xsfm.sampling.rng import stream_generators

    coarse, fine = _pairs(8)
    for method in METHODS:
        res = train_downscaler(_module(method), coarse, fine, steps=2, batch_size=4, progress=False)
        out = res.module.sample(coarse[:2], stream_generators(0, range(2), 2), members=2, steps=2)
        assert out.shape == (2, 2, 2, 8, 8)
        assert torch.isfinite(out).all()


def test_input_validation() -> None:
    coarse, fine = _pairs()
    with pytest.raises(ValueError, match="fine grid must be"):
        train_downscaler(_module(), coarse, fine[..., :6, :6], steps=1, progress=False)
    with pytest.raises(ValueError, match="val_fraction"):
        train_downscaler(_module(), coarse, fine, steps=1, val_fraction=0.0, progress=False)


def test_lambda_only_rescales_the_encoder_gradient_when_the_flow_gradient_is_stopped() -> None:
    # With encoder_flow_grad=False (the default) the encoder is trained by lambda * regression loss
    # alone; Adam normalises the gradient's scale away, so lambda barely changes training (only
    # through Adam's epsilon). The docs' account of the Kolmogorov benchmark relies on this.
    coarse, fine = _pairs()

    def run(lam: float) -> dict[str, torch.Tensor]:
        module = build_downscaler(
            {
                "method": "sfm",
                "in_channels": 1,
                "out_channels": 2,
                "factor": 2,
                "unet": TINY,
                "lambda_reg": lam,
            }
        )
        return train_downscaler(
            module, coarse, fine, seed=0, steps=20, batch_size=4, progress=False
        ).raw_state

    a, b, c = run(0.25), run(1.0), run(0.0)
    floats = [k for k, v in a.items() if v.dtype.is_floating_point]
    assert max(float((a[k] - b[k]).abs().max()) for k in floats) < 5e-4
    # lambda = 0 does matter: the encoder is then never trained
    assert max(float((a[k] - c[k]).abs().max()) for k in floats if "encoder" in k) > 3e-3
