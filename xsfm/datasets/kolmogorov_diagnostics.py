"""Diagnostics and exact solutions of a Kolmogorov solver: energy, enstrophy, decay, random states.

:class:`_SolverDiagnostics` is a base of :class:`~xsfm.datasets.kolmogorov_solver.KolmogorovSolver`;
its methods use the solver's grid (``size``, ``length``, ``dx``, the spectral weights) and
:meth:`~xsfm.datasets.kolmogorov_solver.KolmogorovSolver.to_spectral`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch


class _SolverDiagnostics:
    """Diagnostics of :class:`~xsfm.datasets.kolmogorov_solver.KolmogorovSolver` states."""

    size: int
    length: float
    viscosity: float
    drag: float
    forcing_amplitude: float
    forcing_wavenumber: int
    dx: float
    dtype: torch.dtype
    cdtype: torch.dtype
    device: torch.device
    _parseval: torch.Tensor
    _inv_k2: torch.Tensor
    to_spectral: Callable[[torch.Tensor], torch.Tensor]

    def energy(self, state: torch.Tensor) -> torch.Tensor:
        """Domain-mean kinetic energy ``<|u|^2>/2`` in m2 s-2, per batch element."""
        return 0.5 * (self._parseval * self._inv_k2 * state.abs().double() ** 2).sum((-2, -1))

    def enstrophy(self, state: torch.Tensor) -> torch.Tensor:
        """Domain-mean enstrophy ``<omega^2>/2`` in s-2, per batch element."""
        return 0.5 * (self._parseval * state.abs().double() ** 2).sum((-2, -1))

    def taylor_green_decay(self, t: float, mode: int = 1) -> float:
        """Exact decay ``exp(-(2 nu kappa^2 + alpha) t)`` of an unforced Taylor-Green vortex."""
        kappa = 2 * math.pi * mode / self.length
        return math.exp(-(2 * self.viscosity * kappa**2 + self.drag) * t)

    def laminar_vorticity(self, t: float | None = None) -> torch.Tensor:
        """Exact laminar Kolmogorov vorticity at time ``t`` from rest (``None``: steady state)."""
        kf = 2 * math.pi * self.forcing_wavenumber / self.length
        rate = self.viscosity * kf**2 + self.drag
        growth = 1.0 if t is None else 1.0 - math.exp(-rate * t)
        y = (torch.arange(self.size, dtype=torch.float64) + 0.5) * self.dx
        w = -self.forcing_amplitude * kf / rate * growth * torch.cos(kf * y)
        return w[:, None].expand(self.size, self.size).to(self.dtype).to(self.device)

    def random_state(
        self, generators: Sequence[torch.Generator], rms_vorticity: float = 4.0
    ) -> torch.Tensor:
        """Random initial states, one per generator.

        Gaussian vorticity with a spectrum peaked at the forcing scale and root-mean-square
        ``rms_vorticity`` (s-1).

        Examples
        --------
        >>> import torch
        >>> from xsfm.datasets.kolmogorov_solver import KolmogorovSolver
        >>> s = KolmogorovSolver(16)
        >>> g = torch.Generator().manual_seed(0)
        >>> w = s.to_physical(s.random_state([g]))
        >>> round(float(w.pow(2).mean().sqrt()), 6)
        4.0
        """
        n = self.size
        noise = torch.stack(
            [torch.randn((n, n), generator=g, dtype=torch.float64) for g in generators]
        ).to(self.device)
        spec = self.to_spectral(noise)
        kmag = torch.sqrt(torch.where(self._inv_k2 > 0, 1.0 / self._inv_k2, 0.0))
        k_peak = 2 * math.pi * max(self.forcing_wavenumber, 1) / self.length
        envelope = (kmag / k_peak) ** 2 * torch.exp(-((kmag / k_peak) ** 2))
        spec = spec * envelope.to(spec.dtype)
        rms = torch.sqrt(2 * self.enstrophy(spec))[..., None, None]
        return (spec * (rms_vorticity / rms).to(spec.dtype)).to(self.cdtype)
