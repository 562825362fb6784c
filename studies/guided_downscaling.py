"""Observation-guided downscaling on held-out Kolmogorov pairs: does agreeing with observations help?

Regenerates ``docs/benchmarks/guided-downscaling.md`` and its data
``docs/benchmarks/guided-downscaling.json`` (``--report-only`` rebuilds the report from the JSON)::

    OMP_NUM_THREADS=1 python studies/guided_downscaling.py      # about 15 min on one core

Everything goes through the public call ``coarse.sfm.downscale(model="kolmogorov-sfm", obs=...,
members=16)``. Observations are the true fine vorticity at a fixed random set of pixels (1, 2 and 5 %
of the 64 x 64 grid, the same pixels for every sample, NaN elsewhere) plus Gaussian noise of std
``GAMMA``; and, once, 41 stations at random off-grid positions (bilinear, periodic), which is 1 % of
the pixel count.

Protocol
--------
1. The guidance scale is chosen on **validation** pairs (``kolmogorov_pairs(tau=2, split="test",
   seed=2)``, independent of training and of the report's pairs) as the one with the lowest CRPS at
   the unobserved pixels, 2 % observed.
2. The report's pairs are ``kolmogorov_pairs(tau=2, split="test", seed=1)`` (the first
   ``--samples``), as in the Kolmogorov study. Metrics at the **unobserved** pixels: RMSE of the
   ensemble mean, fair CRPS, spread-skill ratio (all s-1 except SSR); at the **observed** pixels:
   RMSE of the ensemble mean against the truth and against the observations, and the share of
   observations inside the central 95 % interval of ``member + N(0, GAMMA^2)`` (95 % if the
   ensemble is calibrated there). Wall time per call, one torch thread.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xarray as xr

import xsfm
from xsfm import metrics
from xsfm.observations import PointObservations

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "docs" / "benchmarks" / "guided-downscaling.json"
REPORT = ROOT / "docs" / "benchmarks" / "guided-downscaling.md"
MODEL = "kolmogorov-sfm"
GAMMA = 0.25  # s-1, about 6 % of the vorticity's standard deviation
FRACTIONS = (0.01, 0.02, 0.05)
SCALES = (1.0, 2.0, 3.0, 5.0, 8.0)
MEMBERS = 16


def _pairs(samples: int, seed: int) -> tuple[xr.Dataset, xr.DataArray]:
    coarse, fine = xsfm.datasets.kolmogorov_pairs(
        tau=2.0, samples=samples, split="test", seed=seed, cache_dir=ROOT / ".cache" / "xsfm"
    )
    return coarse[["vorticity"]], fine.vorticity


def _mask(shape: tuple[int, int], fraction: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    flat = np.zeros(shape[0] * shape[1], dtype=bool)
    flat[rng.permutation(flat.size)[: max(1, round(fraction * flat.size))]] = True
    return flat.reshape(shape)


def _gridded_obs(truth: xr.DataArray, mask: np.ndarray, seed: int) -> xr.DataArray:
    noise = np.random.default_rng(seed).normal(0.0, GAMMA, size=truth.shape)
    obs = (truth + noise).where(xr.DataArray(mask, dims=("y", "x")))
    return obs.assign_attrs(units="s-1", observation_noise_std=GAMMA).rename("vorticity")


def _stations(truth: xr.DataArray, n: int, seed: int) -> tuple[xr.DataArray, PointObservations]:
    rng = np.random.default_rng(seed)
    length = 2 * np.pi
    pos = rng.uniform(0.0, length, size=(n, 2))
    op = PointObservations(pos, y=truth.y.values, x=truth.x.values, periodic=True)
    values = op(torch.tensor(truth.values, dtype=torch.float64)).numpy()
    values = values + rng.normal(0.0, GAMMA, size=values.shape)
    obs = xr.DataArray(
        values,
        dims=("sample", "station"),
        coords={
            "sample": truth.sample.values,
            "station": np.arange(n),
            "y": ("station", pos[:, 0]),
            "x": ("station", pos[:, 1]),
        },
        name="vorticity",
        attrs={"units": "s-1", "observation_noise_std": GAMMA},
    )
    return obs, op


def _scores(ens: xr.DataArray, truth: xr.DataArray, where: np.ndarray) -> dict[str, float]:
    """RMSE, CRPS, SSR over the pixels where ``where`` (y, x) is True."""
    flat = np.flatnonzero(np.asarray(where).ravel())
    e = ens.stack(pixel=("y", "x")).isel(pixel=flat)
    t = truth.stack(pixel=("y", "x")).isel(pixel=flat)
    return {
        "rmse": float(metrics.rmse(e, t)),
        "crps": float(metrics.crps(e, t).mean()),
        "ssr": float(metrics.spread_skill_ratio(e, t)),
    }


def _at_obs(ens: np.ndarray, obs: np.ndarray, truth: np.ndarray, seed: int) -> dict[str, float]:
    """``ens [M, N, k]``, ``obs``/``truth [N, k]`` at the observed places."""
    mean = ens.mean(0)
    noisy = ens + np.random.default_rng(seed).normal(0.0, GAMMA, size=ens.shape)
    lo, hi = np.quantile(noisy, [0.025, 0.975], axis=0)
    return {
        "rmse_truth": float(np.sqrt(((mean - truth) ** 2).mean())),
        "rmse_obs": float(np.sqrt(((mean - obs) ** 2).mean())),
        "coverage95": float(((obs >= lo) & (obs <= hi)).mean()),
        "spread": float(np.sqrt(ens.var(0, ddof=1).mean())),
    }


def _run(coarse: xr.Dataset, obs: Any, scale: float | None) -> tuple[xr.DataArray, float]:
    start = time.perf_counter()
    out = coarse.sfm.downscale(
        model=MODEL, members=MEMBERS, seed=0, obs=obs, guidance_scale=scale, progress=False
    )
    return out.vorticity, time.perf_counter() - start


def measure(samples: int, val_samples: int) -> dict[str, Any]:
    torch.set_num_threads(1)
    results: dict[str, Any] = {
        "model": MODEL,
        "members": MEMBERS,
        "gamma": GAMMA,
        "samples": samples,
        "val_samples": val_samples,
        "machine": platform.machine(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }
    # 1. choose the scale on validation pairs
    coarse, truth = _pairs(val_samples, seed=2)
    mask = _mask((64, 64), 0.02, seed=20)
    obs = _gridded_obs(truth, mask, seed=21)
    validation = {}
    for scale in SCALES:
        ens, _ = _run(coarse, obs, scale)
        t = truth.assign_coords(y=ens.y, x=ens.x)
        validation[str(scale)] = _scores(ens, t, ~mask)
        print("validation", scale, validation[str(scale)], flush=True)
    best = min(SCALES, key=lambda s: validation[str(s)]["crps"])
    results["validation"] = validation
    results["chosen_scale"] = best

    # 2. report on held-out pairs
    coarse, truth = _pairs(samples, seed=1)
    plain, seconds = _run(coarse, None, None)
    truth = truth.assign_coords(y=plain.y, x=plain.x)
    rows: dict[str, Any] = {}
    for frac in FRACTIONS:
        mask = _mask((64, 64), frac, seed=int(frac * 1e4))
        obs = _gridded_obs(truth, mask, seed=int(frac * 1e4) + 1)
        ens, sec = _run(coarse, obs, best)
        e_np = ens.transpose("member", "sample", "y", "x").values[:, :, mask]
        p_np = plain.transpose("member", "sample", "y", "x").values[:, :, mask]
        o_np = obs.transpose("sample", "y", "x").values[:, mask]
        t_np = truth.transpose("sample", "y", "x").values[:, mask]
        rows[f"{frac:.0%}"] = {
            "observed": int(mask.sum()),
            "unguided_unobserved": _scores(plain, truth, ~mask),
            "guided_unobserved": _scores(ens, truth, ~mask),
            "unguided_observed": _at_obs(p_np, o_np, t_np, seed=3),
            "guided_observed": _at_obs(e_np, o_np, t_np, seed=3),
            "seconds": round(sec, 1),
        }
        print(frac, rows[f"{frac:.0%}"], flush=True)
    st_obs, op = _stations(truth, 41, seed=41)
    ens, sec = _run(coarse, st_obs, best)
    everywhere = np.ones((64, 64), dtype=bool)

    def at_stations(e: xr.DataArray) -> np.ndarray:
        return op(torch.tensor(e.transpose("member", "sample", "y", "x").values)).numpy()

    rows["41 stations"] = {
        "observed": 41,
        "unguided_unobserved": _scores(plain, truth, everywhere),
        "guided_unobserved": _scores(ens, truth, everywhere),
        "unguided_observed": _at_obs(
            at_stations(plain), st_obs.values, op(torch.tensor(truth.values)).numpy(), seed=3
        ),
        "guided_observed": _at_obs(
            at_stations(ens), st_obs.values, op(torch.tensor(truth.values)).numpy(), seed=3
        ),
        "seconds": round(sec, 1),
    }
    print("stations", rows["41 stations"], flush=True)
    results["unguided_seconds"] = round(seconds, 1)
    results["rows"] = rows
    return results


def report(r: dict[str, Any]) -> str:
    lines = [
        "# Observation-guided downscaling (Kolmogorov flow)",
        "",
        "Generated by `OMP_NUM_THREADS=1 python studies/guided_downscaling.py` (one torch thread, "
        f"torch {r['torch']}, {r['machine']}); data in `guided-downscaling.json`.",
        "",
        f"`coarse.sfm.downscale(model='{r['model']}', members={r['members']}, obs=...)` on "
        f"{r['samples']} held-out misaligned pairs (tau = 2 s; `kolmogorov_pairs(split='test', "
        "seed=1)`), observations = truth at a fixed random set of fine pixels (or at 41 off-grid "
        f"stations, bilinear) + N(0, {r['gamma']}^2) s-1. Guidance scale "
        f"{r['chosen_scale']:g}, chosen on {r['val_samples']} validation pairs (seed 2) by the "
        "CRPS at unobserved pixels with 2 % observed:",
        "",
        "| scale | RMSE | CRPS | SSR |",
        "|---|---|---|---|",
    ]
    for scale, v in r["validation"].items():
        lines.append(f"| {float(scale):g} | {v['rmse']:.3f} | {v['crps']:.3f} | {v['ssr']:.2f} |")
    lines += [
        "",
        "## Unobserved pixels (all pixels for stations)",
        "",
        "| observed | pixels | RMSE unguided | RMSE guided | CRPS unguided | CRPS guided | "
        "SSR unguided | SSR guided | s per call |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, row in r["rows"].items():
        u, g = row["unguided_unobserved"], row["guided_unobserved"]
        lines.append(
            f"| {name} | {row['observed']} | {u['rmse']:.3f} | {g['rmse']:.3f} | "
            f"{u['crps']:.3f} | {g['crps']:.3f} | {u['ssr']:.2f} | {g['ssr']:.2f} | "
            f"{row['seconds']} |"
        )
    lines += [
        "",
        f"Unguided: {r['unguided_seconds']} s per call.",
        "",
        "## Observed pixels / stations",
        "",
        f"RMSE of the ensemble mean against the truth and against the observations (noise std "
        f"{r['gamma']}), ensemble spread, and the share of observations inside the central 95 % "
        "interval of member + observation noise.",
        "",
        "| observed | RMSE vs truth (unguided / guided) | RMSE vs obs (unguided / guided) | "
        "spread (unguided / guided) | 95 % coverage (unguided / guided) |",
        "|---|---|---|---|---|",
    ]
    for name, row in r["rows"].items():
        u, g = row["unguided_observed"], row["guided_observed"]
        lines.append(
            f"| {name} | {u['rmse_truth']:.3f} / {g['rmse_truth']:.3f} | "
            f"{u['rmse_obs']:.3f} / {g['rmse_obs']:.3f} | {u['spread']:.3f} / {g['spread']:.3f} "
            f"| {u['coverage95']:.2f} / {g['coverage95']:.2f} |"
        )
    rows = r["rows"].values()
    ssr_u = [row["unguided_unobserved"]["ssr"] for row in rows]
    ssr_g = [row["guided_unobserved"]["ssr"] for row in rows]
    better = all(
        row["guided_unobserved"][k] < row["unguided_unobserved"][k]
        for row in rows
        for k in ("rmse", "crps")
    )
    lines += [
        "",
        "## Reading",
        "",
        f"- Guidance lowers RMSE and CRPS at the unobserved pixels in every row: {better}.",
        f"- Spread-skill ratio at the unobserved pixels: {min(ssr_u):.2f}-{max(ssr_u):.2f} "
        f"unguided, {min(ssr_g):.2f}-{max(ssr_g):.2f} guided; in [0.8, 1.2] in every guided row: "
        f"{all(0.8 <= v <= 1.2 for v in ssr_g)}.",
        "- At the observed places, per row: guided ensemble mean minus truth (RMSE), against the "
        f"observation noise {r['gamma']}; ratio of that RMSE to the noise; 95 % coverage: "
        + "; ".join(
            f"{name} {row['guided_observed']['rmse_truth']:.2f} "
            f"({row['guided_observed']['rmse_truth'] / r['gamma']:.1f}x), "
            f"{row['guided_observed']['coverage95']:.2f}"
            for name, row in r["rows"].items()
        )
        + ". Within the noise (RMSE at most 1.5x the noise) in every row: "
        + str(all(row["guided_observed"]["rmse_truth"] <= 1.5 * r["gamma"] for row in rows))
        + ".",
        "- Spread at the observed places against that of a Gaussian posterior there (prior spread "
        "s = the unguided spread, noise g: s g / sqrt(s^2 + g^2)), guided / Gaussian: "
        + "; ".join(
            f"{name} {row['guided_observed']['spread']:.2f} / {_posterior_spread(row, r):.2f}"
            for name, row in r["rows"].items()
        )
        + ". Below the Gaussian value, the members agree with the observations more closely than "
        "their noise allows (over-confident there); above it, they are looser.",
        "",
    ]
    return "\n".join(lines)


def _posterior_spread(row: dict[str, Any], r: dict[str, Any]) -> float:
    """Spread of a Gaussian posterior at one observed place: prior = the unguided ensemble."""
    s2, g2 = row["unguided_observed"]["spread"] ** 2, r["gamma"] ** 2
    return float(np.sqrt(s2 * g2 / (s2 + g2)))


def write_card(r: dict[str, Any]) -> None:
    """Store the chosen guidance scale in the model card (``sampler.guidance_scale``)."""
    import dataclasses

    m = xsfm.load_model(MODEL)
    sampler = {
        **m.card.sampler,
        "guidance_scale": float(r["chosen_scale"]),
        "guidance_scale_note": (
            "the scale with the lowest CRPS at unobserved pixels (2 % observed, noise 0.25 s-1) on "
            f"{r['val_samples']} validation pairs among {sorted(float(k) for k in r['validation'])}: "
            "python studies/guided_downscaling.py (docs/benchmarks/guided-downscaling.md)"
        ),
    }
    m.card = dataclasses.replace(m.card, sampler=sampler)
    m.save(m.path)
    print(f"guidance_scale {r['chosen_scale']} written into {m.path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=32)
    parser.add_argument("--val-samples", type=int, default=16)
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument(
        "--write-card", action="store_true", help="store the chosen scale in the model card"
    )
    args = parser.parse_args()
    if args.write_card:
        write_card(json.loads(DATA.read_text()))
        return
    if args.report_only:
        results = json.loads(DATA.read_text())
    else:
        results = measure(args.samples, args.val_samples)
        DATA.write_text(json.dumps(results, indent=1) + "\n")
    REPORT.write_text(report(results))
    print(f"wrote {REPORT}")


if __name__ == "__main__":
    main()
