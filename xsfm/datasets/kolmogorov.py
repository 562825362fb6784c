r"""2-D Kolmogorov flow: a batched pseudo-spectral solver and misaligned coarse/fine pairs.

Equations
---------
On the periodic square :math:`[0, L)^2` (``length`` :math:`L` in m) the vorticity
:math:`\omega = \partial_x v - \partial_y u` (s-1) of an incompressible flow obeys

.. math::

    \partial_t \omega + \mathbf u \cdot \nabla \omega
        = \nu \nabla^2 \omega - \alpha \omega + f, \qquad \nabla \cdot \mathbf u = 0,

with kinematic viscosity :math:`\nu` (m2 s-1), linear (Rayleigh) drag :math:`\alpha` (s-1) and the
Kolmogorov force per unit mass :math:`\mathbf F = (A \sin(k_f y), 0)` (m s-2), whose curl is the
vorticity forcing

.. math::

    f = \partial_x F_y - \partial_y F_x = -A k_f \cos(k_f y), \qquad k_f = 2 \pi n_f / L,

where :math:`n_f` (``forcing_wavenumber``) counts forcing periods per domain length. Velocities come
from the streamfunction :math:`\psi`, :math:`\nabla^2 \psi = -\omega`, :math:`u = \partial_y \psi`,
:math:`v = -\partial_x \psi`, so they are divergence-free by construction.

Two exact solutions check the solver (see ``tests/test_kolmogorov.py``):

* Taylor-Green vortex, :math:`u = U \sin(\kappa x) \cos(\kappa y)`, :math:`v = -U \cos(\kappa x)
  \sin(\kappa y)`, :math:`\omega = 2 U \kappa \sin(\kappa x) \sin(\kappa y)`. Because :math:`\omega
  = 2 \kappa^2 \psi`, the advection :math:`\mathbf u \cdot \nabla \omega` vanishes and without
  forcing every field decays as :math:`\exp(-(2 \nu \kappa^2 + \alpha) t)` (the energy at twice that
  rate).
* Laminar Kolmogorov flow: from :math:`\omega(0) = 0` the flow stays a function of :math:`y` only,
  advection vanishes, and :math:`\omega(t) = -\frac{A k_f}{\nu k_f^2 + \alpha} \cos(k_f y)
  \,(1 - e^{-(\nu k_f^2 + \alpha) t})`.

Discretisation
--------------
Fourier pseudo-spectral on an ``n x n`` grid of cell centres :math:`x_i = (i + 1/2) L / n`. The
state is the set of Fourier coefficients :math:`\hat\omega_{\mathbf m}` with :math:`|m_x|, |m_y| \le
K = \lfloor (n - 1)/3 \rfloor` (Orszag's 2/3 rule): products are formed on the ``n``-point grid and
truncated back to :math:`|m| \le K`, which is free of aliasing because :math:`n \ge 3K + 1`. The
advection :math:`u \partial_x \omega + v \partial_y \omega` (equal to the conservative form
:math:`\nabla \cdot (\mathbf u \omega)` after the alias-free truncation) costs one batched complex
inverse FFT of :math:`u + i v` and :math:`\partial_x \omega + i \partial_y \omega` and one real
forward FFT per evaluation.

Time stepping is the integrating-factor fourth-order Runge-Kutta scheme (IF-RK4): writing
:math:`\partial_t \hat\omega = \Lambda \hat\omega + N(\hat\omega)` with the exact linear part
:math:`\Lambda = -\nu |\mathbf k|^2 - \alpha` and :math:`N` the advection plus forcing, classical
RK4 on :math:`e^{-\Lambda t} \hat\omega` gives, with :math:`E = e^{\Lambda h / 2}`,

.. math::

    a &= h N(\hat\omega_n), \quad b = h N(E (\hat\omega_n + a/2)), \quad
    c = h N(E \hat\omega_n + b/2), \quad d = h N(E^2 \hat\omega_n + E c), \\
    \hat\omega_{n+1} &= E^2 \hat\omega_n + (E^2 a + 2 E (b + c) + d) / 6 .

Viscosity and drag are integrated exactly (no viscous step limit); the step is limited only by
advection, ``dt = cfl * dx / max_speed`` by default.

Misaligned pairs
----------------
:func:`kolmogorov_pairs` reproduces the synthetic experiment of *Stochastic Flow Matching for
Resolving Small-Scale Physics*: the fine truth at time :math:`t_0` is a finer simulation
(``sim_size``) truncated spectrally to ``fine_size``; the coarse input is a ``coarse_size``
simulation started from the truth at :math:`t_0 - \tau`, truncated to the coarse solver's resolved
modes, and run for the lag :math:`\tau`. With :math:`\tau = 0` the input is the pure (spectral)
coarsening of the truth; larger :math:`\tau` lets the under-resolved coarse dynamics drift away from
the truth.

Grid conversion between sizes (:func:`resample`) is spectral and accounts for cell-centred points,
so the coarse and fine grids cover the same square and bilinear upsampling with
``align_corners=False`` maps one onto the other.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import xarray as xr

__all__ = [
    "DEFAULTS",
    "KolmogorovSolver",
    "kolmogorov",
    "kolmogorov_pairs",
    "misalignment_table",
    "resample",
    "taylor_green_vorticity",
    "velocity_from_vorticity",
]

#: Default physical parameters (SI units): turbulent Kolmogorov flow (rms speed ~1.3 m s-1, Reynolds
#: number ~ U L_f / nu ~ 400 at the forcing scale) that a 96 x 96 simulation resolves: its enstrophy
#: spectrum at the 2/3 cut-off (mode 31) is ~3.5 decades below the peak at the forcing mode 4.
DEFAULTS: dict[str, float] = {
    "length": 2 * math.pi,  # m
    "viscosity": 5e-3,  # m2 s-1
    "drag": 0.1,  # s-1
    "forcing_amplitude": 1.0,  # m s-2
    "forcing_wavenumber": 4,  # periods per domain length
    "max_speed": 4.0,  # m s-1, sets the default time step
    "cfl": 1.0,
}

#: Version of the data-generating algorithm: part of the cache key, bump when the output changes.
_ALGORITHM_VERSION = 1
_SPLITS = {"train": 0, "test": 1}


def _as_dtype(dtype: str | torch.dtype) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        if dtype not in (torch.float32, torch.float64):
            raise TypeError(f"dtype must be float32 or float64, got {dtype}")
        return dtype
    table = {"float32": torch.float32, "float64": torch.float64}
    if dtype not in table:
        raise TypeError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    return table[dtype]


class KolmogorovSolver:
    r"""Batched pseudo-spectral solver of 2-D Navier-Stokes in vorticity form (see module docs).

    States are complex tensors of Fourier coefficients ``[..., 2K + 1, K + 1]`` holding the retained
    modes ``|m_y| <= K`` (rows ordered ``0..K, -K..-1``) and ``0 <= m_x <= K`` (real-FFT half
    plane), with ``K = (size - 1) // 3``. Use :meth:`to_spectral` and :meth:`to_physical` to convert
    from and to vorticity on the ``size x size`` grid of cell centres, ``[..., y, x]``. Any leading
    dimensions are a batch.

    Parameters
    ----------
    size
        Grid points per side.
    length
        Side of the periodic square in m.
    viscosity
        Kinematic viscosity :math:`\nu` in m2 s-1.
    drag
        Linear drag :math:`\alpha` in s-1.
    forcing_amplitude
        :math:`A` in m s-2 (force per unit mass ``A sin(k_f y)`` along x); 0 switches the forcing
        off.
    forcing_wavenumber
        :math:`n_f`, forcing periods per domain length (:math:`k_f = 2 \pi n_f / L`).
    dt
        Largest time step in s; default ``cfl * dx / max_speed``.
    max_speed
        Expected largest flow speed in m s-1, used for the default ``dt`` (raise it with the
        forcing).
    cfl
        Courant number of the default ``dt``.
    dtype
        ``"float64"`` (accurate, for tests) or ``"float32"`` (about twice as fast).
    device
        Torch device.

    Examples
    --------
    An unforced Taylor-Green vortex decays exactly as predicted:

    >>> import torch
    >>> solver = KolmogorovSolver(32, forcing_amplitude=0.0, dtype="float64")
    >>> w0 = taylor_green_vorticity(32, dtype=torch.float64)
    >>> w1 = solver.to_physical(solver.advance(solver.to_spectral(w0), 1.0))
    >>> bool(torch.allclose(w1, w0 * solver.taylor_green_decay(1.0)))
    True
    """

    def __init__(
        self,
        size: int,
        *,
        length: float = DEFAULTS["length"],
        viscosity: float = DEFAULTS["viscosity"],
        drag: float = DEFAULTS["drag"],
        forcing_amplitude: float = DEFAULTS["forcing_amplitude"],
        forcing_wavenumber: int = int(DEFAULTS["forcing_wavenumber"]),
        dt: float | None = None,
        max_speed: float = DEFAULTS["max_speed"],
        cfl: float = DEFAULTS["cfl"],
        dtype: str | torch.dtype = "float64",
        device: torch.device | str = "cpu",
    ) -> None:
        if size < 4:
            raise ValueError(f"size must be at least 4 grid points, got {size}")
        if length <= 0 or viscosity < 0 or drag < 0:
            raise ValueError(
                f"need length > 0, viscosity >= 0 and drag >= 0; got length={length}, "
                f"viscosity={viscosity}, drag={drag}"
            )
        self.size = int(size)
        self.length = float(length)
        self.viscosity = float(viscosity)
        self.drag = float(drag)
        self.forcing_amplitude = float(forcing_amplitude)
        self.forcing_wavenumber = int(forcing_wavenumber)
        self.dtype = _as_dtype(dtype)
        self.cdtype = torch.complex128 if self.dtype == torch.float64 else torch.complex64
        self.device = torch.device(device)
        self.max_mode = (self.size - 1) // 3
        if self.forcing_wavenumber > self.max_mode:
            raise ValueError(
                f"forcing_wavenumber={forcing_wavenumber} is not resolved on a {size}x{size} grid "
                f"(largest retained mode {self.max_mode}); use size >= {3 * forcing_wavenumber + 1}"
            )
        self.dx = self.length / self.size
        self.dt = float(dt) if dt is not None else cfl * self.dx / max_speed
        if self.dt <= 0:
            raise ValueError(f"dt must be positive, got {self.dt}")

        n, k_max = self.size, self.max_mode
        k0 = 2 * math.pi / self.length
        m_y = torch.cat([torch.arange(0, k_max + 1), torch.arange(-k_max, 0)]).to(torch.float64)
        m_x = torch.arange(0, k_max + 1, dtype=torch.float64)
        ky = (k0 * m_y)[:, None].expand(2 * k_max + 1, k_max + 1)
        kx = (k0 * m_x)[None, :].expand(2 * k_max + 1, k_max + 1)
        k2 = kx**2 + ky**2
        inv_k2 = torch.where(k2 > 0, 1.0 / torch.where(k2 > 0, k2, 1.0), 0.0)
        opts = {"device": self.device}
        self._ikx = (1j * kx).to(self.cdtype).to(**opts)
        self._iky = (1j * ky).to(self.cdtype).to(**opts)
        # u_hat = i ky psi_hat, v_hat = -i kx psi_hat, psi_hat = omega_hat / |k|^2
        self._u_op = (1j * ky * inv_k2).to(self.cdtype).to(**opts)
        self._v_op = (-1j * kx * inv_k2).to(self.cdtype).to(**opts)
        self._linear = (-self.viscosity * k2 - self.drag).to(**opts)  # float64
        weight = torch.full((k_max + 1,), 2.0, dtype=torch.float64)
        weight[0] = 1.0
        self._parseval = (weight[None, :] / float(n) ** 4).expand_as(k2).to(**opts)
        self._inv_k2 = inv_k2.to(**opts)
        if self.forcing_amplitude != 0.0 and self.forcing_wavenumber != 0:
            kf = k0 * self.forcing_wavenumber
            y = (torch.arange(n, dtype=torch.float64) + 0.5) * self.dx
            f = -self.forcing_amplitude * kf * torch.cos(kf * y)[:, None].expand(n, n)
            self._forcing = self.to_spectral(f.to(self.dtype).to(**opts))
        else:
            self._forcing = None
        self._buffers: dict[tuple[int, ...], torch.Tensor] = {}
        # (u + i v, omega_x + i omega_y) and (u - i v, omega_x - i omega_y) from omega, half plane
        self._plus_ops = torch.stack([self._u_op + 1j * self._v_op, self._ikx + 1j * self._iky])
        self._minus_ops = torch.stack([self._u_op - 1j * self._v_op, self._ikx - 1j * self._iky])
        # compact row of -m_y for each compact row m_y
        self._reflect = (-torch.arange(2 * k_max + 1)) % (2 * k_max + 1)
        #: batch elements advanced together by :meth:`advance` (small batches run faster per sample)
        self.chunk_size = max(8, 2**17 // self.size**2)
        self._factor_step: float | None = None
        self._e1 = self._e2 = self._linear

    # -----------------------------------------------------------------------------------------
    # transforms
    def to_spectral(self, vorticity: torch.Tensor) -> torch.Tensor:
        """Fourier coefficients of the retained modes of ``vorticity[..., size, size]``.

        Modes beyond the 2/3 cut-off are discarded, so this is also the solver's projection.

        Examples
        --------
        >>> import torch
        >>> s = KolmogorovSolver(16)
        >>> s.to_spectral(torch.zeros(3, 16, 16, dtype=torch.float64)).shape
        torch.Size([3, 11, 6])
        """
        n, k_max = self.size, self.max_mode
        if vorticity.shape[-2:] != (n, n):
            raise ValueError(
                f"vorticity must end with dimensions ({n}, {n}) for this solver, got "
                f"{tuple(vorticity.shape)}; use resample() to change the grid"
            )
        r = torch.fft.rfft(vorticity.to(self.dtype), dim=-1)[..., : k_max + 1]
        f = torch.fft.fft(r, dim=-2)
        return torch.cat([f[..., : k_max + 1, :], f[..., n - k_max :, :]], dim=-2)

    def to_physical(self, state: torch.Tensor) -> torch.Tensor:
        """Field on the ``size x size`` grid from retained Fourier coefficients.

        This inverts :meth:`to_spectral` on band-limited fields.

        Examples
        --------
        >>> import torch
        >>> s = KolmogorovSolver(16, dtype="float64")
        >>> w = taylor_green_vorticity(16, dtype=torch.float64)
        >>> bool(torch.allclose(s.to_physical(s.to_spectral(w)), w))
        True
        """
        n, k_max = self.size, self.max_mode
        full = self._buffer((*state.shape[:-2], n, k_max + 1), state.dtype)
        full[..., : k_max + 1, :] = state[..., : k_max + 1, :]
        full[..., n - k_max :, :] = state[..., k_max + 1 :, :]
        return torch.fft.irfft(torch.fft.ifft(full, dim=-2), n=n, dim=-1)

    def velocity(self, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Velocity components ``(u, v)`` in m s-1 on the grid, from the streamfunction.

        Examples
        --------
        >>> import torch
        >>> s = KolmogorovSolver(16, dtype="float64")
        >>> u, v = s.velocity(s.to_spectral(taylor_green_vorticity(16, dtype=torch.float64)))
        >>> round(float(u.abs().max()), 2)
        0.96
        """
        uv = self._pairs_to_physical(self._plus_ops[0] * state, self._minus_ops[0] * state)
        return uv.real.contiguous(), uv.imag.contiguous()

    # ------------------------------------------------------------------------------------------
    # dynamics
    def _buffer(self, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
        """A cached zero-initialised work array (the rows between the retained modes stay zero)."""
        buf = self._buffers.get(shape)
        if buf is None or buf.dtype != dtype:
            buf = self._buffers[shape] = torch.zeros(shape, dtype=dtype, device=self.device)
        return buf

    def _pairs_to_physical(self, plus: torch.Tensor, minus: torch.Tensor) -> torch.Tensor:
        """Complex fields ``A + i B`` on the grid from ``plus = a + i b`` and ``minus = a - i b``.

        ``a``, ``b`` are the half-plane spectra of the real fields ``A``, ``B``; one complex FFT.

        The full-plane spectrum of ``A + i B`` is ``a + i b`` for ``m_x >= 0`` and, by the Hermitian
        symmetry of real fields, ``conj(a - i b)`` at ``-m`` for ``m_x < 0``.
        """
        n, k_max = self.size, self.max_mode
        neg = torch.conj(minus.index_select(-2, self._reflect)[..., 1:].flip(-1))
        buf = self._buffer((*plus.shape[:-2], n, n), plus.dtype)
        buf[..., : k_max + 1, : k_max + 1] = plus[..., : k_max + 1, :]
        buf[..., n - k_max :, : k_max + 1] = plus[..., k_max + 1 :, :]
        buf[..., : k_max + 1, n - k_max :] = neg[..., : k_max + 1, :]
        buf[..., n - k_max :, n - k_max :] = neg[..., k_max + 1 :, :]
        return torch.fft.ifft2(buf)

    def tendency(self, state: torch.Tensor) -> torch.Tensor:
        """Non-linear part ``N = -u . grad(omega) + f`` of the right-hand side, in spectral space.

        ``u + i v`` and ``omega_x + i omega_y`` come from one batched complex inverse FFT, and
        ``u omega_x + v omega_y = Re((u + i v) conj(omega_x + i omega_y))``. The product is exact on
        the grid for the retained modes (2/3 rule), so this equals the conservative form ``div(u
        omega)`` truncated to the retained modes.
        """
        s = state.unsqueeze(-3)
        fields = self._pairs_to_physical(self._plus_ops * s, self._minus_ops * s)
        velocity, gradient = fields.unbind(-3)
        advection = torch.real(velocity * gradient.conj())
        out = self.to_spectral(advection).neg_()
        if self._forcing is not None:
            out += self._forcing
        return out

    def _factors(self, h: float) -> tuple[torch.Tensor, torch.Tensor]:
        if self._factor_step != h:
            self._e1 = torch.exp(self._linear * (h / 2)).to(self.dtype)
            self._e2 = torch.exp(self._linear * h).to(self.dtype)
            self._factor_step = h
        return self._e1, self._e2

    def step(self, state: torch.Tensor, h: float | None = None) -> torch.Tensor:
        """One IF-RK4 step of length ``h`` (default :attr:`dt`); returns a new state."""
        h = self.dt if h is None else float(h)
        e1, e2 = self._factors(h)
        a = self.tendency(state).mul_(h)
        b = self.tendency(e1 * (state + 0.5 * a)).mul_(h)
        e1w = e1 * state
        c = self.tendency(e1w + 0.5 * b).mul_(h)
        d = self.tendency(e1 * (e1w + c)).mul_(h)
        b += c
        d += e1 * (2.0 * b)
        d += e2 * a
        return d.div_(6.0).add_(e2 * state)

    def advance(self, state: torch.Tensor, duration: float, *, retries: int = 2) -> torch.Tensor:
        """Integrate ``state`` over ``duration`` seconds in equal steps no longer than :attr:`dt`.

        The batch is advanced in chunks of :attr:`chunk_size` (faster per sample). A chunk that
        blows up is integrated again from its start with half the step, at most ``retries`` times.

        Raises
        ------
        FloatingPointError
            If the solution still blew up (time step too long for the flow speed).

        Examples
        --------
        >>> import torch
        >>> s = KolmogorovSolver(16)
        >>> w = s.advance(s.to_spectral(taylor_green_vorticity(16, dtype=torch.float64)), 0.5)
        >>> w.shape
        torch.Size([11, 6])
        """
        if duration < 0:
            raise ValueError(f"duration must be >= 0, got {duration}")
        steps = math.ceil(duration / self.dt - 1e-9)
        if steps == 0:
            return state.clone()
        flat = state.reshape(-1, *state.shape[-2:])
        chunks = []
        for start in flat.split(self.chunk_size):
            for attempt in range(retries + 1):
                n_steps = steps * 2**attempt
                h = duration / n_steps
                chunk = start
                for _ in range(n_steps):
                    chunk = self.step(chunk, h)
                if bool(torch.isfinite(torch.view_as_real(chunk)).all()):
                    break
            else:
                raise FloatingPointError(
                    f"the {self.size}x{self.size} Kolmogorov simulation blew up even with "
                    f"dt={h:.4g} s; pass a smaller dt (or a larger max_speed) to the solver"
                )
            chunks.append(chunk)
        return torch.cat(chunks).reshape(state.shape)

    # ------------------------------------------------------------------------------ diagnostics
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


# ----------------------------------------------------------------------------------- grid helpers
def _centre_phase(n: int, m: torch.Tensor) -> torch.Tensor:
    """``exp(i pi m / n)``: DFT coefficient / (n * physical coefficient) on cell-centred points."""
    return torch.exp(1j * math.pi * m / n)


def resample(field: torch.Tensor, size: int, *, max_mode: int | None = None) -> torch.Tensor:
    """Spectrally resample periodic ``field[..., n, n]`` on cell centres to ``size x size``.

    Keeps the Fourier modes ``|m| < min(n, size) / 2`` (Nyquist modes dropped), and at most
    ``max_mode``; coarsening is therefore a sharp spectral truncation, refining is exact
    trigonometric interpolation.

    Examples
    --------
    >>> import torch
    >>> w = taylor_green_vorticity(64, dtype=torch.float64)
    >>> bool(torch.allclose(resample(w, 16), taylor_green_vorticity(16, dtype=torch.float64)))
    True
    """
    n = field.shape[-1]
    if field.shape[-2] != n:
        raise ValueError(
            f"field must be square in its last two dimensions, got {tuple(field.shape)}"
        )
    limit = (min(n, size) - 1) // 2
    if max_mode is not None:
        limit = min(limit, int(max_mode))
    real = field.dtype
    c = torch.fft.rfft2(field.to(torch.float64))
    m_y = torch.cat([torch.arange(0, limit + 1), torch.arange(-limit, 0)]).to(torch.float64)
    m_x = torch.arange(0, limit + 1, dtype=torch.float64)
    rows = torch.cat([torch.arange(0, limit + 1), torch.arange(n - limit, n)])
    kept = c[..., rows, : limit + 1]
    scale = (size / n) ** 2
    phase = (_centre_phase(size, m_y) / _centre_phase(n, m_y))[:, None] * (
        _centre_phase(size, m_x) / _centre_phase(n, m_x)
    )[None, :]
    kept = kept * (phase * scale)
    out = kept.new_zeros((*field.shape[:-2], size, size // 2 + 1))
    out_rows = torch.cat([torch.arange(0, limit + 1), torch.arange(size - limit, size)])
    out[..., out_rows, : limit + 1] = kept
    return torch.fft.irfft2(out, s=(size, size)).to(real)


def velocity_from_vorticity(
    vorticity: torch.Tensor, length: float = DEFAULTS["length"]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Divergence-free velocity ``(u, v)`` of periodic ``vorticity[..., n, n]`` (``[y, x]``).

    Examples
    --------
    >>> import torch
    >>> u, v = velocity_from_vorticity(taylor_green_vorticity(16, dtype=torch.float64))
    >>> u.shape
    torch.Size([16, 16])
    """
    n = vorticity.shape[-1]
    k0 = 2 * math.pi / length
    ky = k0 * torch.fft.fftfreq(n, 1.0 / n, dtype=torch.float64)[:, None]
    kx = k0 * torch.fft.rfftfreq(n, 1.0 / n, dtype=torch.float64)[None, :]
    k2 = kx**2 + ky**2
    inv_k2 = torch.where(k2 > 0, 1.0 / torch.where(k2 > 0, k2, 1.0), 0.0)
    w = torch.fft.rfft2(vorticity.to(torch.float64))
    if n % 2 == 0:  # Nyquist modes have no well-defined derivative: drop them
        w[..., n // 2, :] = 0
        w[..., :, n // 2] = 0
    u = torch.fft.irfft2(1j * ky * inv_k2 * w, s=(n, n))
    v = torch.fft.irfft2(-1j * kx * inv_k2 * w, s=(n, n))
    return u.to(vorticity.dtype), v.to(vorticity.dtype)


def taylor_green_vorticity(
    size: int,
    *,
    length: float = DEFAULTS["length"],
    mode: int = 1,
    speed: float = 1.0,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Taylor-Green vorticity ``2 U kappa sin(kappa x) sin(kappa y)`` on cell centres, ``[y, x]``.

    ``kappa = 2 pi mode / length``; the velocity is ``u = U sin(kappa x) cos(kappa y)``,
    ``v = -U cos(kappa x) sin(kappa y)`` with ``U = speed``.

    Examples
    --------
    >>> taylor_green_vorticity(8).shape
    torch.Size([8, 8])
    """
    kappa = 2 * math.pi * mode / length
    x = (torch.arange(size, dtype=torch.float64) + 0.5) * length / size
    w = 2 * speed * kappa * torch.sin(kappa * x)[None, :] * torch.sin(kappa * x)[:, None]
    return w.to(dtype)


# -------------------------------------------------------------------------------------- xarray
# output
_VARIABLE_ATTRS: dict[str, dict[str, str]] = {
    "vorticity": {
        "standard_name": "atmosphere_relative_vorticity",
        "long_name": "relative vorticity",
        "units": "s-1",
    },
    "u": {"standard_name": "x_wind", "long_name": "velocity along x", "units": "m s-1"},
    "v": {"standard_name": "y_wind", "long_name": "velocity along y", "units": "m s-1"},
}


def _grid_coords(size: int, length: float) -> dict[str, xr.Variable]:
    centres = (np.arange(size) + 0.5) * length / size
    coords = {}
    for name, axis in (("x", "X"), ("y", "Y")):
        coords[name] = xr.Variable(
            name,
            centres,
            {
                "standard_name": f"projection_{name}_coordinate",
                "long_name": f"{name} of cell centre",
                "units": "m",
                "axis": axis,
            },
        )
    return coords


def _fields(
    vorticity: torch.Tensor, length: float, dims: tuple[str, ...]
) -> dict[str, xr.Variable]:
    flat = vorticity.reshape(-1, *vorticity.shape[-2:])
    parts = [velocity_from_vorticity(chunk, length) for chunk in flat.split(256)]  # bounded memory
    u = torch.cat([p[0] for p in parts]).reshape(vorticity.shape)
    v = torch.cat([p[1] for p in parts]).reshape(vorticity.shape)
    out = {}
    for name, data in (("vorticity", vorticity), ("u", u), ("v", v)):
        out[name] = xr.Variable(dims, data.cpu().numpy(), dict(_VARIABLE_ATTRS[name]))
    return out


def _time_attrs(long_name: str) -> dict[str, str]:
    return {"long_name": long_name, "units": "s", "axis": "T"}


def _generators(seed: int, split: str, count: int) -> list[torch.Generator]:
    if split not in _SPLITS:
        raise ValueError(f"split must be one of {sorted(_SPLITS)}, got {split!r}")
    gens = []
    for trajectory in range(count):
        state = np.random.SeedSequence([int(seed), _SPLITS[split], trajectory]).generate_state(2)
        g = torch.Generator()
        g.manual_seed(int((int(state[0]) << 31) ^ int(state[1])) & ((1 << 63) - 1))
        gens.append(g)
    return gens


def _spun_up(
    solver: KolmogorovSolver,
    trajectories: int,
    seed: int,
    split: str,
    spinup: float,
    spinup_size: int,
    physics: dict[str, Any],
) -> torch.Tensor:
    """States of ``solver`` after ``spinup`` s from random vorticity, spun up on a coarser grid."""
    gens = _generators(seed, split, trajectories)
    if spinup_size >= solver.size or spinup <= 0:
        return solver.advance(solver.random_state(gens), max(spinup, 0.0))
    coarse = KolmogorovSolver(spinup_size, dtype=solver.dtype, device=solver.device, **physics)
    state = coarse.advance(coarse.random_state(gens), spinup)
    return solver.to_spectral(resample(coarse.to_physical(state), solver.size).to(solver.dtype))


def kolmogorov(
    samples: int = 4,
    size: int = 64,
    *,
    times: int = 8,
    interval: float = 1.0,
    spinup: float = 20.0,
    sim_size: int | None = None,
    spinup_size: int | None = None,
    seed: int = 0,
    split: Literal["train", "test"] = "train",
    viscosity: float = DEFAULTS["viscosity"],
    drag: float = DEFAULTS["drag"],
    forcing_amplitude: float = DEFAULTS["forcing_amplitude"],
    forcing_wavenumber: int = int(DEFAULTS["forcing_wavenumber"]),
    length: float = DEFAULTS["length"],
    dt: float | None = None,
    dtype: Literal["float32", "float64"] = "float32",
) -> xr.Dataset:
    """Simulate independent Kolmogorov-flow trajectories and return them as a CF-annotated Dataset.

    Each sample starts from its own random vorticity (generator derived from ``seed``, ``split`` and
    the sample index), is spun up for ``spinup`` seconds to the statistically stationary state, and
    is then saved ``times`` times, ``interval`` seconds apart. The simulation runs on ``sim_size``
    points (default ``3 * size // 2``) and is truncated spectrally to ``size``.

    Parameters
    ----------
    samples
        Number of independent trajectories (dimension ``sample``).
    size
        Output grid points per side.
    times, interval
        Number of saved states per trajectory and their spacing in s (dimension ``time``).
    spinup
        Seconds simulated before the first saved state.
    sim_size, spinup_size
        Simulation grid (default ``3 * size // 2``, whose 2/3-rule modes are exactly those of the
        output grid) and the coarser grid on which all but the last ``min(2, spinup)`` seconds of
        spin-up run (default ``max(sim_size // 2, 16)``).
    seed, split
        Seed and ``"train"``/``"test"``: different values give independent trajectories.
    viscosity, drag, forcing_amplitude, forcing_wavenumber, length
        Physical parameters (SI units), see :class:`KolmogorovSolver`.
    dt
        Largest time step of the simulation in s (default from a CFL number of 1 at 4 m s-1).
    dtype
        Simulation precision.

    Returns
    -------
    xarray.Dataset
        ``vorticity`` (s-1), ``u`` and ``v`` (m s-1) with dims ``(sample, time, y, x)``; coordinates
        ``x``/``y`` (cell centres in m, CF projection coordinates) and ``time`` (s since the start
        of each simulation); the parameters in ``attrs``.

    Examples
    --------
    >>> ds = kolmogorov(samples=2, size=16, times=3, spinup=1.0)
    >>> ds.vorticity.dims
    ('sample', 'time', 'y', 'x')
    >>> ds.vorticity.attrs["units"], ds.u.attrs["units"], ds.x.attrs["units"]
    ('s-1', 'm s-1', 'm')
    """
    sim_size = 3 * size // 2 if sim_size is None else int(sim_size)
    spinup_size = max(sim_size // 2, 16) if spinup_size is None else int(spinup_size)
    if sim_size < size:
        raise ValueError(f"sim_size={sim_size} must be >= size={size}")
    physics = {
        "length": float(length),
        "viscosity": float(viscosity),
        "drag": float(drag),
        "forcing_amplitude": float(forcing_amplitude),
        "forcing_wavenumber": int(forcing_wavenumber),
    }
    solver = KolmogorovSolver(sim_size, dt=dt, dtype=dtype, **physics)
    settle = min(2.0, spinup)
    state = _spun_up(solver, samples, seed, split, spinup - settle, spinup_size, physics)
    state = solver.advance(state, settle)
    frames = []
    for i in range(times):
        if i:
            state = solver.advance(state, interval)
        frames.append(resample(solver.to_physical(state), size))
    vorticity = torch.stack(frames, dim=1)
    ds = xr.Dataset(
        _fields(vorticity, length, ("sample", "time", "y", "x")),
        coords={
            **_grid_coords(size, length),
            "time": xr.Variable(
                "time", spinup + interval * np.arange(times), _time_attrs("time since start")
            ),
            "sample": xr.Variable("sample", np.arange(samples), {"long_name": "trajectory"}),
        },
    )
    ds.attrs = {
        "title": "2-D Kolmogorov flow",
        "Conventions": "CF-1.10",
        "source": "xsfm.datasets.kolmogorov (pseudo-spectral IF-RK4, 2/3 dealiasing)",
        "seed": int(seed),
        "split": split,
        "sim_size": sim_size,
        "spinup_size": spinup_size,
        "spinup": float(spinup),
        "interval": float(interval),
        "dt": solver.dt,
        "dtype": dtype,
        **physics,
        "forcing": "F = (A sin(k_f y), 0), vorticity forcing -A k_f cos(k_f y), k_f = 2 pi n_f / L",
    }
    return ds


# ------------------------------------------------------------------------------------------- pairs
def _pair_fields(
    *,
    taus: Sequence[float],
    samples: int,
    seed: int,
    split: str,
    fine_size: int,
    coarse_size: int,
    sim_size: int,
    spinup_size: int,
    trajectories: int,
    interval: float,
    spinup: float,
    settle: float,
    physics: dict[str, Any],
    dt: float | None,
    coarse_dt: float | None,
    dtype: str,
) -> tuple[torch.Tensor, dict[float, torch.Tensor], np.ndarray, np.ndarray]:
    """Truth at ``t0`` and, per ``tau``, the coarse input; samples in time-major order."""
    if min(taus) < 0:
        raise ValueError(f"tau must be >= 0, got {list(taus)}")
    if max(taus) > settle:
        raise ValueError(f"tau={max(taus)} exceeds settle={settle}; pass settle >= tau")
    solver = KolmogorovSolver(sim_size, dt=dt, dtype=dtype, **physics)
    coarse = KolmogorovSolver(coarse_size, dt=coarse_dt, dtype=dtype, **physics)
    snapshots = math.ceil(samples / trajectories)
    state = _spun_up(solver, trajectories, seed, split, spinup, spinup_size, physics)
    targets = [spinup + settle + j * interval for j in range(snapshots)]
    # The truth path visits only ``spinup`` and the targets, whatever ``taus`` are, so the truth
    # does not depend on them; a start at ``t0 - tau`` between path points branches off the earlier.
    path = [spinup, *targets]
    branches: dict[int, list[tuple[float, int, float]]] = {}
    for j, t0 in enumerate(targets):
        for tau in taus:
            k = max(i for i, t in enumerate(path) if t <= t0 - tau + 1e-9)
            branches.setdefault(k, []).append((max(t0 - tau - path[k], 0.0), j, tau))
    truth: list[torch.Tensor] = []
    starts: dict[float, list[torch.Tensor | None]] = {tau: [None] * snapshots for tau in taus}
    for k, t in enumerate(path):
        if k:
            state = solver.advance(state, t - path[k - 1])
            truth.append(resample(solver.to_physical(state), fine_size))
        coarsened: dict[float, torch.Tensor] = {}
        for offset, j, tau in branches.get(k, []):
            key = round(offset, 9)
            if key not in coarsened:
                branch = solver.advance(state, offset) if key > 0 else state
                field = resample(solver.to_physical(branch), coarse_size, max_mode=coarse.max_mode)
                coarsened[key] = coarse.to_spectral(field)
            starts[tau][j] = coarsened[key]
    fine = torch.cat(truth)[:samples]  # type: ignore[arg-type]
    inputs = {}
    for tau in taus:
        init = torch.cat(starts[tau])[:samples]  # type: ignore[arg-type]
        inputs[tau] = coarse.to_physical(coarse.advance(init, tau))
    index = np.arange(snapshots * trajectories)[:samples]
    return fine, inputs, index % trajectories, np.asarray(targets)[index // trajectories]


def _pair_datasets(
    fine: torch.Tensor,
    coarse: torch.Tensor,
    trajectory: np.ndarray,
    t0: np.ndarray,
    attrs: dict[str, Any],
    length: float,
) -> tuple[xr.Dataset, xr.Dataset]:
    out = []
    for field, role in ((coarse, "coarse input"), (fine, "fine truth")):
        ds = xr.Dataset(
            _fields(field, length, ("sample", "y", "x")),
            coords={
                **_grid_coords(field.shape[-1], length),
                "sample": xr.Variable("sample", np.arange(field.shape[0]), {"long_name": "sample"}),
                "trajectory": xr.Variable(
                    "sample", trajectory, {"long_name": "index of the simulated trajectory"}
                ),
                "time": xr.Variable("sample", t0, _time_attrs("time since start of trajectory")),
            },
        )
        ds.attrs = {**attrs, "role": role, "title": f"Kolmogorov flow, {role}"}
        out.append(ds)
    return out[0], out[1]


def _cache_paths(cache_dir: str | os.PathLike[str], key: dict[str, Any]) -> tuple[Path, Path]:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    base = Path(cache_dir) / f"kolmogorov_pairs_{digest}"
    return base.with_name(base.name + "_coarse.nc"), base.with_name(base.name + "_fine.nc")


def _netcdf_engine() -> str | None:
    """The first usable netCDF-4 engine (``h5netcdf`` needs ``h5py``), or ``None``."""
    import importlib.util

    for engine, modules in (("h5netcdf", ("h5netcdf", "h5py")), ("netcdf4", ("netCDF4",))):
        if all(importlib.util.find_spec(m) is not None for m in modules):
            return engine
    return None


def kolmogorov_pairs(
    tau: float = 1.0,
    samples: int = 4000,
    *,
    seed: int = 0,
    split: Literal["train", "test"] = "train",
    fine_size: int = 64,
    coarse_size: int = 16,
    sim_size: int = 96,
    spinup_size: int = 64,
    trajectories: int | None = None,
    interval: float = 0.5,
    spinup: float = 20.0,
    settle: float = 2.0,
    viscosity: float = DEFAULTS["viscosity"],
    drag: float = DEFAULTS["drag"],
    forcing_amplitude: float = DEFAULTS["forcing_amplitude"],
    forcing_wavenumber: int = int(DEFAULTS["forcing_wavenumber"]),
    length: float = DEFAULTS["length"],
    dt: float | None = None,
    coarse_dt: float | None = None,
    dtype: Literal["float32", "float64"] = "float32",
    cache_dir: str | os.PathLike[str] | None = None,
) -> tuple[xr.Dataset, xr.Dataset]:
    """Misaligned coarse/fine Kolmogorov-flow pairs ``(coarse, fine)`` sharing dimension ``sample``.

    ``trajectories`` independent flows are spun up (``spinup`` s on ``spinup_size`` points, then
    ``settle`` s on ``sim_size`` points) and sampled every ``interval`` s. For each sample time
    ``t0``:

    * ``fine`` is the ``sim_size`` state at ``t0`` truncated spectrally to ``fine_size``;
    * ``coarse`` is a ``coarse_size`` simulation (same physics, its own 2/3 dealiasing) started from
      the truth at ``t0 - tau`` truncated to the coarse solver's modes, and run for ``tau`` s. ``tau
      = 0`` is the pure coarsening of the truth; larger ``tau`` means more misalignment.

    The truth does not depend on ``tau`` (for ``tau <= settle``), so datasets for several ``tau``
    share their ``fine`` part. Samples are ordered time-major (the first ``trajectories`` samples
    are the first snapshots of all trajectories), so any prefix mixes all trajectories. Use
    ``split="test"`` (or another ``seed``) for held-out data: its trajectories are independent of
    the training ones.

    Parameters
    ----------
    tau
        Lag of the coarse simulation in s.
    samples
        Number of pairs.
    seed, split
        Seed and ``"train"``/``"test"``; each trajectory's initial state has its own generator
        derived from ``np.random.SeedSequence([seed, split, trajectory])``.
    fine_size, coarse_size, sim_size, spinup_size
        Grid points per side of the truth, the input, the truth simulation and the spin-up.
    trajectories
        Independent simulations (default ``ceil(samples / 40)``).
    interval
        Seconds between snapshots of one trajectory.
    spinup, settle
        Seconds of spin-up on ``spinup_size`` and then on ``sim_size`` before the first snapshot
        (``settle >= tau`` is required).
    viscosity, drag, forcing_amplitude, forcing_wavenumber, length
        Physical parameters (SI units), see :class:`KolmogorovSolver`.
    dt, coarse_dt
        Largest time steps of the fine and coarse simulations (defaults from a CFL number of 1 at
        4 m s-1).
    dtype
        Simulation precision.
    cache_dir
        If given (and h5netcdf with h5py, or netCDF4, is installed), results are stored there as
        netCDF-4 files named by a hash of all parameters and reused by later calls; otherwise
        nothing is cached.

    Returns
    -------
    coarse, fine : xarray.Dataset
        ``vorticity`` (s-1), ``u``, ``v`` (m s-1) with dims ``(sample, y, x)`` on ``coarse_size``
        and ``fine_size`` cell-centred grids over the same square; coordinates
        ``trajectory(sample)`` and ``time(sample)`` (``t0`` in s); parameters (``tau``, ``seed``,
        ...) in ``attrs``.

    Notes
    -----
    Cost is dominated by the ``sim_size`` simulation, about ``samples * interval`` simulated seconds
    (96 x 96, float32, dt = 0.016 s: ~1 ms per sample and step on one CPU core). The defaults
    generate 4000 pairs (100 trajectories x 40 snapshots) in about 2.5 minutes on one thread.
    Consecutive snapshots of one trajectory (0.5 s apart) have vorticity correlation ~0.7 (~0.5 at
    1 s); pass ``interval=1.0`` for less correlated samples at twice the cost.

    Examples
    --------
    >>> coarse, fine = kolmogorov_pairs(tau=0.5, samples=4, sim_size=48, spinup_size=32,
    ...                                 fine_size=32, coarse_size=16, spinup=1.0, settle=0.5,
    ...                                 trajectories=2)
    >>> coarse.vorticity.shape, fine.vorticity.shape
    ((4, 16, 16), (4, 32, 32))
    >>> float(coarse.attrs["tau"])
    0.5
    """
    if trajectories is None:
        trajectories = max(1, math.ceil(samples / 40))
    if sim_size < fine_size or fine_size < coarse_size:
        raise ValueError(
            f"need sim_size >= fine_size >= coarse_size, got {sim_size}, {fine_size}, {coarse_size}"
        )
    physics = {
        "length": float(length),
        "viscosity": float(viscosity),
        "drag": float(drag),
        "forcing_amplitude": float(forcing_amplitude),
        "forcing_wavenumber": int(forcing_wavenumber),
    }
    params: dict[str, Any] = {
        "tau": float(tau),
        "samples": int(samples),
        "seed": int(seed),
        "split": split,
        "fine_size": int(fine_size),
        "coarse_size": int(coarse_size),
        "sim_size": int(sim_size),
        "spinup_size": int(spinup_size),
        "trajectories": int(trajectories),
        "interval": float(interval),
        "spinup": float(spinup),
        "settle": float(settle),
        **physics,
        "dt": "auto" if dt is None else float(dt),
        "coarse_dt": "auto" if coarse_dt is None else float(coarse_dt),
        "dtype": dtype,
        "algorithm_version": _ALGORITHM_VERSION,
    }
    paths = None
    engine = _netcdf_engine() if cache_dir is not None else None
    if cache_dir is not None and engine is not None:
        paths = _cache_paths(cache_dir, params)
        if paths[0].exists() and paths[1].exists():
            return (
                xr.load_dataset(paths[0], engine=engine),
                xr.load_dataset(paths[1], engine=engine),
            )
    start = time.perf_counter()
    fine, inputs, trajectory, t0 = _pair_fields(
        taus=[float(tau)],
        samples=samples,
        seed=seed,
        split=split,
        fine_size=fine_size,
        coarse_size=coarse_size,
        sim_size=sim_size,
        spinup_size=spinup_size,
        trajectories=trajectories,
        interval=interval,
        spinup=spinup,
        settle=settle,
        physics=physics,
        dt=dt,
        coarse_dt=coarse_dt,
        dtype=dtype,
    )
    attrs = {
        "Conventions": "CF-1.10",
        "source": "xsfm.datasets.kolmogorov_pairs (pseudo-spectral IF-RK4, 2/3 dealiasing)",
        **{k: v for k, v in params.items() if k != "algorithm_version"},
        "tau_units": "s",
        "algorithm_version": _ALGORITHM_VERSION,
        "forcing": "F = (A sin(k_f y), 0), vorticity forcing -A k_f cos(k_f y), k_f = 2 pi n_f / L",
        "generation_seconds": round(time.perf_counter() - start, 3),
    }
    coarse_ds, fine_ds = _pair_datasets(fine, inputs[float(tau)], trajectory, t0, attrs, length)
    if paths is not None:
        paths[0].parent.mkdir(parents=True, exist_ok=True)
        for ds, path in zip((coarse_ds, fine_ds), paths, strict=True):
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            ds.to_netcdf(tmp, engine=engine)
            tmp.replace(path)
    return coarse_ds, fine_ds


def _bilinear_upsample(field: torch.Tensor, size: int) -> torch.Tensor:
    """Periodic bilinear upsampling of cell-centred ``field[..., n, n]`` (align_corners=False)."""
    n = field.shape[-1]
    pad = 1
    x = torch.cat([field[..., -pad:, :], field, field[..., :pad, :]], dim=-2)
    x = torch.cat([x[..., -pad:], x, x[..., :pad]], dim=-1)
    scale = size // n
    up = torch.nn.functional.interpolate(
        x.reshape(-1, 1, n + 2 * pad, n + 2 * pad).double(),
        scale_factor=scale,
        mode="bilinear",
        align_corners=False,
    )
    cut = pad * scale
    return up[..., cut : cut + size, cut : cut + size].reshape(*field.shape[:-2], size, size)


def misalignment_table(
    taus: Sequence[float] = (0.0, 0.5, 1.0, 2.0),
    samples: int = 64,
    *,
    seed: int = 0,
    trajectories: int | None = None,
    fine_size: int = 64,
    coarse_size: int = 16,
    sim_size: int = 96,
    spinup_size: int = 64,
    interval: float = 1.0,
    spinup: float = 20.0,
    dtype: Literal["float32", "float64"] = "float32",
    **physics: Any,
) -> xr.Dataset:
    """RMSE between the bilinearly upsampled coarse input and the truth, per lag ``tau``.

    All lags share the same truth samples (from ``split="test"``). ``rmse`` is in s-1 (vorticity),
    ``relative_rmse`` divides it by the truth's root-mean-square vorticity; the upsampling is
    periodic bilinear with ``align_corners=False`` (what a model's input interpolation does).
    ``coarse_rmse`` compares the input with the coarsened truth on the coarse grid: zero at
    ``tau = 0``, it isolates the drift of the coarse simulation.

    Examples
    --------
    >>> table = misalignment_table((0.0, 0.5), samples=2, sim_size=48, spinup_size=32, fine_size=32,
    ...                            spinup=1.0, trajectories=2)
    >>> table.rmse.dims
    ('tau',)
    """
    trajectories = trajectories or max(1, math.ceil(samples / 8))
    params = {**{k: v for k, v in DEFAULTS.items() if k not in ("max_speed", "cfl")}, **physics}
    params["forcing_wavenumber"] = int(params["forcing_wavenumber"])
    fine, inputs, _, _ = _pair_fields(
        taus=[float(t) for t in taus],
        samples=samples,
        seed=seed,
        split="test",
        fine_size=fine_size,
        coarse_size=coarse_size,
        sim_size=sim_size,
        spinup_size=spinup_size,
        trajectories=trajectories,
        interval=interval,
        spinup=spinup,
        settle=max(2.0, *taus),
        physics=params,
        dt=None,
        coarse_dt=None,
        dtype=dtype,
    )
    truth = fine.double()
    scale = float(truth.pow(2).mean().sqrt())
    coarsened = resample(truth, coarse_size, max_mode=(coarse_size - 1) // 3)
    rmse, band = [], []
    for t in taus:
        field = inputs[float(t)].double()
        rmse.append(float((_bilinear_upsample(field, fine_size) - truth).pow(2).mean().sqrt()))
        band.append(float((field - coarsened).pow(2).mean().sqrt()))
    return xr.Dataset(
        {
            "rmse": (
                "tau",
                rmse,
                {"long_name": "RMSE of upsampled coarse vorticity", "units": "s-1"},
            ),
            "relative_rmse": (
                "tau",
                np.asarray(rmse) / scale,
                {"long_name": "RMSE / RMS of truth", "units": "1"},
            ),
            "coarse_rmse": (
                "tau",
                band,
                {
                    "long_name": "RMSE of coarse input vs coarsened truth on the coarse grid",
                    "units": "s-1",
                },
            ),
        },
        coords={"tau": ("tau", np.asarray(taus, dtype=float), {"long_name": "lag", "units": "s"})},
        attrs={"samples": samples, "seed": seed, "truth_rms_vorticity": scale},
    )
