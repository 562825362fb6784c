"""asv benchmarks of xsfm (see ``asv.conf.json``); ``studies/compare.py`` runs them without asv.

Every benchmark's ``setup`` calls ``torch.set_num_threads(1)`` (through :func:`single_thread`), so
figures are single-threaded and comparable between machines with different numbers of cores. Run
with ``OMP_NUM_THREADS=1`` as well.
"""

from __future__ import annotations


def single_thread() -> None:
    """Run torch (and through OMP_NUM_THREADS, numpy's BLAS) on one thread."""
    import torch

    torch.set_num_threads(1)
