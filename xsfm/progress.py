"""Progress bars for long calls, with no dependence on where the work runs.

The faces open a bar with :func:`reporting` around an eager run; the loops that do the work (the
samples of a downscaling chunk, the steps of a rollout or a filter) call :func:`tick`. The bar
lives in a context variable, so work running on dask's threads or workers (lazy results) ticks
nothing: their progress is the scheduler's to show (the ``xsfm`` command line draws one per
output region).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from contextvars import ContextVar

__all__ = ["reporting", "show_progress", "tick"]

_BAR: ContextVar[Callable[[int], object] | None] = ContextVar("xsfm_progress", default=None)


def show_progress(enabled: bool | None) -> bool:
    """Whether to draw a bar: ``enabled`` itself, or (None) on a terminal or in Jupyter.

    With ``enabled=None`` the environment variable ``TQDM_DISABLE`` (tqdm's own switch, any value
    but ``0``/``false``/empty) turns the bars off, e.g. in documentation builds and CI logs.

    Examples
    --------
    >>> show_progress(False), show_progress(True)
    (False, True)
    """
    if enabled is not None:
        return bool(enabled)
    if os.environ.get("TQDM_DISABLE", "").strip().lower() not in ("", "0", "false"):
        return False
    isatty = getattr(sys.stderr, "isatty", None)
    return bool(isatty and isatty()) or "ipykernel" in sys.modules


def tick(n: int = 1) -> None:
    """Advance the current bar by ``n`` (nothing when no bar is open in this context)."""
    update = _BAR.get()
    if update is not None:
        update(n)


@contextlib.contextmanager
def reporting(
    total: int, desc: str, enabled: bool | None = None, unit: str = "it"
) -> Iterator[None]:
    """A tqdm bar (``tqdm.auto``: a widget in Jupyter) advanced by :func:`tick` inside the block.

    Examples
    --------
    >>> with reporting(3, "work", enabled=False):
    ...     tick(); tick(2)
    """
    if not show_progress(enabled):
        yield
        return
    from tqdm.auto import tqdm

    with tqdm(total=total, desc=desc, unit=unit) as bar:
        token = _BAR.set(bar.update)
        try:
            yield
        finally:
            _BAR.reset(token)
