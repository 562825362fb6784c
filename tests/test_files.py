"""Files and batch jobs: complete or absent, never over an input, resumable, bitwise ensembles."""

from __future__ import annotations

import copy
import hashlib
import json
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import dask
import dask.array
import numpy as np
import pytest
import xarray as xr

import xsfm
from xsfm.errors import InputError
from xsfm.xr.files import INCOMPLETE_ATTR, REGIONS_DIR, check_output, job_key, write_output

MODEL = "kolmogorov-sfm"
KW = {"model": MODEL, "members": 3, "steps": 2}


def raise_if_dask_computes() -> dask.config.set:
    def scheduler(dsk, keys, **kwargs):
        raise RuntimeError(f"dask computed {len(keys)} key(s) where nothing should be computed")

    return dask.config.set(scheduler=scheduler)


@pytest.fixture(scope="module")
def coarse() -> xr.Dataset:
    ds = xsfm.load_model(MODEL).example_input().isel(sample=slice(0, 5))
    return ds


def _tree(path: Path, skip_history: bool = False) -> dict[str, str]:
    """sha256 of every file under a store (or of a file), by relative path."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    out = {}
    for f in files:
        data = f.read_bytes()
        if skip_history and f.name in (".zattrs", ".zmetadata"):
            doc = json.loads(data)
            for attrs in [doc, *doc.get("metadata", {}).values()]:
                if isinstance(attrs, dict):
                    attrs.pop("history", None)
            data = json.dumps(doc, sort_keys=True).encode()
        out[str(f.relative_to(path.parent))] = hashlib.sha256(data).hexdigest()
    return out


# --- paths are checked before anything is computed -----------------------------------------


def test_output_paths_are_checked(tmp_path):
    src = tmp_path / "in.nc"
    src.write_bytes(b"x")
    with pytest.raises(InputError, match=r"suffix '\.txt'.*\*\.nc.*\*\.zarr"):
        check_output(tmp_path / "out.txt")
    with pytest.raises(InputError, match=r"folder .*nodir.* does not exist"):
        check_output(tmp_path / "nodir" / "out.nc")
    with pytest.raises(InputError, match="own input"):
        check_output(src, inputs=[src], overwrite=True)
    os.symlink(src, tmp_path / "link.nc")
    with pytest.raises(InputError, match="own input"):
        check_output(tmp_path / "link.nc", inputs=[src], overwrite=True)
    (tmp_path / "done.nc").write_bytes(b"results")
    with pytest.raises(InputError, match=r"already exists.*--overwrite"):
        check_output(tmp_path / "done.nc")
    assert check_output(tmp_path / "done.nc", overwrite=True).format == "netcdf"
    assert (tmp_path / "done.nc").read_bytes() == b"results"  # checking never touches it


def test_netcdf_is_complete_or_absent(tmp_path):
    def fail(block):
        raise RuntimeError("killed mid-way")

    data = dask.array.ones((4, 3), chunks=(1, 3)).map_blocks(fail, dtype=float)
    ds = xr.Dataset({"a": (("time", "x"), data)})
    with pytest.raises(RuntimeError, match="killed mid-way"):
        write_output(ds, check_output(tmp_path / "out.nc"), progress=False)
    assert list(tmp_path.iterdir()) == []  # neither the target nor a temporary file
    # an existing result survives a failed overwrite untouched
    (tmp_path / "out.nc").write_bytes(b"earlier results")
    with pytest.raises(RuntimeError):
        write_output(ds, check_output(tmp_path / "out.nc", overwrite=True), progress=False)
    assert (tmp_path / "out.nc").read_bytes() == b"earlier results"
    assert [p.name for p in tmp_path.iterdir()] == ["out.nc"]


def test_an_interrupted_zarr_job_resumes_to_the_same_store(tmp_path):
    values = np.arange(24.0).reshape(6, 4)
    calls = []

    def compute(block, block_info=None):
        start = block_info[0]["array-location"][0][0]
        calls.append(start)
        if fail_at is not None and start == fail_at:
            raise KeyboardInterrupt  # as a user's Ctrl-C
        return values[start : start + block.shape[0]]

    def dataset():
        lazy = dask.array.zeros((6, 4), chunks=(2, 4)).map_blocks(compute, dtype=float)
        ds = xr.Dataset(
            {"a": (("time", "x"), lazy, {"units": "K"})},
            coords={"time": np.arange(6), "x": np.arange(4.0)},
            attrs={"title": "t"},
        )
        return ds

    key = job_key(command="test", n=1)
    fail_at = 4
    with pytest.raises(KeyboardInterrupt):
        write_output(dataset(), check_output(tmp_path / "a.zarr", job=key), progress=False)
    partial = xr.open_zarr(tmp_path / "a.zarr")
    assert partial.attrs[INCOMPLETE_ATTR] == key  # never mistaken for a finished result
    with pytest.raises(InputError, match=r"interrupted xsfm job with other settings"):
        check_output(tmp_path / "a.zarr", job=job_key(command="test", n=2))
    fail_at, calls[:] = None, []
    target = check_output(tmp_path / "a.zarr", job=key)
    assert target.resume
    write_output(dataset(), target, progress=False)
    assert calls == [4]  # only the missing region was computed
    write_output(dataset(), check_output(tmp_path / "b.zarr", job=key), progress=False)
    assert _tree(tmp_path / "a.zarr") == {
        k.replace("b.zarr", "a.zarr"): v for k, v in _tree(tmp_path / "b.zarr").items()
    }
    done = xr.open_zarr(tmp_path / "a.zarr")
    assert INCOMPLETE_ATTR not in done.attrs and not (tmp_path / "a.zarr" / REGIONS_DIR).exists()
    np.testing.assert_array_equal(done["a"].values, values)
    with pytest.raises(InputError, match="already exists"):
        check_output(tmp_path / "a.zarr", job=key)  # a finished store is never resumed


# --- bitwise ensembles, whatever the batching -------------------------------------------------


def test_results_do_not_depend_on_chunks_or_batch_size(coarse):
    ref = coarse.sfm.downscale(batch_size=1, **KW)
    for batch in (2, 16):
        out = coarse.sfm.downscale(batch_size=batch, **KW)
        np.testing.assert_array_equal(out["vorticity"].values, ref["vorticity"].values)
    for chunk in (1, 3, 5):
        with raise_if_dask_computes():
            lazy = coarse.chunk(sample=chunk).sfm.downscale(**KW)
        np.testing.assert_array_equal(lazy["vorticity"].values, ref["vorticity"].values)


def test_absurd_requests_are_refused_before_allocating(coarse):
    with pytest.raises(InputError, match=r"members=1000000000.*GiB.*fewer members"):
        coarse.sfm.downscale(model=MODEL, members=10**9)
    ds = xsfm.datasets.lorenz63(trajectories=2, steps=3, seed=1, burn_in=8)
    with pytest.raises(InputError, match=r"assimilate\(members=1000000000.*GiB"):
        ds.state.isel(time=[0]).sfm.assimilate(ds.obs, members=10**9)


def test_a_file_backed_model_pickles_without_its_weights():
    model = xsfm.load_model(MODEL)
    model.network("cpu")
    assert len(pickle.dumps(model)) < 20_000  # card and path; workers load the weights once
    assert copy.deepcopy(model).network("cpu") is not None  # the same path back


def test_a_local_cluster_gives_the_synchronous_result(coarse):
    distributed = pytest.importorskip("distributed")
    ref = coarse.sfm.downscale(**KW)
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster),
    ):
        out = coarse.chunk(sample=2).sfm.downscale(**KW).compute()
    np.testing.assert_array_equal(out["vorticity"].values, ref["vorticity"].values)


# --- the command line -------------------------------------------------------------------------


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run(
        [sys.executable, "-m", "xsfm", *args], capture_output=True, text=True, env=env
    )


def test_cli_refuses_bad_outputs_before_computing(tmp_path, coarse):
    src = tmp_path / "in.nc"
    coarse.to_netcdf(src)
    for out, match in [
        (src, "own input"),
        (tmp_path / "missing" / "o.nc", "does not exist"),
        (tmp_path / "o.txt", "cannot tell the format"),
    ]:
        res = _cli("downscale", str(src), str(out), "--model", MODEL, "--overwrite")
        assert res.returncode == 2 and match in res.stderr, res.stderr
    (tmp_path / "o.nc").write_bytes(b"mine")
    res = _cli("downscale", str(src), str(tmp_path / "o.nc"), "--model", MODEL)
    assert res.returncode == 2 and "already exists" in res.stderr
    assert (tmp_path / "o.nc").read_bytes() == b"mine"


def test_cli_sigkill_then_rerun_gives_the_uninterrupted_store(tmp_path, coarse):
    src = tmp_path / "in.nc"
    coarse.to_netcdf(src)
    args = ["--model", MODEL, "--members", "2", "--steps", "6", "--chunks", "sample=1"]
    whole = _cli("downscale", str(src), str(tmp_path / "whole.zarr"), *args)
    assert whole.returncode == 0, whole.stderr
    out = tmp_path / "killed.zarr"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "xsfm", "downscale", str(src), str(out), *args]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        marks = out / REGIONS_DIR
        if marks.is_dir() and len(list(marks.iterdir())) >= 2:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the job finished before it could be killed"
    assert xr.open_zarr(out).attrs.get(INCOMPLETE_ATTR)
    done = len(list((out / REGIONS_DIR).iterdir()))
    assert 2 <= done < coarse.sizes["sample"]
    again = _cli("downscale", str(src), str(out), *args)
    assert again.returncode == 0, again.stderr
    expected = _tree(tmp_path / "whole.zarr", skip_history=True)
    assert _tree(out, skip_history=True) == {
        k.replace("whole.zarr", "killed.zarr"): v for k, v in expected.items()
    }


def test_cli_assimilate_writes_the_python_result(tmp_path):
    ds = xsfm.datasets.lorenz63(trajectories=3, steps=4, seed=1, burn_in=16)
    ds[["state"]].isel(time=[0]).to_netcdf(tmp_path / "x0.nc")
    ds[["obs"]].to_netcdf(tmp_path / "obs.nc")
    args = ["--model", "lorenz63-flowdas", "--members", "2", "--steps", "10"]
    for name in ("ana.zarr", "ana.nc"):
        res = _cli("assimilate", str(tmp_path / "x0.nc"), str(tmp_path / "obs.nc"),
                   str(tmp_path / name), *args, "--chunks", "trajectory=1")  # fmt: skip
        assert res.returncode == 0, res.stderr
    ref = ds["state"].isel(time=[0]).sfm.assimilate(ds["obs"], members=2, steps=10)
    zarr = xr.open_dataset(tmp_path / "ana.zarr", engine="zarr")
    nc = xr.open_dataset(tmp_path / "ana.nc")
    np.testing.assert_array_equal(zarr["state"].values, nc["state"].values)
    np.testing.assert_array_equal(zarr["state"].values, ref["state"].values)  # other chunking
    assert zarr["state"].attrs["units"] == ref["state"].attrs["units"]


def test_cli_runs_on_a_running_scheduler(tmp_path, coarse):
    distributed = pytest.importorskip("distributed")
    src = tmp_path / "in.nc"
    coarse.isel(sample=slice(0, 2)).to_netcdf(src)
    args = ["--model", MODEL, "--members", "2", "--steps", "2", "--chunks", "sample=1"]
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        res = _cli("downscale", str(src), str(tmp_path / "a.zarr"), *args,
                   "--scheduler", cluster.scheduler_address)  # fmt: skip
        assert res.returncode == 0, res.stderr
    ref = _cli("downscale", str(src), str(tmp_path / "b.zarr"), *args)
    assert ref.returncode == 0, ref.stderr
    a, b = xr.open_zarr(tmp_path / "a.zarr"), xr.open_zarr(tmp_path / "b.zarr")
    np.testing.assert_array_equal(a["vorticity"].values, b["vorticity"].values)


def test_a_job_killed_right_after_its_metadata_resumes(tmp_path):
    ds = xr.Dataset({"a": ("time", dask.array.arange(6.0, chunks=2))})
    key = job_key(command="test")
    target = check_output(tmp_path / "a.zarr", job=key)
    ds.assign_attrs({INCOMPLETE_ATTR: key}).to_zarr(target.path, compute=False, zarr_format=2)
    resumed = check_output(tmp_path / "a.zarr", job=key)  # metadata only: no region markers yet
    assert resumed.resume
    write_output(ds, resumed, progress=False)
    done = xr.open_zarr(tmp_path / "a.zarr")
    assert INCOMPLETE_ATTR not in done.attrs
    np.testing.assert_array_equal(done["a"].values, np.arange(6.0))
