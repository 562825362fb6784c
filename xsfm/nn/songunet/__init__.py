"""PhysicsNeMo-compatible SongUNet networks and CorrDiff wrappers (pure torch).

The modules hold exactly the state-dict keys and shapes of PhysicsNeMo's ``SongUNet``,
``SongUNetPosEmbd``, the CorrDiff regression wrapper (``UNet``/``CorrDiffRegressionUNet``) and the
EDM super-resolution preconditioning (``EDMPrecondSuperResolution``/``EDMPrecondSR``), and compute
the same outputs at inference, so NVIDIA's CorrDiff checkpoints load into them
(:func:`xsfm.models.corrdiff_checkpoint.load_corrdiff_checkpoint`). ``studies/corrdiff_fixtures.py``
and ``tests/test_corrdiff_equivalence.py`` check the equality against PhysicsNeMo 2.2.2.
"""

from __future__ import annotations

from xsfm.nn.songunet.layers import (
    Attention,
    Conv2d,
    FourierEmbedding,
    GroupNorm,
    Linear,
    PositionalEmbedding,
    UNetBlock,
)
from xsfm.nn.songunet.network import SongUNet, SongUNetPosEmbd, positional_grid
from xsfm.nn.songunet.sampling import corrdiff_generate, deterministic_sampler, stochastic_sampler
from xsfm.nn.songunet.wrappers import (
    BACKBONES,
    CorrDiffRegressionUNet,
    EDMPrecondSuperResolution,
    SongUNetDenoiser,
)

__all__ = [
    "BACKBONES",
    "Attention",
    "Conv2d",
    "CorrDiffRegressionUNet",
    "EDMPrecondSuperResolution",
    "FourierEmbedding",
    "GroupNorm",
    "Linear",
    "PositionalEmbedding",
    "SongUNet",
    "SongUNetDenoiser",
    "SongUNetPosEmbd",
    "UNetBlock",
    "corrdiff_generate",
    "deterministic_sampler",
    "positional_grid",
    "stochastic_sampler",
]
