r"""The stochastic interpolant of FlowDAS and its drift-matching target.

References: Chen et al. (2024), "Probabilistic Forecasting with Stochastic Interpolants and Föllmer
Processes"; Chen et al. (2025), "FlowDAS: A Stochastic Interpolant-based Framework for Data
Assimilation".

Math
----
Given the current state :math:`x_0` (the base) and the next state :math:`x_1` (the target), the
interpolant on :math:`s \in [0, 1]` is

.. math::

    I_s = \alpha(s)\, x_0 + \beta(s)\, x_1 + \sigma(s)\, W_s, \qquad
    \alpha(s) = 1 - s,\quad \beta(s) = s^2,\quad \sigma(s) = \varepsilon (1 - s),

with :math:`W_s = \sqrt{s}\, z`, :math:`z \sim N(0, I)` a Wiener process at time :math:`s`
independent of :math:`(x_0, x_1)`, and :math:`\varepsilon = 1` by default. So :math:`I_0 = x_0` and
:math:`I_1 = x_1`.

The drift is the conditional expectation :math:`b(x, s) = E[R_s \mid I_s = x, \text{history}]` of
the regression target

.. math::

    R_s = \dot\alpha(s)\, x_0 + \dot\beta(s)\, x_1 + \dot\sigma(s)\, W_s
        = -x_0 + 2 s\, x_1 - \varepsilon \sqrt{s}\, z,

which is the time derivative of :math:`I_s` with the Wiener value held fixed (the Itô term
:math:`\sigma\, dW` is not part of the drift). It is learnt by least squares,
:math:`\min_b E\,\|b(I_s, s, \text{history}) - R_s\|^2` with :math:`s \sim U(0, 1)`.

With that drift, the SDE

.. math::

    dX_s = b(X_s, s)\, ds + \sigma(s)\, dB_s, \qquad X_0 = x_0,

has the same marginal laws as :math:`I_s`, so :math:`X_1` is a draw of the next state given the
history. Integrating the noise alone from :math:`s` to 1 gives a Gaussian of standard deviation
:math:`\varepsilon (1 - s)^{3/2} / \sqrt{3}`: that is :func:`endpoint_std` (``kind="exact"``). The
released FlowDAS code instead uses :math:`\kappa(s) = 2/3 - \sqrt{s} + s^{3/2}/3 = \int_s^1 (1-u)\,
d\sqrt{u}` (the noise written as :math:`\sigma(u)\, dW_u` with the *same* :math:`z` for all
:math:`u`); ``kind="code"``.
"""

from __future__ import annotations

import math
from typing import Literal

import torch

__all__ = [
    "alpha",
    "alpha_dot",
    "beta",
    "beta_dot",
    "drift_target",
    "endpoint_std",
    "interpolant",
    "sigma",
    "sigma_dot",
]

KappaKind = Literal["exact", "code"]


def _as_s(s: torch.Tensor | float, like: torch.Tensor) -> torch.Tensor:
    """Return ``s`` as a tensor broadcastable against ``like`` (a batch axis is expanded)."""
    s = torch.as_tensor(s, dtype=like.dtype, device=like.device)
    if s.ndim == 1 and like.ndim > 1 and s.shape[0] == like.shape[0]:
        s = s.reshape(-1, *([1] * (like.ndim - 1)))
    return s


def alpha(s: torch.Tensor | float) -> torch.Tensor | float:
    r"""Weight of the base state, :math:`\alpha(s) = 1 - s`.

    Examples
    --------
    >>> alpha(0.25)
    0.75
    """
    return 1 - s


def alpha_dot(s: torch.Tensor | float) -> torch.Tensor | float:
    r"""Derivative :math:`\dot\alpha(s) = -1`.

    Examples
    --------
    >>> alpha_dot(0.3)
    -1.0
    """
    return -1.0 if not isinstance(s, torch.Tensor) else -torch.ones_like(s)


def beta(s: torch.Tensor | float) -> torch.Tensor | float:
    r"""Weight of the target state, :math:`\beta(s) = s^2`.

    Examples
    --------
    >>> beta(0.5)
    0.25
    """
    return s**2


def beta_dot(s: torch.Tensor | float) -> torch.Tensor | float:
    r"""Derivative :math:`\dot\beta(s) = 2 s`.

    Examples
    --------
    >>> beta_dot(0.5)
    1.0
    """
    return 2 * s


def sigma(s: torch.Tensor | float, eps: float = 1.0) -> torch.Tensor | float:
    r"""Noise coefficient :math:`\sigma(s) = \varepsilon (1 - s)`, also the SDE's diffusion.

    Examples
    --------
    >>> sigma(0.75)
    0.25
    """
    return eps * (1 - s)


def sigma_dot(s: torch.Tensor | float, eps: float = 1.0) -> torch.Tensor | float:
    r"""Derivative :math:`\dot\sigma(s) = -\varepsilon`.

    Examples
    --------
    >>> sigma_dot(0.1, eps=2.0)
    -2.0
    """
    return -eps * (1.0 if not isinstance(s, torch.Tensor) else torch.ones_like(s))


def interpolant(
    x0: torch.Tensor,
    x1: torch.Tensor,
    s: torch.Tensor | float,
    z: torch.Tensor,
    eps: float = 1.0,
    *,
    wiener: torch.Tensor | None = None,
) -> torch.Tensor:
    r"""The interpolant :math:`I_s = (1-s) x_0 + s^2 x_1 + \varepsilon (1-s) \sqrt{s}\, z`.

    Parameters
    ----------
    x0, x1
        Base (current) and target (next) states, same shape ``[B, *state]``.
    s
        Interpolation time in ``[0, 1]``: a float or a tensor ``[B]`` (one per sample).
    z
        Standard normal noise of the shape of ``x0``.
    eps
        Noise scale :math:`\varepsilon`.
    wiener
        The Wiener value :math:`W_s` itself (overrides ``sqrt(s) * z``); useful to differentiate
        along a path with :math:`W` held fixed.

    Examples
    --------
    >>> x0, x1 = torch.zeros(2, 3), torch.ones(2, 3)
    >>> z = torch.randn(2, 3, generator=torch.Generator())
    >>> torch.equal(interpolant(x0, x1, 0.0, z), x0), torch.equal(interpolant(x0, x1, 1.0, z), x1)
    (True, True)
    """
    s = _as_s(s, x0)
    w = torch.sqrt(s) * z if wiener is None else wiener
    return (1 - s) * x0 + s**2 * x1 + eps * (1 - s) * w


def drift_target(
    x0: torch.Tensor,
    x1: torch.Tensor,
    s: torch.Tensor | float,
    z: torch.Tensor,
    eps: float = 1.0,
    *,
    wiener: torch.Tensor | None = None,
) -> torch.Tensor:
    r"""The regression target :math:`R_s = -x_0 + 2 s\, x_1 - \varepsilon \sqrt{s}\, z`.

    It is :math:`\partial_s I_s` with the Wiener value held fixed; the drift network is trained to
    predict it (its conditional mean given :math:`I_s` is the drift).

    Examples
    --------
    >>> x0, x1, z = torch.zeros(1, 2), torch.ones(1, 2), torch.zeros(1, 2)
    >>> drift_target(x0, x1, 0.5, z)
    tensor([[1., 1.]])
    """
    s = _as_s(s, x0)
    w = torch.sqrt(s) * z if wiener is None else wiener
    return -x0 + 2 * s * x1 - eps * w


def endpoint_std(
    s: torch.Tensor | float, kind: KappaKind = "exact", eps: float = 1.0
) -> torch.Tensor | float:
    r"""Standard deviation :math:`\kappa(s)` of the noise of the one-step endpoint estimate.

    ``"exact"``: :math:`\varepsilon (1-s)^{3/2}/\sqrt{3}`, the standard deviation of
    :math:`\int_s^1 \sigma(u)\, dB_u`. ``"code"``: :math:`\varepsilon (2/3 - \sqrt{s} +
    s^{3/2}/3)`, as in the released FlowDAS code. Both vanish at :math:`s = 1`.

    Examples
    --------
    >>> round(endpoint_std(0.0, "exact"), 4), round(endpoint_std(0.0, "code"), 4)
    (0.5774, 0.6667)
    >>> endpoint_std(1.0, "code")
    0.0
    """
    if kind == "exact":
        if isinstance(s, torch.Tensor):
            return eps * (1 - s).clamp_min(0) ** 1.5 / math.sqrt(3.0)
        return eps * max(1 - s, 0.0) ** 1.5 / math.sqrt(3.0)
    if kind == "code":
        if isinstance(s, torch.Tensor):
            return eps * (2.0 / 3.0 - torch.sqrt(s) + s**1.5 / 3.0).clamp_min(0)
        return eps * max(2.0 / 3.0 - math.sqrt(s) + s**1.5 / 3.0, 0.0)
    raise ValueError(f"kappa kind must be 'exact' or 'code', got {kind!r}")
