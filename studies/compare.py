"""Run the asv benchmarks of this directory without asv and print the figures side by side.

Usage (from the repository root)::

    OMP_NUM_THREADS=1 python studies/compare.py                      # all benchmarks
    OMP_NUM_THREADS=1 python studies/compare.py -k downscale -r 5    # a subset, 5 repeats
    OMP_NUM_THREADS=1 python studies/compare.py --save before.json   # keep the figures...
    OMP_NUM_THREADS=1 python studies/compare.py --against before.json  # ...and compare later

The same functions asv runs are called: ``setup`` (which sets ``torch.set_num_threads(1)``), then
``time_*`` with :mod:`timeit` (the median and the best of ``--repeat`` rounds, each round looping
enough times to last about 0.1 s), ``timeraw_*`` in fresh interpreters, ``peakmem_*`` in a fresh
interpreter reporting its maximum resident set size (as asv does), and ``track_*`` once. With
``--against``, a column shows the saved figures and another the ratio new/old (above 1: slower or
bigger).
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import itertools
import json
import os
import statistics
import subprocess
import sys
import textwrap
import timeit
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

_ROOT = Path(__file__).resolve().parent.parent
_MODULES = ("bench_import", "bench_downscale", "bench_metrics")
_KINDS = ("time_", "timeraw_", "peakmem_", "track_")


def _cases() -> Iterator[tuple[str, type | None, str, tuple[Any, ...]]]:
    """(module, class or None, method name, params) for every benchmark, in file order."""
    for modname in _MODULES:
        module = importlib.import_module(f"benchmarks.{modname}")
        for name, obj in vars(module).items():
            if (
                inspect.isfunction(obj)
                and name.startswith(_KINDS)
                and obj.__module__ == module.__name__
            ):
                yield modname, None, name, ()
            elif inspect.isclass(obj) and obj.__module__ == module.__name__:
                params = getattr(obj, "params", None)
                if params is None:
                    grid: list[tuple[Any, ...]] = [()]
                elif params and isinstance(params[0], list):
                    grid = list(itertools.product(*params))
                else:
                    grid = [(p,) for p in params]
                for attr in vars(obj):
                    if attr.startswith(_KINDS):
                        for p in grid:
                            yield modname, obj, attr, p


def _label(modname: str, cls: type | None, name: str, params: tuple[Any, ...]) -> str:
    qual = f"{modname}.{cls.__name__}.{name}" if cls else f"{modname}.{name}"
    return qual + (f"({', '.join(map(str, params))})" if params else "")


def _timeit(func: Callable[[], Any], repeat: int) -> list[float]:
    timer = timeit.Timer(func)
    number, _ = timer.autorange() if repeat > 1 else (1, None)
    number = max(1, number // 2)  # autorange aims at 0.2 s; about 0.1 s per round is enough
    return [t / number for t in timer.repeat(repeat=repeat, number=number)]


def _fresh(code: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=_ROOT, env=env
    )


def _timeraw(code: str | tuple[str, str], repeat: int) -> list[float]:
    code, setup = code if isinstance(code, tuple) else (code, "")
    body = textwrap.indent(textwrap.dedent(code).strip(), "    ")
    probe = (
        f"{textwrap.dedent(setup).strip()}\n"
        "import time\n"
        "t0 = time.perf_counter()\n"
        "if True:\n"
        f"{body}\n"
        "print(time.perf_counter() - t0)\n"
    )
    return [float(_fresh(probe).stdout.strip().splitlines()[-1]) for _ in range(max(repeat, 3))]


def _peakmem(modname: str, cls: type | None, name: str, params: tuple[Any, ...]) -> float:
    target = f"{cls.__name__}()" if cls else None
    call = (
        f"b = m.{target}\n"
        f"b.setup(*{params!r}) if hasattr(b, 'setup') else None\n"
        f"b.{name}(*{params!r})\n"
        if target
        else f"m.{name}()\n"
    )
    code = (
        f"import sys, resource; sys.path.insert(0, {str(_ROOT)!r})\n"
        f"import benchmarks.{modname} as m\n"
        f"{call}"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)\n"  # KiB on Linux
    )
    return float(_fresh(code).stdout.strip().splitlines()[-1])


def run(pattern: str | None, repeat: int) -> dict[str, dict[str, Any]]:
    """Run the benchmarks whose label contains ``pattern``; return ``{label: figures}``."""
    results: dict[str, dict[str, Any]] = {}
    instances: dict[tuple[type, tuple[Any, ...]], Any] = {}
    for modname, cls, name, params in _cases():
        label = _label(modname, cls, name, params)
        if pattern and pattern not in label:
            continue
        print(f"  running {label} ...", file=sys.stderr, flush=True)
        if name.startswith("peakmem_"):
            results[label] = {
                "kind": "peakmem",
                "value": _peakmem(modname, cls, name, params),
                "unit": "B",
            }
            continue
        if cls is None:
            func = getattr(importlib.import_module(f"benchmarks.{modname}"), name)
            bound: Callable[[], Any] = func
            unit = getattr(func, "unit", "")
        else:
            key = (cls, params)
            if key not in instances:
                instance = cls()
                if hasattr(instance, "setup"):
                    instance.setup(*params)
                instances[key] = instance
            method = getattr(instances[key], name)
            bound = lambda method=method, params=params: method(*params)  # noqa: E731
            unit = getattr(method, "unit", "")
        if name.startswith("timeraw_"):
            times = _timeraw(bound(), repeat)
        elif name.startswith("time_"):
            times = _timeit(bound, repeat)
        else:
            results[label] = {"kind": "track", "value": float(bound()), "unit": unit}
            continue
        results[label] = {
            "kind": "time",
            "value": statistics.median(times),
            "best": min(times),
            "unit": "s",
        }
    return results


def _fmt(entry: dict[str, Any] | None, key: str = "value") -> str:
    if entry is None or key not in entry:
        return "-"
    value, unit = entry[key], entry["unit"]
    if unit == "s":
        for scale, suffix in ((1.0, "s"), (1e-3, "ms"), (1e-6, "us")):
            if value >= scale:
                return f"{value / scale:.3g} {suffix}"
        return f"{value * 1e9:.3g} ns"
    if unit == "B":
        return f"{value / 2**20:.1f} MiB"
    return f"{value:.3g} {unit}".strip()


def table(results: dict[str, dict[str, Any]], against: dict[str, dict[str, Any]] | None) -> str:
    """Format results (and saved ones) as a plain-text table."""
    head = ["benchmark", "median", "best"] + (["saved", "ratio"] if against is not None else [])
    rows = []
    for label, entry in results.items():
        row = [label, _fmt(entry), _fmt(entry, "best")]
        if against is not None:
            old = against.get(label)
            ratio = f"{entry['value'] / old['value']:.2f}" if old and old["value"] else "-"
            row += [_fmt(old), ratio]
        rows.append(row)
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = [
        "  ".join(
            h.ljust(w) if i == 0 else h.rjust(w)
            for i, (h, w) in enumerate(zip(head, widths, strict=True))
        )
    ]
    lines.append("  ".join("-" * w for w in widths))
    for r in rows:
        lines.append(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(r, widths, strict=True))
            )
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "-k", "--filter", default=None, help="run only benchmarks whose name contains this"
    )
    parser.add_argument(
        "-r", "--repeat", type=int, default=5, help="timing rounds per benchmark (default 5)"
    )
    parser.add_argument(
        "--save", type=Path, default=None, help="write the figures to this JSON file"
    )
    parser.add_argument(
        "--against", type=Path, default=None, help="JSON file saved by an earlier --save"
    )
    args = parser.parse_args(argv)
    if os.environ.get("OMP_NUM_THREADS") != "1":
        print("note: set OMP_NUM_THREADS=1 for figures comparable with asv's", file=sys.stderr)
    against = json.loads(args.against.read_text()) if args.against else None
    results = run(args.filter, args.repeat)
    print(table(results, against))
    if args.save:
        args.save.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    if str(_ROOT) not in sys.path:
        sys.path.insert(0, str(_ROOT))
    sys.exit(main())
