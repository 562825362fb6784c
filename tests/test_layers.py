"""The package's layers, checked on the source (see docs/architecture.md).

Floors, bottom up; a module may import (at module level or inside a function) only from its own
floor or below, and from the leaves (``xsfm.errors``, ``xsfm._versions``, ``xsfm.progress``):

1. tensor core: ``models``, ``sampling``, ``nn``, ``observations``, ``filters``: never xarray;
2. ``backend``, ``run``: arrays <-> tensors, one chunk of a model at a time;
3. the xarray layer ``xr``: never torch;
4. faces: ``downscaling``, ``assimilation``, ``accessor``, the package itself;
5. around: ``metrics``, ``datasets``, ``training``, ``testing``, ``plot``;
6. entry points: ``cli``, ``demo``, ``__main__``.

Imports under ``if TYPE_CHECKING:`` are type hints only and do not count. Module-level imports
must not form a cycle.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "xsfm"

FLOORS = {
    "models": 1,
    "sampling": 1,
    "nn": 1,
    "observations": 1,
    "filters": 1,
    "backend": 2,
    "run": 2,
    "xr": 3,
    "downscaling": 4,
    "assimilation": 4,
    "accessor": 4,
    "": 4,  # xsfm/__init__.py
    "model": 4,
    "forecasting": 4,
    "metrics": 5,
    "datasets": 5,
    "training": 5,
    "testing": 5,
    "plot": 5,
    "cli": 6,
    "jobs": 6,
    "demo": 6,
    "__main__": 6,
}
LEAVES = {"errors", "_versions", "_version", "progress"}
TENSOR_CORE = {name for name, floor in FLOORS.items() if floor == 1}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _top(module: str) -> str:
    """``xsfm.models.flowdas`` -> ``models``; ``xsfm`` -> ``""``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.Module, module: str) -> tuple[set[str], set[str]]:
    """(module-level imports, all imports) of a module, without TYPE_CHECKING blocks."""
    top_level: set[str] = set()
    everywhere: set[str] = set()
    package = (
        module
        if (ROOT.parent / module.replace(".", "/") / "__init__.py").exists()
        else module.rpartition(".")[0]
    )

    def names(node: ast.AST) -> list[str]:
        if isinstance(node, ast.Import):
            return [alias.name for alias in node.names]
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            # ``from xsfm.xr import units`` imports the submodule xsfm.xr.units
            found = []
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                path = ROOT.parent / candidate.replace(".", "/")
                found.append(
                    candidate if path.with_suffix(".py").exists() or path.is_dir() else base
                )
            return found
        return []

    def visit(node: ast.AST, level: int) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for orelse in child.orelse:
                    visit(orelse, level)
                continue
            found = names(child)
            everywhere.update(found)
            if level == 0:
                top_level.update(found)
            inner = isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            visit(child, level + 1 if inner else level)

    visit(tree, 0)
    return top_level, everywhere


def _graph() -> dict[str, tuple[set[str], set[str]]]:
    out = {}
    for path in sorted(ROOT.rglob("*.py")):
        module = _module_name(path)
        out[module] = _imports(ast.parse(path.read_text()), module)
    return out


GRAPH = _graph()


def test_every_module_has_a_floor():
    unknown = sorted({_top(m) for m in GRAPH} - set(FLOORS) - LEAVES)
    assert not unknown, f"give these top-level modules a floor in tests/test_layers.py: {unknown}"


def test_no_module_imports_from_a_floor_above():
    bad = []
    for module, (_, everywhere) in GRAPH.items():
        mine = FLOORS.get(_top(module))
        if mine is None:
            continue
        for target in everywhere:
            if not target.startswith("xsfm.") and target != "xsfm":
                continue
            theirs = FLOORS.get(_top(target))
            if _top(target) in LEAVES or theirs is None:
                continue
            if theirs > mine:
                bad.append(f"{module} (floor {mine}) imports {target} (floor {theirs})")
    assert not bad, "\n".join(sorted(bad))


def test_the_tensor_core_never_imports_xarray():
    bad = [
        f"{module} imports {target}"
        for module, (_, everywhere) in GRAPH.items()
        if _top(module) in TENSOR_CORE
        for target in everywhere
        if target.split(".")[0] in {"xarray", "cf_xarray", "pint_xarray"}
    ]
    assert not bad, "\n".join(sorted(bad))


def test_the_xarray_layer_never_imports_torch():
    bad = [
        f"{module} imports {target}"
        for module, (_, everywhere) in GRAPH.items()
        if _top(module) == "xr"
        for target in everywhere
        if target.split(".")[0] in {"torch", "cupy"}
    ]
    assert not bad, "\n".join(sorted(bad))


def test_module_level_imports_form_no_cycle():
    edges = {
        module: {t for t in top if t in GRAPH and t != module} for module, (top, _) in GRAPH.items()
    }
    # a package imports its own submodules' names; an edge to a parent package is how Python
    # imports a submodule at all, so drop child -> ancestor edges
    for module, targets in edges.items():
        edges[module] = {t for t in targets if not module.startswith(t + ".")}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state:
            cycle = visit(node)
            assert cycle is None, "import cycle: " + " -> ".join(cycle)


@pytest.mark.parametrize("module", ["xsfm", "xsfm.xr.prepare", "xsfm.xr.observations"])
def test_light_imports_do_not_load_torch(module):
    code = f"import sys, {module}; assert 'torch' not in sys.modules, sorted(sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True)
