"""The ``xsfm`` command line (also ``python -m xsfm``).

Subcommands: ``demo``, ``models``, ``downscale IN OUT``, ``assimilate STATE OBS OUT``, ``train``,
``import corrdiff PACKAGE OUT``, ``versions``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

__all__ = ["main"]


def _key_values(pairs: Sequence[str] | None, what: str) -> dict[str, str]:
    out = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise SystemExit(f"xsfm: {what} must look like card_name=dataset_name, got {pair!r}")
        key, value = pair.split("=", 1)
        out[key] = value
    return out


def _open(path: str, chunks: dict[str, int] | None = None):
    """Open a netCDF file or zarr store lazily (dask-backed when ``chunks`` is given)."""
    import os

    import xarray as xr

    if not os.path.exists(path):
        raise FileNotFoundError(f"no such file or directory: {path}")
    try:
        if path.rstrip("/").endswith(".zarr") or os.path.isdir(path):
            return xr.open_zarr(path, chunks=chunks)
        return xr.open_dataset(path, chunks=chunks)
    except (ValueError, ImportError) as err:
        raise SystemExit(
            f"xsfm: cannot open {path}: {err}. Install a netCDF backend with "
            "`pip install 'xsfm[io]'` (netCDF and zarr)."
        ) from None


def _chunks(pairs: Sequence[str] | None) -> dict[str, int]:
    """``--chunks time=4 --chunks trajectory=1`` -> ``{"time": 4, "trajectory": 1}``."""
    out = {}
    for key, value in _key_values(pairs, "--chunks").items():
        try:
            size = int(value)
        except ValueError:
            raise SystemExit(f"xsfm: --chunks {key}={value}: the size must be an integer") from None
        if size < 1:
            raise SystemExit(f"xsfm: --chunks {key}={value}: the size must be >= 1")
        out[key] = size
    return out


def _cmd_models(args: argparse.Namespace) -> int:
    import xsfm
    from xsfm.models.registry import has_weights, resolve_model_path

    for name in xsfm.list_models():
        model = xsfm.load_model(name)
        card = model.card
        path = resolve_model_path(name)
        ready = "ready" if (not model.needs_weights or has_weights(path)) else "weights missing"
        ins = ", ".join(card.input_names) or "any variable"
        print(f"{name:<24} {card.kind:<13} {card.method:<16} {ready:<16} inputs: {ins}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from xsfm.demo import run_demo

    run_demo(
        out_dir=args.out,
        members=args.members,
        model=args.model,
        seed=args.seed,
        threads=args.threads or None,
    )
    return 0


def _where(args: argparse.Namespace) -> dict[str, Any]:
    """Where and how a file job runs: ``--workers``/``--scheduler`` and ``--no-progress``."""
    return {
        "workers": args.workers,
        "address": args.scheduler,
        "progress": False if args.no_progress else None,
    }


def _cmd_downscale(args: argparse.Namespace) -> int:
    from xsfm.jobs import run_job, weights_id
    from xsfm.xr.files import check_output, input_identity, job_key

    chunks = _chunks(args.chunks)
    options = {
        "model": args.model,
        "members": args.members,
        "steps": args.steps,
        "seed": args.seed,
        "device": args.device,
        "batch_size": args.batch_size,
        "variables": _key_values(args.variable, "--variable") or None,
        "regrid": args.regrid,
        "solver": args.solver,
    }
    job = job_key(
        command="downscale", input=input_identity(args.input), chunks=chunks,
        weights=weights_id(args.model), **{k: v for k, v in options.items() if k != "batch_size"},
    )  # fmt: skip
    target = check_output(args.output, inputs=[args.input], overwrite=args.overwrite, job=job)
    ds = _open(args.input, chunks={})
    # output dims (member, *pass-through, y, x)
    return run_job(
        target, ds, chunks, lambda d: d.sfm.downscale(**options), lambda dims: slice(1, -2),
        **_where(args),
    )  # fmt: skip


def _cmd_assimilate(args: argparse.Namespace) -> int:
    from xsfm.jobs import run_job, weights_id
    from xsfm.xr.files import check_output, input_identity, job_key

    chunks = _chunks(args.chunks)
    options = {
        "model": args.model,
        "members": args.members,
        "seed": args.seed,
        "steps": args.steps,
        "time_step": args.time_step,
        "device": args.device,
    }
    job = job_key(
        command="assimilate", state=input_identity(args.state), obs=input_identity(args.obs),
        chunks=chunks, state_variable=args.state_variable, obs_variable=args.obs_variable,
        weights=weights_id(args.model), **options,
    )  # fmt: skip
    target = check_output(
        args.output, inputs=[args.state, args.obs], overwrite=args.overwrite, job=job
    )
    state = _open(args.state, chunks={})
    obs = _open(args.obs, chunks={})
    obs_var = args.obs_variable or next(iter(obs.data_vars))
    state_var = args.state_variable or next(iter(state.data_vars))
    for name, ds, flag in (
        (state_var, state, "--state-variable"),
        (obs_var, obs, "--obs-variable"),
    ):
        if name not in ds.data_vars:
            raise KeyError(f"{flag} {name!r} is not a variable of the file ({list(ds.data_vars)})")

    def run(ds: Any) -> Any:
        return ds[state_var].sfm.assimilate(obs[obs_var], **options)

    # output dims (member, *pass-through, time, *state)
    return run_job(
        target, state, chunks, run, lambda dims: slice(1, dims.index("time")), **_where(args)
    )


def _time_step(text: str | None) -> float | str | None:
    """``--time-step``: a number, or a duration such as ``6h``."""
    if text is None:
        return None
    try:
        return float(text) if "." in text or "e" in text.lower() else int(text)
    except ValueError:
        return text


def _cmd_train(args: argparse.Namespace) -> int:
    from xsfm.training.presets import parse_overrides, run_preset

    overrides = _key_values(args.set, "--set")
    if args.preset is not None:
        run_preset(
            method=args.method,
            preset=args.preset,
            data=args.data,
            out=args.out,
            steps=args.steps,
            seed=args.seed,
            overrides=overrides,
        )
        return 0
    options = parse_overrides(overrides)
    if args.steps is not None:
        options["steps"] = args.steps
    if args.name is not None:
        options["name"] = args.name
    if args.method == "flowdas":
        from xsfm.training.assimilator import fit_assimilator

        if args.data is None or not args.state_dims:
            raise ValueError(
                "give --data TRAJECTORIES (netCDF/zarr) and --state-dim for "
                "each dim of one state (e.g. --state-dim component), or --preset lorenz63"
            )
        data = _open(args.data)
        model = fit_assimilator(
            data,
            args.state_dims,
            variable=args.variable,
            time_dim=args.time_dim,
            seed=args.seed,
            **options,
        )
    else:
        from xsfm.training.fit import fit_downscaler

        if args.coarse is None or args.fine is None:
            raise ValueError(
                "give --coarse and --fine (netCDF/zarr files whose "
                "samples are paired by label), or --preset"
            )
        model = fit_downscaler(
            _open(args.coarse), _open(args.fine), method=args.method, seed=args.seed, **options
        )
    path = model.save(args.out)
    print(f"saved {model.name} to {path}")
    return 0


def _cmd_import(args: argparse.Namespace) -> int:
    from xsfm.models.corrdiff_import import import_corrdiff

    out = import_corrdiff(
        args.package, args.out, template=args.template, name=args.name, overwrite=args.overwrite
    )
    print(f"imported {args.package} to {out}; use it with model={str(out)!r}")
    return 0


def _cmd_versions(args: argparse.Namespace) -> int:
    import xsfm

    xsfm.show_versions()
    return 0


def _job_options(p: argparse.ArgumentParser) -> None:
    """Options every file-to-file job has: chunks, scheduler, overwrite, progress."""
    p.add_argument(
        "--chunks",
        action="append",
        default=None,
        metavar="DIM=SIZE",
        help="input chunks, one task and one output region each (repeatable; default: regions "
        "of about 64 MB along the first pass-through dim)",
    )
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--workers", type=int, default=None, help="run on a new local dask cluster of N processes"
    )
    where.add_argument(
        "--scheduler", default=None, metavar="ADDRESS", help="run on a running dask scheduler"
    )
    p.add_argument(
        "--overwrite", action="store_true", help="replace an existing output (never an input)"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    _threads_option(p)


def _threads_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads per process (default: 1, steady on a busy machine; 0: torch's "
        "own default)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``xsfm`` command."""
    parser = argparse.ArgumentParser(prog="xsfm", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="downscale the shipped test case and report metrics")
    p.add_argument(
        "--out", default="xsfm-demo-output", help="output directory (default: xsfm-demo-output)"
    )
    p.add_argument("--members", type=int, default=16, help="ensemble members (default: 16)")
    p.add_argument("--model", default=None, help="model (default: the shipped default)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    _threads_option(p)
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("models", help="list known models")
    p.set_defaults(func=_cmd_models)

    p = sub.add_parser(
        "downscale",
        help="downscale a netCDF/zarr file to a netCDF (.nc) or zarr (.zarr) ensemble",
        description=(
            "Downscale IN with a model to OUT (format from the suffix). The input and output path "
            "are checked before anything is computed; an existing OUT is refused unless "
            "--overwrite; a .nc file appears only when complete; an interrupted .zarr job is "
            "finished by rerunning the same command."
        ),
    )
    p.add_argument("input", help="coarse input: netCDF file or zarr store")
    p.add_argument("output", help="output: *.nc (netCDF) or *.zarr (zarr store)")
    p.add_argument("--model", required=True, help="model name (xsfm models) or model directory")
    p.add_argument(
        "--members", type=int, default=16, help="ensemble members per sample (default: 16)"
    )
    p.add_argument("--steps", type=int, default=None, help="sampler steps (default: the card's)")
    p.add_argument(
        "--solver", choices=["euler", "heun"], default=None, help="ODE solver (default: the card's)"
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--device", default=None, help="cpu, cuda or auto (default: auto)")
    p.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="samples per batch (default: from the members; results on the CPU do not depend on it)",
    )
    p.add_argument(
        "--regrid", choices=["bilinear"], default=None, help="accept input on another grid"
    )
    p.add_argument(
        "--variable", action="append", help="card_name=dataset_name (repeatable)", default=None
    )
    _job_options(p)
    p.set_defaults(func=_cmd_downscale)

    p = sub.add_parser(
        "assimilate",
        help="assimilate observations from an initial state",
        description=(
            "Assimilate OBS from the initial STATE with a model; write OUT (*.nc or *.zarr) with "
            "the same file safety as downscale."
        ),
    )
    p.add_argument("state", help="initial state (netCDF/zarr), optionally with a member dim")
    p.add_argument("obs", help="observations (netCDF/zarr), paired with the state by label")
    p.add_argument("output", help="output: *.nc (netCDF) or *.zarr (zarr store)")
    p.add_argument("--model", required=True, help="assimilation model name or directory")
    p.add_argument("--members", type=int, default=8, help="ensemble members (default: 8)")
    p.add_argument("--steps", type=int, default=None, help="SDE steps (default: the card's)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument(
        "--state-variable", default=None, help="state variable (default: the file's first)"
    )
    p.add_argument(
        "--obs-variable", default=None, help="observation variable (default: the file's first)"
    )
    p.add_argument(
        "--time-step", type=_time_step, default=None, help="model time step (number or e.g. 6h)"
    )
    p.add_argument("--device", default=None, help="cpu, cuda or auto (default: auto)")
    _job_options(p)
    p.set_defaults(func=_cmd_assimilate)

    p = sub.add_parser(
        "train",
        help="train a model from a preset or on your own netCDF/zarr files",
        description=(
            "Own data: `xsfm train sfm --coarse C.nc --fine F.nc --out DIR` (downscaling; samples "
            "paired by label) or `xsfm train flowdas --data TRAJ.zarr --state-dim component --out "
            "DIR` (assimilation; evenly spaced times). Presets: `--preset kolmogorov|cwa-2km|"
            "lorenz63`. Options of the fit functions go through --set key=value."
        ),
    )
    p.add_argument(
        "method",
        help="sfm, sfm-two-stage, sfm-fixed-sigma, regression, cfm, edm, corrdiff, flowdas",
    )
    p.add_argument("--preset", default=None, help="kolmogorov, cwa-2km or lorenz63")
    p.add_argument(
        "--data",
        default=None,
        help="training data (zarr/netCDF): the preset's, or FlowDAS trajectories",
    )
    p.add_argument("--coarse", default=None, help="coarse inputs (downscaling on own data)")
    p.add_argument("--fine", default=None, help="fine truth (downscaling on own data)")
    p.add_argument(
        "--state-dim",
        dest="state_dims",
        action="append",
        help="a dim of one state (FlowDAS on own data; repeatable)",
    )
    p.add_argument("--variable", default=None, help="the state variable (FlowDAS on own data)")
    p.add_argument("--time-dim", default="time", help="the time dim (FlowDAS on own data)")
    p.add_argument("--name", default=None, help="model name on the card")
    p.add_argument("--out", required=True, help="output model directory")
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--set", action="append", help="key=value override of a preset option")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser(
        "import",
        help="import a model from another framework (NVIDIA CorrDiff packages)",
        description=(
            "`xsfm import corrdiff PACKAGE OUT`: read a CorrDiff package (the zip earth2studio's "
            "CorrDiffTaiwan downloads from NGC, or its folder: checkpoints/regression.mdlus, "
            "checkpoints/diffusion.mdlus, dataset/*.zarr) and write an xsfm model directory."
        ),
    )
    p.add_argument("kind", choices=["corrdiff"], help="what to import")
    p.add_argument("package", help="the package zip or folder")
    p.add_argument("out", help="the model directory to write")
    p.add_argument(
        "--template", default="cwa-2km", help="card with the variables and grid (default: cwa-2km)"
    )
    p.add_argument("--name", default=None, help="model name (default: the template's)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing model directory")
    p.set_defaults(func=_cmd_import)

    p = sub.add_parser("versions", help="print versions for bug reports")
    p.set_defaults(func=_cmd_versions)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = build_parser().parse_args(argv)
    if getattr(args, "threads", 0) and args.command != "demo":
        import torch

        torch.set_num_threads(args.threads)
    try:
        return int(args.func(args) or 0)
    except (ValueError, KeyError, TypeError, FileNotFoundError) as err:
        print(f"xsfm {args.command}: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
