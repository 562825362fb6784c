r"""The learned transition of FlowDAS: drift network, normalisation buffers, config, training loss.

:class:`FlowDASDrift` is the base of :class:`~xsfm.models.flowdas.FlowDAS`, which adds sampling
(forecast and assimilation). The drift :math:`b(x_s, s, \text{history})` is learned by matching the
interpolant's drift target (:mod:`xsfm.sampling.interpolants`) in normalised units.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Self

import torch
from torch import nn

from xsfm.sampling.guidance_options import Guidance
from xsfm.sampling.interpolants import drift_target, interpolant

__all__ = ["DEFAULT_SAMPLER", "FlowDASDrift"]

DEFAULT_SAMPLER: dict[str, Any] = {
    "steps": 500,
    "s_max": 0.999,
    "guidance": Guidance().to_dict(),
}
"""Sampler defaults of FlowDAS (paper: N = 500 steps on [0, 0.999]; Lorenz J = 21, zeta = 2e-4)."""


def _build_network(config: dict[str, Any], state_shape: tuple[int, ...], history: int) -> nn.Module:
    kind = config.get("kind", "mlp")
    if kind == "mlp":
        from xsfm.nn.mlp import DriftMLP

        cfg = {"state_dim": math.prod(state_shape), "history": history, **config}
        if cfg["state_dim"] != math.prod(state_shape) or cfg["history"] != history:
            raise ValueError(
                f"network config (state_dim={cfg['state_dim']}, history={cfg['history']}) does "
                f"not match the model (state of shape {state_shape}, history {history})"
            )
        return DriftMLP.from_config(cfg)
    if kind == "unet":
        from xsfm.nn.drift_unet import DriftUNet

        cfg = {"state_shape": list(state_shape), "history": history, **config}
        if tuple(cfg["state_shape"]) != tuple(state_shape) or cfg["history"] != history:
            raise ValueError(
                f"network config (state_shape={cfg['state_shape']}, history={cfg['history']}) "
                f"does not match the model (state of shape {state_shape}, history {history})"
            )
        return DriftUNet.from_config(cfg)
    raise ValueError(f"unknown FlowDAS network kind {kind!r}; known kinds: 'mlp', 'unet'")


class FlowDASDrift(nn.Module):
    """Drift network with normalisation statistics; see :class:`~xsfm.models.flowdas.FlowDAS`."""

    def __init__(
        self,
        state_shape: Sequence[int],
        history: int = 1,
        network: dict[str, Any] | None = None,
        mean: Sequence[float] | float | torch.Tensor = 0.0,
        std: Sequence[float] | float | torch.Tensor = 1.0,
        eps: float = 1.0,
        sampler: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.state_shape = tuple(int(n) for n in state_shape)
        self.history = int(history)
        if self.history < 1:
            raise ValueError(f"history must be >= 1, got {history}")
        self.eps = float(eps)
        mean_t = torch.as_tensor(mean, dtype=torch.float32)
        std_t = torch.as_tensor(std, dtype=torch.float32)
        for name, value in (("mean", mean_t), ("std", std_t)):
            try:
                torch.broadcast_shapes(value.shape, self.state_shape)
            except RuntimeError:
                raise ValueError(
                    f"normalisation {name} of shape {tuple(value.shape)} does not broadcast to the "
                    f"state shape {self.state_shape}"
                ) from None
        if bool((std_t <= 0).any()):
            raise ValueError("normalisation std must be > 0")
        self.register_buffer("mean", mean_t)
        self.register_buffer("std", std_t)
        self.net = _build_network(dict(network or {}), self.state_shape, self.history)
        merged = {**DEFAULT_SAMPLER, **(sampler or {})}
        merged["guidance"] = Guidance.from_dict(merged.get("guidance")).to_dict()
        self.sampler = merged

    # -- configuration -------------------------------------------------------------------------
    @property
    def config(self) -> dict[str, Any]:
        """JSON-serialisable configuration; :meth:`from_config` rebuilds an (untrained) copy."""
        return {
            "state_shape": list(self.state_shape),
            "history": self.history,
            "network": self.net.config,  # type: ignore[operator]
            "mean": self.mean.tolist(),
            "std": self.std.tolist(),
            "eps": self.eps,
            "sampler": dict(self.sampler),
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Self:
        """Build a model from :attr:`config`."""
        cfg = dict(config)
        known = {"state_shape", "history", "network", "mean", "std", "eps", "sampler"}
        unknown = sorted(set(cfg) - known)
        if unknown:
            raise ValueError(
                f"unknown FlowDAS config keys {unknown}; known keys are {sorted(known)}"
            )
        if "state_shape" not in cfg:
            raise ValueError("FlowDAS config needs 'state_shape'")
        return cls(**cfg)

    # -- normalisation -------------------------------------------------------------------------
    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        """Physical -> network units."""
        return (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)

    def denormalise(self, x: torch.Tensor) -> torch.Tensor:
        """Network -> physical units."""
        return x * self.std.to(x.dtype) + self.mean.to(x.dtype)

    # -- network -------------------------------------------------------------------------------
    def drift(
        self, x_s: torch.Tensor, s: torch.Tensor | float, history: torch.Tensor
    ) -> torch.Tensor:
        """Drift in normalised units.

        ``x_s [B, *state]``, ``s [B]`` or a float, ``history [B, L, *state]``; all normalised (see
        :meth:`normalise`).
        """
        if getattr(self.net, "gridded", False):  # a gridded network takes the shaped states
            return self.net(x_s, s, history)
        batch = x_s.shape[0]
        out = self.net(x_s.reshape(batch, -1), s, history.reshape(batch, self.history, -1))
        return out.reshape(x_s.shape)

    def loss(
        self,
        history: torch.Tensor,
        target: torch.Tensor,
        *,
        generator: torch.Generator | None = None,
        s: torch.Tensor | None = None,
        z: torch.Tensor | None = None,
        normalised: bool = False,
    ) -> torch.Tensor:
        """Drift-matching loss ``mean |b(I_s, s, history) - R_s|^2``, ``s ~ U(0, 1)``, ``z ~ N``.

        Parameters
        ----------
        history
            ``[B, L, *state]``; its last state is the base :math:`x_0`.
        target
            Next states :math:`x_1`, ``[B, *state]``.
        generator
            Source of ``s`` and ``z`` when they are not given (one generator for the whole batch:
            training).
        s, z
            Interpolation times ``[B]`` and noise ``[B, *state]`` (override the generator).
        normalised
            Inputs are already normalised (skip :meth:`normalise`).
        """
        if not normalised:
            history, target = self.normalise(history), self.normalise(target)
        batch = target.shape[0]
        if s is None:
            s = torch.rand(batch, generator=generator, dtype=target.dtype, device=target.device)
        if z is None:
            z = torch.randn(
                target.shape, generator=generator, dtype=target.dtype, device=target.device
            )
        x0 = history[:, -1]
        x_s = interpolant(x0, target, s, z, self.eps)
        r_s = drift_target(x0, target, s, z, self.eps)
        return (self.drift(x_s, s, history) - r_s).pow(2).mean()
