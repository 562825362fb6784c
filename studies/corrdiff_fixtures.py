"""Build the CorrDiff equivalence fixtures with NVIDIA PhysicsNeMo (run with PhysicsNeMo only).

This script is NOT run by the test suite and needs PhysicsNeMo, which xsfm never depends on::

    python -m venv /tmp/pnm-venv && /tmp/pnm-venv/bin/pip install torch nvidia-physicsnemo
    OMP_NUM_THREADS=1 /tmp/pnm-venv/bin/python studies/corrdiff_fixtures.py

For each case it builds small PhysicsNeMo networks (a regression wrapper and an EDM
super-resolution denoiser), sets EVERY parameter (the zero-initialised output convolutions, the
GroupNorm affines, learnable grids and spatial embeddings included) and the Fourier frequencies to
seeded random values, saves them with ``Module.save`` as ``checkpoints/regression.mdlus`` and
``checkpoints/diffusion.mdlus`` (the CorrDiff package layout) under
``tests/fixtures/corrdiff/<case>/``, and records in ``reference.safetensors``:

* ``regression_input``/``regression_output`` -- the regression network on a random input;
* ``denoiser_x``/``denoiser_noise``/``denoiser_cond``/``denoiser_out_<i>`` -- the denoiser on
  ``x + sigma * noise`` at the noise levels ``sigmas`` of ``case.json`` (the last one a per-sample
  vector);
* ``gen_*`` -- a full CorrDiff generation as PhysicsNeMo's ``regression_step`` and
  ``diffusion_step`` run it (seeded ``StackedRandomGenerator``), with the latents and, where the
  sampler churns, every ``randn_like`` draw recorded (``gen_noise``) so that xsfm can replay them
  (without churn the draws are multiplied by zero).

``case.json`` holds the sampler settings. ``tests/test_corrdiff_equivalence.py`` loads the
checkpoints with xsfm alone and compares.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import warnings
from functools import partial
from pathlib import Path

import numpy as np
import torch

warnings.filterwarnings("ignore")

import physicsnemo  # noqa: E402
from physicsnemo.diffusion.generate.legacy_generate import (  # noqa: E402
    diffusion_step,
    regression_step,
)
from physicsnemo.diffusion.preconditioners.legacy import (  # noqa: E402
    EDMPrecondSR,
    EDMPrecondSuperResolution,
)
from physicsnemo.diffusion.samplers.legacy_deterministic_sampler import (  # noqa: E402
    deterministic_sampler,
)
from physicsnemo.diffusion.samplers.legacy_stochastic_sampler import (  # noqa: E402
    stochastic_sampler,
)
from physicsnemo.models.diffusion_unets import CorrDiffRegressionUNet, UNet  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

ROOT = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "corrdiff"
SIGMAS = [0.002, 0.3, 2.0, 80.0]

SMALL = {"model_channels": 4, "num_blocks": 1, "dropout": 0.0}

CASES: dict[str, dict] = {
    # The Taiwan package's arrangement: deprecated class names, a plain SongUNet regression fed
    # with externally added sinusoidal grid channels, an SongUNetPosEmbd denoiser with the legacy
    # 4-channel sinusoidal grid, the legacy c_in scaling of the conditioning, conditioning on the
    # regression mean, positional noise embedding, Euler 8 steps (earth2studio's CorrDiffTaiwan).
    "taiwan": {
        "shape": (16, 16),
        "lr_channels": 3,
        "out_channels": 2,
        "members": 2,
        "regression_grid": 4,
        "regression": (
            UNet,
            {
                "model_type": "SongUNet",
                "channel_mult": [1, 2, 2],
                "attn_resolutions": [4],
                "embedding_type": "positional",
            },
        ),
        "diffusion": (
            EDMPrecondSR,
            {
                "img_channels": 2,
                "model_type": "SongUNetPosEmbd",
                "scale_cond_input": True,
                "gridtype": "sinusoidal",
                "N_grid_channels": 4,
                "channel_mult": [1, 2, 2],
                "attn_resolutions": [4],
                "embedding_type": "positional",
            },
        ),
        "hr_mean_conditioning": True,
        "sampler": "deterministic",
        "sampler_kwargs": {"num_steps": 8, "solver": "euler"},
    },
    # Current class names and the other switches: learnable grid + zero embedding + skip encoder
    # in the regression; in the denoiser a multi-band sinusoidal grid, Fourier noise embedding,
    # residual encoder, skip decoder, [1,3,3,1] resampling, additive spatial embedding, no
    # bottleneck attention, wider noise/embedding channels, a non-square image; no mean
    # conditioning; Heun with churn (noise draws recorded).
    "modern": {
        "shape": (16, 32),
        "lr_channels": 2,
        "out_channels": 2,
        "members": 2,
        "regression_grid": 0,
        "regression": (
            CorrDiffRegressionUNet,
            {
                "model_type": "SongUNetPosEmbd",
                "gridtype": "learnable",
                "N_grid_channels": 2,
                "channel_mult": [1, 2],
                "attn_resolutions": [8],
                "embedding_type": "zero",
                "encoder_type": "skip",
            },
        ),
        "diffusion": (
            EDMPrecondSuperResolution,
            {
                "model_type": "SongUNetPosEmbd",
                "sigma_data": 0.7,
                "sigma_max": 50.0,
                "gridtype": "sinusoidal",
                "N_grid_channels": 8,
                "channel_mult": [1, 2, 1],
                "channel_mult_emb": 2,
                "channel_mult_noise": 2,
                "attn_resolutions": [8],
                "embedding_type": "fourier",
                "encoder_type": "residual",
                "decoder_type": "skip",
                "resample_filter": [1, 3, 3, 1],
                "additive_pos_embed": True,
                "bottleneck_attention": False,
            },
        ),
        "hr_mean_conditioning": False,
        "sampler": "deterministic",
        "sampler_kwargs": {"num_steps": 4, "solver": "heun", "S_churn": 2.0, "sigma_max": 60.0},
    },
    # Stochastic sampler with churn, linear regression grid, octave grid in the denoiser, no legacy
    # scaling, positional embedding, mean conditioning, three members.
    "stochastic": {
        "shape": (16, 16),
        "lr_channels": 2,
        "out_channels": 2,
        "members": 2,
        "regression_grid": 0,
        "regression": (
            UNet,
            {
                "model_type": "SongUNetPosEmbd",
                "gridtype": "linear",
                "N_grid_channels": 2,
                "channel_mult": [1, 2],
                "attn_resolutions": [16],
                "embedding_type": "positional",
                "decoder_type": "skip",
            },
        ),
        "diffusion": (
            EDMPrecondSR,
            {
                "img_channels": 2,
                "model_type": "SongUNetPosEmbd",
                "scale_cond_input": False,
                "gridtype": "sinusoidal_octave",
                "N_grid_channels": 8,
                "channel_mult": [1, 2],
                "attn_resolutions": [8],
                "embedding_type": "positional",
                "encoder_type": "skip",
            },
        ),
        "hr_mean_conditioning": True,
        "sampler": "stochastic",
        "sampler_kwargs": {"num_steps": 5, "S_churn": 4.0, "sigma_max": 80.0},
    },
}


def randomise(module: torch.nn.Module, gen: torch.Generator) -> None:
    """Set every parameter (and Fourier frequencies) to seeded random values of a sane scale."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            r = torch.randn(p.shape, generator=gen)
            if p.ndim >= 2 and not name.endswith(("pos_embd", "spatial_emb")):
                fan_in = p[0].numel()
                p.copy_(r / math.sqrt(fan_in))
            elif name.endswith(("norm0.weight", "norm1.weight", "norm.weight", "aux_norm.weight")):
                p.copy_(1 + 0.2 * r)
            elif name.endswith(("pos_embd", "spatial_emb")):
                p.copy_(0.5 * r)
            else:
                p.copy_(0.2 * r)
        for name, b in module.named_buffers():
            if (
                name.endswith("map_noise.freqs")
                and "Fourier" in type(module.get_submodule(name.rsplit(".", 1)[0])).__name__
            ):
                b.copy_(torch.randn(b.shape, generator=gen) * 4)


def build(cls: type, common: dict, kwargs: dict) -> torch.nn.Module:
    """Construct a PhysicsNeMo wrapper with small backbone settings."""
    args = {**common, **SMALL, **kwargs}
    return cls(**args)


def main() -> None:
    """Write all fixture cases."""
    torch.set_num_threads(1)
    versions = {"physicsnemo": physicsnemo.__version__, "torch": torch.__version__}
    for seed, (case, spec) in enumerate(CASES.items()):
        out = ROOT / case
        if out.exists():
            shutil.rmtree(out)
        (out / "checkpoints").mkdir(parents=True)
        gen = torch.Generator().manual_seed(1000 + seed)
        torch.manual_seed(seed)
        h, w = spec["shape"]
        c_lr, c_out = spec["lr_channels"], spec["out_channels"]
        reg_in = c_lr + spec["regression_grid"]
        reg_cls, reg_kw = spec["regression"]
        if reg_kw.get("model_type") == "SongUNetPosEmbd":
            reg_in += reg_kw["N_grid_channels"]
        regression = build(
            reg_cls,
            {"img_resolution": [h, w], "img_in_channels": reg_in, "img_out_channels": c_out},
            reg_kw,
        )
        dif_cls, dif_kw = spec["diffusion"]
        dif_in = c_lr + (c_out if spec["hr_mean_conditioning"] else 0)
        if dif_kw.get("model_type") == "SongUNetPosEmbd":
            dif_in += dif_kw["N_grid_channels"]
        diffusion = build(
            dif_cls,
            {"img_resolution": [h, w], "img_in_channels": dif_in, "img_out_channels": c_out},
            dif_kw,
        )
        for net in (regression, diffusion):
            randomise(net, gen)
            net.eval()
        regression.save(str(out / "checkpoints" / "regression.mdlus"))
        diffusion.save(str(out / "checkpoints" / "diffusion.mdlus"))

        ref: dict[str, torch.Tensor] = {}
        # regression network (as regression_step calls it)
        img_lr_reg = torch.randn(1, c_lr, h, w, generator=gen)
        if spec["regression_grid"]:
            # the Taiwan pipeline appends sin/cos grid channels (with the end point) itself
            ys, xs = np.linspace(0, 2 * np.pi, h), np.linspace(0, 2 * np.pi, w)
            gx1, gy1 = np.meshgrid(np.sin(xs), np.sin(ys))
            gx2, gy2 = np.meshgrid(np.cos(xs), np.cos(ys))
            grid = torch.as_tensor(np.stack((gx1, gy1, gx2, gy2))[None], dtype=torch.float32)
            img_lr_reg = torch.cat((img_lr_reg, grid), dim=1)
        with torch.no_grad():
            mean = regression_step(regression, img_lr_reg, (1, c_out, h, w))
        ref["regression_input"] = img_lr_reg
        ref["regression_output"] = mean.float()

        # denoiser at several sigmas, and a per-sample sigma vector
        cond_c = dif_in - dif_kw.get("N_grid_channels", 0)
        x = torch.randn(2, c_out, h, w, generator=gen)
        cond = torch.randn(2, cond_c, h, w, generator=gen)
        sigmas = [*SIGMAS, [0.1, 7.0]]
        noise = torch.randn(x.shape, generator=gen)
        ref["denoiser_x"] = x
        ref["denoiser_noise"] = noise
        ref["denoiser_cond"] = cond
        with torch.no_grad():
            for i, s in enumerate(sigmas):
                sigma = torch.tensor(s, dtype=torch.float32)
                noisy = x + sigma.reshape(-1, 1, 1, 1) * noise
                ref[f"denoiser_out_{i}"] = diffusion(noisy, cond, sigma).float()

        # a full CorrDiff generation: regression_step + diffusion_step with a seeded generator
        members = spec["members"]
        img_lr = torch.randn(1, c_lr, h, w, generator=gen)
        draws: list[torch.Tensor] = []
        latents_seen: list[torch.Tensor] = []
        base = {"deterministic": deterministic_sampler, "stochastic": stochastic_sampler}[
            spec["sampler"]
        ]

        def recording_sampler(
            net, latents, img_lr, randn_like, _base=base, _seen=latents_seen, _draws=draws, **kw
        ):
            _seen.append(latents.detach().clone())

            def rec(t):
                d = randn_like(t)
                _draws.append(d.detach().clone())
                return d

            return _base(net, latents, img_lr, randn_like=rec, **kw)

        sampler_fn = partial(recording_sampler, **spec["sampler_kwargs"])
        seeds = list(range(7, 7 + members))
        with torch.no_grad():
            mean_g = regression_step(regression, img_lr_reg, (members, c_out, h, w))
            res = diffusion_step(
                net=diffusion,
                sampler_fn=sampler_fn,
                img_shape=(h, w),
                img_out_channels=c_out,
                rank_batches=[seeds],
                img_lr=img_lr.expand(members, -1, -1, -1),
                rank=1,
                device=torch.device("cpu"),
                mean_hr=mean_g[0:1] if spec["hr_mean_conditioning"] else None,
            )
        ref["gen_img_lr"] = img_lr
        ref["gen_latents"] = latents_seen[0].contiguous()
        if spec["sampler_kwargs"].get("S_churn", 0):
            ref["gen_noise"] = torch.stack(draws).contiguous()
        ref["gen_output"] = (mean_g + res).double()
        save_file(
            {k: v.detach().contiguous() for k, v in ref.items()}, out / "reference.safetensors"
        )
        meta = {
            "sigmas": sigmas,
            "hr_mean_conditioning": spec["hr_mean_conditioning"],
            "sampler": spec["sampler"],
            "sampler_kwargs": spec["sampler_kwargs"],
            "members": members,
            "versions": versions,
        }
        (out / "case.json").write_text(json.dumps(meta, indent=1) + "\n")
        sizes = {p.name: p.stat().st_size for p in out.rglob("*") if p.is_file()}
        print(case, sizes, file=sys.stderr)
    total = sum(p.stat().st_size for p in ROOT.rglob("*") if p.is_file())
    print(f"total fixture size {total / 1e6:.2f} MB", file=sys.stderr)


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
