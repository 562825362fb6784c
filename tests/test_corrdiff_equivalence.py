"""xsfm's CorrDiff networks equal NVIDIA PhysicsNeMo's on checkpoints PhysicsNeMo wrote.

The fixtures under ``tests/fixtures/corrdiff/<case>/`` were made by ``studies/corrdiff_fixtures.py``
with PhysicsNeMo 2.2.2 (small random networks, every parameter randomised, saved as ``.mdlus`` in
the CorrDiff package layout, with reference outputs). These tests use xsfm alone: PhysicsNeMo is
neither installed nor imported here.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from xsfm.models.corrdiff_checkpoint import load_corrdiff_checkpoint, read_mdlus
from xsfm.nn.songunet import (
    CorrDiffRegressionUNet,
    EDMPrecondSuperResolution,
    PositionalEmbedding,
    corrdiff_generate,
)

FIXTURES = Path(__file__).parent / "fixtures" / "corrdiff"
CASES = sorted(p.name for p in FIXTURES.iterdir() if (p / "case.json").exists())
RTOL = 1e-5


def rel_err(got: torch.Tensor, want: torch.Tensor) -> float:
    """Largest absolute difference relative to the largest reference magnitude."""
    got, want = got.double(), want.double()
    return float((got - want).abs().max() / want.abs().max())


@pytest.fixture(scope="module", params=CASES)
def case(request: pytest.FixtureRequest) -> dict:
    root = FIXTURES / request.param
    regression, reg_info = load_corrdiff_checkpoint(root / "checkpoints" / "regression.mdlus")
    diffusion, dif_info = load_corrdiff_checkpoint(root / "checkpoints" / "diffusion.mdlus")
    return {
        "name": request.param,
        "meta": json.loads((root / "case.json").read_text()),
        "ref": load_file(root / "reference.safetensors"),
        "regression": regression,
        "diffusion": diffusion,
        "infos": (reg_info, dif_info),
    }


def test_fixtures_are_small() -> None:
    total = sum(p.stat().st_size for p in FIXTURES.rglob("*") if p.is_file())
    assert len(CASES) >= 3
    assert total < 1.5e6


def test_loaded_classes(case: dict) -> None:
    assert isinstance(case["regression"], CorrDiffRegressionUNet)
    assert isinstance(case["diffusion"], EDMPrecondSuperResolution)
    reg_info, dif_info = case["infos"]
    assert reg_info["class_name"] in ("UNet", "CorrDiffRegressionUNet")
    assert dif_info["class_name"] in ("EDMPrecondSR", "EDMPrecondSuperResolution")
    assert dif_info["metadata"]["physicsnemo_version"] == case["meta"]["versions"]["physicsnemo"]
    assert not case["regression"].training and not case["diffusion"].training


def test_positional_frequencies_match_formula(case: dict) -> None:
    # the checkpoint's frequencies (loaded) equal the formula an old checkpoint would get
    for net in (case["regression"], case["diffusion"]):
        emb = net.model.map_noise
        if isinstance(emb, PositionalEmbedding):
            fresh = PositionalEmbedding(emb.freqs.numel() * 2, endpoint=True)
            torch.testing.assert_close(emb.freqs, fresh.freqs, rtol=0, atol=0)


@torch.no_grad()
def test_regression_output(case: dict) -> None:
    ref = case["ref"]
    got = case["regression"].predict(ref["regression_input"])
    assert rel_err(got, ref["regression_output"]) < RTOL


@torch.no_grad()
def test_denoiser_outputs(case: dict) -> None:
    ref = case["ref"]
    x, noise, cond = ref["denoiser_x"], ref["denoiser_noise"], ref["denoiser_cond"]
    for i, s in enumerate(case["meta"]["sigmas"]):
        sigma = torch.tensor(s, dtype=torch.float32)
        noisy = x + sigma.reshape(-1, 1, 1, 1) * noise
        got = case["diffusion"](noisy, cond, sigma)
        err = rel_err(got, ref[f"denoiser_out_{i}"])
        assert err < RTOL, f"sigma={s}: {err:.2e}"


@torch.no_grad()
def test_full_sampling_run(case: dict) -> None:
    ref, meta = case["ref"], case["meta"]
    draws = iter(ref["gen_noise"]) if "gen_noise" in ref else None

    def replay(t: torch.Tensor) -> torch.Tensor:
        if draws is None:  # no churn: PhysicsNeMo multiplies these draws by zero
            return torch.zeros_like(t)
        return next(draws).to(t.dtype)

    got = corrdiff_generate(
        case["regression"],
        case["diffusion"],
        ref["regression_input"],
        ref["gen_img_lr"],
        ref["gen_latents"],
        sampler=meta["sampler"],
        hr_mean_conditioning=meta["hr_mean_conditioning"],
        randn_like=replay,
        **meta["sampler_kwargs"],
    )
    assert got.shape == ref["gen_output"].shape
    assert rel_err(got, ref["gen_output"]) < RTOL
    if draws is not None:
        assert next(draws, None) is None  # every recorded draw was used, in order


def _rewrite_args(src: Path, dst: Path, edit: dict) -> None:
    with zipfile.ZipFile(src) as a, zipfile.ZipFile(dst, "w") as b:
        for info in a.infolist():
            data = a.read(info)
            if info.filename == "args.json":
                args = json.loads(data)
                args.update(edit)
                data = json.dumps(args).encode()
            b.writestr(info, data)


def test_refuses_unknown_class(tmp_path: Path) -> None:
    src = FIXTURES / CASES[0] / "checkpoints" / "diffusion.mdlus"
    bad = tmp_path / "bad.mdlus"
    _rewrite_args(src, bad, {"__name__": "DhariwalUNet"})
    with pytest.raises(ValueError, match=r"unknown checkpoint class .*DhariwalUNet"):
        load_corrdiff_checkpoint(bad)
    _rewrite_args(src, bad, {"__module__": "evil.module"})
    with pytest.raises(ValueError, match=r"evil\.module\.EDMPrecond"):
        load_corrdiff_checkpoint(bad)


def test_refuses_non_archive_and_mismatch(tmp_path: Path) -> None:
    junk = tmp_path / "junk.mdlus"
    junk.write_bytes(b"not an archive")
    with pytest.raises(ValueError, match=r"not a \.mdlus"):
        load_corrdiff_checkpoint(junk)
    src = FIXTURES / CASES[0] / "checkpoints" / "regression.mdlus"
    args = read_mdlus(src)[0]["__args__"]
    wrong = tmp_path / "wrong.mdlus"
    _rewrite_args(src, wrong, {"__args__": {**args, "model_channels": args["model_channels"] * 2}})
    with pytest.raises(ValueError, match="do not match"):
        load_corrdiff_checkpoint(wrong)


def test_reads_legacy_tar_and_old_attention_keys(tmp_path: Path) -> None:
    import tarfile

    src = FIXTURES / "taiwan" / "checkpoints" / "diffusion.mdlus"
    with zipfile.ZipFile(src) as a:
        members = {i.filename: a.read(i) for i in a.infolist()}
    # an old-style tar whose state dict keeps attention at the block root and lacks map_noise.freqs
    _, _, state = read_mdlus(src)
    old = {}
    for k, v in state.items():
        k = k.replace(".attn.norm.", ".norm2.").replace(".attn.qkv.", ".qkv.")
        old[k.replace(".attn.proj.", ".proj.")] = v
    old.pop("model.map_noise.freqs")
    buf = io.BytesIO()
    torch.save(old, buf)
    members["model.pt"] = buf.getvalue()
    tar_path = tmp_path / "old.mdlus"
    with tarfile.open(tar_path, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    net, _ = load_corrdiff_checkpoint(tar_path)
    ref_net, _ = load_corrdiff_checkpoint(src)
    x, cond = torch.randn(1, 2, 16, 16), torch.randn(1, 5, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(net(x, cond, 1.3), ref_net(x, cond, 1.3), rtol=0, atol=0)
