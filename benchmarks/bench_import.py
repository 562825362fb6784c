"""Import time of ``import xsfm`` in a fresh interpreter.

``import xsfm`` registers the ``.sfm`` accessor and must stay light: it must not import torch or
cupy (a model loads them on first use). ``timeraw_*`` benchmarks run their code in a new process, so
nothing is cached from other benchmarks.
"""

from __future__ import annotations


def timeraw_import_xsfm() -> str:
    """Time ``import xsfm`` (xarray, numpy and pint included, torch excluded)."""
    return """
    import xsfm
    """


def timeraw_import_xsfm_after_xarray() -> tuple[str, str]:
    """Time ``import xsfm`` with xarray already imported: xsfm's own share of the import."""
    return "import xsfm", "import xarray"


def timeraw_import_xsfm_and_metrics() -> str:
    """Time ``import xsfm`` followed by the metrics module (pure numpy/xarray)."""
    return """
    import xsfm
    xsfm.metrics
    """


def track_import_xsfm_loads_torch() -> int:
    """1 when a fresh ``import xsfm`` imports torch (it must stay 0)."""
    import subprocess
    import sys

    code = "import sys, xsfm; print(int('torch' in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(out.stdout.strip())


track_import_xsfm_loads_torch.unit = "loaded"  # type: ignore[attr-defined]
