"""Sampling of the downscaling methods: the probability-flow ODE from the method's base sample.

:class:`SamplingMixin` gives :class:`~xsfm.models.downscaling.base.Downscaler` its :meth:`sample`:
normalise and interpolate the coarse input, draw each (sample, member)'s initial noise from its own
generator (:mod:`xsfm.sampling.rng`), let the method map it to the start of its path
(``_sample_normalised``) and integrate with the samplers of :mod:`xsfm.sampling.solvers` on an EDM
``rho`` grid; optional ``bfloat16`` autocast and ``channels_last`` memory format; optional
observation guidance (:mod:`xsfm.models.downscaling.guidance`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import torch

from xsfm.models.downscaling.guidance import ObservationGuidance, guided_denoiser
from xsfm.sampling.paths import edm_sigmas
from xsfm.sampling.rng import randn
from xsfm.sampling.solvers import make_sampler

__all__ = ["SamplingMixin"]


class SamplingMixin:
    """:meth:`sample` and its integrator, for :class:`~xsfm.models.downscaling.base.Downscaler`."""

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
        autocast = settings.get("dtype", self._config["dtype"]) == "bfloat16"
        channels_last = bool(self._config["channels_last"])
        if channels_last:
            y = y.contiguous(memory_format=torch.channels_last)

        def denoiser(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
            xin = x.contiguous(memory_format=torch.channels_last) if channels_last else x
            with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=autocast):
                return self.denoise(xin, sigma, y).float()

        guidance = settings.get("guidance")
        if guidance is not None:
            offset = settings.get("offset")

            def to_physical(d: torch.Tensor) -> torch.Tensor:
                return self.denormalise(d if offset is None else d + offset)

            denoiser = guided_denoiser(
                denoiser, guidance, self._guidance_path, to_physical, self.out_std
            )
        return make_sampler(settings["solver"], denoiser, sigmas)(x_init)

    def _guidance_path(self, sigma: float) -> tuple[float, torch.Tensor, torch.Tensor]:
        """``(a, n [C], v [C])`` of the path ``x_sigma = a x + offset + n eps`` (EDM: a = 1).

        See :mod:`xsfm.models.downscaling.guidance`; methods on another path override it.
        """
        ones = torch.ones(self.out_channels)
        return 1.0, sigma * ones, ones

    supports_guidance = True
    """Whether :meth:`sample` takes ``guidance`` (observation-guided sampling)."""

    def sample(
        self,
        coarse: torch.Tensor,
        generators: Sequence[torch.Generator],
        members: int = 1,
        steps: int | None = None,
        solver: str | None = None,
        rho: float | None = None,
        dtype: str | None = None,
        guidance: ObservationGuidance | None = None,
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
        dtype
            ``"bfloat16"``: the network runs under bfloat16 autocast (weights and the ODE state
            stay float32); ``"float32"``; None: the config's.
        guidance
            Observations of the fine fields, one row per coarse input
            (:class:`~xsfm.models.downscaling.guidance.ObservationGuidance`): every ODE step uses
            the observation-conditioned denoiser (one backward pass through the network per
            evaluation). None: unguided.

        Returns
        -------
        torch.Tensor
            ``[B, M, Cout, H, W]`` in physical units.
        """
        if guidance is None:
            with torch.inference_mode():
                return self._sample(coarse, generators, members, steps, solver, rho, dtype)
        if not self.supports_guidance:
            raise TypeError(
                f"method {self.method!r} draws no samples to guide (it is "
                "deterministic); observation guidance needs a flow or diffusion model"
            )
        if guidance.y.shape[0] != coarse.shape[0]:
            raise ValueError(
                f"guidance has {guidance.y.shape[0]} rows of observations for {coarse.shape[0]} "
                "coarse inputs; give one row per input"
            )
        if not 0 <= int(guidance.channel) < self.out_channels:
            raise ValueError(
                f"guidance channel {guidance.channel} is not one of the {self.out_channels} outputs"
            )
        with torch.no_grad():
            return self._sample(
                coarse, generators, members, steps, solver, rho, dtype, guidance.rows(members)
            )

    def _sample(
        self,
        coarse: torch.Tensor,
        generators: Sequence[torch.Generator],
        members: int,
        steps: int | None,
        solver: str | None,
        rho: float | None,
        dtype: str | None,
        guidance: ObservationGuidance | None = None,
    ) -> torch.Tensor:
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
        settings = self._sampler_settings(steps, solver, rho)
        if dtype is not None:
            if dtype not in ("float32", "bfloat16"):
                raise ValueError(f"dtype must be 'float32' or 'bfloat16', got {dtype!r}")
            settings["dtype"] = dtype
        if guidance is not None:
            settings["guidance"] = dataclasses.replace(guidance, y=guidance.y.to(y.device))
        x = self._sample_normalised(y_rep, noise, settings)
        fine = self.denormalise(x.float())
        return fine.reshape(b, members, *fine.shape[1:])

    def _sample_normalised(
        self, y: torch.Tensor, noise: torch.Tensor, settings: dict[str, Any]
    ) -> torch.Tensor:
        raise NotImplementedError
