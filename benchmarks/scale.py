"""Scaling benchmark: dask workers and streaming memory of ``xsfm downscale`` (one table).

Run from the repository root (not an asv benchmark: it starts clusters and subprocesses)::

    OMP_NUM_THREADS=1 python benchmarks/scale.py [--samples 32] [--stream 250 1000]

Rows:

* **workers**: ``kolmogorov-sfm`` (the shipped default model, its card's sampler) downscaling
  ``--samples`` inputs x 16 members, chunked one sample per task, on a ``distributed.LocalCluster``
  of 1 and of 2 worker processes (one thread each); wall time of the compute (the cluster is
  started and the model loaded on each worker before the clock starts), and the speed-up. The
  outputs of both runs are compared bit for bit.
* **batching**: the network's time for 8 samples x 16 members with one sample per call (what
  ``downscale`` does on the CPU, for bitwise results) and with all 8 in one call.
* **streaming**: ``xsfm downscale IN OUT.zarr --members 16 --steps 1 --chunks sample=50`` in a
  fresh process, for each ``--stream`` length (time steps of 16 x 16 input); peak resident memory of
  the process (``ru_maxrss``) and the output size. Flat peak memory over lengths means the job
  streams region by region instead of holding the output.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

MODEL = "kolmogorov-sfm"


def _inputs(samples: int):
    """``samples`` coarse inputs: the model's example input repeated along ``sample``."""
    import xsfm

    example = xsfm.load_model(MODEL).example_input()
    reps = -(-samples // example.sizes["sample"])
    import xarray as xr

    ds = xr.concat([example] * reps, dim="sample").isel(sample=slice(0, samples))
    return ds.assign_coords(sample=np.arange(samples))


def run_workers(samples: int, members: int = 16) -> list[dict]:
    """Wall time of one downscale on local clusters of 1 and 2 worker processes."""
    from distributed import Client, LocalCluster

    ds = _inputs(samples).chunk(sample=1)
    rows, outputs = [], []
    for workers in (1, 2):
        with (
            LocalCluster(
                n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
            ) as cluster,
            Client(cluster) as client,
        ):
            warm = ds.isel(sample=slice(0, workers)).chunk(sample=1)
            warm.sfm.downscale(model=MODEL, members=2).compute()  # load the model everywhere
            assert len(client.scheduler_info()["workers"]) == workers
            start = time.perf_counter()
            out = ds.sfm.downscale(model=MODEL, members=members).compute()
            seconds = time.perf_counter() - start
        outputs.append(out["vorticity"].values)
        rows.append({"workers": workers, "seconds": seconds})
    rows[1]["speedup"] = rows[0]["seconds"] / rows[1]["seconds"]
    rows[1]["bitwise"] = bool(np.array_equal(outputs[0], outputs[1]))
    return rows


def run_batching(samples: int = 8, members: int = 16, repeats: int = 3) -> list[dict]:
    """The network's own time for ``samples`` x ``members``: one sample per call vs all at once.

    On the CPU ``downscale`` calls the network once per sample (bitwise results whatever the
    batching); this measures what batching all samples in one call would save.
    """
    import torch

    import xsfm
    from xsfm.sampling.rng import stream_generators

    model = xsfm.load_model(MODEL)
    net = model.network("cpu")
    x = torch.as_tensor(_inputs(samples)["vorticity"].values[:, None])
    index = np.arange(samples)
    rows = []
    for label, step in (("1 sample per call", 1), (f"{samples} samples per call", samples)):
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            with torch.inference_mode():
                for i in range(0, samples, step):
                    gens = stream_generators(0, index[i : i + step], members, device="cpu")
                    net.sample(x[i : i + step], gens, members=members)
            best = min(best, time.perf_counter() - start)
        rows.append({"setting": label, "seconds": best})
    rows[0]["ratio"] = rows[0]["seconds"] / rows[1]["seconds"]
    return rows


def run_streaming(lengths: list[int]) -> list[dict]:
    """Peak memory of ``xsfm downscale`` to zarr for inputs of ``lengths`` time steps."""
    rows = []
    for n in lengths:
        with tempfile.TemporaryDirectory() as tmp:
            src = Path(tmp) / "in.nc"
            ds = _inputs(n).rename(sample="time")
            ds = ds.assign_coords(time=("time", np.arange(n), {"units": "1", "axis": "T"}))
            ds.to_netcdf(src)
            out = Path(tmp) / "out.zarr"
            code = (
                "import resource, sys; from xsfm.cli import main; rc = main(sys.argv[1:]); "
                "print('MAXRSS', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss); "
                "sys.exit(rc)"
            )
            cmd = [sys.executable, "-c", code, "downscale", str(src), str(out), "--model", MODEL,
                   "--members", "16", "--steps", "1", "--chunks", "time=50", "--no-progress"]  # fmt: skip
            env = dict(os.environ, OMP_NUM_THREADS="1")
            start = time.perf_counter()
            res = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
            seconds = time.perf_counter() - start
            kib = int(res.stdout.split("MAXRSS")[1].split()[0])
            size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
        rows.append(
            {"steps": n, "seconds": seconds, "peak_mb": kib / 1024, "output_mb": size / 2**20}
        )
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=32, help="samples of the workers rows")
    parser.add_argument(
        "--stream", type=int, nargs="+", default=[250, 1000], help="time steps streamed to zarr"
    )
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    batching = run_batching()
    workers = run_workers(args.samples)
    stream = run_streaming(args.stream)
    print(f"xsfm scale benchmark (torch {torch.__version__}, {os.cpu_count()} CPUs, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')})")  # fmt: skip
    print()
    print("| case | setting | wall s | result |")
    print("|---|---|---|---|")
    for row in batching:
        extra = f"{row['ratio']:.2f}x the batched time" if "ratio" in row else "all samples batched"
        print(f"| batching: {MODEL} network, 8 samples x 16 members (best of 3) | "
              f"{row['setting']} | {row['seconds']:.1f} | {extra} |")  # fmt: skip
    for row in workers:
        extra = (
            f"speed-up {row['speedup']:.2f}x vs 1 worker; outputs bitwise equal: {row['bitwise']}"
            if "speedup" in row
            else "baseline"
        )
        print(f"| {MODEL}, {args.samples} samples x 16 members | {row['workers']} worker "
              f"process(es) | {row['seconds']:.1f} | {extra} |")  # fmt: skip
    for row in stream:
        print(f"| stream to zarr, 16 members, 1 step | {row['steps']} time steps | "
              f"{row['seconds']:.1f} | peak RSS {row['peak_mb']:.0f} MB, output "
              f"{row['output_mb']:.0f} MB |")  # fmt: skip


if __name__ == "__main__":
    main()
