"""Writing results to files: complete or absent, never over an input, resumable for zarr.

:func:`check_output` validates an output path *before* anything is computed: the format comes from
the suffix (``.nc``/``.nc4``/``.netcdf`` -> netCDF, ``.zarr`` -> zarr), the folder must exist and be
writable, the path must not be one of the inputs (not even with ``overwrite``), and an existing
output is refused unless ``overwrite=True`` or it is an interrupted zarr job of the same call, which
is then resumed.

:func:`write_output` writes a (lazy) Dataset:

* **netCDF**: to a temporary name beside the target (``.NAME.xsfm-partial-PID``), renamed onto the
  target only when complete, so the target never exists half-written; on an error the temporary
  file is removed.
* **zarr**: the store's metadata and coordinates first, with the attribute
  ``xsfm_incomplete`` holding the job's key; then one region per chunk of the region dim (the first
  dim chunked in more than one piece), each computed, written and recorded by a marker file in
  ``.xsfm-regions/``; at the end the markers and the attribute are removed and the metadata
  consolidated. Rerunning the same call after an interruption writes only the regions without a
  marker, and the store ends identical to one written in one go (results are deterministic per
  region). A store that still has ``xsfm_incomplete`` is not a finished result.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
from collections.abc import Hashable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from xsfm.errors import InputError
from xsfm.progress import show_progress

__all__ = [
    "INCOMPLETE_ATTR",
    "OutputTarget",
    "check_output",
    "job_key",
    "output_format",
    "write_output",
]

INCOMPLETE_ATTR = "xsfm_incomplete"
REGIONS_DIR = ".xsfm-regions"
ZARR_FORMAT = 2  # readable by every zarr and netCDF-zarr implementation; consolidated metadata
FORMATS = {".nc": "netcdf", ".nc4": "netcdf", ".netcdf": "netcdf", ".zarr": "zarr"}


@dataclass(frozen=True)
class OutputTarget:
    """A validated output: where, in which format, and whether it resumes an interrupted job."""

    path: Path
    format: str
    resume: bool = False
    job: str | None = None


def output_format(path: str | os.PathLike[str]) -> str:
    """The format of ``path`` from its suffix: ``"netcdf"`` or ``"zarr"``.

    Examples
    --------
    >>> output_format("out.zarr"), output_format("run/out.nc")
    ('zarr', 'netcdf')
    """
    suffix = Path(str(path).rstrip("/")).suffix.lower()
    if suffix not in FORMATS:
        raise InputError(
            f"output {str(path)!r}: cannot tell the format from the suffix {suffix or '(none)'!r}; "
            f"name it *.nc (netCDF) or *.zarr (zarr store)"
        )
    return FORMATS[suffix]


def job_key(**parts: Any) -> str:
    """A stable text key of one job (its command, options and inputs' identities).

    Inputs given as paths are identified by resolved path, size and modification time, so a
    changed input never resumes a store written from the old one.

    Examples
    --------
    >>> job_key(model="m", members=4) == job_key(members=4, model="m")
    True
    """
    return json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))


def input_identity(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Resolved path, total size and latest modification time of a file or store."""
    p = Path(path).resolve()
    files = [p] if p.is_file() else [f for f in p.rglob("*") if f.is_file()]
    stats = [f.stat() for f in files]
    return {
        "path": str(p),
        "bytes": sum(s.st_size for s in stats),
        "mtime_ns": max((s.st_mtime_ns for s in stats), default=0),
    }


def _same_path(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def _stored_job(path: Path) -> str | None:
    """The ``xsfm_incomplete`` key of an existing zarr store (None: finished or not xsfm's)."""
    for name in ("zarr.json", ".zattrs"):
        meta = path / name
        if meta.is_file():
            try:
                doc = json.loads(meta.read_text())
            except (OSError, ValueError):
                return None
            attrs = doc.get("attributes", doc) if name == "zarr.json" else doc
            value = attrs.get(INCOMPLETE_ATTR) if isinstance(attrs, dict) else None
            return str(value) if value is not None else None
    return None


def check_output(
    path: str | os.PathLike[str],
    *,
    inputs: Iterable[str | os.PathLike[str]] = (),
    overwrite: bool = False,
    job: str | None = None,
) -> OutputTarget:
    """Validate an output path before computing; return the target.

    Parameters
    ----------
    path
        Output file (``*.nc``) or store (``*.zarr``).
    inputs
        The job's input paths: the output may never be one of them.
    overwrite
        Replace an existing output (never an input).
    job
        The job's key (:func:`job_key`): an interrupted zarr store with the same key is resumed.

    Examples
    --------
    >>> import tempfile
    >>> t = check_output(tempfile.mkdtemp() + "/out.zarr")
    >>> t.format, t.resume
    ('zarr', False)
    """
    target = Path(os.fspath(path).rstrip("/"))
    fmt = output_format(target)
    for source in inputs:
        if target.resolve() == Path(source).resolve() or _same_path(target, Path(source)):
            raise InputError(
                f"output {str(target)!r} is the job's own input {str(source)!r}; write to another "
                "path (overwriting an input is never done, not even with --overwrite)"
            )
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(
            f"output {str(target)!r}: the folder {str(parent)!r} does not exist; create it first"
        )
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"output {str(target)!r}: the folder {str(parent)!r} is not writable")
    if not (target.exists() or target.is_symlink()):
        return OutputTarget(target, fmt, job=job)
    stored = _stored_job(target) if fmt == "zarr" and target.is_dir() else None
    if stored is not None and job is not None and stored == job and not overwrite:
        return OutputTarget(target, fmt, resume=True, job=job)
    if overwrite:
        return OutputTarget(target, fmt, job=job)
    if stored is not None:
        raise InputError(
            f"output {str(target)!r} is an interrupted xsfm job with other settings or inputs; "
            "rerun the command that started it to finish it, or pass overwrite (--overwrite) to "
            "start again"
        )
    raise InputError(
        f"output {str(target)!r} already exists; choose another path, or pass overwrite "
        "(--overwrite) to replace it"
    )


def _zarr_regions(ds: xr.Dataset) -> tuple[Hashable | None, list[slice]]:
    """The region dim and its chunks as slices (``(None, [slice(None)])``: one region).

    The region dim is the first dim a data variable is chunked along in more than one piece.
    """
    for var in ds.data_vars.values():
        for dim, sizes in zip(var.dims, var.chunks or (), strict=False):
            if len(sizes) > 1:
                bounds = np.cumsum((0, *sizes))
                return dim, [slice(int(a), int(b)) for a, b in itertools.pairwise(bounds)]
    return None, [slice(None)]


def _progress(total: int, desc: str, enabled: bool | None) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="region", disable=not show_progress(enabled))


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def write_output(ds: xr.Dataset, target: OutputTarget, *, progress: bool | None = None) -> Path:
    """Write ``ds`` to ``target`` (see the module docstring); return the path.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> ds = xr.Dataset({"a": ("time", np.arange(4.0))}).chunk(time=2)
    >>> t = check_output(tempfile.mkdtemp() + "/out.zarr")
    >>> float(xr.open_zarr(write_output(ds, t, progress=False))["a"].sum())
    6.0
    """
    if target.format == "netcdf":
        return _write_netcdf(ds, target, progress)
    return _write_zarr(ds, target, progress)


def _write_netcdf(ds: xr.Dataset, target: OutputTarget, progress: bool | None) -> Path:
    path = target.path
    partial = path.with_name(f".{path.name}.xsfm-partial-{os.getpid()}")
    try:
        delayed = ds.to_netcdf(partial, compute=False)
        with dask_progress(progress, f"writing {path.name}"):
            delayed.compute()
        os.replace(partial, path) if not path.is_dir() else _replace_dir(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)  # the target stays as it was
        raise
    return path


def _replace_dir(new: Path, old: Path) -> None:
    shutil.rmtree(old)
    os.replace(new, old)


def _write_zarr(ds: xr.Dataset, target: OutputTarget, progress: bool | None) -> Path:
    path = target.path
    job = target.job or job_key(output=str(path))
    dim, regions = _zarr_regions(ds)
    marks = path / REGIONS_DIR
    if not target.resume:
        if path.exists() or path.is_symlink():
            _remove(path)  # overwrite was asked for (check_output)
        ds.assign_attrs({INCOMPLETE_ATTR: job}).to_zarr(
            path, mode="w-", compute=False, zarr_format=ZARR_FORMAT, consolidated=True
        )
    marks.mkdir(exist_ok=True)  # also when a job died between the metadata and this line
    todo = [r for r in regions if not (marks / _mark_name(dim, r)).exists()]
    with _progress(len(regions), f"writing {path.name}", progress) as bar:
        bar.update(len(regions) - len(todo))
        for region in todo:
            if dim is None:
                _write_whole(ds, path)
            else:
                part = ds.isel({dim: region})
                other = [n for n, v in part.variables.items() if dim not in v.dims]
                part.drop_vars(other).drop_attrs().to_zarr(path, region={dim: region}, mode="r+")
            (marks / _mark_name(dim, region)).touch()
            bar.update(1)
    _finish_zarr(path)
    return path


def _write_whole(ds: xr.Dataset, path: Path) -> None:
    """Write every dask-backed variable of an unchunked (one region) Dataset into its store."""
    lazy = [n for n, v in ds.variables.items() if v.chunks is not None]
    if lazy:
        region = {d: slice(None) for n in lazy for d in ds[n].dims}
        ds[lazy].drop_attrs().to_zarr(path, region=region, mode="r+")


def _mark_name(dim: Hashable | None, region: slice) -> str:
    return "all" if dim is None else f"{dim}-{region.start}-{region.stop}"


def _finish_zarr(path: Path) -> None:
    import zarr

    group = zarr.open_group(str(path), mode="r+")
    if INCOMPLETE_ATTR in group.attrs:
        del group.attrs[INCOMPLETE_ATTR]
    shutil.rmtree(path / REGIONS_DIR, ignore_errors=True)
    zarr.consolidate_metadata(str(path), zarr_format=ZARR_FORMAT)


@contextlib.contextmanager
def dask_progress(enabled: bool | None, desc: str) -> Iterator[None]:
    """A tqdm bar over the dask tasks computed inside the block (local schedulers)."""
    if not show_progress(enabled):
        yield
        return
    from dask.callbacks import Callback
    from tqdm.auto import tqdm

    class _Bar(Callback):  # type: ignore[misc]
        def _start_state(self, dsk: Any, state: Any) -> None:
            self._bar = tqdm(total=sum(len(state[k]) for k in ("ready", "waiting", "running"))
                             + len(state.get("finished", ())), desc=desc, unit="task")  # fmt: skip

        def _posttask(self, key: Any, result: Any, dsk: Any, state: Any, worker_id: Any) -> None:
            self._bar.update(1)

        def _finish(self, dsk: Any, state: Any, errored: bool) -> None:
            self._bar.close()

    with _Bar():
        yield
