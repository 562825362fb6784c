"""Residual MLP drift network for FlowDAS on small state vectors (Lorenz-63).

``DriftMLP(x, s, history)`` maps the interpolant state ``x [B, D]``, the interpolation time ``s
[B]`` and the ``L`` previous states ``history [B, L, D]`` (all normalised) to the drift ``[B, D]``.

Architecture (after FlowDAS's Lorenz network: residual blocks of width 256 with a Fourier embedding
of the time and of the history added in every block):

* embedding ``e = W_2 silu(W_1 [phi(s), phi(history)])`` where ``phi`` is a fixed Fourier feature
map
  ``v -> (v, sin(2 pi f_k v), cos(2 pi f_k v))`` on geometric frequencies (deterministic, from the
  config);
* ``h = W_in [x, history]``; ``blocks`` times ``h <- h + silu(W_i h + e)``; output ``W_out h``.

Parameters are initialised from an explicit generator (no global random state is read or changed).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["DriftMLP", "FourierFeatures"]


class FourierFeatures(nn.Module):
    """Fixed Fourier features ``(v, sin(2 pi f_k v), cos(2 pi f_k v))`` of each input value.

    Parameters
    ----------
    n_frequencies
        Number of frequencies, geometric from ``min_frequency`` to ``max_frequency`` (cycles per
        unit).
    min_frequency, max_frequency
        Frequency range.

    Examples
    --------
    >>> ff = FourierFeatures(4, 0.5, 4.0)
    >>> ff(torch.zeros(2, 3)).shape
    torch.Size([2, 27])
    """

    def __init__(self, n_frequencies: int, min_frequency: float, max_frequency: float) -> None:
        super().__init__()
        if n_frequencies > 1:
            freqs = torch.logspace(
                math.log10(min_frequency),
                math.log10(max_frequency),
                n_frequencies,
                dtype=torch.float64,
            )
        else:
            freqs = torch.full((max(n_frequencies, 0),), float(min_frequency), dtype=torch.float64)
        self.register_buffer("frequencies", (2 * math.pi * freqs).float(), persistent=False)
        self.n_frequencies = int(n_frequencies)

    def out_features(self, in_features: int) -> int:
        """Number of features for ``in_features`` input values."""
        return in_features * (1 + 2 * self.n_frequencies)

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        """Features of ``v [B, n]``: ``[B, n * (1 + 2 K)]``."""
        arg = v.unsqueeze(-1) * self.frequencies.to(v.dtype)
        return torch.cat([v, torch.sin(arg).flatten(-2), torch.cos(arg).flatten(-2)], dim=-1)


def _linear(in_features: int, out_features: int) -> nn.Linear:
    """A linear layer created without drawing random numbers (initialised later, explicitly)."""
    return torch.nn.utils.skip_init(nn.Linear, in_features, out_features)


class DriftMLP(nn.Module):
    """Residual MLP drift ``b(x, s, history)`` for vector states.

    Parameters
    ----------
    state_dim
        Size ``D`` of the (flattened) state.
    history
        Number ``L`` of conditioning states (the last one is the current state).
    width
        Hidden width (256 in FlowDAS).
    blocks
        Number of residual blocks (5 in FlowDAS).
    s_frequencies, s_max_frequency
        Fourier features of ``s``: count and highest frequency (lowest: 0.5).
    history_frequencies, history_max_frequency
        Fourier features of each normalised history value: count and highest frequency (lowest:
        1/16).
    init_seed
        Seed of the explicit generator that initialises the parameters.

    Examples
    --------
    >>> net = DriftMLP(3, history=1, width=32, blocks=2)
    >>> s = torch.rand(4, generator=torch.Generator())
    >>> net(torch.zeros(4, 3), s, torch.zeros(4, 1, 3)).shape
    torch.Size([4, 3])
    >>> DriftMLP.from_config(net.config).config == net.config
    True
    """

    def __init__(
        self,
        state_dim: int,
        history: int = 1,
        width: int = 256,
        blocks: int = 5,
        s_frequencies: int = 16,
        s_max_frequency: float = 32.0,
        history_frequencies: int = 8,
        history_max_frequency: float = 2.0,
        init_seed: int = 0,
    ) -> None:
        super().__init__()
        self._config = {
            "kind": "mlp",
            "state_dim": int(state_dim),
            "history": int(history),
            "width": int(width),
            "blocks": int(blocks),
            "s_frequencies": int(s_frequencies),
            "s_max_frequency": float(s_max_frequency),
            "history_frequencies": int(history_frequencies),
            "history_max_frequency": float(history_max_frequency),
            "init_seed": int(init_seed),
        }
        d, n_hist = int(state_dim), int(history) * int(state_dim)
        self.s_features = FourierFeatures(s_frequencies, 0.5, s_max_frequency)
        self.history_features = FourierFeatures(history_frequencies, 1 / 16, history_max_frequency)
        n_embed = self.s_features.out_features(1) + self.history_features.out_features(n_hist)
        self.embed_in = _linear(n_embed, width)
        self.embed_out = _linear(width, width)
        self.input = _linear(d + n_hist, width)
        self.hidden = nn.ModuleList([_linear(width, width) for _ in range(int(blocks))])
        self.output = _linear(width, d)
        g = torch.Generator().manual_seed(int(init_seed))
        self.reset_parameters(g)

    @property
    def config(self) -> dict[str, Any]:
        """JSON-serialisable configuration (``DriftMLP.from_config(config)`` rebuilds it)."""
        return dict(self._config)

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> DriftMLP:
        """Build the network from :attr:`config`."""
        cfg = dict(config)
        kind = cfg.pop("kind", "mlp")
        if kind != "mlp":
            raise ValueError(f"DriftMLP config has kind {kind!r}, expected 'mlp'")
        return cls(**cfg)

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator) -> None:
        """Initialise all layers (uniform, fan-in scaled) from ``generator``; output layer small."""
        for layer in [self.embed_in, self.embed_out, self.input, *self.hidden, self.output]:
            bound = 1.0 / math.sqrt(layer.in_features)
            layer.weight.uniform_(-bound, bound, generator=generator)
            layer.bias.uniform_(-bound, bound, generator=generator)
        self.output.weight.mul_(0.1)
        self.output.bias.zero_()

    def forward(self, x: torch.Tensor, s: torch.Tensor, history: torch.Tensor) -> torch.Tensor:
        """Drift at ``x [B, D]``, time ``s [B]`` (or scalar), ``history [B, L, D]`` (normalised)."""
        batch = x.shape[0]
        s = torch.as_tensor(s, dtype=x.dtype, device=x.device).reshape(-1, 1).expand(batch, 1)
        hist = history.reshape(batch, -1)
        features = torch.cat([self.s_features(s), self.history_features(hist)], dim=-1)
        e = self.embed_out(F.silu(self.embed_in(features)))
        h = self.input(torch.cat([x, hist], dim=-1))
        for layer in self.hidden:
            h = h + F.silu(layer(h) + e)
        return self.output(h)
