r"""NVIDIA's CorrDiff, imported: regression mean + residual diffusion on a curvilinear fine grid.

:class:`CorrDiffPackageDownscaler` is the network of an imported CorrDiff package (see
:mod:`xsfm.models.corrdiff_import`): the two PhysicsNeMo-layout networks of
:mod:`xsfm.nn.songunet` with the package's normalisation, and the step that CorrDiff's pipeline
takes before them (as earth2studio's ``CorrDiffTaiwan`` does):

1. the coarse fields on a regular latitude/longitude grid are interpolated bilinearly **in
   latitude and longitude** onto the 2-D latitude/longitude of the fine grid (the package's full
   grid, e.g. 450 x 450, then cropped by ``crop`` cells on each side, e.g. to 448 x 448); the
   interpolation is a fixed sparse map (4 neighbours and weights per fine point, computed at
   import from the two grids and stored as buffers);
2. the fields are normalised per channel (``(x - in_center) / in_scale``);
3. the regression network gets them with 4 sinusoidal grid channels when the package has them
   (``sin``/``cos`` of ``linspace(0, 2 pi, H)`` across each axis, endpoints included: the
   ``"sinusoidal"`` grid of :func:`xsfm.nn.songunet.positional_grid`);
4. each member's residual is sampled by the package's sampler from its own unit-noise latent
   (drawn from the member's random stream, so results do not depend on batching), conditioned
   on the normalised fields (and the regression mean with ``hr_mean_conditioning``);
5. ``mean + residual`` is mapped back to physical units (``x * out_scale + out_center``).

Everything is pure torch; no xarray.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from xsfm.nn.songunet import corrdiff_generate, positional_grid

__all__ = ["CorrDiffPackageDownscaler", "bilinear_latlon_map"]


def bilinear_latlon_map(
    lat: np.ndarray, lon: np.ndarray, lat2d: np.ndarray, lon2d: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Neighbours and weights of bilinear interpolation from a regular grid to 2-D points.

    The regular grid has increasing, evenly spaced ``lat [h]`` and ``lon [w]``; the points are
    ``lat2d``/``lon2d`` ``[H, W]``. Returns ``index [4, H * W]`` into the flattened ``h * w`` grid
    and ``weight [4, H * W]``. Points outside the grid are extrapolated linearly from the edge cell.

    Examples
    --------
    >>> idx, w = bilinear_latlon_map(np.arange(3.0), np.arange(4.0), np.array([[0.5]]),
    ...                              np.array([[1.25]]))
    >>> idx[:, 0].tolist(), w[:, 0].round(3).tolist()
    ([1, 2, 5, 6], [0.375, 0.125, 0.375, 0.125])
    """
    lat, lon = np.asarray(lat, np.float64), np.asarray(lon, np.float64)
    if lat.size < 2 or lon.size < 2 or np.any(np.diff(lat) <= 0) or np.any(np.diff(lon) <= 0):
        raise ValueError("the coarse latitudes and longitudes must increase, with >= 2 of each")
    flat_lat, flat_lon = np.ravel(lat2d).astype(np.float64), np.ravel(lon2d).astype(np.float64)
    i = np.clip(np.searchsorted(lat, flat_lat) - 1, 0, lat.size - 2)
    j = np.clip(np.searchsorted(lon, flat_lon) - 1, 0, lon.size - 2)
    fy = (flat_lat - lat[i]) / (lat[1] - lat[0])
    fx = (flat_lon - lon[j]) / (lon[1] - lon[0])
    w = lon.size
    index = np.stack([i * w + j, i * w + j + 1, (i + 1) * w + j, (i + 1) * w + j + 1])
    weight = np.stack([(1 - fy) * (1 - fx), (1 - fy) * fx, fy * (1 - fx), fy * fx])
    return index.astype(np.int64), weight


def _member_noise(gens: Sequence[torch.Generator]) -> Any:
    """``randn_like`` for the stochastic sampler's churn: row ``m`` from member ``m``'s stream."""

    def randn_like(t: torch.Tensor) -> torch.Tensor:
        rows = [torch.randn(t.shape[1:], generator=g, device=g.device) for g in gens]
        return torch.stack(rows).to(device=t.device, dtype=t.dtype)

    return randn_like


def _build(spec: dict[str, Any]) -> nn.Module:
    """A network from its PhysicsNeMo class name and constructor arguments (``args.json``)."""
    from xsfm.models.corrdiff_checkpoint import build_corrdiff_network

    return build_corrdiff_network(spec["class"], spec["args"])


class CorrDiffPackageDownscaler(nn.Module):
    """An imported CorrDiff model: ``sample(coarse) -> members`` in physical units.

    Parameters
    ----------
    config
        The card's ``network`` section: ``regression`` and ``diffusion`` (``{"class", "args"}``:
        the PhysicsNeMo class name and constructor arguments of each ``.mdlus``),
        ``coarse_shape [h, w]``, ``full_shape [H + 2c, W + 2c]``,
        ``crop c``, ``in_channels``, ``out_channels``, ``grid_channels`` (``"sincos"`` or None),
        ``hr_mean_conditioning`` and ``sampler`` (``kind`` deterministic/stochastic, ``num_steps``,
        ``solver``, ``sigma_min``, ``sigma_max``, ``rho``).

    Examples
    --------
    >>> cfg = CorrDiffPackageDownscaler.example_config()
    >>> net = CorrDiffPackageDownscaler(cfg)
    >>> from xsfm.sampling.rng import stream_generators
    >>> net.sample(torch.zeros(1, 2, 3, 4), stream_generators(0, [0], 2), members=2).shape
    torch.Size([1, 2, 1, 8, 8])
    """

    method = "corrdiff"

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        self.config = dict(config)
        cin, cout = int(config["in_channels"]), int(config["out_channels"])
        self.in_channels, self.out_channels = cin, cout
        self.coarse_shape = tuple(int(v) for v in config["coarse_shape"])
        self.full_shape = tuple(int(v) for v in config["full_shape"])
        self.crop = int(config.get("crop", 0))
        self.fine_shape = tuple(n - 2 * self.crop for n in self.full_shape)
        self.regression = _build(config["regression"])
        self.diffusion = _build(config["diffusion"])
        n_full = math.prod(self.full_shape)
        self.register_buffer("in_center", torch.zeros(cin))
        self.register_buffer("in_scale", torch.ones(cin))
        self.register_buffer("out_center", torch.zeros(cout))
        self.register_buffer("out_scale", torch.ones(cout))
        self.register_buffer("interp_index", torch.zeros(4, n_full, dtype=torch.int64))
        self.register_buffer("interp_weight", torch.zeros(4, n_full, dtype=torch.float64))
        self.register_buffer("out_lat", torch.zeros(self.fine_shape, dtype=torch.float64))
        self.register_buffer("out_lon", torch.zeros(self.fine_shape, dtype=torch.float64))

    @staticmethod
    def example_config() -> dict[str, Any]:
        """A tiny configuration (2 inputs, 1 output, 10 x 10 grid cropped to 8 x 8) for examples."""
        backbone = {"model_type": "SongUNet", "model_channels": 4, "channel_mult": [1],
                    "num_blocks": 1, "attn_resolutions": []}  # fmt: skip
        return {
            "in_channels": 2,
            "out_channels": 1,
            "coarse_shape": [3, 4],
            "full_shape": [10, 10],
            "crop": 1,
            "grid_channels": "sincos",
            "hr_mean_conditioning": True,
            "regression": {"class": "UNet",
                           "args": {"img_resolution": 8, "img_in_channels": 6,
                                    "img_out_channels": 1, **backbone}},
            "diffusion": {"class": "EDMPrecondSuperResolution",
                          "args": {"img_resolution": 8, "img_in_channels": 3,
                                   "img_out_channels": 1, **backbone}},
            "sampler": {"kind": "deterministic", "num_steps": 2, "solver": "euler"},
        }  # fmt: skip

    def interpolate(self, x: torch.Tensor) -> torch.Tensor:
        """Coarse ``[B, C, h, w]`` -> fine ``[B, C, H, W]`` (bilinear in lat/lon, then cropped)."""
        if tuple(x.shape[-2:]) != self.coarse_shape:
            raise ValueError(
                f"coarse input has shape {tuple(x.shape[-2:])}, the model's coarse grid "
                f"{self.coarse_shape}"
            )
        flat = x.reshape(*x.shape[:-2], -1).to(torch.float64)
        full = (flat[..., self.interp_index] * self.interp_weight).sum(-2)
        full = full.reshape(*x.shape[:-2], *self.full_shape)
        c = self.crop
        fine = full[..., c : full.shape[-2] - c, c : full.shape[-1] - c] if c else full
        return fine.to(torch.float32)

    def _latents(self, generators: Sequence[torch.Generator], like: torch.Tensor) -> torch.Tensor:
        shape = (self.out_channels, *self.fine_shape)
        return torch.stack(
            [torch.randn(shape, generator=g, device=g.device) for g in generators]
        ).to(device=like.device, dtype=torch.float64)

    @torch.inference_mode()
    def sample(
        self,
        x: torch.Tensor,
        generators: Sequence[torch.Generator],
        members: int = 1,
        steps: int | None = None,
        solver: str | None = None,
        **_: Any,
    ) -> torch.Tensor:
        """Members ``[B, M, Cout, H, W]`` (physical units) for coarse ``x [B, Cin, h, w]``.

        ``generators`` are one per (sample, member), sample-major; ``steps`` and ``solver``
        override the package's sampler settings.
        """
        batch = x.shape[0]
        if len(generators) != batch * members:
            raise ValueError(
                f"{len(generators)} generators for {batch} samples x {members} members"
            )
        fine = self.interpolate(x)
        norm = (fine - self.in_center[:, None, None]) / self.in_scale[:, None, None]
        settings = dict(self.config.get("sampler", {}))
        kind = settings.pop("kind", "deterministic")
        if steps is not None:
            settings["num_steps"] = int(steps)
        if solver is not None:
            settings["solver"] = solver
        grid = None
        if self.config.get("grid_channels") == "sincos":
            grid = positional_grid("sinusoidal", 4, *self.fine_shape).to(norm.device)[None]
        out = []
        for b in range(batch):
            cond = norm[b : b + 1]
            reg_in = cond if grid is None else torch.cat([cond, grid], dim=1)
            gens = generators[b * members : (b + 1) * members]
            latents = self._latents(gens, x)
            y = corrdiff_generate(
                self.regression,  # type: ignore[arg-type]
                self.diffusion,  # type: ignore[arg-type]
                reg_in,
                cond,
                latents,
                sampler=kind,
                hr_mean_conditioning=bool(self.config.get("hr_mean_conditioning", False)),
                randn_like=_member_noise(gens),
                **settings,
            )
            out.append(y.to(torch.float32))
        members_out = torch.stack(out)  # [B, M, Cout, H, W]
        return members_out * self.out_scale[:, None, None] + self.out_center[:, None, None]
