"""Grid specifications in model cards, and the coordinates they describe.

A grid spec is plain JSON::

    {"dims": ["y", "x"],
     "coords": {"y": {"start": 0.098, "step": 0.196, "size": 16,
                      "attrs": {"standard_name": "projection_y_coordinate", "units": "m", "axis": "Y"}},
                "x": {...}},
     "periodic": true}

``start`` is the first cell centre, ``step`` the spacing (positive: coordinates are stored ascending),
``size`` the number of points. Latitude/longitude grids use dims such as ``["lat", "lon"]`` with
``standard_name`` ``latitude``/``longitude``. A card may instead give a *rule* for the fine grid,
``{"rule": "factor", "factor": 4}``: the fine grid refines whatever coarse grid it is given, cell centre
preserving (the geometry of bilinear upsampling with ``align_corners=False``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["axis_values", "axis_spec", "grid_spec_from_coords", "refine_axis"]


def axis_values(axis: dict[str, Any]) -> np.ndarray:
    """Coordinate values of one axis of a grid spec.

    Examples
    --------
    >>> axis_values({"start": 0.5, "step": 1.0, "size": 3})
    array([0.5, 1.5, 2.5])
    """
    return float(axis["start"]) + float(axis["step"]) * np.arange(int(axis["size"]), dtype=np.float64)


def axis_spec(values: np.ndarray, attrs: dict[str, Any] | None = None) -> dict[str, Any]:
    """Grid-spec entry of a regular 1-D coordinate (ascending or descending).

    Examples
    --------
    >>> axis_spec(np.array([1.0, 2.0, 3.0]))["step"]
    1.0
    """
    values = np.asarray(values, dtype=np.float64)
    step = float(np.mean(np.diff(values))) if values.size > 1 else 1.0
    start = float(values[0])
    if step < 0:
        start, step = float(values[-1]), -step
    return {"start": start, "step": step, "size": int(values.size), "attrs": dict(attrs or {})}


def refine_axis(axis: dict[str, Any], factor: int) -> dict[str, Any]:
    """Fine axis with ``factor`` cells per coarse cell, cell centres preserved.

    Examples
    --------
    >>> refine_axis({"start": 0.5, "step": 1.0, "size": 2}, 2)["start"]
    0.25
    """
    step = float(axis["step"]) / factor
    start = float(axis["start"]) - float(axis["step"]) / 2 + step / 2
    return {**axis, "start": start, "step": step, "size": int(axis["size"]) * factor}


def grid_spec_from_coords(
    coords: dict[str, tuple[np.ndarray, dict[str, Any]]], periodic: bool = False
) -> dict[str, Any]:
    """Grid spec from ``{dim: (values, attrs)}`` in (y, x) order."""
    return {
        "dims": list(coords),
        "coords": {dim: axis_spec(values, attrs) for dim, (values, attrs) in coords.items()},
        "periodic": periodic,
    }
