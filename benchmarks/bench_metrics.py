"""Ensemble scores on a 16-member ensemble of 32 fields of 64x64 (float32, numpy-backed).

``setup`` calls ``torch.set_num_threads(1)`` like every benchmark here (the metrics themselves
do not use torch). Inputs are numpy-backed, so each call computes its result.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from benchmarks import single_thread

MEMBERS, TIMES, NY, NX = 16, 32, 64, 64


def ensemble_and_truth(seed: int = 0) -> tuple[xr.DataArray, xr.DataArray]:
    """A random ensemble ``(member, time, y, x)`` and a truth ``(time, y, x)`` with units."""
    rng = np.random.default_rng(seed)
    attrs = {"units": "K", "standard_name": "air_temperature"}
    coords = {"time": np.arange(TIMES), "y": np.arange(NY) * 1000.0, "x": np.arange(NX) * 1000.0}
    truth = xr.DataArray(
        (280 + rng.standard_normal((TIMES, NY, NX))).astype(np.float32),
        dims=("time", "y", "x"),
        coords=coords,
        attrs=attrs,
        name="tas",
    )
    noise = rng.standard_normal((MEMBERS, TIMES, NY, NX)).astype(np.float32)
    ens = xr.DataArray(
        truth.values + noise,
        dims=("member", "time", "y", "x"),
        coords={"member": np.arange(MEMBERS), **coords},
        attrs=attrs,
        name="tas",
    )
    return ens, truth


class Metrics:
    """CRPS (each estimator) and ensemble-mean RMSE over all points."""

    def setup(self) -> None:
        single_thread()
        import xsfm.metrics  # noqa: F401

        self.ens, self.truth = ensemble_and_truth()

    def time_crps_fair(self) -> None:
        from xsfm.metrics import crps

        crps(self.ens, self.truth, estimator="fair")

    def time_crps_nrg(self) -> None:
        from xsfm.metrics import crps

        crps(self.ens, self.truth, estimator="nrg")

    def time_crps_pwm(self) -> None:
        from xsfm.metrics import crps

        crps(self.ens, self.truth, estimator="pwm")

    def peakmem_crps_fair(self) -> None:
        from xsfm.metrics import crps

        crps(self.ens, self.truth, estimator="fair")

    def time_rmse(self) -> None:
        from xsfm.metrics import rmse

        rmse(self.ens, self.truth)

    def time_spread_skill_ratio(self) -> None:
        from xsfm.metrics import spread_skill_ratio

        spread_skill_ratio(self.ens, self.truth)
