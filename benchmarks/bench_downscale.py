"""Downscaling through the xarray layer, with the zero-parameter ``interpolation`` model.

The input is the model's own example (``xsfm.load_model("interpolation").example_input()``: one
``tas`` field on a 16x16 projection grid, two times), tiled along ``time`` to ``samples`` times so
the per-call and the per-sample costs both show. 16 members, 64x64 output.

``setup`` calls ``torch.set_num_threads(1)``: all figures are single-threaded.

``interpolation``'s network is a bilinear upsampling, about as cheap as a network can be, so
:class:`XarrayLayerOverhead` measures the fixed cost of the xarray layer (finding variables, units,
grid checks in :func:`xsfm.xr.prepare.prepare_inputs`; labelling the result in
:func:`xsfm.xr.label.assemble_output`) against the tensor work; for learned models the same layer cost is
a much smaller share (the design target is under 10 % of sampling time).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import xarray as xr

from benchmarks import single_thread

MODEL = "interpolation"
MEMBERS = 16


def example_input(samples: int) -> xr.Dataset:
    """The interpolation model's example input, tiled along ``time`` to ``samples`` times."""
    import xsfm

    example = xsfm.load_model(MODEL).example_input()
    reps = -(-samples // example.sizes["time"])
    tiled = xr.concat([example] * reps, dim="time").isel(time=slice(0, samples))
    hours = np.arange(samples) * np.timedelta64(6, "h")
    return tiled.assign_coords(time=("time", example.time.values[0] + hours, example.time.attrs))


class Downscale:
    """``ds.sfm.downscale(model="interpolation", members=16)`` end to end."""

    params: ClassVar[list[int]] = [2, 64]
    param_names: ClassVar[list[str]] = ["samples"]

    def setup(self, samples: int) -> None:
        single_thread()
        import xsfm  # noqa: F401  (registers .sfm)

        self.coarse = example_input(samples)
        # Build and cache the network once, as a session would before the timed calls.
        self.coarse.sfm.downscale(model=MODEL, members=MEMBERS, seed=0)

    def time_downscale_interpolation(self, samples: int) -> None:
        self.coarse.sfm.downscale(model=MODEL, members=MEMBERS, seed=0)

    def peakmem_downscale_interpolation(self, samples: int) -> None:
        self.coarse.sfm.downscale(model=MODEL, members=MEMBERS, seed=0)

    def time_downscale_interpolation_dask(self, samples: int) -> None:
        lazy = self.coarse.chunk({"time": 1}).sfm.downscale(model=MODEL, members=MEMBERS, seed=0)
        lazy.compute(scheduler="synchronous")


class XarrayLayerOverhead:
    """The xarray layer (prepare + assemble) against the tensor work, for ``interpolation``."""

    params: ClassVar[list[int]] = [2, 64]
    param_names: ClassVar[list[str]] = ["samples"]

    def setup(self, samples: int) -> None:
        single_thread()
        import xsfm
        from xsfm.xr.prepare import prepare_inputs

        self.model = xsfm.load_model(MODEL)
        self.coarse = example_input(samples)
        prepared = prepare_inputs(self.coarse, self.model)
        self.index = np.arange(prepared.data.shape[0])
        self.array = np.ascontiguousarray(prepared.data.values)
        self.network = self.model.network("cpu")
        raw = self._tensor_path()
        dims = [*prepared.sample_dims, "member", "_out", "_fy", "_fx"]
        self.raw = xr.DataArray(
            raw, dims=dims, coords={d: prepared.data.coords[d] for d in prepared.sample_dims}
        )

    def _tensor_path(self) -> np.ndarray:
        """What each chunk does: array -> torch, per-(sample, member) generators, sample, back."""
        import torch

        from xsfm.backend import from_torch, to_torch
        from xsfm.sampling.rng import stream_generators

        with torch.inference_mode():
            x = to_torch(self.array, device="cpu", dtype=torch.float32)
            gens = stream_generators(0, self.index, MEMBERS)
            y = self.network.sample(x, gens, members=MEMBERS)
            return from_torch(y.float(), like=self.array)

    def _xarray_layer(self) -> xr.Dataset:
        from xsfm.xr.label import assemble_output
        from xsfm.xr.prepare import prepare_inputs

        prepared = prepare_inputs(self.coarse, self.model)
        return assemble_output(self.raw, self.model, prepared, self.coarse, "benchmark")

    def time_xarray_layer_overhead(self, samples: int) -> None:
        """``prepare_inputs`` + ``assemble_output``: everything but the tensor work."""
        self._xarray_layer()

    def time_network(self, samples: int) -> None:
        """The tensor work alone (conversion, generators, ``network.sample``)."""
        self._tensor_path()

    def track_xarray_layer_share(self, samples: int) -> float:
        """Share of the xarray layer in layer + network time, in percent (best of 5 each)."""
        import timeit

        layer = min(timeit.repeat(self._xarray_layer, number=1, repeat=5))
        network = min(timeit.repeat(self._tensor_path, number=1, repeat=5))
        return round(100.0 * layer / (layer + network), 1)

    track_xarray_layer_share.unit = "%"  # type: ignore[attr-defined]
