"""Pure-torch networks: the EDM-style U-Net, encoders, embeddings and PhysicsNeMo's SongUNet.

:mod:`xsfm.nn.songunet` holds the PhysicsNeMo-compatible networks of NVIDIA CorrDiff.
"""

from __future__ import annotations

from xsfm.nn.embeddings import FourierEmbedding, PositionalEmbedding, grid_channels
from xsfm.nn.encoders import Conv1x1Encoder, UNetEncoder, build_encoder
from xsfm.nn.songunet import (
    CorrDiffRegressionUNet,
    EDMPrecondSuperResolution,
    SongUNet,
    SongUNetPosEmbd,
)
from xsfm.nn.unet import UNet

__all__ = [
    "Conv1x1Encoder",
    "CorrDiffRegressionUNet",
    "EDMPrecondSuperResolution",
    "FourierEmbedding",
    "PositionalEmbedding",
    "SongUNet",
    "SongUNetPosEmbd",
    "UNet",
    "UNetEncoder",
    "build_encoder",
    "grid_channels",
]
