"""Pure-torch networks: the EDM-style U-Net, encoders and embeddings."""

from __future__ import annotations

from xsfm.nn.embeddings import FourierEmbedding, PositionalEmbedding, grid_channels
from xsfm.nn.encoders import Conv1x1Encoder, UNetEncoder, build_encoder
from xsfm.nn.unet import UNet

__all__ = [
    "Conv1x1Encoder",
    "FourierEmbedding",
    "PositionalEmbedding",
    "UNet",
    "UNetEncoder",
    "build_encoder",
    "grid_channels",
]
