r"""Ensemble Kalman filters: the stochastic EnKF and the ensemble transform (square-root) ETKF.

Each step forecasts every member with the transition; at a step with observations the ensemble is
updated with the Kalman gain estimated from it, with ``h = A(x)`` evaluated per member (so
nonlinear operators are handled the usual way), ``R = diag(gamma**2)`` (one std per observed
element, or one for all) and missing elements (NaN) given no weight.

* **Inflation** (Anderson & Anderson 1999): after each analysis the analysis anomalies are
  multiplied by ``inflation``, as DAPPER does, so the next forecast, its state spread and its
  predicted observations all start from the inflated ensemble; steps without observations are not
  inflated. (Inflating the forecast anomalies instead was measured on DAPPER's Lorenz-63 setting:
  no better, see ``studies/dapper_parity.py``.)
* **Stochastic EnKF** (Burgers, van Leeuwen & Evensen 1998): every member assimilates the
  observation plus its own noise draw ``gamma * eps``; the draws are **centred** over the members so
  the analysis mean equals the Kalman update of the forecast mean, and scaled by
  ``sqrt(M / (M - 1))`` so their expected sample covariance is still ``R`` (as DAPPER's
  ``PertObs`` does).
* **ETKF** (Bishop et al. 2001; the symmetric form of Hunt, Kostelich & Szunyogh 2007): with
  ``Y = R^{-1/2} (H(x_m) - mean)`` the scaled observation anomalies ``[M, m]`` and the eigen-
  decomposition ``Y Y^T = V diag(lambda) V^T``, the analysis is ``x_a = mean + (w + W)^T X`` with
  ``w = V diag(1 / (M - 1 + lambda)) V^T Y R^{-1/2} (y - mean(H(x)))`` and the symmetric square root
  ``W = V diag(sqrt((M - 1) / (M - 1 + lambda))) V^T``; deterministic and mean-preserving.
* **Localisation** (:mod:`xsfm.filters.localisation`): the stochastic EnKF tapers the gain's
  covariances (``C_xh`` and ``C_hh``, Houtekamer & Mitchell 2001); the ETKF becomes the **LETKF**:
  each state element has its own analysis in which observation ``j`` counts with weight
  ``rho(distance)`` (R-localisation, Hunt et al. 2007). Memory grows as ``n * M * m`` per trajectory.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch

from xsfm.filters.common import (
    FilterResult,
    Transition,
    normals,
    observation_std,
    prepare_ensemble,
)
from xsfm.filters.localisation import default_positions, taper
from xsfm.observations import Observation, as_operator
from xsfm.progress import tick

__all__ = ["KINDS", "ensemble_kalman_filter"]

KINDS = ("stochastic", "etkf")


def _stochastic_update(
    xf: torch.Tensor,
    hf: torch.Tensor,
    y: torch.Tensor,
    eps: torch.Tensor,
    gamma: torch.Tensor,
    missing: torch.Tensor,
    rho: tuple[torch.Tensor, torch.Tensor] | None,
) -> torch.Tensor:
    """Perturbed-observation update of ``xf [B, M, n]`` with ``hf [B, M, m]``."""
    members = xf.shape[1]
    xa = xf - xf.mean(1, keepdim=True)
    ha = hf - hf.mean(1, keepdim=True)
    ha = torch.where(missing, torch.zeros_like(ha), ha)
    c_xh = xa.transpose(1, 2) @ ha / (members - 1)  # [B, n, m]
    c_hh = ha.transpose(1, 2) @ ha / (members - 1)
    if rho is not None:
        c_xh, c_hh = c_xh * rho[0], c_hh * rho[1]
    c_hh = c_hh + torch.diag_embed(gamma.pow(2)).expand_as(c_hh)
    eps = (eps - eps.mean(1, keepdim=True)) * math.sqrt(members / (members - 1))
    innovation = y + gamma * eps - hf  # [B, M, m]
    innovation = torch.where(missing, torch.zeros_like(innovation), innovation)
    gain_t = torch.linalg.solve(c_hh, c_xh.transpose(1, 2))  # K^T = C_hh^{-1} C_hx: [B, m, n]
    return xf + innovation @ gain_t


def _transform(y_s: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """ETKF weights ``(w + W)`` ``[..., M, M]`` from scaled anomalies ``[..., M, m]`` and ``d [..., m]``."""
    members = y_s.shape[-2]
    lam, vec = torch.linalg.eigh(y_s @ y_s.transpose(-1, -2))
    lam = lam.clamp_min(0)
    inv = 1.0 / (members - 1 + lam)
    pa = (vec * inv[..., None, :]) @ vec.transpose(-1, -2)
    w_mean = pa @ (y_s @ d[..., None])  # [..., M, 1]
    root = (vec * (inv * (members - 1)).sqrt()[..., None, :]) @ vec.transpose(-1, -2)
    return root + w_mean


def _etkf_update(
    xf: torch.Tensor,
    hf: torch.Tensor,
    y: torch.Tensor,
    gamma: torch.Tensor,
    missing: torch.Tensor,
    rho: torch.Tensor | None,
) -> torch.Tensor:
    """Square-root update of ``xf [B, M, n]``; with ``rho [n, m]``, one local analysis per element."""
    mean = xf.mean(1, keepdim=True)
    anomalies = xf - mean
    h_mean = hf.mean(1, keepdim=True)
    y_s = torch.where(missing, torch.zeros_like(hf), (hf - h_mean) / gamma)  # [B, M, m]
    d = torch.where(missing[:, 0], torch.zeros_like(y[:, 0]), (y[:, 0] - h_mean[:, 0]) / gamma)
    if rho is None:
        t = _transform(y_s, d)  # [B, M, M]
        return mean + t.transpose(1, 2) @ anomalies
    root = rho.sqrt()  # [n, m]
    t = _transform(y_s[:, None] * root[None, :, None, :], d[:, None] * root[None])  # [B, n, M, M]
    return mean + torch.einsum("bijk,bji->bki", t, anomalies)


@torch.inference_mode()
def ensemble_kalman_filter(
    x0: torch.Tensor,
    obs: torch.Tensor,
    transition: Transition,
    operator: Observation | Callable[[torch.Tensor], torch.Tensor] | dict[str, Any],
    noise_std: float | Sequence[float] | torch.Tensor | None = None,
    *,
    members: int = 64,
    inflation: float = 1.0,
    kind: str = "stochastic",
    rotate: bool = False,
    localisation: float | None = None,
    state_positions: torch.Tensor | None = None,
    obs_positions: torch.Tensor | None = None,
    period: float | Sequence[float | None] | None = None,
    state_ndim: int | None = None,
    generators: Sequence[torch.Generator] | None = None,
    seed: int = 0,
) -> FilterResult:
    """Ensemble Kalman filter: stochastic (perturbed observations) or square-root (ETKF, LETKF).

    Parameters
    ----------
    x0
        Known initial states ``[B, *state]`` or an initial ensemble ``[B, M, *state]``.
    obs
        Observations ``[B, T, *obs]`` at the ``T`` steps after ``x0`` (NaN: missing).
    transition
        ``transition(x, noise) -> x_next`` on ``[B, M, *state]``.
    operator, noise_std
        Observation operator and noise standard deviation (one value, or one per observed element;
        overrides the operator's).
    members
        Ensemble size ``M``.
    inflation
        Multiplicative inflation of the analysis anomalies after each analysis (1: none).
    kind
        ``"stochastic"`` (perturbed observations, centred) or ``"etkf"`` (deterministic square root).
    rotate
        ETKF only: after each analysis, mix the anomalies with a random mean-preserving orthogonal
        matrix (Sakov & Oke 2008; DAPPER's ``rot``), which keeps a small deterministic ensemble
        from locking into a few directions; mean and covariance are unchanged.
    localisation
        Gaspari-Cohn half-width in the units of the positions (None: no localisation); the taper
        is zero beyond twice it.
    state_positions, obs_positions
        Coordinates ``[n, D]`` of the state's elements (default: their grid indices) and ``[m, D]``
        of the observed elements (default: the state's, when the observations have the state's
        shape).
    period
        Period of each coordinate axis, for periodic domains (one value or one per axis).
    state_ndim
        Number of state axes (default: ``x0.ndim - 1``).
    generators, seed
        One generator per trajectory, or a seed to derive them from.

    Examples
    --------
    >>> from xsfm.observations import Elementwise
    >>> res = ensemble_kalman_filter(
    ...     torch.zeros(2, 1), torch.ones(2, 4, 1), lambda x, z: x + z, Elementwise(), 0.5,
    ...     members=32,
    ... )
    >>> res.ensemble.shape
    torch.Size([2, 4, 32, 1])
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if rotate and kind != "etkf":
        raise ValueError("rotate is an ETKF option (kind='etkf')")
    if not (inflation >= 1.0 and math.isfinite(inflation)):
        raise ValueError(f"inflation must be a finite number >= 1, got {inflation}")
    if members < 2:
        raise ValueError("an ensemble Kalman filter needs members >= 2 (it estimates covariances)")
    op = as_operator(operator)
    std_source = op.noise_std if noise_std is None else noise_std
    x, gens, state_shape = prepare_ensemble(x0, obs, members, state_ndim, generators, seed)
    batch, n_steps = obs.shape[:2]
    n = math.prod(state_shape)
    gamma = rho = None
    members_out = []
    for t in range(n_steps):
        z = normals(gens, (members, *state_shape), x)
        x = transition(x, z)
        y = obs[:, t].to(x.dtype).unsqueeze(1)
        obs_shape = tuple(y.shape[2:])
        eps = normals(gens, (members, *obs_shape), x) if kind == "stochastic" else None
        spin = normals(gens, (members - 1, members - 1), x) if rotate else None
        any_obs = ~torch.isnan(y).reshape(batch, -1).all(1)  # [B]
        tick()
        if not bool(any_obs.any()):
            members_out.append(x)
            continue
        xf = x.reshape(batch, members, n)
        hf = op(xf.reshape(batch, members, *state_shape)).reshape(batch, members, -1)
        if gamma is None:
            gamma = observation_std(std_source, obs_shape, x)
            if localisation is not None:
                rho = _tapers(localisation, state_shape, obs_shape, state_positions,
                              obs_positions, period, kind, x)  # fmt: skip
        y_flat = y.reshape(batch, 1, -1)
        missing = torch.isnan(y_flat).expand_as(hf)
        if kind == "stochastic":
            e = eps.reshape(batch, members, -1)  # type: ignore[union-attr]
            xa = _stochastic_update(xf, hf, y_flat, e, gamma, missing, rho)  # type: ignore[arg-type]
        else:
            xa = _etkf_update(xf, hf, y_flat, gamma, missing, rho)  # type: ignore[arg-type]
        if inflation != 1.0:
            mean = xa.mean(1, keepdim=True)
            xa = torch.where(any_obs[:, None, None], mean + inflation * (xa - mean), xa)
        if spin is not None:
            mean = xa.mean(1, keepdim=True)
            rotated = mean + _mean_preserving_rotation(spin) @ (xa - mean)
            xa = torch.where(any_obs[:, None, None], rotated, xa)
        x = xa.reshape(batch, members, *state_shape)
        members_out.append(x)
    ensemble = torch.stack(members_out, 1)
    return FilterResult(
        mean=ensemble.mean(2),
        variance=ensemble.var(2),
        ensemble=ensemble,
        ess=torch.full((batch, n_steps), float(members), dtype=x.dtype, device=x.device),
        log_evidence=torch.full((batch,), float("nan"), dtype=x.dtype, device=x.device),
    )


def _mean_preserving_rotation(z: torch.Tensor) -> torch.Tensor:
    """Random orthogonal ``[B, M, M]`` with ``Q 1 = 1``, from normals ``z [B, M-1, M-1]``.

    ``Q = V diag(1, R) V^T`` with ``V`` an orthonormal basis whose first vector is ``1 / sqrt(M)``
    and ``R`` Haar-distributed (the QR decomposition of ``z`` with the signs of ``diag(r)``).
    """
    members = z.shape[-1] + 1
    q, r = torch.linalg.qr(z)
    q = q * torch.sign(torch.diagonal(r, dim1=-2, dim2=-1)).unsqueeze(-2)
    start = torch.eye(members, dtype=z.dtype, device=z.device)
    start[:, 0] = 1.0
    basis, _ = torch.linalg.qr(start)
    basis = basis * torch.sign(basis[0, 0])
    inner = torch.zeros(z.shape[0], members, members, dtype=z.dtype, device=z.device)
    inner[:, 0, 0] = 1.0
    inner[:, 1:, 1:] = q
    return basis @ inner @ basis.T


def _tapers(
    half_width: float,
    state_shape: Sequence[int],
    obs_shape: Sequence[int],
    state_positions: torch.Tensor | None,
    obs_positions: torch.Tensor | None,
    period: Any,
    kind: str,
    like: torch.Tensor,
) -> Any:
    """``rho [n, m]`` (ETKF) or ``(rho_xy [n, m], rho_yy [m, m])`` (stochastic)."""
    sp = (
        default_positions(state_shape, like)
        if state_positions is None
        else torch.as_tensor(state_positions, dtype=like.dtype).reshape(math.prod(state_shape), -1)
    )
    if obs_positions is None:
        if tuple(obs_shape) != tuple(state_shape):
            raise ValueError(
                "localisation needs the observations' positions (obs_positions=[m, D]) unless "
                "the observations have the state's shape"
            )
        op_ = sp
    else:
        op_ = torch.as_tensor(obs_positions, dtype=like.dtype).reshape(math.prod(obs_shape), -1)
    rho_xy = taper(sp, op_, half_width, period)
    if kind == "etkf":
        return rho_xy
    return rho_xy, taper(op_, op_, half_width, period)
