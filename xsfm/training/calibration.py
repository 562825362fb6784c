"""Calibration check of a trained downscaler on held-out pairs: spread against error, scale by scale.

A model's ensemble is calibrated when its spread matches the error of its mean. The check draws
``members`` fine fields for each held-out coarse input with the model's own sampler and compares:

* the spread-skill ratio ``sqrt((M + 1) / M) * spread / RMSE(mean)`` over all pixels (1:
  calibrated, below 1: under-dispersed);
* the same ratio per octave of radial wavenumber (fundamental units ``[1, 2), [2, 4), ...``,
  :func:`xsfm.metrics.spread_skill_by_octave`) -- where the spread is missing;
* the share of pixels whose truth lies outside every member (``2 / (M + 1)`` when calibrated).

:func:`xsfm.training.fit_downscaler` runs it on the training run's held-out split when
``calibration_pairs > 0`` and records the result in the card (``training["calibration_check"]``).

:func:`calibrate_spread` goes one step further for SFM: it sets the base noise's scale
(``sigma_z_scale``) on held-out xarray pairs so that the ensemble's spread-skill ratio is 1.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping
from typing import Any

import numpy as np
import torch
import xarray as xr

from xsfm.metrics import spread_skill_by_octave
from xsfm.model import Model
from xsfm.models.downscaling import Downscaler
from xsfm.sampling.rng import stream_generators

__all__ = ["calibrate_spread", "calibration_check", "ensemble_calibration"]


def _octave_ratios(
    ens: torch.Tensor, truth: torch.Tensor
) -> tuple[list[list[int]], list[float | None]]:
    """SSR per octave (:func:`xsfm.metrics.spread_skill_by_octave`) of ``[N, M, C, H, W]`` ensembles."""
    dims = ("sample", "member", "channel", "y", "x")
    ratios = spread_skill_by_octave(
        xr.DataArray(ens.numpy(), dims=dims), xr.DataArray(truth.numpy(), dims=dims[:1] + dims[2:])
    )
    octaves = [
        [int(lo), int(hi)]
        for lo, hi in zip(ratios["octave_lower"].values, ratios["octave_upper"].values, strict=True)
    ]
    return octaves, [float(v) if np.isfinite(v) else None for v in ratios.values]


@torch.no_grad()
def calibration_check(
    module: Downscaler,
    coarse: torch.Tensor,
    fine: torch.Tensor,
    members: int = 8,
    seed: int = 0,
    batch_size: int = 8,
) -> dict[str, Any]:
    """Spread against error of ``module``'s ensembles on held-out physical pairs.

    Parameters
    ----------
    module
        A trained flow or diffusion downscaler (its config's sampler is used).
    coarse, fine
        Held-out pairs ``[N, Cin, h, w]`` and ``[N, Cout, H, W]``, physical units.
    members
        Ensemble size (at least 2).
    seed
        Seed of the members' noise.
    batch_size
        Inputs per call of the sampler.

    Returns
    -------
    dict
        ``pairs``, ``members``, ``sampler``, ``ssr``, ``octaves`` (fundamental wavenumbers),
        ``ssr_by_octave`` (None where the mean has no error power), ``outside_fraction`` and the
        calibrated value ``expected_outside_fraction``.

    Examples
    --------
    >>> from xsfm.models.downscaling import build_downscaler
    >>> m = build_downscaler({"method": "sfm", "factor": 2,
    ...                       "unet": {"channels": 4, "channel_mult": [1]}})
    >>> g = torch.Generator().manual_seed(0)
    >>> out = calibration_check(m, torch.randn(4, 1, 8, 8, generator=g),
    ...                         torch.randn(4, 1, 16, 16, generator=g), members=3)
    >>> out["pairs"], out["members"], len(out["ssr_by_octave"])
    (4, 3, 3)
    """
    if not module.uses_flow_net:
        raise TypeError(
            f"method {module.method!r} is deterministic: there is no ensemble to calibrate"
        )
    members = int(members)
    if members < 2:
        raise ValueError(f"a calibration check needs at least 2 members, got {members}")
    n = coarse.shape[0]
    if n < 1 or fine.shape[0] != n:
        raise ValueError(
            f"need at least one held-out pair and as many fine as coarse fields, got {n} and "
            f"{fine.shape[0]}"
        )
    device = module.in_mean.device
    parts = []
    for i in range(0, n, batch_size):
        c = coarse[i : i + batch_size]
        gens = stream_generators(seed, range(i, i + c.shape[0]), members, device=device)
        parts.append(module.sample(c.to(device), gens, members=members).double().cpu())
    ens = parts[0] if len(parts) == 1 else torch.cat(parts)
    sampler = dict(module.config["sampler"])
    return {
        "pairs": int(n),
        "members": members,
        "sampler": {k: sampler[k] for k in ("solver", "steps", "rho") if k in sampler},
        **ensemble_calibration(ens, fine),
    }


def ensemble_calibration(ens: torch.Tensor, truth: torch.Tensor) -> dict[str, Any]:
    """Spread against error of ensembles ``[N, M, C, H, W]`` for truths ``[N, C, H, W]``.

    Returns ``ssr``, ``octaves``, ``ssr_by_octave``, ``outside_fraction`` and
    ``expected_outside_fraction`` (see :func:`calibration_check`).

    Examples
    --------
    >>> g = torch.Generator().manual_seed(0)
    >>> draws = torch.randn(64, 9, 1, 16, 16, generator=g)  # truth: one more member
    >>> out = ensemble_calibration(draws[:, 1:], draws[:, 0])
    >>> round(out["ssr"], 1), round(out["outside_fraction"], 2), round(out["expected_outside_fraction"], 2)
    (1.0, 0.22, 0.22)
    """
    ens, truth = ens.double().cpu(), truth.double().cpu()
    members = ens.shape[1]
    mean = ens.mean(dim=1)
    rmse = (mean - truth).pow(2).mean().sqrt()
    spread = ens.var(dim=1, unbiased=True).mean().sqrt() * math.sqrt((members + 1) / members)
    octaves, ratios = _octave_ratios(ens, truth)
    outside = ((truth < ens.amin(dim=1)) | (truth > ens.amax(dim=1))).double().mean()
    return {
        "ssr": float(spread / rmse) if float(rmse) > 0 else None,
        "octaves": octaves,
        "ssr_by_octave": ratios,
        "outside_fraction": float(outside),
        "expected_outside_fraction": 2 / (members + 1),
    }


def calibrate_spread(
    model: str | Model,
    coarse: xr.Dataset,
    fine: xr.Dataset,
    *,
    members: int = 16,
    seed: int = 0,
    sampler: Mapping[str, Any] | None = None,
    target: float = 1.0,
    tolerance: float = 0.02,
    max_iterations: int = 5,
    progress: bool = False,
) -> Model:
    """An SFM model whose base-noise scale is set on held-out pairs so its spread matches its error.

    SFM's ``sigma_z`` is the encoder's held-out RMSE; whether the *ensemble* it starts comes out
    calibrated also depends on the flow network and the sampler. This finds the factor
    ``sigma_z_scale`` (sampling only: the base noise becomes ``sigma_z_scale * sigma_z``) for which
    the spread-skill ratio of ``members``-member ensembles on the given held-out pairs equals
    ``target``, by secant steps on the measured ratio (each step one downscaling of the pairs), and
    returns a copy of the model with it (the input model is not changed). Every step is recorded in
    ``card.training["spread_calibration"]``, the result's calibration check too.

    Parameters
    ----------
    model
        An ``sfm`` model (name, path or :class:`~xsfm.model.Model`).
    coarse, fine
        Held-out pairs the model was not trained on: a coarse input for ``downscale`` and its fine
        truth (the card's outputs), paired by label along their sample dims.
    members, seed
        Ensemble size and seed of each trial.
    sampler
        Sampler to calibrate for (``solver``, ``steps``, ``rho``), written into the returned card;
        None: the card's. The factor holds for that sampler only.
    target, tolerance, max_iterations
        Spread-skill ratio to reach, accepted distance from it, most trials.
    progress
        Progress bars of the trials.

    Returns
    -------
    Model
        A new in-memory model; save it with :meth:`~xsfm.model.Model.save`.

    Raises
    ------
    ValueError
        For a model without ``sigma_z`` (not ``sfm``), or when no factor within
        ``max_iterations`` brings the ratio within ``tolerance`` of ``target`` (the message gives
        the trials).
    """
    import xsfm
    from xsfm.model import load_model

    base = load_model(model)
    net = base.network("cpu")
    if not getattr(net, "adaptive_sigma_z", False):
        raise ValueError(
            f"model {base.name!r} (method {base.card.method!r}) has no adaptive sigma_z to "
            "calibrate; calibrate_spread is for sfm models"
        )
    if not target > 0 or not tolerance > 0 or int(max_iterations) < 1:
        raise ValueError(
            f"need target > 0, tolerance > 0 and max_iterations >= 1, got {target}, {tolerance}, "
            f"{max_iterations}"
        )
    if members < 2:
        raise ValueError(f"spread needs at least 2 members, got {members}")
    outputs = base.card.output_names
    missing = [name for name in outputs if name not in fine.data_vars]
    if missing:
        raise ValueError(
            f"fine truth lacks the model's output(s) {missing}; it has {sorted(fine.data_vars)}"
        )
    sampler_settings = {**net.config["sampler"], **dict(sampler or {})}
    state = {k: v.clone() for k, v in net.state_dict().items()}

    def with_scale(scale: float) -> Model:
        config = {**net.config, "sigma_z_scale": float(scale), "sampler": sampler_settings}
        module = type(net)(config)
        module.load_state_dict(state, strict=True)
        card = base.card.replace(network=config, sampler={**base.card.sampler, **sampler_settings})
        return Model(card, network=module)

    def measure(scale: float) -> dict[str, float]:
        trial = with_scale(scale)
        ens = coarse.sfm.downscale(model=trial, members=members, seed=seed, progress=progress)
        ssr = float(
            np.mean([float(xsfm.metrics.spread_skill_ratio(ens[n], fine[n])) for n in outputs])
        )
        crps = float(np.mean([float(xsfm.metrics.crps(ens[n], fine[n])) for n in outputs]))
        return {"sigma_z_scale": float(scale), "ssr": ssr, "crps": crps}

    start = float(net.config["sigma_z_scale"])
    trials = [measure(start)]
    scale = start * target / trials[0]["ssr"] if trials[0]["ssr"] > 0 else 2 * start
    while abs(trials[-1]["ssr"] - target) > tolerance and len(trials) < int(max_iterations):
        trials.append(measure(scale))
        (c0, s0), (c1, s1) = ((t["sigma_z_scale"], t["ssr"]) for t in trials[-2:])
        slope = (s1 - s0) / (c1 - c0) if c1 != c0 else 0.0
        scale = c1 + (target - s1) / slope if slope > 0 else c1 * target / max(s1, 1e-6)
        scale = float(min(max(scale, 0.25 * c1), 4 * c1))  # one step at most 4x either way
    best = min(trials, key=lambda t: abs(t["ssr"] - target))
    if abs(best["ssr"] - target) > tolerance:
        raise ValueError(
            f"no sigma_z_scale brought the spread-skill ratio within {tolerance} of {target} in "
            f"{len(trials)} trials: {trials}; raise max_iterations or tolerance"
        )
    result = with_scale(best["sigma_z_scale"])
    training = dict(result.card.training)
    training["spread_calibration"] = {
        "sigma_z_scale": best["sigma_z_scale"],
        "target_ssr": float(target),
        "trials": trials,
        "pairs": int(np.prod([coarse.sizes[d] for d in _sample_dims(coarse, base)])),
        "members": int(members),
        "seed": int(seed),
        "sampler": {k: sampler_settings[k] for k in ("solver", "steps", "rho")},
    }
    result.card = result.card.replace(training=training)
    return result


def _sample_dims(coarse: xr.Dataset, model: Model) -> list[Hashable]:
    """The pass-through (sample) dims of the coarse input: all but the card's spatial ones."""
    name = model.card.input_names[0]
    da = coarse[name] if name in coarse else next(iter(coarse.data_vars.values()))
    spatial = {model.card.grids["coarse"]["y"]["name"], model.card.grids["coarse"]["x"]["name"]}
    return [d for d in da.dims if d not in spatial]
