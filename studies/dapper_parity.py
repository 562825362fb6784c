"""DAPPER parity study: DAPPER's own filters and xsfm's on the same exported truth and observations.

DAPPER (https://github.com/nansencenter/DAPPER) is run *itself*, from a throw-away virtual
environment that exists only for this study; it is never a dependency of xsfm or of its tests::

    python3 -m venv /tmp/dapper-venv
    /tmp/dapper-venv/bin/pip install dapper==1.7.1 xarray netCDF4   # 1.7.1: newest for Python 3.11

Subcommands (each with its interpreter)::

    # 1. DAPPER side: truth + observations per (setting, seed) exported to netCDF, DAPPER's filters
    #    run on exactly those, time-mean analysis RMSEs to .cache/dapper/dapper_results.json
    OMP_NUM_THREADS=1 /tmp/dapper-venv/bin/python studies/dapper_parity.py dapper --out .cache/dapper
    # 2. xsfm side (added by the filters work): reads the same files with ``load_case``, writes
    #    .cache/dapper/xsfm_results.json with the same keys and statistic (``time_mean_analysis_rmse``)
    .venv/bin/python studies/dapper_parity.py xsfm --out .cache/dapper
    # 3. report (project venv): docs/benchmarks/dapper.md and docs/benchmarks/dapper.json
    .venv/bin/python studies/dapper_parity.py report --cache .cache/dapper

Only ``dapper`` imports DAPPER (lazily, inside the subcommand); ``load_case``,
``time_mean_analysis_rmse`` and ``report`` need numpy and xarray alone, so the xsfm side can
``import`` this file from the project venv. The exported data (``.cache/``) is git-ignored and
regenerated, never committed.

What DAPPER 1.7.1 does (read from its installed files; paths relative to
``site-packages/dapper/``, line numbers of 1.7.1)
------------------------------------------------------------------------------------------------

Time line (``tools/chronos.py``)
    ``Chronology(dt, dko=..., Ko=..., BurnIn=...)`` keeps ``K = dko * (Ko + 1)`` model steps
    (chronos.py:82-86), model times ``tt = k * dt`` for ``k = 0..K`` (chronos.py:180-190) and
    ``Ko + 1`` observation steps ``kko = dko, 2 dko, ..., K`` (chronos.py:184-186): there is no
    observation at t = 0 ("DAPPER convention", chronos.py:27-29, enforced in stats.py:191-193).
    Time averages use the analysis times with ``tto > BurnIn``, a *strict* inequality
    (``masko``, chronos.py:196-205).

Truth and observations (``mods/__init__.py:147-166``, ``HiddenMarkovModel.simulate``)
    ``x_0 ~ X0``; then for each model step ``x = Dyn(x, t - dt, dt)`` (+ ``sqrt(dt)`` times model
    noise, zero in both settings here); at each ``kko`` step ``y = Obs(x) + noise``. The truth
    ``xx`` has ``K + 1`` rows (t = 0 included), ``yy`` has ``Ko + 1``. A scalar noise ``C`` means
    i.i.d. Gaussian components of variance ``C`` (mods/__init__.py:250-259, tools/randvars.py:122-127,
    166-172). The random generator is one module-level ``numpy.random.Generator``, reseeded by
    ``set_seed(sd)`` (tools/seeding.py:7-31), which *refuses* ``sd == 0`` (seeding.py:12-19).

sakov2012 (``mods/Lorenz63/sakov2012.py``), setting ``l63``
    - model: Lorenz-63, sigma = 10, rho = 28, beta = 8/3 (mods/Lorenz63/__init__.py:18-20), one
      classic 4-stage RK4 step per ``dt`` (``with_rk4(dxdt, autonom=True)``, Lorenz63/__init__.py:37;
      mods/integration.py:14-92), deterministic (``"noise": 0``, sakov2012.py:16);
    - ``dt = 0.01``, ``dko = 25`` (obs every 0.25 time units), ``Ko = 1000`` (1001 analyses),
      ``BurnIn = 4 * Tplot = 16`` with ``Tplot = 4.0`` (sakov2012.py:8; Lorenz63/__init__.py:24):
      K = 25025 steps, T = 250.25, 937 analysis times averaged (t = 16.25 .. 250.25);
    - ``X0 = GaussRV(C=2, mu=x0)``: N([1.509, -1.531, 25.46], 2 I) (sakov2012.py:19;
      Lorenz63/__init__.py:23), for the truth's x_0 *and* for every filter's initial draw;
    - observations: all three components, identity, R = 2 I (sakov2012.py:21-23);
    - suggested tuning, "rmse.a" (sakov2012.py:33-48): ``EnKF('Sqrt', N=10, infl=1.02, rot=True)``
      0.60 (:39); ``EnKF('PertObs', N=10, infl=1.04)`` 0.65 (:40); ``PartFilt(N=100, reg=2.4,
      NER=0.3)`` 0.38 (:45); ``PartFilt(N=800, reg=0.9, NER=0.2)`` 0.28 (:46).

sakov2008 (``mods/Lorenz96/sakov2008.py``), setting ``l96``
    - model: Lorenz-96, 40 variables, F = 8 (Lorenz96/__init__.py:19; sakov2008.py:18), one RK4
      step per ``dt`` (Lorenz96/__init__.py:41-42), deterministic (sakov2008.py:25);
    - ``dt = 0.05``, ``dko = 1`` (obs every step), ``Ko = 1000``, ``BurnIn = 2 * Tplot = 20``
      with ``Tplot = 10`` (sakov2008.py:16; Lorenz96/__init__.py:20): K = 1001 steps, T = 50.05,
      601 analysis times averaged (t = 20.05 .. 50.05). (The file notes Sakov himself used
      K = 300000, sakov2008.py:15: DAPPER's quoted scores come from much shorter runs.)
    - ``X0 = GaussRV(mu=x0, C=0.001)``, x0 = (1, 0, ..., 0) (sakov2008.py:19, 28;
      Lorenz96/__init__.py:23-26);
    - observations: all 40 components, identity, R = I (sakov2008.py:30-32); localiser
      ``nd_Id_localization((40,), (2,))`` (sakov2008.py:33): periodic distance on the ring,
      20 state batches of 2 neighbours (tools/localization.py:219-294);
    - suggested tuning, "Expected rmse.a" (sakov2008.py:44-71): ``EnKF('PertObs', N=40,
      infl=1.06)`` 0.22 (:46); ``EnKF('Sqrt', N=24, infl=1.013, rot=True)`` 0.18 (:49);
      ``LETKF(N=7, rot=True, infl=1.04, loc_rad=4)`` 0.22 (:70). No Sqrt/ETKF line at N = 40.

The filters (``da_methods/ensemble.py``, ``da_methods/particle.py``)
    - EnKF (ensemble.py:27-61): initial ensemble ``X0.sample(N)`` (:39), forecast every model
      step, analysis at obs steps, then ``post_process`` (:59), then assessment (:61).
    - 'PertObs' (ensemble.py:84-92): ``C = Y^T Y + (N-1) R``, ``K = A^T Y C^-1`` with the obs
      anomalies Y (= A here, H = I); perturbations ``D = mean0(R-noise sample)`` are *centred and
      rescaled by sqrt(N/(N-1))* (stats.py:743-761); ``E += (y - D - H E) K^T``.
    - 'Sqrt' (ETKF; ensemble.py:94-135): symmetric square root in ensemble space; for N <= Nx the
      'eig' branch (:128-133): ``T = V diag(d^-1/2) V^T sqrt(N-1)`` with
      ``d, V = eigh(Y R^-1 Y^T + (N-1) I)``, ``E = mu + w A + T A``; N > Nx switches to the SVD
      form (:100-101).
    - inflation and rotation (``post_process``, ensemble.py:233-258): *after* the analysis the
      anomalies are multiplied by ``infl`` (covariance by infl^2); ``rot=True`` then applies a
      fresh random mean-preserving orthogonal matrix (``genOG_1(N, True)``: tools/matrices.py:47-55,
      58-71, 122-132). Both keep the ensemble mean, so the assessed analysis mean is the mean right
      after the update.
    - LETKF (ensemble.py:613-661, local_analyses :558-610): observations whitened by R^-1/2 once;
      per state batch, the observations with Gaspari-Cohn coefficient > 1e-3 are kept
      (localization.py:154-166, distance = mean distance from the batch's points,
      localization.py:176-183), Y and dy multiplied by sqrt(coefficient) (i.e. R-localisation,
      R_i / coefficient), local 'Sqrt' update; then infl/rot as above. 'GC' (the default taper,
      ensemble.py:628) uses support radius ``1.82 * loc_rad`` (localization.py:124-143): zero
      beyond 2 * 1.82 * loc_rad.
    - PartFilt (bootstrap SIR, particle.py:22-88): weights by the Gaussian likelihood
      (particle.py:74-77, 454-487); when ``N_eff = 1/sum w^2 <= N * NER`` (particle.py:429-446):
      systematic resampling (default ``resampl='Sys'``, particle.py:19, 611-641) and Gaussian jitter
      of the duplicated particles only (``nuj=True``, particle.py:45, 528-551) with covariance
      factor ``reg * N^(-1/(Nx+4)) * weighted-anomaly sqrt`` (particle.py:80, 490-524). The
      *analysis* assessed is written inside ``trigger_resampling`` (particle.py:444) **before**
      resampling and jitter: the weighted mean of the re-weighted forecast particles.

The statistic (``stats.py``)
    At every analysis time DAPPER stores ``err = mu - x_true`` (stats.py:283-292; mu the ensemble
    mean, or ``w @ E`` with weights) and ``err.rms = sqrt(mean over components of err^2)``
    (stats.py:58-62), the 'a' sub-series at obs times (default ``faus='au'``, stats.py:206-207).
    ``rmse.a`` is the abbreviation of ``err.rms.a`` (stats.py:521-532). ``average_in_time``
    (stats.py:379-439) takes the *arithmetic* mean of that series over ``masko`` (tto > BurnIn)
    through ``mean_with_conf`` (tools/series.py:82-112), whose "±" is an AR(1)-corrected standard
    error of that mean, not a seed spread. So ``rmse.a`` = time mean over the assessed analysis
    times of the spatial RMS error of the analysis mean. ``time_mean_analysis_rmse`` below
    computes exactly that from any analysis mean; the ``dapper`` subcommand checks that it
    reproduces DAPPER's own ``xp.avrgs.err.rms.a`` to 1e-12.

Choices made here (DAPPER's files do not fix them)
    - seeds: study seed s (default 0..4) -> ``dapper.set_seed(3000 + s)`` before
      ``HMM.simulate()`` (3000 as in DAPPER's examples; 0 is refused by DAPPER); each method then
      gets ``set_seed(100 * (3000 + s) + stream)`` before ``assimilate`` (``stream`` fixed per
      method in ``METHODS``), so a method's result does not depend on which others ran.
    - l96 ETKF at N = 40 (``etkf_n40``): DAPPER quotes no Sqrt line at N = 40; it uses the
      infl/rot of the quoted N = 24 line (infl=1.013, rot=True, sakov2008.py:49). The quoted N = 24
      line itself runs too (``etkf_n24``), as a check against DAPPER's number.
    - ETKF without rotation (``etkf_n10_norot``, ``etkf_n40_norot``): same settings with
      ``rot=False``, a diagnostic for filters that have no random rotation.
    - PartFilt: both quoted lines (N = 100 and N = 800).
    - one BLAS thread (``OMP_NUM_THREADS=1``), DAPPER's progress bars and live plots off.

Files
-----
``<out>/<setting>_seed<s>.nc`` (one case; read it with ``load_case``)
    dims ``time`` (K + 1 model steps, t = 0 included), ``obs_time`` (Ko + 1), ``component`` (Nx),
    ``component2`` (Nx, second index of the covariances); coords ``time``/``obs_time`` (float,
    model time units, ``k * dt`` exactly as DAPPER's ``tt``/``tto``), ``step``/``obs_step`` (int
    model step index k); variables ``truth(time, component)``, ``obs(obs_time, component)``,
    ``assessed(obs_time)`` (DAPPER's ``masko``: the analysis times its time mean uses),
    ``x0_cov(component, component2)``, ``obs_cov(component, component2)``; attrs ``setting``,
    ``dapper_module``, ``seed``, ``dapper_seed``, ``dapper_version``, ``dt``, ``dko``, ``dto``,
    ``K``, ``Ko``, ``T``, ``burn_in``, ``burn_in_rule``, ``obs_var``, ``obs_indices``,
    ``obs_operator``, ``x0_mean``, ``x0_var``, ``model``, ``integrator``, ``model_params``
    (JSON), ``localisation`` (JSON, l96).
``<out>/<setting>_seed<s>_dapper.nc``
    DAPPER's per-time diagnostics on that case: ``analysis_mean(da_method, obs_time, component)``,
    ``rmse_a(da_method, obs_time)``, ``rmse_f(da_method, obs_time)`` (the same for the forecast mean) and
    ``spread_a(da_method, obs_time)`` (RMS over components of the analysis spread). The dim is
    ``da_method``, not ``method``, because ``.sel(method=...)`` is xarray's interpolation keyword.
``<out>/dapper_results.json``
    ``{"meta": {...}, "results": {setting: {method: {str(seed): {"rmse_a": ..., ...}}}}}``;
    ``rmse_a`` is DAPPER's ``xp.avrgs.err.rms.a``. ``xsfm_results.json`` (xsfm side) uses the
    same layout and the same ``rmse_a`` statistic (``time_mean_analysis_rmse``); extra keys are
    kept but not tabulated.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before numpy: one BLAS thread

import argparse
import json
import math
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CACHE = ROOT / ".cache" / "dapper"
DEFAULT_DOCS = ROOT / "docs" / "benchmarks"
DAPPER_VENV_PYTHON = "/tmp/dapper-venv/bin/python"
DAPPER_PIN = "dapper==1.7.1"
SEED_BASE = 3000
DEFAULT_SEEDS = (0, 1, 2, 3, 4)
#: independent filter runs per truth seed (the seed's value is their median), per setting and
#: method; 3 where runs agree closely. The Lorenz-63 stochastic EnKF with 10 members has the widest
#: run-to-run spread (single runs 0.54-1.34 on one truth), so its median needs 40 runs to settle
#: (at 10 runs per seed DAPPER gave 0.617 and xsfm 0.640; at 40, 0.623 and 0.632).
STREAMS: dict[str, dict[str, int]] = {
    "l63": {"enkf_pertobs_n10": 40, "etkf_n10": 10, "etkf_n10_norot": 10},
    "l96": {},
}


def streams_for(setting: str, key: str, given: int | None) -> int:
    """Runs per truth seed: ``--streams`` when given, else the method's own count (default 3)."""
    return given if given is not None else STREAMS.get(setting, {}).get(key, 3)


SETTINGS: dict[str, dict[str, Any]] = {
    "l63": {
        "module": "dapper.mods.Lorenz63.sakov2012",
        "title": "Lorenz-63, DAPPER's sakov2012",
        "source": "mods/Lorenz63/sakov2012.py",
    },
    "l96": {
        "module": "dapper.mods.Lorenz96.sakov2008",
        "title": "Lorenz-96 (40 variables), DAPPER's sakov2008",
        "source": "mods/Lorenz96/sakov2008.py",
    },
}

# Per setting: method key -> DAPPER class, positional and keyword arguments, the rmse.a its file
# quotes (None: not quoted), where, the role in the study and a fixed random stream.
METHODS: dict[str, dict[str, dict[str, Any]]] = {
    "l63": {
        "enkf_pertobs_n10": {
            "label": "EnKF, perturbed obs, N=10",
            "cls": "EnKF",
            "args": ["PertObs"],
            "kwargs": {"N": 10, "infl": 1.04},
            "quoted": 0.65,
            "where": "sakov2012.py:40",
            "role": "parity (the issue's setting)",
            "stream": 1,
        },
        "etkf_n10": {
            "label": "ETKF ('Sqrt'), N=10",
            "cls": "EnKF",
            "args": ["Sqrt"],
            "kwargs": {"N": 10, "infl": 1.02, "rot": True},
            "quoted": 0.60,
            "where": "sakov2012.py:39",
            "role": "parity",
            "stream": 2,
        },
        "etkf_n10_norot": {
            "label": "ETKF ('Sqrt'), N=10, no rotation",
            "cls": "EnKF",
            "args": ["Sqrt"],
            "kwargs": {"N": 10, "infl": 1.02, "rot": False},
            "quoted": None,
            "where": "sakov2012.py:39 with rot=False (chosen here)",
            "role": "diagnostic",
            "stream": 3,
        },
        "pf_n100": {
            "label": "particle filter, N=100, regularised",
            "cls": "PartFilt",
            "args": [],
            "kwargs": {"N": 100, "reg": 2.4, "NER": 0.3},
            "quoted": 0.38,
            "where": "sakov2012.py:45",
            "role": "parity",
            "stream": 4,
        },
        "pf_n800": {
            "label": "particle filter, N=800, regularised",
            "cls": "PartFilt",
            "args": [],
            "kwargs": {"N": 800, "reg": 0.9, "NER": 0.2},
            "quoted": 0.28,
            "where": "sakov2012.py:46",
            "role": "parity",
            "stream": 5,
        },
    },
    "l96": {
        "enkf_pertobs_n40": {
            "label": "EnKF, perturbed obs, N=40",
            "cls": "EnKF",
            "args": ["PertObs"],
            "kwargs": {"N": 40, "infl": 1.06},
            "quoted": 0.22,
            "where": "sakov2008.py:46",
            "role": "parity",
            "stream": 1,
        },
        "etkf_n40": {
            "label": "ETKF ('Sqrt'), N=40",
            "cls": "EnKF",
            "args": ["Sqrt"],
            "kwargs": {"N": 40, "infl": 1.013, "rot": True},
            "quoted": None,
            "where": "infl/rot of sakov2008.py:49 at N=40 (chosen here)",
            "role": "parity",
            "stream": 2,
        },
        "etkf_n40_norot": {
            "label": "ETKF ('Sqrt'), N=40, no rotation",
            "cls": "EnKF",
            "args": ["Sqrt"],
            "kwargs": {"N": 40, "infl": 1.013, "rot": False},
            "quoted": None,
            "where": "as etkf_n40 with rot=False (chosen here)",
            "role": "diagnostic",
            "stream": 3,
        },
        "etkf_n24": {
            "label": "ETKF ('Sqrt'), N=24",
            "cls": "EnKF",
            "args": ["Sqrt"],
            "kwargs": {"N": 24, "infl": 1.013, "rot": True},
            "quoted": 0.18,
            "where": "sakov2008.py:49",
            "role": "DAPPER reference",
            "stream": 4,
        },
        "letkf_n7": {
            "label": "LETKF, N=7, localised",
            "cls": "LETKF",
            "args": [],
            "kwargs": {"N": 7, "rot": True, "infl": 1.04, "loc_rad": 4},
            "quoted": 0.22,
            "where": "sakov2008.py:70",
            "role": "parity",
            "stream": 5,
        },
    },
}


def dapper_call(spec: dict[str, Any]) -> str:
    """The DAPPER constructor call of a method, as DAPPER's files write it."""
    parts = [repr(a) for a in spec["args"]] + [f"{k}={v!r}" for k, v in spec["kwargs"].items()]
    return f"{spec['cls']}({', '.join(parts)})"


def case_path(cache: Path, setting: str, seed: int) -> Path:
    """The exported truth/observations of one (setting, seed)."""
    return Path(cache) / f"{setting}_seed{seed}.nc"


# --------------------------------------------------------------------------------------------
# Project-venv side: reading a case and the statistic (numpy + xarray only)
# --------------------------------------------------------------------------------------------


def load_case(path: str | Path) -> tuple[xr.DataArray, xr.DataArray, dict[str, Any]]:
    """Read one exported case.

    Returns ``(truth, obs, attrs)``:

    - ``truth``: DataArray ``(time, component)``, every model step from t = 0 (K + 1 rows), with
      coordinate ``step`` (int k, ``time == k * dt``);
    - ``obs``: DataArray ``(time, component)`` at the Ko + 1 observation times (the first at
      ``dko * dt``, none at t = 0), coordinates ``step`` and ``assessed`` (bool: the analysis
      times DAPPER's time mean uses, ``time > burn_in``);
    - ``attrs``: the file's attributes (``dt``, ``dko``, ``obs_var``, ``burn_in``, ``setting``,
      ``seed``, ``x0_mean`` as an array, ``x0_var``, ...), ``model_params`` and
      ``localisation`` decoded from JSON, plus ``x0_cov`` and ``obs_cov`` as (Nx, Nx) arrays.
    """
    with xr.open_dataset(path) as ds:
        ds = ds.load()
    attrs: dict[str, Any] = {}
    for key, value in ds.attrs.items():
        if isinstance(value, np.ndarray):
            attrs[key] = value.copy()
        elif isinstance(value, np.generic):
            attrs[key] = value.item()
        else:
            attrs[key] = value
    for key in ("model_params", "localisation"):
        if key in attrs:
            attrs[key] = json.loads(attrs[key])
    attrs["x0_mean"] = np.atleast_1d(np.asarray(attrs["x0_mean"], dtype=float))
    attrs["obs_indices"] = np.atleast_1d(np.asarray(attrs["obs_indices"], dtype=int))
    attrs["x0_cov"] = ds["x0_cov"].values
    attrs["obs_cov"] = ds["obs_cov"].values
    truth = ds["truth"].copy()
    obs = (
        ds["obs"]
        .assign_coords(assessed=ds["assessed"].astype(bool))
        .rename(obs_time="time", obs_step="step")
    )
    truth.attrs = {"setting": attrs["setting"], "seed": attrs["seed"], "dt": attrs["dt"]}
    obs.attrs = {"setting": attrs["setting"], "seed": attrs["seed"], "obs_var": attrs["obs_var"]}
    return truth, obs, attrs


def analysis_rmse_series(
    analysis_mean: xr.DataArray, truth: xr.DataArray, obs: xr.DataArray
) -> xr.DataArray:
    """Spatial RMS error of the analysis mean at each observation time (DAPPER's ``err.rms.a``).

    ``analysis_mean`` has dims ``(time, component)`` (other dims are not allowed: reduce members
    to the (weighted) mean first) on the observation times; its time coordinate is matched to
    ``obs.time`` to within 1e-6 of the observation interval.
    """
    extra = set(analysis_mean.dims) - {"time", "component"}
    if extra:
        raise ValueError(
            f"analysis_mean has dims {sorted(map(str, extra))} beyond (time, component)"
        )
    dto = float(obs["time"][1] - obs["time"][0])
    est = analysis_mean.reindex(time=obs["time"].values, method="nearest", tolerance=1e-6 * dto)
    if bool(est.isnull().any()):
        raise ValueError("analysis_mean does not cover every observation time")
    true = truth.sel(time=obs["time"].values)
    err = est.transpose("time", "component").values - true.transpose("time", "component").values
    rms = np.sqrt(np.mean(err**2, axis=1))
    return xr.DataArray(rms, dims="time", coords={"time": obs["time"].values})


def time_mean_analysis_rmse(
    analysis_mean: xr.DataArray, truth: xr.DataArray, obs: xr.DataArray
) -> float:
    """DAPPER's ``rmse.a``: the mean of ``analysis_rmse_series`` over ``obs.assessed`` times."""
    series = analysis_rmse_series(analysis_mean, truth, obs)
    return float(series.values[obs["assessed"].values.astype(bool)].mean())


# --------------------------------------------------------------------------------------------
# DAPPER side (DAPPER venv only)
# --------------------------------------------------------------------------------------------


def _import_dapper() -> Any:
    try:
        import dapper
    except ImportError as err:
        raise SystemExit(
            f"the 'dapper' subcommand needs DAPPER: python3 -m venv /tmp/dapper-venv && "
            f"/tmp/dapper-venv/bin/pip install {DAPPER_PIN} xarray netCDF4, then run it with "
            f"{DAPPER_VENV_PYTHON}"
        ) from err
    import dapper.tools.progressbar as progressbar
    from dapper.dpr_config import rc

    progressbar.disable_progbar = True
    rc.liveplotting = False
    return dapper


def _model_facts(setting: str, hmm: Any) -> dict[str, Any]:
    if setting == "l63":
        import dapper.mods.Lorenz63 as core

        return {
            "model": "Lorenz-63",
            "model_params": {"sigma": core.sig, "rho": core.rho, "beta": core.beta},
            "localisation": None,
        }
    import dapper.mods.Lorenz96 as core

    return {
        "model": f"Lorenz-96, {hmm.Nx} variables (periodic)",
        "model_params": {"F": core.Force, "Nx": hmm.Nx},
        "localisation": {
            "localizer": "nd_Id_localization((40,), (2,)), periodic",
            "state_batches": "20 batches of 2 neighbouring variables",
            "batch_distance": "mean of the distances from the batch's points",
            "taper": "Gaspari-Cohn, support radius 1.82 * loc_rad (zero beyond 2 * 1.82 * loc_rad)",
            "cutoff": 1e-3,
            "applied_as": "Y and innovation times sqrt(coefficient) after R^-1/2 whitening",
        },
    }


def _case_dataset(
    setting: str, seed: int, dapper_seed: int, hmm: Any, xx: Any, yy: Any, version: str
) -> xr.Dataset:
    tseq = hmm.tseq
    nx = hmm.Nx
    obs_op = hmm.Obs(0)
    obs_indices = np.arange(nx)
    observed = obs_op(np.arange(nx, dtype=float))
    if len(observed) != nx or not np.array_equal(observed, obs_indices):
        raise RuntimeError(f"{setting}: expected identity observations of all {nx} components")
    # the diagonals as the setting writes them (``.full`` rebuilds them from square roots: 2 + 4e-16)
    x0_cov = np.diag(np.asarray(hmm.X0.C.diag, dtype=float))
    obs_cov = np.diag(np.asarray(obs_op.noise.C.diag, dtype=float))
    x0_var = float(x0_cov[0, 0])
    obs_var = float(obs_cov[0, 0])
    if not (
        np.allclose(x0_cov, x0_var * np.eye(nx)) and np.allclose(obs_cov, obs_var * np.eye(nx))
    ):
        raise RuntimeError(f"{setting}: expected isotropic X0 and R")
    if hmm.Dyn.noise.C != 0:
        raise RuntimeError(f"{setting}: expected a deterministic model")
    facts = _model_facts(setting, hmm)
    obs = np.stack([np.asarray(y, dtype=float) for y in yy])
    attrs = {
        "title": f"{SETTINGS[setting]['title']}: truth and observations simulated by DAPPER",
        "setting": setting,
        "dapper_module": SETTINGS[setting]["module"],
        "dapper_version": version,
        "seed": int(seed),
        "dapper_seed": int(dapper_seed),
        "seeding": f"dapper.set_seed({dapper_seed}) then HMM.simulate()",
        "dt": float(tseq.dt),
        "dko": int(tseq.dko),
        "dto": float(tseq.dto),
        "K": int(tseq.K),
        "Ko": int(tseq.Ko),
        "T": float(tseq.T),
        "burn_in": float(tseq.BurnIn),
        "burn_in_rule": "time averages over analysis times with obs_time > burn_in (strict)",
        "obs_var": obs_var,
        "obs_indices": obs_indices.astype(np.int32),
        "obs_operator": "identity on every component; y = x + N(0, obs_var I), no obs at t = 0",
        "x0_mean": np.asarray(hmm.X0.mu, dtype=float),
        "x0_var": x0_var,
        "x0_rule": "truth x_0 ~ N(x0_mean, x0_var I); each filter draws its own initial ensemble",
        "model": facts["model"],
        "integrator": "classic 4-stage RK4, one step per dt, no model noise",
        "model_params": json.dumps(facts["model_params"]),
    }
    if facts["localisation"] is not None:
        attrs["localisation"] = json.dumps(facts["localisation"])
    ds = xr.Dataset(
        {
            "truth": (("time", "component"), np.asarray(xx, dtype=float)),
            "obs": (("obs_time", "component"), obs),
            "assessed": ("obs_time", np.asarray(tseq.masko, dtype=bool)),
            "x0_cov": (("component", "component2"), x0_cov),
            "obs_cov": (("component", "component2"), obs_cov),
        },
        coords={
            "time": ("time", np.asarray(tseq.tt, dtype=float)),
            "step": ("time", np.asarray(tseq.kk, dtype=np.int64)),
            "obs_time": ("obs_time", np.asarray(tseq.tto, dtype=float)),
            "obs_step": ("obs_time", np.asarray(tseq.kko, dtype=np.int64)),
            "component": ("component", np.arange(nx, dtype=np.int32)),
            "component2": ("component2", np.arange(nx, dtype=np.int32)),
        },
        attrs=attrs,
    )
    ds["truth"].attrs["description"] = "DAPPER's xx: the true state at every model step"
    ds["obs"].attrs["description"] = "DAPPER's yy: observations at the obs_step steps"
    ds["assessed"].attrs["description"] = "DAPPER's tseq.masko"
    ds["time"].attrs["units"] = "model time units"
    ds["obs_time"].attrs["units"] = "model time units"
    return ds


def _run_method(dapper: Any, spec: dict[str, Any], hmm: Any, xx: Any, yy: Any, seed: int) -> dict:
    import dapper.da_methods as da

    dapper.set_seed(seed)
    xp = getattr(da, spec["cls"])(*spec["args"], **spec["kwargs"])
    t0 = time.perf_counter()
    xp.assimilate(hmm, xx, yy, liveplots=False)
    seconds = time.perf_counter() - t0
    xp.stats.average_in_time()
    stats, avrgs, mask = xp.stats, xp.avrgs, hmm.tseq.masko
    rmse_a_series = np.asarray(stats.err.rms.a, dtype=float)
    rmse_a = float(avrgs.err.rms.a.val)
    mine = float(rmse_a_series[mask].mean())
    if not math.isclose(rmse_a, mine, rel_tol=1e-12, abs_tol=1e-12):
        raise RuntimeError(f"{spec['cls']}: avrgs.err.rms.a {rmse_a} != mean over masko {mine}")
    return {
        "result": {
            "rmse_a": rmse_a,
            "rmse_a_conf": float(avrgs.err.rms.a.prec),
            "rmse_f": float(avrgs.err.rms.f.val),
            "rmv_a": float(avrgs.spread.rms.a.val),
            "rmse_a_time_median": float(np.median(rmse_a_series[mask])),
            "n_assessed": int(mask.sum()),
            "assim_seed": int(seed),
            "seconds": seconds,
        },
        "analysis_mean": np.asarray(stats.mu.a, dtype=float),
        "rmse_a": rmse_a_series,
        "rmse_f": np.asarray(stats.err.rms.f, dtype=float),
        "spread_a": np.asarray(stats.spread.rms.a, dtype=float),
    }


def cmd_dapper(args: argparse.Namespace) -> None:
    """Export truth/obs per (setting, seed) and run DAPPER's filters on them."""
    dapper = _import_dapper()
    import importlib

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results_path = out / "dapper_results.json"
    store: dict[str, Any] = {"meta": {}, "results": {}}
    if results_path.exists():
        store = json.loads(results_path.read_text())
    t_all = time.perf_counter()
    for setting in args.settings:
        hmm = importlib.import_module(SETTINGS[setting]["module"]).HMM
        methods = {
            k: v for k, v in METHODS[setting].items() if not args.methods or k in args.methods
        }
        for seed in args.seeds:
            dapper_seed = SEED_BASE + seed
            dapper.set_seed(dapper_seed)
            xx, yy = hmm.simulate()
            case = _case_dataset(setting, seed, dapper_seed, hmm, xx, yy, dapper.__version__)
            case.to_netcdf(case_path(out, setting, seed))
            truth, obs, _ = load_case(case_path(out, setting, seed))
            if not (np.array_equal(truth.values, xx) and np.array_equal(obs.values, np.stack(yy))):
                raise RuntimeError("the exported case does not read back bit-identical")
            series: dict[str, Any] = {}
            for key, spec in methods.items():
                runs = [
                    _run_method(
                        dapper, spec, hmm, xx, yy, 100 * dapper_seed + spec["stream"] + 10 * k
                    )
                    for k in range(streams_for(setting, key, args.streams))
                ]
                run = runs[0]
                mean_a = xr.DataArray(
                    run["analysis_mean"],
                    dims=("time", "component"),
                    coords={"time": obs["time"].values},
                )
                check = time_mean_analysis_rmse(mean_a, truth, obs)
                if not math.isclose(check, run["result"]["rmse_a"], rel_tol=1e-12, abs_tol=1e-12):
                    raise RuntimeError(f"time_mean_analysis_rmse {check} != DAPPER's rmse.a")
                values = [r["result"]["rmse_a"] for r in runs]
                res = dict(
                    run["result"],
                    dapper_seed=dapper_seed,
                    rmse_a=float(np.median(values)),
                    rmse_a_streams=values,
                    seconds=sum(r["result"]["seconds"] for r in runs),
                )
                store["results"].setdefault(setting, {}).setdefault(key, {})[str(seed)] = res
                series[key] = run
                print(
                    f"{setting} seed {seed} {key:18s} rmse.a {res['rmse_a']:.4f} "
                    f"(quoted {spec['quoted']}) {res['seconds']:.1f} s",
                    flush=True,
                )
            keys = list(series)
            dims = {
                "analysis_mean": ("da_method", "obs_time", "component"),
                "rmse_a": ("da_method", "obs_time"),
                "rmse_f": ("da_method", "obs_time"),
                "spread_a": ("da_method", "obs_time"),
            }
            diag = xr.Dataset(
                {n: (d, np.stack([series[k][n] for k in keys])) for n, d in dims.items()},
                coords={
                    "da_method": keys,
                    "obs_time": obs["time"].values,
                    "component": obs["component"].values,
                },
                attrs={"setting": setting, "seed": seed, "dapper_version": dapper.__version__},
            )
            diag.to_netcdf(out / f"{setting}_seed{seed}_dapper.nc")
    elapsed = time.perf_counter() - t_all
    store["meta"] = {
        "dapper_version": dapper.__version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "platform": platform.platform(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "command": " ".join([DAPPER_VENV_PYTHON, "studies/dapper_parity.py", *sys.argv[1:]]),
        "last_run_seconds": elapsed,
        "last_run": {"settings": args.settings, "seeds": args.seeds},
        "seed_base": SEED_BASE,
        "seeding": "truth/obs: set_seed(seed_base + seed); method: set_seed(100 * that + stream)",
        "statistic": "rmse_a = xp.avrgs.err.rms.a: mean over analysis times with t > BurnIn of "
        "sqrt(mean over components of (analysis mean - truth)^2)",
        "settings": {s: _setting_summary(s) for s in SETTINGS},
        "methods": {
            s: {k: dict(v, call=dapper_call(v)) for k, v in m.items()} for s, m in METHODS.items()
        },
    }
    results_path.write_text(json.dumps(store, indent=1) + "\n")
    print(f"wrote {results_path} ({elapsed:.0f} s)")


def _setting_summary(setting: str) -> dict[str, Any]:
    import importlib

    hmm = importlib.import_module(SETTINGS[setting]["module"]).HMM
    tseq = hmm.tseq
    return {
        "module": SETTINGS[setting]["module"],
        "title": SETTINGS[setting]["title"],
        "Nx": int(hmm.Nx),
        "dt": float(tseq.dt),
        "dko": int(tseq.dko),
        "dto": float(tseq.dto),
        "Ko": int(tseq.Ko),
        "K": int(tseq.K),
        "T": float(tseq.T),
        "burn_in": float(tseq.BurnIn),
        "n_assessed": int(tseq.masko.sum()),
        "obs_var": float(hmm.Obs(0).noise.C.diag[0]),
        "x0_mean": [float(v) for v in hmm.X0.mu],
        "x0_var": float(hmm.X0.C.diag[0]),
    }


XSFM_METHODS: dict[str, dict[str, dict[str, Any]]] = {
    # the same settings through ``state.sfm.assimilate``; DAPPER's ``loc_rad`` is its
    # Gaspari-Cohn half-width / 1.82 (tools/localization.py:124), so xsfm's half-width is 1.82 x it
    "l63": {
        "enkf_pertobs_n10": {"method": "enkf", "members": 10, "inflation": 1.04},
        "etkf_n10": {"method": "etkf", "members": 10, "inflation": 1.02, "rotate": True},
        "etkf_n10_norot": {"method": "etkf", "members": 10, "inflation": 1.02},
        "pf_n100": {"method": "bpf", "members": 100, "regularisation": 2.4, "threshold": 0.3},
        "pf_n800": {"method": "bpf", "members": 800, "regularisation": 0.9, "threshold": 0.2},
    },
    "l96": {
        "enkf_pertobs_n40": {"method": "enkf", "members": 40, "inflation": 1.06},
        "etkf_n40": {"method": "etkf", "members": 40, "inflation": 1.013, "rotate": True},
        "etkf_n40_norot": {"method": "etkf", "members": 40, "inflation": 1.013},
        "etkf_n24": {"method": "etkf", "members": 24, "inflation": 1.013, "rotate": True},
        "letkf_n7": {
            "method": "etkf",
            "members": 7,
            "inflation": 1.04,
            "rotate": True,
            "localisation": 1.82 * 4,
            "period": 40,
        },
    },
}
KEPT = 100  # particle-filter members kept per step (their mean estimates the weighted mean)


def _xsfm_kwargs(spec: dict[str, Any]) -> dict[str, Any]:
    """The options ``state.sfm.assimilate`` gets for one method (as the report prints them)."""
    out: dict[str, Any] = {"method": spec["method"]}
    if spec["method"] == "bpf":
        out.update(
            particles=spec["members"],
            regularisation=spec["regularisation"],
            resample_threshold=spec["threshold"],
        )
    else:
        out.update(members=spec["members"], inflation=spec["inflation"])
        for key in ("rotate", "localisation", "period"):
            if key in spec:
                out[key] = round(spec[key], 4) if isinstance(spec[key], float) else spec[key]
    return out


def run_xsfm(
    truth: xr.DataArray, obs: xr.DataArray, attrs: dict[str, Any], spec: dict, streams: int = 1
) -> list[float]:
    """Independent xsfm filter runs on one case, from xarray, in one call; DAPPER's rmse.a each.

    The ``streams`` runs on the same truth are one ``stream`` dim of the initial ensemble (each
    its own draw from the initial-condition distribution); the observations have no ``stream``
    dim and are broadcast to every stream; xsfm's random streams follow each stream's label
    position, so the runs are independent.
    """
    import xsfm

    setting, seed = attrs["setting"], int(attrs["seed"])
    n = int(spec["members"])
    draws = np.stack(
        [
            attrs["x0_mean"]
            + np.sqrt(float(attrs["x0_var"]))
            * np.random.default_rng([SEED_BASE + seed, k, n]).normal(
                size=(n, truth.sizes["component"])
            )
            for k in range(streams)
        ]
    )
    ens = xr.DataArray(
        draws,
        dims=("stream", "member", "component"),
        coords={"time": 0.0, "stream": np.arange(streams), "component": truth["component"].values},
        name="state",
    )
    y = obs.drop_vars(["step", "assessed"]).assign_attrs(
        observation_noise_std=float(np.sqrt(attrs["obs_var"]))
    )
    if setting == "l63":
        step = xsfm.datasets.lorenz63_transition(dt=float(attrs["dt"]), noise_var=0.0)
    else:
        step = xsfm.datasets.lorenz96_transition(dt=float(attrs["dt"]), noise_var=0.0)
    options: dict[str, Any] = {
        "method": spec["method"],
        "transition": step,
        "state_dims": ["component"],
        "time_step": float(attrs["dt"]),
        "seed": SEED_BASE + seed,
    }
    if spec["method"] == "bpf":
        options.update(
            particles=n,
            members=min(n, KEPT),
            regularisation=spec["regularisation"],
            resample_threshold=spec["threshold"],
        )
    else:
        options.update(members=n, inflation=spec["inflation"])
        for key in ("rotate", "localisation", "period"):
            if key in spec:
                options[key] = spec[key]
    ana = ens.sfm.assimilate(y, **options)
    steps = obs["step"].values.astype(int)
    mean = ana["state"].mean("member").isel(time=steps - 1)
    mean = mean.assign_coords(time=obs["time"].values)
    return [time_mean_analysis_rmse(mean.sel(stream=k), truth, obs) for k in range(streams)]


def cmd_xsfm(args: argparse.Namespace) -> None:
    """Run xsfm's filters on every exported case; write ``xsfm_results.json`` (same layout)."""
    import time

    import torch

    torch.set_num_threads(1)
    cache = Path(args.out)
    target = cache / "xsfm_results.json"
    results: dict[str, Any] = {"seeds": [], "results": {}}
    if target.exists():  # a run of some settings or methods updates the others' results in place
        results = json.loads(target.read_text())
    for setting, methods in XSFM_METHODS.items():
        if args.settings and setting not in args.settings:
            continue
        for seed in args.seeds:
            path = case_path(cache, setting, seed)
            if not path.exists():
                raise SystemExit(f"{path} is missing: run the dapper subcommand first")
            truth, obs, attrs = load_case(path)
            for key, spec in methods.items():
                if args.methods and key not in args.methods:
                    continue
                start = time.perf_counter()
                values = run_xsfm(truth, obs, attrs, spec, streams_for(setting, key, args.streams))
                rmse = float(np.median(values))
                seconds = time.perf_counter() - start
                runs = results["results"].setdefault(setting, {}).setdefault(key, {})
                runs[str(seed)] = {
                    "rmse_a": rmse,
                    "rmse_a_streams": values,
                    "seconds": round(seconds, 2),
                }
                print(
                    f"{setting} {key} seed {seed}: rmse.a {rmse:.4f} ({seconds:.1f} s)", flush=True
                )
        results["seeds"] = sorted(set(results["seeds"]) | set(args.seeds))
    tmp = target.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=1))
    tmp.replace(target)
    print(f"wrote {target}")


# --------------------------------------------------------------------------------------------
# Report (project venv)
# --------------------------------------------------------------------------------------------


def _seed_stats(values: list[float]) -> dict[str, float]:
    arr = np.asarray(values, dtype=float)
    return {
        "n": len(arr),
        "mean": float(arr.mean()),
        "std": float(arr.std(ddof=1)) if len(arr) > 1 else float("nan"),
        "min": float(arr.min()),
        "max": float(arr.max()),
        "median": float(np.median(arr)),
    }


def _xsfm_only(runs: dict[str, dict]) -> dict[str, float]:
    return _seed_stats([r["rmse_a"] for r in runs.values()])


def _seeds(seeds: list[str] | None) -> str:
    return ", ".join(seeds) if seeds else "none"


def _fmt(s: dict[str, float] | None) -> str:
    if s is None:
        return "—"
    if s["n"] < 2:
        return f"{s['mean']:.3f} (one seed)"
    return (
        f"{s['mean']:.3f} ± {s['std']:.3f} ({s['min']:.3f}–{s['max']:.3f}; "
        f"median {s['median']:.3f})"
    )


def _compare(dapper_runs: dict[str, dict], xsfm_runs: dict[str, dict] | None) -> dict[str, Any]:
    d_all = _seed_stats([r["rmse_a"] for r in dapper_runs.values()])
    row: dict[str, Any] = {"dapper": d_all, "dapper_seeds": sorted(dapper_runs, key=int)}
    if not xsfm_runs:
        return row
    common = sorted(set(dapper_runs) & set(xsfm_runs), key=int)
    row["xsfm"] = _seed_stats([r["rmse_a"] for r in xsfm_runs.values()])
    row["xsfm_seeds"] = sorted(xsfm_runs, key=int)
    row["common_seeds"] = common
    if len(common) < 2:
        row["within_spread"] = None
        return row
    d = np.array([dapper_runs[s]["rmse_a"] for s in common])
    x = np.array([xsfm_runs[s]["rmse_a"] for s in common])
    d_std = float(d.std(ddof=1))
    diff = float(abs(x.mean() - d.mean()))
    paired = x - d
    row.update(
        abs_diff=diff,
        diff_over_dapper_std=diff / d_std if d_std > 0 else float("inf"),
        within_spread=bool(diff <= d_std),
        paired_diff={"mean": float(paired.mean()), "std": float(paired.std(ddof=1))},
    )
    return row


def _method_label(setting: str, key: str) -> tuple[str, str, str]:
    spec = METHODS.get(setting, {}).get(key)
    if spec is None:
        return key, "(xsfm only)", "—"
    quoted = "—" if spec["quoted"] is None else f"{spec['quoted']:.2f}"
    return f"`{key}`: {spec['label']}", f"`{dapper_call(spec)}` ({spec['where']})", quoted


def _run_range(store: dict[str, Any] | None, setting: str, key: str) -> str:
    """``min–max`` of the single runs of one method over every seed, or ``—``."""
    runs = (store or {}).get("results", {}).get(setting, {}).get(key, {})
    values = [v for r in runs.values() for v in r.get("rmse_a_streams", [])]
    return f"{min(values):.2f}–{max(values):.2f}" if values else "—"


def cmd_report(args: argparse.Namespace) -> None:
    """Write ``dapper.md`` and ``dapper.json`` from the two results files."""
    cache = Path(args.cache)
    dapper_store = json.loads((cache / "dapper_results.json").read_text())
    xsfm_path = cache / "xsfm_results.json"
    xsfm_store = json.loads(xsfm_path.read_text()) if xsfm_path.exists() else None
    meta = dapper_store["meta"]
    summary: dict[str, Any] = {}
    lines = [
        "# DAPPER parity: classical filters against DAPPER",
        "",
        f"Generated by `studies/dapper_parity.py` with DAPPER {meta['dapper_version']} "
        f"(Python {meta['python']}, numpy {meta['numpy']}); data in `dapper.json`.",
        "",
        "DAPPER itself runs on truths and observations it simulates; they are exported to netCDF "
        "and xsfm's filters run on exactly the same series. Each side draws its own initial "
        "ensemble from the setting's initial-condition distribution.",
        "",
        "**Statistic.** DAPPER's `rmse.a` (`xp.avrgs.err.rms.a`): at each analysis time the "
        "root-mean-square over state components of (analysis mean − truth), averaged over the "
        "analysis times after the burn-in (t > BurnIn). A filter run on a chaotic system now and "
        "then loses the truth for a while, so on each truth seed both sides run several "
        "independent filter streams (`--streams`, own initial ensemble and noise) and the seed's "
        "value is their median. Per method: mean ± standard deviation "
        "over truth seeds (ddof = 1), (min–max; median). *Within spread*: |xsfm mean − DAPPER mean| ≤ "
        "DAPPER's seed-to-seed standard deviation, on the seeds both sides ran. *Paired Δ*: "
        "xsfm − DAPPER per seed (same truth and observations), mean ± std.",
        "",
    ]
    if xsfm_store is None:
        lines += [
            "> The xsfm side has not been run yet (`xsfm_results.json` missing): DAPPER's "
            "column only.",
            "",
        ]
    all_within: list[bool] = []
    notes: list[str] = []
    have_xsfm = xsfm_store is not None
    for setting, s in meta["settings"].items():
        d_methods = dapper_store["results"].get(setting, {})
        x_methods = (xsfm_store or {}).get("results", {}).get(setting, {})
        keys = [k for k in METHODS.get(setting, {}) if k in d_methods or k in x_methods]
        keys += [k for k in list(d_methods) + list(x_methods) if k not in keys]
        keys = list(dict.fromkeys(keys))
        if not keys:
            continue
        if len(s["x0_mean"]) <= 3:
            x0 = "[" + ", ".join(f"{v:g}" for v in s["x0_mean"]) + "]"
        else:
            x0 = f"(1, 0, …, 0) ∈ R^{len(s['x0_mean'])}"
        header = ["method", "DAPPER call", "DAPPER quotes", "runs per seed", "DAPPER"]
        if have_xsfm:
            header += ["xsfm call", "xsfm", "\\|Δ\\| / DAPPER std", "within spread", "paired Δ"]
        lines += [
            f"## {s['title']} (`{setting}`)",
            "",
            f"`{s['module']}`: Nx = {s['Nx']}, dt = {s['dt']:g}, observations every "
            f"{s['dko']} step(s) (Δt_obs = {s['dto']:g}) of every component with noise variance "
            f"{s['obs_var']:g}, {s['Ko'] + 1} analysis cycles (T = {s['T']:g}), burn-in "
            f"{s['burn_in']:g} ({s['n_assessed']} analysis times averaged), deterministic RK4 "
            f"model, x₀ ~ N({x0}, {s['x0_var']:g} I).",
            "",
            "| " + " | ".join(header) + " |",
            "|" + "---|" * len(header),
        ]
        summary[setting] = {}
        for key in keys:
            name, call, quoted = _method_label(setting, key)
            d_runs = d_methods.get(key)
            x_runs = x_methods.get(key)
            row = _compare(d_runs, x_runs) if d_runs else {"xsfm": _xsfm_only(x_runs)}
            summary[setting][key] = row
            streams = [
                len(r.get("rmse_a_streams", [0]))
                for runs in (d_runs or {}, x_runs or {})
                for r in runs.values()
            ]
            runs_text = (
                f"{min(streams)}"
                if streams and min(streams) == max(streams)
                else (f"{min(streams)}-{max(streams)}" if streams else "—")
            )
            cells = [name, call, quoted, runs_text, _fmt(row.get("dapper"))]
            if d_runs:
                values = {k: r["rmse_a"] for k, r in d_runs.items()}
                median = float(np.median(list(values.values())))
                far = sorted((k for k, v in values.items() if v > 1.5 * median), key=int)
                if far:
                    notes.append(
                        f"`{setting}` `{key}`: DAPPER's rmse.a on seed(s) {', '.join(far)} "
                        f"({', '.join(f'{values[k]:.3f}' for k in far)}) is over 1.5 times its "
                        f"median over seeds ({median:.3f}): (partial) filter divergence, which "
                        "dominates DAPPER's seed spread for this row."
                    )
            if have_xsfm:
                within = row.get("within_spread")
                if within is not None and METHODS.get(setting, {}).get(key):
                    all_within.append(within)
                if x_runs and d_runs and row.get("common_seeds") != row.get("dapper_seeds"):
                    notes.append(
                        f"`{setting}` `{key}`: compared on seeds {_seeds(row.get('common_seeds'))}"
                        f" (DAPPER ran {_seeds(row['dapper_seeds'])}, xsfm "
                        f"{_seeds(row.get('xsfm_seeds'))}); fewer than 2 leave it uncompared."
                    )
                ratio = row.get("diff_over_dapper_std")
                paired = row.get("paired_diff")
                spec = XSFM_METHODS.get(setting, {}).get(key)
                xsfm_call = (
                    "—"
                    if spec is None
                    else "`" + ", ".join(f"{k}={v!r}" for k, v in _xsfm_kwargs(spec).items()) + "`"
                )
                cells += [
                    xsfm_call,
                    _fmt(row.get("xsfm")),
                    "—" if ratio is None else f"{ratio:.2f}",
                    "—" if within is None else ("yes" if within else "**no**"),
                    "—" if paired is None else f"{paired['mean']:+.3f} ± {paired['std']:.3f}",
                ]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    if have_xsfm:
        verdict = "yes" if all_within and all(all_within) else "NO"
        lines += [
            f"**Every xsfm filter within DAPPER's seed-to-seed spread: {verdict}** "
            f"({sum(all_within)} of {len(all_within)} compared methods).",
            "",
        ]
    lines += ["## Per seed", ""]
    for setting, methods in dapper_store["results"].items():
        seeds = sorted({s for runs in methods.values() for s in runs}, key=int)
        x_methods = (xsfm_store or {}).get("results", {}).get(setting, {})
        what = "DAPPER / xsfm" if have_xsfm else "DAPPER"
        lines += [
            f"`{setting}`, rmse.a per truth seed ({what}):",
            "",
            "| method | " + " | ".join(f"seed {s}" for s in seeds) + " |",
            "|---|" + "---|" * len(seeds),
        ]
        for key, runs in methods.items():
            cells = []
            for seed in seeds:
                d = f"{runs[seed]['rmse_a']:.3f}" if seed in runs else "—"
                x = x_methods.get(key, {}).get(seed)
                cells.append(f"{d} / {x['rmse_a']:.3f}" if have_xsfm and x else d)
            lines.append(f"| `{key}` | " + " | ".join(cells) + " |")
        lines.append("")
    lines += [
        "## Notes",
        "",
        *[f"- {n}" for n in notes],
        "- Seeds: truth seed s is `dapper.set_seed(3000 + s)` before `HMM.simulate()`; each DAPPER "
        "method then runs after `set_seed(100 * (3000 + s) + stream)`.",
        "- `etkf_n40` (no line in sakov2008 at N = 40) uses the inflation and rotation of the "
        "quoted N = 24 line; `*_norot` rows are the same ETKF without DAPPER's random "
        "mean-preserving rotation, for filters that have none.",
        "- DAPPER's inflation multiplies the analysis anomalies by `infl` (covariance by infl²); "
        "its particle filter's analysis is the weighted mean before resampling.",
        "- DAPPER's quoted scores come from single runs of its own (other seeds); they are shown "
        "for reference, not as a target.",
        "- Runs per seed (`STREAMS` in the script): the `l63` stochastic EnKF (N = 10) varies most "
        f"from run to run (DAPPER's single runs: {_run_range(dapper_store, 'l63', 'enkf_pertobs_n10')};"
        f" xsfm's: {_run_range(xsfm_store, 'l63', 'enkf_pertobs_n10')}), so its seed medians take "
        "40 runs on each side. With 10 runs DAPPER gave 0.617 ± 0.016 and xsfm 0.640 ± 0.024, "
        "outside the spread; with 40 both moved toward each other. Checked on the way: xsfm's result "
        "from xarray equals its tensor-level filter bit for bit on the same draws, so the "
        "remaining paired difference is within run-to-run noise (no algorithmic difference was "
        "found in a line-by-line reading of DAPPER's `PertObs` analysis).",
        "- xsfm's runs of one truth are one call: the initial ensembles carry a `stream` dim and "
        "the observations, which lack it, are shared by every stream.",
        "",
        "## Regenerate",
        "",
        "```sh",
        "python3 -m venv /tmp/dapper-venv",
        f"/tmp/dapper-venv/bin/pip install {DAPPER_PIN} xarray netCDF4",
        "OMP_NUM_THREADS=1 /tmp/dapper-venv/bin/python studies/dapper_parity.py dapper "
        "--out .cache/dapper",
        "OMP_NUM_THREADS=1 .venv/bin/python studies/dapper_parity.py xsfm --out .cache/dapper",
        ".venv/bin/python studies/dapper_parity.py report --cache .cache/dapper",
        "```",
        "",
        f"DAPPER side last run: `{meta['command']}`, {meta['last_run_seconds']:.0f} s on "
        f"{meta['platform']} (OMP_NUM_THREADS={meta['omp_num_threads']}).",
        "",
    ]
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    data = {
        "meta": {"dapper": meta, "xsfm": (xsfm_store or {}).get("meta")},
        "dapper": dapper_store["results"],
        "xsfm": (xsfm_store or {}).get("results"),
        "summary": summary,
    }
    (out_dir / "dapper.json").write_text(json.dumps(data, indent=1) + "\n")
    (out_dir / "dapper.md").write_text("\n".join(lines))
    print(f"wrote {out_dir / 'dapper.md'} and {out_dir / 'dapper.json'}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("dapper", help="export cases and run DAPPER (DAPPER venv)")
    p.add_argument("--out", default=str(DEFAULT_CACHE))
    p.add_argument("--seeds", type=int, nargs="+", default=list(DEFAULT_SEEDS))
    p.add_argument("--settings", nargs="+", choices=list(SETTINGS), default=list(SETTINGS))
    p.add_argument("--methods", nargs="*", default=None, help="method keys (default: all)")
    p.add_argument(
        "--streams",
        type=int,
        default=None,
        help="filter runs per truth (the median is kept; default: the method's, see STREAMS)",
    )
    p.set_defaults(func=cmd_dapper)
    p = sub.add_parser("xsfm", help="run xsfm's filters on the exported cases (project venv)")
    p.add_argument("--out", default=str(DEFAULT_CACHE))
    p.add_argument("--seeds", type=int, nargs="+", default=list(DEFAULT_SEEDS))
    p.add_argument("--settings", nargs="+", choices=list(SETTINGS), default=None)
    p.add_argument("--methods", nargs="*", default=None, help="method keys (default: all)")
    p.add_argument(
        "--streams",
        type=int,
        default=None,
        help="filter runs per truth (the median is kept; default: the method's, see STREAMS)",
    )
    p.set_defaults(func=cmd_xsfm)
    p = sub.add_parser("report", help="write docs/benchmarks/dapper.{md,json}")
    p.add_argument("--cache", default=str(DEFAULT_CACHE))
    p.add_argument("--out-dir", default=str(DEFAULT_DOCS))
    p.set_defaults(func=cmd_report)
    args = parser.parse_args(argv)
    if getattr(args, "seeds", None) is not None and any(s < 0 for s in args.seeds):
        parser.error("seeds must be >= 0")
    args.func(args)


if __name__ == "__main__":
    main()
