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

*Spectral base noise* (``base_noise="spectral"``): ``eps`` coloured by an isotropic amplitude per
half-octave of radial wavenumber, the encoder's held-out error power per band measured with
``sigma_z`` (:mod:`~xsfm.models.downscaling.base_noise`); unit variance per pixel, so ``sigma_z``
keeps its meaning. *Sampling scale* ``sigma_z_scale`` (default 1): the base noise when sampling is
``sigma_z_scale * sigma_z``, set on held-out data by :func:`xsfm.training.calibrate_spread`.

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

Modules
-------
:mod:`~xsfm.models.downscaling.config` (defaults, :data:`METHODS`), :mod:`~xsfm.models.downscaling.base`
(:class:`Downscaler`: config, normalisation, grids, denoiser) with its training objective
(:mod:`~xsfm.models.downscaling.loss`) and sampler (:mod:`~xsfm.models.downscaling.sampling`),
:mod:`~xsfm.models.downscaling.sfm` (the SFM variants) and :mod:`~xsfm.models.downscaling.baselines`.
Every name is importable from :mod:`xsfm.models.downscaling`.
"""

from __future__ import annotations

from typing import Any

from xsfm.models.downscaling.base import Downscaler
from xsfm.models.downscaling.baselines import (
    CFMDownscaler,
    CorrDiffDownscaler,
    EDMDownscaler,
    RegressionDownscaler,
)
from xsfm.models.downscaling.config import METHODS, RELEASED_SFM, default_config
from xsfm.models.downscaling.sfm import (
    SFMDownscaler,
    SFMFixedSigmaDownscaler,
    SFMTwoStageDownscaler,
)

__all__ = [
    "METHODS",
    "RELEASED_SFM",
    "CFMDownscaler",
    "CorrDiffDownscaler",
    "Downscaler",
    "EDMDownscaler",
    "RegressionDownscaler",
    "SFMDownscaler",
    "SFMFixedSigmaDownscaler",
    "SFMTwoStageDownscaler",
    "build_downscaler",
    "default_config",
]

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
