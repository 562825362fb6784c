"""Small valid inputs for models (``Model.example_input()``).

A model directory may ship ``example.safetensors`` with a tensor ``coarse`` of shape
``[n, C, h, w]`` (card units, card input order) and optionally ``fine`` ``[n, Cout, H, W]`` (the truth);
the example Dataset is built from it on the card's coarse grid. Otherwise a smooth synthetic field is made
on the card's grid (or on a small projection grid for grid-agnostic models such as ``interpolation``).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

if TYPE_CHECKING:
    from xsfm.model import Model

__all__ = ["example_input", "example_truth", "load_example_arrays"]

_GENERIC_GRID = {
    "y": {
        "name": "y",
        "size": 16,
        "start": 12500.0,
        "step": 25000.0,
        "units": "m",
        "standard_name": "projection_y_coordinate",
        "long_name": "y coordinate of projection",
    },
    "x": {
        "name": "x",
        "size": 16,
        "start": 12500.0,
        "step": 25000.0,
        "units": "m",
        "standard_name": "projection_x_coordinate",
        "long_name": "x coordinate of projection",
    },
}
_ATTR_KEYS = ("standard_name", "units", "long_name")


def load_example_arrays(model: Model) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
    """The arrays and metadata of the model's ``example.safetensors`` (``None`` if it has none)."""
    from xsfm.models.io import EXAMPLE_FILE, has_example, read_safetensors_header

    if not has_example(model):
        return None
    from safetensors.numpy import load_file

    path = model.path / EXAMPLE_FILE  # type: ignore[operator]
    header, _ = read_safetensors_header(path)
    meta = json.loads((header.get("__metadata__") or {}).get("xsfm_example", "{}"))
    return load_file(str(path)), meta


def _fields_dataset(
    array: np.ndarray, specs: list[dict[str, Any]], grid: dict[str, Any], meta: dict[str, Any]
) -> xr.Dataset:
    from xsfm.xr.gridspec import grid_spec_coords

    coords = grid_spec_coords(grid)
    ydim, xdim = coords
    sdim = meta.get("sample_dim", "sample")
    svalues = np.asarray(meta.get("sample_values", np.arange(array.shape[0])))
    data_vars = {
        spec["name"]: (
            (sdim, ydim, xdim),
            array[:, k].astype(np.float32),
            {key: spec[key] for key in _ATTR_KEYS if key in spec},
        )
        for k, spec in enumerate(specs)
    }
    scoord = xr.Variable(sdim, svalues, meta.get("sample_attrs", {"long_name": "sample"}))
    return xr.Dataset(data_vars, coords={**coords, sdim: scoord}, attrs=meta.get("attrs", {}))


def example_input(model: Model) -> xr.Dataset:
    """A small valid input Dataset for ``model`` (see module docstring)."""
    from xsfm.xr.gridspec import grid_spec_coords

    card = model.card
    loaded = load_example_arrays(model)
    if loaded is not None and card.grids.get("coarse"):
        arrays, meta = loaded
        ds = _fields_dataset(arrays["coarse"], card.inputs, card.grids["coarse"], meta)
        return ds.assign_attrs(title=f"example input for xsfm model {card.name}")
    grid = card.grids.get("coarse") or _GENERIC_GRID
    coords = grid_spec_coords(grid)
    ydim, xdim = coords
    ny, nx = coords[ydim].size, coords[xdim].size
    rng = np.random.default_rng(0)
    yy, xx = np.meshgrid(
        np.linspace(0, 2 * np.pi, ny), np.linspace(0, 2 * np.pi, nx), indexing="ij"
    )
    time = xr.Variable(
        "time",
        np.array(["2024-01-01T00", "2024-01-01T06"], dtype="datetime64[ns]"),
        {"standard_name": "time"},
    )
    specs = card.inputs or [
        {
            "name": "tas",
            "standard_name": "air_temperature",
            "units": "K",
            "long_name": "near-surface air temperature",
        }
    ]
    defaults = {"tas": (280.0, 5.0)}
    data_vars = {}
    for spec in specs:
        stats = card.normalisation.get("inputs", {}).get(spec["name"], {})
        offset, scale = defaults.get(spec["name"], (0.0, 1.0))
        offset, scale = stats.get("mean", offset), stats.get("std", scale)
        field = np.stack(
            [
                np.sin(yy + p) * np.cos(xx - p) + 0.1 * rng.standard_normal((ny, nx))
                for p in (0.0, 0.7)
            ]
        )
        data_vars[spec["name"]] = (
            ("time", ydim, xdim),
            (offset + scale * field).astype(np.float32),
            {k: spec[k] for k in _ATTR_KEYS if k in spec},
        )
    return xr.Dataset(
        data_vars,
        coords={**coords, "time": time},
        attrs={"title": f"synthetic example input for xsfm model {card.name}"},
    )


def example_truth(model: Model) -> xr.Dataset | None:
    """The fine-grid truth shipped with the model's example, if any."""
    card = model.card
    loaded = load_example_arrays(model)
    fine_grid = card.grids.get("fine", {})
    if loaded is None or "fine" not in loaded[0] or "rule" in fine_grid:
        return None
    arrays, meta = loaded
    return _fields_dataset(arrays["fine"], card.outputs, fine_grid, meta)
