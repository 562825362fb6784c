"""Observations inside the fine domain, prepared for observation-guided downscaling.

:func:`prepare_fine_observations` turns what a user has (station values or a partly observed fine
field) into rows the sampler can use, checking everything before any network runs:

* **which output**: the observed variable is the card output whose name or ``standard_name`` it
  carries (a Dataset must hold exactly one such variable);
* **units**: converted with pint to the output's units (the noise standard deviation too);
* **geometry**, one of
  - *stations*: one dim (``station``, ...) along which 1-D coordinates named like the fine grid's
    dims (``y`` and ``x``) give each station's position in the grid's coordinate units; values are
    bilinear interpolations of the fine field (:class:`~xsfm.observations.PointObservations`,
    wrapping around on periodic grids), so stations need not lie on grid points;
  - *gridded*: the fine grid's own dims with its coordinate labels; NaN where unobserved;
* **labels, never positions**: every other dim must be one of the input's pass-through dims
  (``time``, ``sample``...) and is paired with it by label (:func:`xsfm.xr.pairing.align_labels`);
  a pass-through dim the observations lack is broadcast; a NaN is a missing observation (a
  station that reports at some times only);
* **noise**: ``noise_std`` or ``obs.attrs["observation_noise_std"]`` (in the observations' units),
  required and > 0.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

from xsfm.errors import InputError, raise_all
from xsfm.xr.pairing import align_labels
from xsfm.xr.stations import station_operator
from xsfm.xr.units import convert

__all__ = ["FineObservations", "prepare_fine_observations"]

OBS_DIM = "_obs"


@dataclasses.dataclass
class FineObservations:
    """Observations on the fine grid, one row per input sample."""

    data: xr.DataArray
    """``(*some sample dims, _obs)`` (stations) or ``(*some sample dims, _obs_y, _obs_x)``
    (gridded)."""
    core_dims: list[Hashable]
    operator: dict[str, Any]
    """Observation operator (its dict, see :func:`xsfm.observations.from_dict`) on one physical
    fine field ``[..., H, W]``; the xarray layer builds no torch objects."""
    channel: int
    noise_std: float
    """In the output's units."""
    variable: str
    description: str


def _pick(obs: xr.DataArray | xr.Dataset, outputs: Sequence[Mapping[str, Any]]) -> xr.DataArray:
    names = {o["name"] for o in outputs} | {o.get("standard_name") for o in outputs}
    names.discard(None)
    if isinstance(obs, xr.Dataset):
        found = [
            v for v in obs.data_vars if v in names or obs[v].attrs.get("standard_name") in names
        ]
        if len(found) != 1:
            raise InputError(
                f"obs must hold exactly one variable that is a model output "
                f"({', '.join(o['name'] for o in outputs)}); found {found or 'none'} among "
                f"{list(obs.data_vars)}"
            )
        return obs[found[0]]
    if not isinstance(obs, xr.DataArray):
        raise TypeError(f"obs must be an xarray DataArray or Dataset, got {type(obs).__name__}")
    return obs


def _channel(da: xr.DataArray, outputs: Sequence[Mapping[str, Any]]) -> int:
    for i, o in enumerate(outputs):
        if da.name == o["name"] or (
            da.attrs.get("standard_name")
            and da.attrs.get("standard_name") == o.get("standard_name")
        ):
            return i
    if len(outputs) == 1 and da.name is None and "standard_name" not in da.attrs:
        return 0
    raise InputError(
        f"obs variable {da.name!r} (standard_name {da.attrs.get('standard_name')!r}) is none of "
        f"the model's outputs ({', '.join(repr(o['name']) for o in outputs)}); name it after the "
        "output it observes (obs.rename(...)) or set its standard_name"
    )


def _noise_std(da: xr.DataArray, noise_std: float | None, units: str, label: str) -> float:
    if noise_std is None:
        noise_std = da.attrs.get("observation_noise_std")
        if noise_std is None:
            raise InputError(
                f"{label} has no observation noise: pass obs_noise_std=... (in the observations' "
                "units) or set obs.attrs['observation_noise_std']"
            )
    value = float(noise_std)
    if not np.isfinite(value) or value <= 0:
        raise InputError(f"the observation noise std of {label} must be > 0, got {noise_std!r}")
    # a standard deviation converts by the scale of the units map only (no offset)
    pair = xr.DataArray([0.0, value], dims="_v", attrs=dict(da.attrs))
    converted = convert(pair, units, name=label).values
    return float(abs(converted[1] - converted[0]))


def prepare_fine_observations(
    obs: xr.DataArray | xr.Dataset,
    *,
    outputs: Sequence[Mapping[str, Any]],
    fine_axes: Mapping[str, tuple[np.ndarray, Mapping[str, Any]]],
    inputs: xr.DataArray,
    sample_dims: Sequence[Hashable],
    periodic: bool = False,
    noise_std: float | None = None,
) -> FineObservations:
    """Check and convert ``obs``; see the module docstring.

    Parameters
    ----------
    obs
        Station or gridded observations of one model output.
    outputs
        The card's outputs (``name``, ``standard_name``, ``units``).
    fine_axes
        ``{dim: (values, attrs)}`` of the fine grid, y first.
    inputs
        The prepared input (its sample dims and labels).
    sample_dims
        The input's pass-through dims.
    periodic
        The fine grid is periodic (stations between the last and first grid point wrap).
    noise_std
        Observation noise std in the observations' units (default: from ``obs.attrs``).

    Returns
    -------
    FineObservations

    Examples
    --------
    >>> import xsfm
    >>> m = xsfm.load_model("kolmogorov-sfm")
    >>> from xsfm.xr.prepare import fine_axes, prepare_inputs
    >>> prepared = prepare_inputs(m.example_input().isel(sample=[0, 1]), m)
    >>> stations = xr.DataArray([[1.0, 2.0], [0.5, np.nan]], dims=("sample", "station"),
    ...     coords={"sample": [1, 0], "x": ("station", [0.3, 2.0]), "y": ("station", [1.0, 6.2])},
    ...     name="vorticity", attrs={"units": "s-1", "observation_noise_std": 0.1})
    >>> fo = prepare_fine_observations(stations, outputs=m.card.outputs,
    ...     fine_axes=fine_axes(m, prepared), inputs=prepared.data, sample_dims=["sample"],
    ...     periodic=True)
    >>> fo.description, fo.data.dims
    ('2 stations', ('sample', '_obs'))
    >>> fo.data.values.tolist()  # paired by label: sample 0 first
    [[0.5, nan], [1.0, 2.0]]
    """
    da = _pick(obs, outputs)
    label = f"obs variable {da.name!r}" if da.name is not None else "obs"
    channel = _channel(da, outputs)
    spec = outputs[channel]
    units = spec.get("units")
    if units is not None:
        if "units" not in da.attrs:
            raise InputError(
                f"{label} has no 'units' attribute; set it (the output {spec['name']!r} is in "
                f"{units!r})"
            )
        std = _noise_std(da, noise_std, units, label)
        da = convert(da, units, name=label)
    else:
        std = _noise_std(da, noise_std, da.attrs.get("units", "1"), label)
    (ydim, (yv, _)), (xdim, (xv, _)) = list(fine_axes.items())[:2]
    problems: list[Exception] = []
    if ydim in da.dims and xdim in da.dims:
        for dim, values in ((ydim, yv), (xdim, xv)):
            if dim not in da.coords or not np.allclose(
                np.asarray(da[dim].values, dtype=float), np.asarray(values, dtype=float),
                rtol=1e-9, atol=0.0,
            ) or da.sizes[dim] != len(values):  # fmt: skip
                problems.append(
                    InputError(
                        f"gridded {label} must be on the model's fine grid: its {dim!r} "
                        f"coordinate differs from the grid's ({len(values)} points from "
                        f"{float(values[0])} to {float(values[-1])}); interpolate it "
                        "to the fine grid, or give station observations instead"
                    )
                )
        operator = {"kind": "elementwise", "function": "identity"}
        description = "gridded"
        # the coarse input has dims of the same names and other sizes
        da = da.drop_vars([ydim, xdim]).rename({ydim: "_obs_y", xdim: "_obs_x"})
        core: list[Hashable] = ["_obs_y", "_obs_x"]
    else:
        station_dims = [d for d in da.dims if d not in sample_dims and d not in (ydim, xdim)]
        if len(station_dims) != 1:
            raise InputError(
                f"{label} must be station values along one dim with {ydim!r} and {xdim!r} "
                f"coordinates on it, or a field on the fine grid's ({ydim!r}, {xdim!r}) dims; "
                f"its dims {tuple(da.dims)} leave {station_dims or 'none'} besides the input's "
                f"pass-through dims {tuple(sample_dims)}"
            )
        sdim = station_dims[0]
        for dim in (ydim, xdim):
            if dim not in da.coords or da[dim].dims != (sdim,):
                problems.append(
                    InputError(
                        f"{label} needs a {dim!r} coordinate along {sdim!r} (each station's "
                        f"position in the fine grid's {dim!r} units)"
                    )
                )
        raise_all(problems, f"the observations {label}")
        operator, da = station_operator(
            da, sdim, {ydim: yv, xdim: xv}, periodic=periodic, label=label
        )
        da = da.drop_vars(sdim, errors="ignore").rename({sdim: OBS_DIM})
        core = [OBS_DIM]
        description = f"{da.sizes[OBS_DIM]} stations"
    extra = [d for d in da.dims if d not in core and d not in sample_dims]
    if extra:
        problems.append(
            InputError(
                f"{label} has dim(s) {extra} that the input lacks (its pass-through dims are "
                f"{tuple(sample_dims)}); observations pair with input samples by label"
            )
        )
    raise_all(problems, f"the observations {label}")
    shared = [d for d in sample_dims if d in da.dims]
    da = align_labels(da, inputs, shared, what=label, against="the input")
    values = np.asarray(da.values, dtype=np.float64)
    if np.isinf(values).any():
        raise InputError(f"{label} holds inf values; a missing observation is NaN")
    if np.isnan(values).all():
        raise InputError(f"{label} holds no observation (all NaN)")
    da = da.transpose(*shared, *core).astype(np.float32)
    return FineObservations(
        data=da,
        core_dims=core,
        operator=operator,
        channel=channel,
        noise_std=std,
        variable=str(spec["name"]),
        description=description,
    )
