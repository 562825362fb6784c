r"""2-D Kolmogorov flow: a batched pseudo-spectral solver of Navier-Stokes in vorticity form.

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
"""

from __future__ import annotations

import math

import torch

from xsfm.datasets.kolmogorov_diagnostics import _SolverDiagnostics

__all__ = ["DEFAULTS", "KolmogorovSolver"]

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


def _as_dtype(dtype: str | torch.dtype) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        if dtype not in (torch.float32, torch.float64):
            raise TypeError(f"dtype must be float32 or float64, got {dtype}")
        return dtype
    table = {"float32": torch.float32, "float64": torch.float64}
    if dtype not in table:
        raise TypeError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    return table[dtype]


class KolmogorovSolver(_SolverDiagnostics):
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
    >>> from xsfm.datasets.kolmogorov_grid import taylor_green_vorticity
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
        >>> from xsfm.datasets.kolmogorov_grid import taylor_green_vorticity
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
        >>> from xsfm.datasets.kolmogorov_grid import taylor_green_vorticity
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
        >>> from xsfm.datasets.kolmogorov_grid import taylor_green_vorticity
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
