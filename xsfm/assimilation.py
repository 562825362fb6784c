"""Data assimilation and forecasts for xarray objects: FlowDAS and the classical filters.

:func:`assimilate` starts from a known state (a DataArray, or a Dataset holding the model's state
variable) and assimilates each time of ``obs`` in order; :func:`forecast` is the same without
observations. Both return an ensemble Dataset with dims ``(member, *pass-through dims, time,
*state dims)`` and the card's units, ``standard_name`` and ``long_name``.

Dimensions are found by name:

* the **state dims** are the card's (``grids["state_dims"]``, ``("component",)`` for Lorenz-63); for
  the classical filters (no card) they are the state's dims that ``obs`` does not have;
* the **time dim** (``time_dim``, default ``"time"``) orders the observations; when the state has it
  too, its last ``L`` entries are the model's history and observation times at or before the
  state's last time are dropped (noted in ``history``): so ``ds.state.isel(time=[0])`` and
  ``ds.obs`` of :func:`xsfm.datasets.lorenz63` go together as they are;
* every other dim (``trajectory``, ...) passes through; ``obs`` may lack some (it is broadcast).

Randomness: row ``(sample p, member m)`` of the flattened pass-through dims draws from
``stream_generators(seed, [p], members)``, so a result does not depend on how many samples are
assimilated together.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from xsfm.downscaling import MEMBER_ATTRS, check_members, extend_history
from xsfm.errors import InputError, InvalidValuesError, MissingVariableError, raise_all

if TYPE_CHECKING:
    import torch

    from xsfm.models.base import Model
    from xsfm.observations import Observation

__all__ = ["DEFAULT_ASSIMILATION_MODEL", "assimilate", "forecast"]

DEFAULT_ASSIMILATION_MODEL = "lorenz63-flowdas"
METHODS = ("flowdas", "bpf", "enkf")

_SPEC_ATTRS = ("standard_name", "long_name", "units")


# -- inputs --------------------------------------------------------------------------------------
def _check_int(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def _pick_variable(
    obj: xr.DataArray | xr.Dataset, spec: dict[str, Any] | None, what: str
) -> xr.DataArray:
    """The DataArray itself, or the Dataset variable matching ``spec`` (standard_name, then name)."""
    if isinstance(obj, xr.DataArray):
        return obj
    if not isinstance(obj, xr.Dataset):
        raise TypeError(f"{what} must be an xarray DataArray or Dataset, got {type(obj).__name__}")
    names = list(obj.data_vars)
    if spec is not None:
        by_standard = [
            n for n in names if obj[n].attrs.get("standard_name") == spec.get("standard_name")
        ]
        if len(by_standard) == 1:
            return obj[by_standard[0]]
        if spec.get("name") in obj.data_vars:
            return obj[spec["name"]]
    if len(names) == 1:
        return obj[names[0]]
    wanted = (
        f"standard_name {spec.get('standard_name')!r} or name {spec.get('name')!r}"
        if spec
        else "one variable"
    )
    raise MissingVariableError(
        f"{what}: no unique variable with {wanted} among {names}; pass the DataArray itself "
        f"(e.g. ds[{names[0]!r}])"
        if names
        else f"{what}: the Dataset has no data variables"
    )


def _check_values(da: xr.DataArray, label: str, allow_nan: bool) -> list[Exception]:
    problems: list[Exception] = []
    if not np.issubdtype(da.dtype, np.number) or np.issubdtype(da.dtype, np.complexfloating):
        problems.append(
            InvalidValuesError(
                f"{label} has non-numeric dtype {da.dtype}; give real numbers (float)"
            )
        )
        return problems
    for dim, size in da.sizes.items():
        if size == 0:
            problems.append(
                InvalidValuesError(f"{label} has zero-size dim {dim!r}; give at least one entry")
            )
    if problems:
        return problems
    values = np.asarray(da.values, dtype=np.float64)
    bad = np.isinf(values) if allow_nan else ~np.isfinite(values)
    if bad.any():
        kind = "inf" if allow_nan else "NaN or inf"
        problems.append(
            InvalidValuesError(
                f"{label} holds {int(bad.sum())} {kind} value(s)"
                + (
                    "; missing observations are NaN, never inf"
                    if allow_nan
                    else "; fill or drop them first"
                )
            )
        )
    return problems


def _convert_state(da: xr.DataArray, spec: dict[str, Any] | None, label: str) -> xr.DataArray:
    from xsfm.xr.units import convert

    if spec is None or "units" not in spec:
        return da
    return convert(da, spec["units"], name=label)


def _time_value_after(state: xr.DataArray, time_dim: str) -> Any | None:
    """The state's last time (a scalar coordinate or the last entry of its time dim), if any."""
    if time_dim not in state.coords:
        return None
    values = np.asarray(state[time_dim].values).ravel()
    return values[-1] if values.size else None


def _history_rows(
    state: xr.DataArray,
    time_dim: str,
    state_dims: Sequence[Hashable],
    pass_dims: Sequence[Hashable],
    length: int,
) -> np.ndarray:
    """``[n_samples, L, *state]`` from the last ``L`` times of the state (or the state when ``L = 1``)."""
    if time_dim in state.dims:
        if state.sizes[time_dim] < length:
            raise InputError(
                f"the model conditions on {length} past states but the state has {state.sizes[time_dim]} "
                f"along {time_dim!r}; give at least {length} times"
            )
        hist = state.isel({time_dim: slice(state.sizes[time_dim] - length, None)})
        hist = hist.transpose(*pass_dims, time_dim, *state_dims)
        values = np.asarray(hist.values, dtype=np.float64)
    else:
        if length != 1:
            raise InputError(
                f"the model conditions on {length} past states: give the state with a {time_dim!r} dim of "
                f"at least {length} entries"
            )
        values = np.asarray(state.transpose(*pass_dims, *state_dims).values, dtype=np.float64)
        values = values.reshape(*values.shape[: len(pass_dims)], 1, *values.shape[len(pass_dims) :])
    n = int(np.prod([state.sizes[d] for d in pass_dims])) if pass_dims else 1
    return values.reshape(n, *values.shape[len(pass_dims) :])


def _select_obs_times(
    obs: xr.DataArray, state: xr.DataArray, time_dim: str, notes: list[str]
) -> xr.DataArray:
    if time_dim not in obs.dims:
        raise InputError(
            f"obs has dims {tuple(obs.dims)} but no time dim {time_dim!r}; name it time_dim=... or add one "
            f"(obs.expand_dims({time_dim!r}) for a single time)"
        )
    after = _time_value_after(state, time_dim)
    if after is not None and time_dim in obs.coords:
        keep = np.asarray(obs[time_dim].values) > after
        if not keep.all():
            notes.append(
                f"dropped {int((~keep).sum())} observation time(s) at or before the state's time {after} "
                f"along {time_dim!r}"
            )
            obs = obs.isel({time_dim: np.flatnonzero(keep)})
    if obs.sizes[time_dim] == 0:
        raise InputError(f"no observation time after the state's time {after} along {time_dim!r}")
    return obs


def _resolve_operator(
    operator: Any, noise_std: float | None, obs: xr.DataArray | None, card_extra: dict[str, Any]
) -> Observation:
    from xsfm.observations import as_operator

    source = operator
    if source is None and obs is not None:
        source = obs.attrs.get("observation_operator")
    if source is None:
        source = card_extra.get("observation_operator")
    if source is None:
        raise InputError(
            "no observation operator: pass operator=... (an xsfm.observations operator, its dict, or a "
            "callable) or set obs.attrs['observation_operator']"
        )
    if isinstance(source, str):
        source = json.loads(source)
    if noise_std is None and obs is not None and "observation_noise_std" in obs.attrs:
        noise_std = float(obs.attrs["observation_noise_std"])
    return as_operator(source, noise_std)


def _obs_rows(
    obs: xr.DataArray,
    pass_dims: Sequence[Hashable],
    pass_sizes: dict[Hashable, int],
    time_dim: str,
    expected: tuple[int, ...],
) -> tuple[np.ndarray, list[Hashable]]:
    """``[n_samples, T, *obs_shape]``: obs broadcast over the state's pass-through dims."""
    obs_dims = [d for d in obs.dims if d != time_dim and d not in pass_dims]
    problems: list[Exception] = []
    for d in pass_dims:
        if d in obs.dims and obs.sizes[d] != pass_sizes[d]:
            problems.append(
                InputError(
                    f"obs has {obs.sizes[d]} entries along {d!r} but the state has {pass_sizes[d]}"
                )
            )
    shape = tuple(obs.sizes[d] for d in obs_dims)
    if shape != tuple(expected):
        problems.append(
            InputError(
                f"obs dims {obs_dims} (beyond the state's dims and {time_dim!r}) have shape {shape}, but the "
                f"observation operator gives {tuple(expected)} per state; check operator= and the obs dims"
            )
        )
    raise_all(problems, "observations")
    missing = {d: pass_sizes[d] for d in pass_dims if d not in obs.dims}
    full = obs.expand_dims(missing) if missing else obs
    full = full.transpose(*pass_dims, time_dim, *obs_dims)
    values = np.asarray(full.values, dtype=np.float64)
    n = int(np.prod([pass_sizes[d] for d in pass_dims])) if pass_dims else 1
    return values.reshape(n, *values.shape[len(pass_dims) :]), obs_dims


# -- output --------------------------------------------------------------------------------------
def _assemble(
    values: np.ndarray,
    *,
    state: xr.DataArray,
    pass_dims: Sequence[Hashable],
    state_dims: Sequence[Hashable],
    time_dim: str,
    time_coords: dict[Hashable, xr.Variable],
    spec: dict[str, Any],
    source: str,
    call: str,
    notes: list[str],
) -> xr.Dataset:
    """``values`` ``[n_samples, members, T, *state]`` -> labelled Dataset."""
    import xsfm

    pass_shape = tuple(state.sizes[d] for d in pass_dims)
    members = values.shape[1]
    arr = values.reshape(*pass_shape, members, *values.shape[2:])
    arr = np.moveaxis(arr, len(pass_shape), 0)
    dims = ("member", *pass_dims, time_dim, *state_dims)
    attrs = {k: spec[k] for k in _SPEC_ATTRS if k in spec}
    da = xr.DataArray(
        arr.astype(state.dtype if np.issubdtype(state.dtype, np.floating) else np.float64),
        dims=dims,
    )
    coords: dict[Hashable, Any] = {
        "member": xr.Variable("member", np.arange(members), MEMBER_ATTRS)
    }
    for name, coord in state.coords.items():
        if time_dim in coord.dims or name == time_dim:
            continue
        if set(coord.dims) <= set(pass_dims) | set(state_dims):
            coords[name] = coord.variable
    coords.update(time_coords)
    da = da.assign_coords(coords).assign_attrs(attrs)
    name = spec.get("name", state.name or "state")
    return xr.Dataset({name: da}).assign_attrs(
        source=f"xsfm {xsfm.__version__}, {source}",
        history=extend_history(state.attrs.get("history"), call, notes),
    )


def _forecast_times(state: xr.DataArray, time_dim: str, lead: int) -> dict[Hashable, xr.Variable]:
    steps = np.arange(1, lead + 1)
    coords: dict[Hashable, xr.Variable] = {
        "lead": xr.Variable(time_dim, steps, {"long_name": "forecast step"})
    }
    if time_dim in state.coords:
        values = np.asarray(state[time_dim].values).ravel()
        spacing = values[-1] - values[-2] if values.size > 1 else None
        if spacing is None and np.issubdtype(values.dtype, np.number):
            spacing = values.dtype.type(1)
        if spacing is not None:
            coords[time_dim] = xr.Variable(
                time_dim, values[-1] + steps * spacing, state[time_dim].attrs
            )
    return coords


def _load_flowdas(model: Any) -> Model:
    from xsfm.models.base import load_model

    m = load_model(model if model is not None else DEFAULT_ASSIMILATION_MODEL)
    if m.card.kind != "assimilation":
        raise ValueError(
            f"model {m.name!r} is a {m.card.kind} model; assimilate and forecast need an assimilation "
            "model (see xsfm.list_models())"
        )
    return m


def _flowdas_state(
    state_obj: xr.DataArray | xr.Dataset, m: Model, time_dim: str
) -> tuple[xr.DataArray, list[Hashable], list[Hashable], dict[str, Any]]:
    card = m.card
    spec = dict(card.inputs[0]) if card.inputs else {}
    state = _pick_variable(state_obj, spec or None, "state")
    label = f"state variable {state.name!r}" if state.name is not None else "state"
    state_dims = [str(d) for d in card.grids.get("state_dims", [])]
    shape = tuple(card.network.get("state_shape", []))
    problems: list[Exception] = []
    for d, n in zip(state_dims, shape, strict=False):
        if d not in state.dims:
            problems.append(
                InputError(
                    f"{label} has no dim {d!r}; model {m.name!r} needs its state along {state_dims}"
                )
            )
        elif state.sizes[d] != n:
            problems.append(
                InputError(
                    f"{label} has {state.sizes[d]} entries along {d!r}; model {m.name!r} needs {n}"
                )
            )
    problems += _check_values(state, label, allow_nan=False)
    raise_all(problems, f"the state for model {m.name!r}")
    labels = card.grids.get(state_dims[0]) if len(state_dims) == 1 else None
    if labels is not None and state_dims[0] in state.coords:
        given = [str(v) for v in np.asarray(state[state_dims[0]].values)]
        if given != [str(v) for v in labels]:
            raise InputError(
                f"{label} has {state_dims[0]} = {given}; model {m.name!r} expects {list(labels)}"
            )
    state = _convert_state(state, spec or None, label)
    pass_dims = [d for d in state.dims if d not in state_dims and d != time_dim]
    return state, pass_dims, state_dims, spec


def _call_text(kind: str, **kwargs: Any) -> str:
    return f"{kind}(" + ", ".join(f"{k}={v!r}" for k, v in kwargs.items()) + ")"


# -- public --------------------------------------------------------------------------------------
def forecast(
    state: xr.DataArray | xr.Dataset,
    model: str | Model | None = None,
    lead: int = 15,
    members: int = 8,
    seed: int = 0,
    *,
    steps: int | None = None,
    time_dim: str = "time",
) -> xr.Dataset:
    """Unguided probabilistic rollout of a FlowDAS model from a known state.

    Parameters
    ----------
    state
        Initial state in the card's units (converted if compatible); the card's state dims (e.g.
        ``component``), any pass-through dims, and optionally ``time_dim`` holding the history.
    model
        Registry name, path or :class:`~xsfm.models.base.Model` (default ``"lorenz63-flowdas"``).
    lead
        Number of steps to forecast.
    members
        Ensemble size; members are independent rollouts.
    seed
        Seed of the per-(sample, member) random streams.
    steps
        Euler-Maruyama steps per forecast step (default: the card's, 500).
    time_dim
        Name of the time dim.

    Returns
    -------
    xarray.Dataset
        Dims ``(member, *pass-through, time_dim, *state dims)``; ``time_dim`` continues the state's
        time coordinate (``lead`` = 1..lead is a coordinate along it).

    Examples
    --------
    >>> import xsfm
    >>> ds = xsfm.datasets.lorenz63(trajectories=2, steps=2, burn_in=64)
    >>> fc = xsfm.assimilation.forecast(ds.state.isel(time=[0]), lead=2, members=3, steps=20)
    >>> fc["state"].dims, fc["time"].values.tolist()
    (('member', 'trajectory', 'time', 'component'), [1, 2])
    """
    import torch

    from xsfm.sampling.rng import stream_generators

    m = _load_flowdas(model)
    lead = _check_int(lead, "lead", 0)
    members = check_members(members)
    seed = _check_int(seed, "seed", -(2**62))
    da, pass_dims, state_dims, spec = _flowdas_state(state, m, time_dim)
    network = m.network("cpu")
    hist = _history_rows(da, time_dim, state_dims, pass_dims, network.history)
    n = hist.shape[0]
    rows = torch.from_numpy(np.repeat(hist, members, axis=0))
    gens = stream_generators(seed, range(n), members)
    out = network.forecast(rows, lead, gens, steps=steps).double().numpy()
    values = out.reshape(n, members, *out.shape[1:])
    call = _call_text("forecast", model=m.name, lead=lead, members=members, seed=seed, steps=steps)
    return _assemble(
        values,
        state=da,
        pass_dims=pass_dims,
        state_dims=state_dims,
        time_dim=time_dim,
        time_coords=_forecast_times(da, time_dim, lead),
        spec=dict(m.card.outputs[0]) if m.card.outputs else spec,
        source=f"model {m.name} v{m.card.version} ({m.card.method}), unguided forecast",
        call=call,
        notes=[],
    )


def assimilate(
    state: xr.DataArray | xr.Dataset,
    obs: xr.DataArray | xr.Dataset,
    model: str | Model | None = None,
    members: int = 8,
    operator: Observation | dict[str, Any] | Callable[[torch.Tensor], torch.Tensor] | None = None,
    noise_std: float | None = None,
    steps: int | None = None,
    guidance: dict[str, Any] | None = None,
    seed: int = 0,
    *,
    method: str = "flowdas",
    transition: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    particles: int = 1024,
    state_dims: Sequence[Hashable] | None = None,
    time_dim: str = "time",
    resample_members: bool | str = False,
    **guidance_options: Any,
) -> xr.Dataset:
    r"""Assimilate observations in time order, starting from a known state; return the analysis ensemble.

    Parameters
    ----------
    state
        Known state before the first observation (see :mod:`xsfm.assimilation` for the dims).
    obs
        Observations with ``time_dim``; NaN entries are missing (a time with all NaN is a forecast
        step). The operator and its noise are read from ``obs.attrs`` (``observation_operator``,
        ``observation_noise_std``) when not given, as :func:`xsfm.datasets.lorenz63` writes them.
    model
        FlowDAS model (``method="flowdas"``); default ``"lorenz63-flowdas"``.
    members
        Ensemble size (independent guided runs, each with its own history; for ``"bpf"`` the number
        of equally weighted members kept from the particle cloud).
    operator, noise_std
        Observation operator (:mod:`xsfm.observations`, its dict/JSON, or a callable on physical
        states) and noise standard deviation :math:`\gamma`; defaults from ``obs.attrs``, then the
        model card.
    steps
        Euler-Maruyama steps per assimilation step (default: the card's, 500).
    guidance, **guidance_options
        FlowDAS guidance options (``zeta``, ``draws``, ``order``, ``weighting``, ``kappa``, ...), see
        :class:`~xsfm.sampling.guidance.Guidance`; they override the card's defaults.
    seed
        Seed of the per-(sample, member) random streams.
    method
        ``"flowdas"`` (default), or a classical filter on the same data: ``"bpf"`` (bootstrap
        particle filter) or ``"enkf"`` (stochastic ensemble Kalman filter), both needing
        ``transition``.
    transition
        ``transition(x, noise) -> x_next`` for ``"bpf"``/``"enkf"`` on tensors ``[B, P, *state]``
        with standard-normal ``noise``, in the state's units (for Lorenz-63:
        :func:`xsfm.datasets.lorenz63.lorenz63_transition`).
    particles
        Particles of the bootstrap filter.
    state_dims
        State dims for the classical filters (default: the state's dims that ``obs`` lacks).
    time_dim
        Name of the time dim.
    resample_members
        FlowDAS only (an extension of the paper's method): after each analysis, resample the
        members of each sample by the likelihood of their analysis states, so members that have
        lost the trajectory are replaced by copies of those that kept it, as a particle filter
        does (see :mod:`xsfm.models.flowdas`). Needs enough members to represent the
        uncertainty (for Lorenz-63 over 200 steps, see the Lorenz-63 benchmark); a member's states
        at different times then belong to different lineages. ``"diverged"``: only replace members
        whose state turned non-finite or left the model's domain (guidance overshooting; see
        ``xsfm.models.flowdas.LOST_BOUND``) by copies of surviving members of the same sample;
        the others are untouched. ``"predictive"``: before each analysis, draw each member's
        starting state from its sample's members by the likelihood of one cheap unguided forecast
        (the predictive likelihood, which does not count the observation twice), then replace
        diverged members as ``"diverged"`` does; the mode that keeps Lorenz-63 on track over 200
        steps (see the benchmark).

    Returns
    -------
    xarray.Dataset
        Dims ``(member, *pass-through, time_dim, *state dims)`` at the observation times, with the
        card's (or, for the filters, the state's) units and names.

    Examples
    --------
    >>> import xsfm
    >>> ds = xsfm.datasets.lorenz63(trajectories=2, steps=3, burn_in=64)
    >>> ana = ds.state.isel(time=[0]).sfm.assimilate(ds.obs, members=2, steps=20)
    >>> ana["state"].dims, ana.sizes["time"]
    (('member', 'trajectory', 'time', 'component'), 3)
    >>> from xsfm.datasets.lorenz63 import lorenz63_transition
    >>> bpf = ds.state.isel(time=[0]).sfm.assimilate(
    ...     ds.obs, method="bpf", transition=lorenz63_transition(), particles=256, members=4
    ... )
    >>> bpf["state"].sizes["member"]
    4
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    members = check_members(members)
    seed = _check_int(seed, "seed", -(2**62))
    notes: list[str] = []
    from xsfm.models.flowdas import RESAMPLE_MODES

    valid = isinstance(resample_members, bool) or (
        isinstance(resample_members, str) and resample_members in RESAMPLE_MODES
    )
    if not valid:
        raise TypeError(
            "resample_members must be False, True (or 'likelihood'), 'predictive' or 'diverged', "
            f"got {resample_members!r}"
        )
    if method == "flowdas":
        return _assimilate_flowdas(
            state,
            obs,
            model,
            members,
            operator,
            noise_std,
            steps,
            guidance,
            seed,
            time_dim,
            notes,
            guidance_options,
            resample_members,
        )
    if resample_members:
        raise ValueError(
            f"resample_members is a FlowDAS option; method={method!r} resamples on its own terms "
            "(bpf) or not at all (enkf): drop resample_members"
        )
    if transition is None:
        raise ValueError(
            f"method={method!r} needs transition=... (x, noise) -> x_next, e.g. "
            "xsfm.datasets.lorenz63.lorenz63_transition() for Lorenz-63"
        )
    return _assimilate_filter(
        state,
        obs,
        method,
        members,
        operator,
        noise_std,
        seed,
        transition,
        particles,
        state_dims,
        time_dim,
        notes,
    )


def _assimilate_flowdas(
    state_obj: Any,
    obs_obj: Any,
    model: Any,
    members: int,
    operator: Any,
    noise_std: float | None,
    steps: int | None,
    guidance: dict[str, Any] | None,
    seed: int,
    time_dim: str,
    notes: list[str],
    guidance_options: dict[str, Any],
    resample_members: bool | str = False,
) -> xr.Dataset:
    import torch

    from xsfm.sampling.rng import stream_generators

    m = _load_flowdas(model)
    da, pass_dims, state_dims, spec = _flowdas_state(state_obj, m, time_dim)
    obs = _pick_variable(obs_obj, None, "obs")
    raise_all(_check_values(obs, "obs", allow_nan=True), "observations")
    obs = _select_obs_times(obs, da, time_dim, notes)
    op = _resolve_operator(operator, noise_std, obs, m.card.extra)
    network = m.network("cpu")
    hist = _history_rows(da, time_dim, state_dims, pass_dims, network.history)
    n = hist.shape[0]
    pass_sizes = {d: da.sizes[d] for d in pass_dims}
    y, _ = _obs_rows(obs, pass_dims, pass_sizes, time_dim, op.output_shape(network.state_shape))
    rows = torch.from_numpy(np.repeat(hist, members, axis=0))
    y_rows = torch.from_numpy(np.repeat(y, members, axis=0))
    gens = stream_generators(seed, range(n), members)
    out = network.assimilate(
        rows,
        y_rows,
        op,
        generators=gens,
        steps=steps,
        guidance=guidance,
        members=members,
        resample_members=resample_members,
        **guidance_options,
    )
    values = out.double().numpy().reshape(n, members, *out.shape[1:])
    time_coords = {k: c.variable for k, c in obs.coords.items() if c.dims == (time_dim,)}
    call = _call_text(
        "assimilate",
        model=m.name,
        members=members,
        operator=op.to_dict() if hasattr(op, "to_dict") else op,
        steps=steps,
        guidance={**(guidance or {}), **guidance_options} or None,
        seed=seed,
        **({"resample_members": resample_members} if resample_members else {}),
    )
    return _assemble(
        values,
        state=da,
        pass_dims=pass_dims,
        state_dims=state_dims,
        time_dim=time_dim,
        time_coords=time_coords,
        spec=dict(m.card.outputs[0]) if m.card.outputs else spec,
        source=f"model {m.name} v{m.card.version} ({m.card.method}), guided assimilation",
        call=call,
        notes=notes,
    )


def _assimilate_filter(
    state_obj: Any,
    obs_obj: Any,
    method: str,
    members: int,
    operator: Any,
    noise_std: float | None,
    seed: int,
    transition: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    particles: int,
    state_dims: Sequence[Hashable] | None,
    time_dim: str,
    notes: list[str],
) -> xr.Dataset:
    import torch

    from xsfm.filters import bootstrap_particle_filter, ensemble_kalman_filter
    from xsfm.sampling.rng import stream_generators

    state = _pick_variable(state_obj, None, "state")
    obs = _pick_variable(obs_obj, None, "obs")
    label = f"state variable {state.name!r}" if state.name is not None else "state"
    problems = _check_values(state, label, allow_nan=False) + _check_values(
        obs, "obs", allow_nan=True
    )
    raise_all(problems, f"the {method} filter's inputs")
    if state_dims is None:
        state_dims = [d for d in state.dims if d not in obs.dims and d != time_dim]
    missing = [d for d in state_dims if d not in state.dims]
    if missing:
        raise InputError(
            f"{label} has no dim(s) {missing} given as state_dims; its dims are {tuple(state.dims)}"
        )
    state_dims = list(state_dims)
    pass_dims = [d for d in state.dims if d not in state_dims and d != time_dim]
    obs = _select_obs_times(obs, state, time_dim, notes)
    op = _resolve_operator(operator, noise_std, obs, {})
    hist = _history_rows(state, time_dim, state_dims, pass_dims, 1)[:, 0]
    state_shape = tuple(state.sizes[d] for d in state_dims)
    pass_sizes = {d: state.sizes[d] for d in pass_dims}
    y, _ = _obs_rows(obs, pass_dims, pass_sizes, time_dim, op.output_shape(state_shape))
    n = hist.shape[0]
    gens = stream_generators(seed, range(n), 1)
    x0 = torch.from_numpy(hist)
    y_t = torch.from_numpy(y)
    if method == "bpf":
        particles = _check_int(particles, "particles", 1)
        result = bootstrap_particle_filter(
            x0,
            y_t,
            transition,
            op,
            particles=particles,
            keep=members,
            state_ndim=len(state_dims),
            generators=gens,
        )
        source = f"bootstrap particle filter ({particles} particles, {members} members kept)"
    else:
        if members < 2:
            raise ValueError(
                "the ensemble Kalman filter needs members >= 2 (it estimates covariances)"
            )
        result = ensemble_kalman_filter(
            x0, y_t, transition, op, members=members, state_ndim=len(state_dims), generators=gens
        )
        source = f"stochastic ensemble Kalman filter ({members} members)"
    ens = result.ensemble.double().numpy()  # [n, T, K, *state]
    values = np.moveaxis(ens, 2, 1)
    time_coords = {k: c.variable for k, c in obs.coords.items() if c.dims == (time_dim,)}
    spec = {
        "name": state.name or "state",
        **{k: state.attrs[k] for k in _SPEC_ATTRS if k in state.attrs},
    }
    call = _call_text("assimilate", method=method, members=members, particles=particles, seed=seed)
    return _assemble(
        values,
        state=state,
        pass_dims=pass_dims,
        state_dims=state_dims,
        time_dim=time_dim,
        time_coords=time_coords,
        spec=spec,
        source=source,
        call=call,
        notes=notes,
    )
