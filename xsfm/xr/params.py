"""Validation of the faces' parameters, done once at the face and passed down typed."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["check_members"]


def check_members(members: Any) -> int:
    """Validate the ensemble size."""
    if isinstance(members, bool) or not isinstance(members, (int, np.integer)):
        raise TypeError(
            f"members must be an integer >= 1, got {members!r} ({type(members).__name__})"
        )
    if members < 1:
        raise ValueError(f"members must be >= 1 (the ensemble size), got {members}")
    return int(members)
