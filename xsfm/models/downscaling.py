r"""Stochastic Flow Matching (SFM) downscaling and its baselines, on one backbone (pure torch).

Every method is a :class:`Downscaler` built from a JSON config (:func:`build_downscaler`,
``Downscaler.from_config``), holding its normalisation statistics (per-channel mean and standard
deviation of inputs and outputs, in physical units) as buffers. So
:meth:`Downscaler.sample` takes coarse fields in physical units ``[B, Cin, h, w]`` and returns fine
fields in physical units ``[B, M, Cout, H, W]``, and :meth:`Downscaler.loss` takes physical pairs.
Inside, the coarse input is normalised and interpolated bilinearly to the fine grid (cell centres
preserved; wrapped on periodic domains): that is ``y``; the fine target normalised is ``x``. All
networks share the U-Net of :mod:`xsfm.nn.unet` (sized by ``config["unet"]``), so comparisons are
fair.

Methods (``config["method"]``)
------------------------------
``sfm`` -- Stochastic Flow Matching (Fotiadis et al., "Stochastic Flow Matching for Resolving
Small-Scale Physics"). An encoder ``E`` (1x1 conv by default) maps ``y`` to a first guess; the base
sample is ``z = E(y) + sigma_z eps`` with one ``sigma_z`` per output channel; the path is
``x_sigma = sigma z + (1 - sigma) x`` with ``sigma = 1 - t``; the network predicts ``x`` through the
EDM preconditioning (:func:`xsfm.sampling.paths.precondition`, ``sigma_data = 0.5``)::

    loss = w(sigma) mean((D(x_sigma, sigma[, y]) - x)^2) + lambda mean((x - E(y))^2)
    w(sigma) = (sigma^2 + 0.25) / (0.25 sigma^2),  lambda = 0.25 (``lambda_reg``)

averaged over channels and pixels, then over the batch; encoder and flow network are optimised
jointly, by one optimiser, in every step. By default the flow term's gradient does **not** reach
``E`` through ``z`` (``encoder_flow_grad=False``): ``E`` is then trained by the regression term
alone and stays the conditional-mean regressor whose RMSE is the ML estimate of ``sigma_z``. The
released code lets that gradient through (``encoder_flow_grad=True``); on synthetic pairs
``x = a y + noise`` it inflates ``E`` (a larger ``E`` raises the signal-to-noise ratio of
``z = E(y) + sigma_z eps``), and ``sigma_z`` settled about 80 % above the true noise level in our
measurement, against 0.1 % with the default. ``sigma ~ U(sigma_min_train, 1)``
with ``sigma_min_train = 1e-3`` rather than ``U(0, 1)``: at ``sigma = 0`` the weight and
``c_noise = ln(sigma)/4`` are infinite, while under the preconditioning ``w |D - x|^2`` stays
bounded, so removing the first thousandth of the interval avoids ``inf * 0`` at negligible cost.
Conditioning the flow network on ``y`` is a switch (``condition_on_input``, off as in the released
configuration).

*Adaptive sigma_z.* ``sigma_z`` is the maximum-likelihood estimate of the spread of ``x`` around
``E(y)``: the per-channel **RMSE** of the encoder on held-out data (in normalised units), smoothed
by an exponential moving average (decay 0.99, bias-corrected like Adam's moments so that the first
updates are not pulled towards the initial value) and floored at 0.05. The trainer measures the
RMSE every ``k`` steps and calls :meth:`Downscaler.update_sigma_z`. The released code (NVIDIA
PhysicsNeMo) feeds the *MSE* (no square root) to the average; we use the RMSE, which is the ML
estimate of a standard deviation.

``sfm-two-stage`` -- the same model, trained in two stages: first the encoder alone (regression
loss), then the flow with the encoder frozen. ``sfm-fixed-sigma`` -- SFM with ``sigma_z`` fixed at
``sigma_z_init`` (never updated). ``regression`` -- the encoder alone, deterministic (all members
equal). ``cfm`` -- conditional flow matching from ``N(0, I)`` (Lipman et al. 2023): SFM's path and
loss with ``z = eps`` and ``y`` as conditioning channels. ``edm`` -- conditional EDM diffusion
(Karras et al. 2022): ``x_sigma = x + sigma eps``, ``ln(sigma) ~ N(-1.2, 1.2^2)``, the same weighted
x-prediction loss, conditioning on ``y``. ``corrdiff`` -- CorrDiff-style residual diffusion (Mardani
et al. 2024): a regression mean ``E(y)`` (trained first, then frozen, or jointly with
``corrdiff_joint``) plus conditional EDM diffusion of the residual ``x - E(y)``.

Sampling
--------
All methods integrate the probability-flow ODE ``dx/dsigma = (x - D) / sigma`` with the samplers of
:mod:`xsfm.sampling.solvers` on an EDM ``rho = 7`` grid ending with a jump to ``sigma = 0`` that
returns ``D``. Flow methods start at ``sigma = 1`` from ``z`` (Euler, 50 steps, ``sigma`` from 1 to
0.01 by default); diffusion methods from ``sigma_max eps`` (Heun, 18 steps, ``sigma`` from 80 to
0.002). Members go through the network as one batch; the initial noise of each (sample, member)
comes from its own generator (:mod:`xsfm.sampling.rng`). Optional ``bfloat16`` autocast of the
network (``dtype``) and ``channels_last`` memory format; the ODE state stays ``float32``.

Randomness in :meth:`Downscaler.loss` comes from an explicit generator, drawn in a fixed order (see
:meth:`Downscaler.draw_noise`), so losses can be recomputed by hand.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from xsfm.nn.encoders import build_encoder
from xsfm.nn.unet import UNet
from xsfm.sampling.paths import (
    SIGMA_DATA,
    edm_sigmas,
    loss_weight,
    precondition,
    sample_sigma_lognormal,
    sample_sigma_uniform,
    sfm_path,
)
from xsfm.sampling.rng import randn
from xsfm.sampling.solvers import make_sampler

__all__ = [
    "METHODS",
    "CFMDownscaler",
    "CorrDiffDownscaler",
    "Downscaler",
    "EDMDownscaler",
    "RegressionDownscaler",
    "SFMDownscaler",
    "build_downscaler",
    "default_config",
]

_FLOW_SAMPLER = {"solver": "euler", "steps": 50, "sigma_min": 0.01, "sigma_max": 1.0, "rho": 7.0}
_EDM_SAMPLER = {"solver": "heun", "steps": 18, "sigma_min": 0.002, "sigma_max": 80.0, "rho": 7.0}

_DEFAULTS: dict[str, Any] = {
    "method": "sfm",
    "in_channels": 1,
    "out_channels": 1,
    "factor": 4,
    "fine_shape": None,
    "periodic": False,
    "unet": {
        "channels": 32,
        "channel_mult": [1, 2, 2],
        "num_blocks": 1,
        "attention_levels": [],
        "num_heads": 1,
        "embedding": "fourier",
        "emb_mult": 4,
        "grid": "none",
        "patch": 1,
    },
    "encoder": {"kind": "conv1x1"},
    "condition_on_input": False,
    "encoder_flow_grad": False,
    "lambda_reg": 0.25,
    "sigma_z_init": 1.0,
    "sigma_z_floor": 0.05,
    "sigma_z_ema": 0.99,
    "sigma_min_train": 1e-3,
    "p_mean": -1.2,
    "p_std": 1.2,
    "two_stage_fraction": 0.5,
    "corrdiff_joint": False,
    "sampler": dict(_FLOW_SAMPLER),
    "dtype": "float32",
    "channels_last": False,
    "seed": 0,
}

_METHOD_DEFAULTS: dict[str, dict[str, Any]] = {
    "sfm": {},
    "sfm-two-stage": {},
    "sfm-fixed-sigma": {},
    "regression": {},
    "cfm": {"condition_on_input": True},
    "edm": {"condition_on_input": True, "sampler": dict(_EDM_SAMPLER)},
    "corrdiff": {"condition_on_input": True, "sampler": dict(_EDM_SAMPLER)},
}

METHODS: tuple[str, ...] = tuple(_METHOD_DEFAULTS)
"""Names of the downscaling methods."""


def _merge(base: dict[str, Any], update: dict[str, Any], where: str = "config") -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in update.items():
        if key not in base:
            raise KeyError(f"unknown {where} key {key!r}; known keys are {sorted(base)}")
        if isinstance(base[key], dict) and key != "encoder":
            if not isinstance(value, dict):
                raise TypeError(f"{where}[{key!r}] must be a dict, got {type(value).__name__}")
            out[key] = _merge(base[key], value, f"{where}[{key!r}]")
        else:
            out[key] = copy.deepcopy(value)
    return out


def default_config(method: str = "sfm", **overrides: Any) -> dict[str, Any]:
    """Complete config of ``method`` with ``overrides`` applied (nested dicts merged).

    Parameters
    ----------
    method
        One of :data:`METHODS`.
    **overrides
        Top-level keys to change (``unet`` and ``sampler`` may be partial dicts).

    Examples
    --------
    >>> cfg = default_config("edm", in_channels=2, unet={"channels": 16})
    >>> cfg["unet"]["channels"], cfg["unet"]["channel_mult"], cfg["sampler"]["solver"]
    (16, [1, 2, 2], 'heun')
    """
    if method not in _METHOD_DEFAULTS:
        raise ValueError(f"unknown downscaling method {method!r}; choose one of {list(METHODS)}")
    cfg = _merge(_DEFAULTS, _METHOD_DEFAULTS[method])
    cfg["method"] = method
    overrides = dict(overrides)
    overrides.pop("method", None)
    cfg = _merge(cfg, overrides)
    if method in ("cfm", "edm", "corrdiff"):
        cfg["condition_on_input"] = True  # these methods see y only through conditioning
    return cfg


def _pair(value: int | Sequence[int], name: str) -> tuple[int, int]:
    if isinstance(value, int | float):
        value = (int(value), int(value))
    pair = tuple(int(v) for v in value)
    if len(pair) != 2 or min(pair) < 1:
        raise ValueError(f"{name} must be a positive integer or a pair of them, got {value!r}")
    return pair  # type: ignore[return-value]


def _item(t: torch.Tensor) -> float:
    return float(t.detach())


class Downscaler(nn.Module):
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
        self.net: UNet | None = None
        if self.uses_flow_net:
            self.cond_on_y = bool(cfg["condition_on_input"])
            self.net = UNet(
                cout,
                cout,
                cond_channels=cin if self.cond_on_y else 0,
                padding_mode=padding,
                seed=seed,
                **cfg["unet"],
            )
        else:
            self.cond_on_y = False
        if self.uses_sigma_z:
            init = float(cfg["sigma_z_init"])
            self.register_buffer("sigma_z", torch.full((cout,), init))
            self.register_buffer("sigma_z_ema_sum", torch.zeros(cout, dtype=torch.float64))
            self.register_buffer("sigma_z_updates", torch.zeros((), dtype=torch.int64))
        self.stage = 1 if self.num_stages == 2 else 0
        self._default_generator: torch.Generator | None = None
        if cfg["channels_last"]:
            self.to(memory_format=torch.channels_last)

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Downscaler:
        """Build the method named by ``config["method"]`` (or this class's method)."""
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

    def _generator(self, generator: torch.Generator | None) -> torch.Generator:
        if generator is not None:
            return generator
        if self._default_generator is None:
            self._default_generator = torch.Generator().manual_seed(int(self._config["seed"]))
        return self._default_generator

    def draw_noise(
        self, batch: int, shape: Sequence[int], generator: torch.Generator
    ) -> dict[str, torch.Tensor]:
        """Draw the training noise for a batch: ``sigma[B]`` first, then ``eps[B, *shape]``.

        Both come from ``generator`` (on its device), in this order.
        """
        sigma = self._draw_sigma(batch, generator)
        eps = torch.randn((batch, *shape), generator=generator, device=generator.device)
        return {"sigma": sigma, "eps": eps}

    def _draw_sigma(self, batch: int, generator: torch.Generator) -> torch.Tensor:
        return sample_sigma_uniform(
            batch, generator, float(self._config["sigma_min_train"]), device=generator.device
        )

    # ------------------------------------------------------------------ training

    def loss(
        self,
        coarse: torch.Tensor,
        fine: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Training loss on a batch of physical pairs.

        Parameters
        ----------
        coarse
            ``[B, Cin, h, w]`` in physical units.
        fine
            ``[B, Cout, H, W]`` in physical units.
        generator
            Source of the noise (drawn by :meth:`draw_noise`); a module-owned generator seeded from
            ``config["seed"]`` when omitted.

        Returns
        -------
        loss
            Scalar tensor (differentiable).
        logs
            Its parts as floats (``loss`` and method-specific terms).
        """
        y, x = self.prepare(coarse, fine)
        assert x is not None
        noise = self.draw_noise(x.shape[0], x.shape[1:], self._generator(generator))
        noise = {k: v.to(x.device) for k, v in noise.items()}
        return self.loss_from_noise(y, x, noise)

    def loss_from_noise(
        self, y: torch.Tensor, x: torch.Tensor, noise: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """The loss for normalised ``y``, ``x`` and given noise (see :meth:`draw_noise`)."""
        raise NotImplementedError

    @torch.no_grad()
    def encoder_rmse(self, coarse: torch.Tensor, fine: torch.Tensor) -> torch.Tensor:
        """Per-channel RMSE of the encoder on physical pairs, in normalised units ``[Cout]``."""
        y, x = self.prepare(coarse, fine)
        assert x is not None
        return (x - self.encode(y)).pow(2).mean(dim=(0, 2, 3)).sqrt()

    def update_sigma_z(self, rmse_per_channel: torch.Tensor | Sequence[float]) -> torch.Tensor:
        """Fold a measured per-channel encoder RMSE (normalised units) into ``sigma_z``.

        ``sigma_z = max(floor, EMA_0.99(rmse) / (1 - 0.99^n))`` after ``n`` updates (a
        bias-corrected moving average). A no-op for methods with a fixed or no ``sigma_z``.

        Returns
        -------
        torch.Tensor
            The current ``sigma_z`` (normalised units); empty for methods without one.

        Examples
        --------
        >>> m = build_downscaler({"method": "sfm", "unet": {"channels": 8, "channel_mult": [1]}})
        >>> m.update_sigma_z([0.01])  # floored at 0.05 (normalised units)
        tensor([0.0500])
        >>> m.update_sigma_z([0.3])  # bias-corrected average of 0.01 and 0.3
        tensor([0.1557])
        """
        if not self.uses_sigma_z:
            return torch.zeros(0)
        if not self.adaptive_sigma_z:
            return self.sigma_z.clone()
        rmse = torch.as_tensor(rmse_per_channel, dtype=torch.float64).reshape(-1)
        if rmse.numel() != self.out_channels:
            raise ValueError(
                f"rmse needs {self.out_channels} values (one per output channel), "
                f"got {rmse.numel()}"
            )
        decay = float(self._config["sigma_z_ema"])
        with torch.no_grad():
            self.sigma_z_ema_sum.mul_(decay).add_((1 - decay) * rmse.to(self.sigma_z_ema_sum))
            self.sigma_z_updates.add_(1)
            corrected = self.sigma_z_ema_sum / (1 - decay ** int(self.sigma_z_updates))
            floor = float(self._config["sigma_z_floor"])
            self.sigma_z.copy_(corrected.clamp_min(floor).to(self.sigma_z))
        return self.sigma_z.clone()

    @property
    def sigma_z_physical(self) -> torch.Tensor:
        """``sigma_z`` in the physical units of each output channel."""
        if not self.uses_sigma_z:
            raise TypeError(f"method {self.method!r} has no sigma_z")
        return self.sigma_z * self.out_std

    # ------------------------------------------------------------------ sampling

    def _sampler_settings(
        self, steps: int | None, solver: str | None, rho: float | None = None
    ) -> dict[str, Any]:
        s = dict(self._config["sampler"])
        if rho is not None:
            if not float(rho) > 0:
                raise ValueError(f"rho (the time-grid exponent) must be > 0, got {rho}")
            s["rho"] = float(rho)
        if steps is not None:
            if int(steps) < 1:
                raise ValueError(f"steps must be at least 1, got {steps}")
            s["steps"] = int(steps)
        if solver is not None:
            s["solver"] = solver
        return s

    def _integrate(
        self, x_init: torch.Tensor, y: torch.Tensor, settings: dict[str, Any]
    ) -> torch.Tensor:
        sigmas = edm_sigmas(
            settings["steps"], settings["sigma_min"], settings["sigma_max"], settings["rho"]
        )
        autocast = self._config["dtype"] == "bfloat16"
        channels_last = bool(self._config["channels_last"])
        if channels_last:
            y = y.contiguous(memory_format=torch.channels_last)

        def denoiser(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
            xin = x.contiguous(memory_format=torch.channels_last) if channels_last else x
            with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=autocast):
                return self.denoise(xin, sigma, y).float()

        return make_sampler(settings["solver"], denoiser, sigmas)(x_init)

    @torch.inference_mode()
    def sample(
        self,
        coarse: torch.Tensor,
        generators: Sequence[torch.Generator],
        members: int = 1,
        steps: int | None = None,
        solver: str | None = None,
        rho: float | None = None,
    ) -> torch.Tensor:
        """Draw ``members`` fine fields per coarse input.

        Parameters
        ----------
        coarse
            ``[B, Cin, h, w]`` in physical units.
        generators
            ``B * members`` generators, sample-major (:func:`xsfm.sampling.rng.stream_generators`).
        members
            Ensemble size ``M``.
        steps, solver
            Override the config's sampler (``"euler"`` or ``"heun"``, number of steps).
        rho
            Override the exponent of the EDM time grid (7 by default; 1 is uniform in sigma).

        Returns
        -------
        torch.Tensor
            ``[B, M, Cout, H, W]`` in physical units.
        """
        self._check_coarse(coarse)
        members = int(members)
        if members < 1:
            raise ValueError(f"members must be at least 1, got {members}")
        b = coarse.shape[0]
        if len(generators) != b * members:
            raise ValueError(
                f"need one generator per (sample, member): {b} x {members} = {b * members}, "
                f"got {len(generators)}"
            )
        y, _ = self.prepare(coarse)
        shape = (self.out_channels, *y.shape[-2:])
        noise = randn(generators, shape, device=generators[0].device if generators else "cpu")
        noise = noise.to(y.device)
        y_rep = y.repeat_interleave(members, dim=0)
        x = self._sample_normalised(y_rep, noise, self._sampler_settings(steps, solver, rho))
        fine = self.denormalise(x.float())
        return fine.reshape(b, members, *fine.shape[1:])

    def _sample_normalised(
        self, y: torch.Tensor, noise: torch.Tensor, settings: dict[str, Any]
    ) -> torch.Tensor:
        raise NotImplementedError

    def extra_repr(self) -> str:  # noqa: D102
        return f"method={self.method!r}"


class SFMDownscaler(Downscaler):
    """Stochastic Flow Matching with adaptive ``sigma_z`` (``method="sfm"``).

    Examples
    --------
    >>> m = build_downscaler({"method": "sfm", "unet": {"channels": 8, "channel_mult": [1]}})
    >>> type(m).__name__, m.adaptive_sigma_z
    ('SFMDownscaler', True)
    """

    method = "sfm"
    uses_encoder = True
    uses_sigma_z = True
    adaptive_sigma_z = True

    def loss_from_noise(
        self, y: torch.Tensor, x: torch.Tensor, noise: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """SFM loss ``w(sigma) mean((D - x)^2) + lambda mean((x - E(y))^2)`` (see module doc)."""
        two_stage = self.num_stages == 2
        mu = self.encode(y)
        reg = (x - mu).pow(2).mean()
        if two_stage and self.stage == 1:
            return reg, {"loss": _item(reg), "reg": _item(reg)}
        if two_stage or not self._config["encoder_flow_grad"]:
            mu = mu.detach()
        sigma, eps = noise["sigma"], noise["eps"]
        z = mu + self.sigma_z[None, :, None, None] * eps
        x_t = sfm_path(z, x, sigma)
        d = self.denoise(x_t, sigma, y)
        flow = (loss_weight(sigma) * (d - x).pow(2).mean(dim=(1, 2, 3))).mean()
        lam = 0.0 if two_stage else float(self._config["lambda_reg"])
        total = flow + lam * reg if lam else flow
        return total, {"loss": _item(total), "flow": _item(flow), "reg": _item(reg)}

    def _sample_normalised(
        self, y: torch.Tensor, noise: torch.Tensor, settings: dict[str, Any]
    ) -> torch.Tensor:
        mu = self.encode(y)
        z = mu + self.sigma_z[None, :, None, None] * noise
        # z is the state at sigma = 1; a grid starting lower starts from the path's mean there.
        s0 = float(settings["sigma_max"])
        x_init = z if s0 >= 1.0 else s0 * z + (1 - s0) * mu
        return self._integrate(x_init, y, settings)


class SFMTwoStageDownscaler(SFMDownscaler):
    """SFM trained in two stages: encoder first (regression), then the flow with ``E`` frozen."""

    method = "sfm-two-stage"

    @property
    def num_stages(self) -> int:
        return 2


class SFMFixedSigmaDownscaler(SFMDownscaler):
    """SFM with ``sigma_z`` fixed at ``config["sigma_z_init"]``."""

    method = "sfm-fixed-sigma"
    adaptive_sigma_z = False


class RegressionDownscaler(Downscaler):
    """The encoder alone, trained on ``mean((x - E(y))^2)``; deterministic (members equal).

    Examples
    --------
    >>> from xsfm.sampling.rng import stream_generators
    >>> m = build_downscaler({"method": "regression", "factor": 2})
    >>> out = m.sample(torch.ones(1, 1, 3, 3), stream_generators(0, [0], 3), members=3)
    >>> out.shape, bool((out[:, 0] == out[:, 2]).all())
    (torch.Size([1, 3, 1, 6, 6]), True)
    """

    method = "regression"
    uses_encoder = True
    uses_flow_net = False

    def draw_noise(  # noqa: D102
        self, batch: int, shape: Sequence[int], generator: torch.Generator
    ) -> dict[str, torch.Tensor]:
        return {}

    def loss_from_noise(
        self, y: torch.Tensor, x: torch.Tensor, noise: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Regression loss ``mean((x - E(y))^2)``."""
        reg = (x - self.encode(y)).pow(2).mean()
        return reg, {"loss": _item(reg), "reg": _item(reg)}

    def _sample_normalised(
        self, y: torch.Tensor, noise: torch.Tensor, settings: dict[str, Any]
    ) -> torch.Tensor:
        return self.encode(y)


class CFMDownscaler(Downscaler):
    """Conditional flow matching from ``N(0, I)`` with ``y`` as conditioning channels.

    The loss is SFM's flow term with ``z = eps``: ``w(sigma) mean((D - x)^2)``, which equals the
    velocity-matching loss times ``(sigma^2 + 0.25) / 0.25``.
    """

    method = "cfm"

    def loss_from_noise(
        self, y: torch.Tensor, x: torch.Tensor, noise: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """CFM loss ``w(sigma) mean((D(sigma eps + (1 - sigma) x, sigma, y) - x)^2)``."""
        sigma, eps = noise["sigma"], noise["eps"]
        x_t = sfm_path(eps, x, sigma)
        d = self.denoise(x_t, sigma, y)
        flow = (loss_weight(sigma) * (d - x).pow(2).mean(dim=(1, 2, 3))).mean()
        return flow, {"loss": _item(flow), "flow": _item(flow)}

    def _sample_normalised(
        self, y: torch.Tensor, noise: torch.Tensor, settings: dict[str, Any]
    ) -> torch.Tensor:
        s0 = float(settings["sigma_max"])
        x_init = noise if s0 >= 1.0 else s0 * noise
        return self._integrate(x_init, y, settings)


class EDMDownscaler(Downscaler):
    """Conditional EDM diffusion: ``x_sigma = x + sigma eps``, ``ln sigma ~ N(-1.2, 1.2^2)``."""

    method = "edm"

    def _draw_sigma(self, batch: int, generator: torch.Generator) -> torch.Tensor:
        cfg = self._config
        return sample_sigma_lognormal(
            batch, generator, float(cfg["p_mean"]), float(cfg["p_std"]), device=generator.device
        )

    def _edm_loss(
        self, y: torch.Tensor, target: torch.Tensor, noise: dict[str, torch.Tensor]
    ) -> torch.Tensor:
        sigma, eps = noise["sigma"], noise["eps"]
        x_t = target + sigma[:, None, None, None] * eps
        d = self.denoise(x_t, sigma, y)
        return (loss_weight(sigma) * (d - target).pow(2).mean(dim=(1, 2, 3))).mean()

    def loss_from_noise(
        self, y: torch.Tensor, x: torch.Tensor, noise: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """EDM loss ``w(sigma) mean((D(x + sigma eps, sigma, y) - x)^2)``."""
        flow = self._edm_loss(y, x, noise)
        return flow, {"loss": _item(flow), "flow": _item(flow)}

    def _sample_normalised(
        self, y: torch.Tensor, noise: torch.Tensor, settings: dict[str, Any]
    ) -> torch.Tensor:
        return self._integrate(float(settings["sigma_max"]) * noise, y, settings)


class CorrDiffDownscaler(EDMDownscaler):
    """Regression mean ``E(y)`` plus conditional EDM diffusion of the residual ``x - E(y)``.

    With ``corrdiff_joint=False`` (default, as CorrDiff) training has two stages: the regression
    first, then the diffusion with the mean frozen. With ``corrdiff_joint=True`` one loss
    ``w(sigma) mean((D - r)^2) + lambda mean((x - E(y))^2)``, ``r = x - E(y)`` detached.
    """

    method = "corrdiff"
    uses_encoder = True

    @property
    def num_stages(self) -> int:  # noqa: D102
        return 1 if self._config["corrdiff_joint"] else 2

    def loss_from_noise(
        self, y: torch.Tensor, x: torch.Tensor, noise: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Regression and/or residual diffusion loss, by stage."""
        mu = self.encode(y)
        reg = (x - mu).pow(2).mean()
        if self.num_stages == 2 and self.stage == 1:
            return reg, {"loss": _item(reg), "reg": _item(reg)}
        flow = self._edm_loss(y, x - mu.detach(), noise)
        lam = 0.0 if self.num_stages == 2 else float(self._config["lambda_reg"])
        total = flow + lam * reg if lam else flow
        return total, {"loss": _item(total), "flow": _item(flow), "reg": _item(reg)}

    def _sample_normalised(
        self, y: torch.Tensor, noise: torch.Tensor, settings: dict[str, Any]
    ) -> torch.Tensor:
        mu = self.encode(y)
        residual = self._integrate(float(settings["sigma_max"]) * noise, y, settings)
        return mu + residual


_CLASSES: dict[str, type[Downscaler]] = {
    "sfm": SFMDownscaler,
    "sfm-two-stage": SFMTwoStageDownscaler,
    "sfm-fixed-sigma": SFMFixedSigmaDownscaler,
    "regression": RegressionDownscaler,
    "cfm": CFMDownscaler,
    "edm": EDMDownscaler,
    "corrdiff": CorrDiffDownscaler,
}


def build_downscaler(config: dict[str, Any]) -> Downscaler:
    """Build the downscaler a config describes (``config["method"]``, default ``"sfm"``).

    Examples
    --------
    >>> m = build_downscaler({"method": "cfm", "in_channels": 3, "out_channels": 2,
    ...                       "unet": {"channels": 8, "channel_mult": [1, 2]}})
    >>> type(m).__name__, m.config["condition_on_input"]
    ('CFMDownscaler', True)
    >>> build_downscaler(m.config).config == m.config
    True
    """
    return Downscaler.from_config(dict(config))
