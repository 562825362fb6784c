"""The base class of the downscaling methods: config, normalisation, grids and the denoiser.

Every method is a :class:`Downscaler` holding its normalisation statistics (per-channel mean and
standard deviation of inputs and outputs, in physical units) as buffers, so it takes and returns
physical units; the training loss comes from :class:`~xsfm.models.downscaling.loss.LossMixin`, sampling
from :class:`~xsfm.models.downscaling.sampling.SamplingMixin`. See
:mod:`xsfm.models.downscaling` for the methods.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from xsfm.models.downscaling.base_noise import BANDS
from xsfm.models.downscaling.config import METHODS, _pair, default_config
from xsfm.models.downscaling.loss import LossMixin
from xsfm.models.downscaling.sampling import SamplingMixin
from xsfm.nn.encoders import build_encoder
from xsfm.nn.unet import UNet
from xsfm.sampling.paths import SIGMA_DATA, precondition

__all__ = ["Downscaler"]


def _item(t: torch.Tensor) -> float:
    return float(t.detach())


class Downscaler(LossMixin, SamplingMixin, nn.Module):
    """Base class of the downscaling methods (see the module docstring).

    Build with :func:`build_downscaler` or :meth:`from_config`, which pick the class by
    ``config["method"]``.

    Parameters
    ----------
    config
        Partial or complete config (missing keys take the method's defaults; unknown keys are
        refused).

    Examples
    --------
    >>> from xsfm.models.downscaling import build_downscaler
    >>> from xsfm.sampling.rng import stream_generators
    >>> cfg = {"method": "sfm", "in_channels": 2, "out_channels": 1, "factor": 2,
    ...        "unet": {"channels": 8, "channel_mult": [1, 2]}}
    >>> model = build_downscaler(cfg)
    >>> coarse = torch.zeros(3, 2, 4, 4)
    >>> model.sample(coarse, stream_generators(0, range(3), 2), members=2, steps=4).shape
    torch.Size([3, 2, 1, 8, 8])
    >>> loss, logs = model.loss(coarse, torch.zeros(3, 1, 8, 8), torch.Generator().manual_seed(0))
    >>> sorted(logs)
    ['flow', 'loss', 'reg']
    """

    method: ClassVar[str] = ""
    uses_encoder: ClassVar[bool] = False
    uses_flow_net: ClassVar[bool] = True
    uses_sigma_z: ClassVar[bool] = False
    adaptive_sigma_z: ClassVar[bool] = False

    in_mean: torch.Tensor
    in_std: torch.Tensor
    out_mean: torch.Tensor
    out_std: torch.Tensor

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        super().__init__()
        config = dict(config or {})
        method = config.pop("method", self.method) or self.method
        if self.method and method != self.method:
            raise ValueError(
                f"config method {method!r} does not match class {type(self).__name__} "
                f"({self.method!r}); use build_downscaler(config)"
            )
        cfg = default_config(method, **config)
        self._config = cfg
        cin, cout = int(cfg["in_channels"]), int(cfg["out_channels"])
        if cin < 1 or cout < 1:
            raise ValueError(f"in_channels and out_channels must be >= 1, got {cin} and {cout}")
        self.in_channels, self.out_channels = cin, cout
        self.factor = _pair(cfg["factor"], "factor")
        self.fine_shape_fixed = (
            _pair(cfg["fine_shape"], "fine_shape") if cfg["fine_shape"] is not None else None
        )
        self.periodic = bool(cfg["periodic"])
        if cfg["dtype"] not in ("float32", "bfloat16"):
            raise ValueError(f"dtype must be 'float32' or 'bfloat16', got {cfg['dtype']!r}")
        seed = int(cfg["seed"])
        padding = "circular" if self.periodic else "zeros"

        self.register_buffer("in_mean", torch.zeros(cin))
        self.register_buffer("in_std", torch.ones(cin))
        self.register_buffer("out_mean", torch.zeros(cout))
        self.register_buffer("out_std", torch.ones(cout))

        self.encoder: nn.Module | None = None
        if self.uses_encoder:
            enc_cfg = dict(cfg["encoder"])
            enc_cfg.update(in_channels=cin, out_channels=cout, seed=seed + 1000)
            if enc_cfg.get("kind", "conv1x1") == "unet":
                enc_cfg.setdefault("padding_mode", padding)
            self.encoder = build_encoder(enc_cfg)
        self.net: nn.Module | None = None
        if self.uses_flow_net:
            self.cond_on_y = bool(cfg["condition_on_input"])
            self.net = _flow_network(cfg, cin, cout, padding, seed, self.fine_shape_fixed)
        else:
            self.cond_on_y = False
        if self.uses_sigma_z:
            init = float(cfg["sigma_z_init"])
            self.register_buffer("sigma_z", torch.full((cout,), init))
            self.register_buffer("sigma_z_ema_sum", torch.zeros(cout, dtype=torch.float64))
            self.register_buffer("sigma_z_updates", torch.zeros((), dtype=torch.int64))
        scale = cfg["sigma_z_scale"]
        if isinstance(scale, bool) or not isinstance(scale, int | float) or not scale > 0:
            raise ValueError(f"sigma_z_scale must be a number > 0, got {scale!r}")
        if scale != 1 and not self.uses_sigma_z:
            raise ValueError(f"sigma_z_scale is for methods with a sigma_z; {method!r} has none")
        self.base_noise = str(cfg["base_noise"])
        if self.base_noise not in ("white", "spectral"):
            raise ValueError(f"base_noise must be 'white' or 'spectral', got {self.base_noise!r}")
        if self.base_noise == "spectral":
            if not self.adaptive_sigma_z:
                raise ValueError(
                    f"base_noise 'spectral' is measured from the encoder's held-out error like "
                    f"an adaptive sigma_z; method {method!r} has none (use sfm or sfm-two-stage)"
                )
            # amplitude per channel and radial band (normalised units), estimated in training
            self.register_buffer("noise_band_amplitude", torch.ones(cout, BANDS))
            self.register_buffer(
                "noise_band_ema_sum", torch.zeros(cout, BANDS, dtype=torch.float64)
            )
            self.register_buffer("noise_band_seen", torch.zeros(BANDS, dtype=torch.bool))
            self.register_buffer("noise_band_updates", torch.zeros((), dtype=torch.int64))
        self.stage = 1 if self.num_stages == 2 else 0
        self._default_generator: torch.Generator | None = None
        if cfg["channels_last"]:
            self.to(memory_format=torch.channels_last)

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Downscaler:
        """Build the method named by ``config["method"]`` (or this class's method)."""
        from xsfm.models.downscaling import _CLASSES

        method = config.get("method", cls.method or "sfm")
        target = _CLASSES.get(method)
        if target is None:
            raise ValueError(
                f"unknown downscaling method {method!r}; choose one of {list(METHODS)}"
            )
        if cls is not Downscaler and not issubclass(target, cls):
            raise ValueError(f"config method {method!r} is not a {cls.__name__}")
        return target(config)

    @property
    def config(self) -> dict[str, Any]:
        """Complete JSON-serialisable config (rebuilds this module with :meth:`from_config`)."""
        return copy.deepcopy(self._config)

    @property
    def num_stages(self) -> int:
        """Training stages: 2 when the encoder is trained first and then frozen."""
        return 1

    def set_stage(self, stage: int) -> None:
        """Select the training stage (1 or 2) of a two-stage method; ignored otherwise."""
        if self.num_stages == 1:
            return
        if stage not in (1, 2):
            raise ValueError(f"stage must be 1 or 2, got {stage}")
        self.stage = stage

    # ------------------------------------------------------------------ normalisation, grids

    def set_normalisation(
        self,
        in_mean: torch.Tensor | Sequence[float],
        in_std: torch.Tensor | Sequence[float],
        out_mean: torch.Tensor | Sequence[float],
        out_std: torch.Tensor | Sequence[float],
    ) -> None:
        """Set the per-channel statistics (physical units) of inputs and outputs.

        Examples
        --------
        >>> from xsfm.models.downscaling import build_downscaler
        >>> m = build_downscaler({"method": "regression", "in_channels": 1, "out_channels": 1})
        >>> m.set_normalisation([1.0], [2.0], [0.0], [3.0])
        >>> m.out_std
        tensor([3.])
        """
        values = {
            "in_mean": (in_mean, self.in_channels),
            "in_std": (in_std, self.in_channels),
            "out_mean": (out_mean, self.out_channels),
            "out_std": (out_std, self.out_channels),
        }
        for name, (value, n) in values.items():
            t = torch.as_tensor(value, dtype=torch.float32).reshape(-1)
            if t.numel() != n:
                raise ValueError(f"{name} needs {n} values (one per channel), got {t.numel()}")
            if name.endswith("std") and not bool((t > 0).all()):
                raise ValueError(f"{name} must be positive, got {t.tolist()}")
            getattr(self, name).copy_(t)

    def fine_shape(self, height: int, width: int) -> tuple[int, int]:
        """Fine grid size for a coarse grid of ``height x width``.

        Examples
        --------
        >>> from xsfm.models.downscaling import build_downscaler
        >>> build_downscaler({"method": "regression", "factor": 4}).fine_shape(16, 8)
        (64, 32)
        """
        if self.fine_shape_fixed is not None:
            return self.fine_shape_fixed
        return height * self.factor[0], width * self.factor[1]

    def interpolate(self, coarse_norm: torch.Tensor) -> torch.Tensor:
        """Bilinear interpolation ``[B, C, h, w] -> [B, C, H, W]`` (cell centres kept)."""
        h, w = coarse_norm.shape[-2:]
        size = self.fine_shape(h, w)
        if size == (h, w):
            return coarse_norm
        if not self.periodic:
            return F.interpolate(coarse_norm, size=size, mode="bilinear", align_corners=False)
        if size[0] % h or size[1] % w:
            raise ValueError(
                "periodic interpolation needs an integer factor, "
                f"got {h}x{w} -> {size[0]}x{size[1]}"
            )
        fy, fx = size[0] // h, size[1] // w
        padded = F.pad(coarse_norm, (1, 1, 1, 1), mode="circular")
        out = F.interpolate(
            padded, size=((h + 2) * fy, (w + 2) * fx), mode="bilinear", align_corners=False
        )
        return out[..., fy : fy + size[0], fx : fx + size[1]]

    def _check_coarse(self, coarse: torch.Tensor) -> None:
        if coarse.ndim != 4 or coarse.shape[1] != self.in_channels:
            raise ValueError(
                f"coarse input must have shape [batch, {self.in_channels}, h, w], "
                f"got {list(coarse.shape)}"
            )

    def prepare(
        self, coarse: torch.Tensor, fine: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Normalise and interpolate: physical ``coarse`` (and ``fine``) to ``(y, x)``."""
        self._check_coarse(coarse)
        coarse = coarse.to(self.in_mean.device, torch.float32)
        y = (coarse - self.in_mean[:, None, None]) / self.in_std[:, None, None]
        y = self.interpolate(y)
        x = None
        if fine is not None:
            expected = (coarse.shape[0], self.out_channels, *y.shape[-2:])
            if tuple(fine.shape) != expected:
                raise ValueError(
                    f"fine target must have shape {list(expected)} for this coarse input, "
                    f"got {list(fine.shape)}"
                )
            fine = fine.to(self.out_mean.device, torch.float32)
            x = (fine - self.out_mean[:, None, None]) / self.out_std[:, None, None]
        return y, x

    def denormalise(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised fine fields ``[..., Cout, H, W]`` back to physical units."""
        return x * self.out_std[:, None, None] + self.out_mean[:, None, None]

    # ------------------------------------------------------------------ pieces

    def encode(self, y: torch.Tensor) -> torch.Tensor:
        """Encoder mean ``E(y)`` in normalised units (zero for methods without encoder)."""
        if self.encoder is None:
            return y.new_zeros(y.shape[0], self.out_channels, *y.shape[-2:])
        return self.encoder(y)

    def denoise(
        self, x: torch.Tensor, sigma: torch.Tensor | float, y: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Preconditioned denoiser ``D(x, sigma[, y])`` in normalised units."""
        if self.net is None:
            raise TypeError(f"method {self.method!r} has no flow/diffusion network")
        cond = y if self.cond_on_y else None
        return precondition(self.net, x, sigma, cond, SIGMA_DATA)

    def extra_repr(self) -> str:  # noqa: D102
        return f"method={self.method!r}"


def _flow_network(
    cfg: dict[str, Any],
    cin: int,
    cout: int,
    padding: str,
    seed: int,
    fine_shape: tuple[int, int] | None,
) -> nn.Module:
    """The flow/diffusion backbone: xsfm's U-Net, or (``unet.backbone: songunet``) SongUNet.

    SongUNet has PhysicsNeMo's layout (the CorrDiff and SFM papers' network); its arguments are
    ``unet.songunet`` (``model_channels``, ``channel_mult``, ``num_blocks``,
    ``attn_resolutions``, ...); it needs a fixed ``fine_shape`` and pads with zeros (no periodic
    domains). Its initialisation is seeded like xsfm's.
    """
    unet = dict(cfg["unet"])
    backbone = unet.pop("backbone", "xsfm")
    cond = cin if cfg["condition_on_input"] else 0
    if backbone == "xsfm":
        unet.pop("songunet", None)
        return UNet(cout, cout, cond_channels=cond, padding_mode=padding, seed=seed, **unet)
    if backbone != "songunet":
        raise ValueError(f"unet.backbone must be 'xsfm' or 'songunet', got {backbone!r}")
    if fine_shape is None:
        raise ValueError("unet.backbone 'songunet' needs a fixed fine_shape [H, W] in the config")
    if cfg["periodic"]:
        raise ValueError("unet.backbone 'songunet' pads with zeros: not for periodic domains")
    from xsfm.nn.songunet import SongUNetDenoiser

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return SongUNetDenoiser(
            cout, cout, cond_channels=cond, img_resolution=list(fine_shape),
            **unet.get("songunet", {}),
        )  # fmt: skip
