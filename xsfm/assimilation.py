"""Data assimilation and forecasts on xarray objects: FlowDAS and the classical filters.

Every call is ``prepare -> run -> label`` on the shared xarray layer:

1. :func:`xsfm.xr.state.prepare_state` selects the state variable, matches the card's state dims
   by label, converts units, and reads the history, the start time and an initial ensemble (a
   ``member`` dim) from the state;
2. :func:`xsfm.xr.observations.prepare_observations` pairs the observations with the state by
   label on every shared dim, places each observation time on the model step it falls on (the
   card's ``time_step``, or ``time_step=``), and converts units; steps without observations are
   forecast steps;
3. the time loop runs once per chunk of the pass-through dims (``trajectory``, ``case``...)
   through :mod:`xsfm.backend` (one dask task per chunk when the input is dask-backed: chunk the
   state along a pass-through dim to run cases in parallel; the time loop itself is sequential);
4. the result is labelled: dims ``(member, *pass-through, time, *state dims)``, the true time of
   each step, an ``observed`` flag per step, the card's units and names, provenance.

Randomness: member ``m`` of sample ``p`` (the flat position in the pass-through dims) draws from
``stream_generators(seed, [p], members)``, so results do not depend on chunking.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from xsfm.downscaling import MEMBER_ATTRS, check_members, extend_history
from xsfm.errors import InputError, InvalidValuesError
from xsfm.xr.chunks import sample_index
from xsfm.xr.observations import STEP_DIM, PreparedObservations, prepare_observations
from xsfm.xr.state import HIST_DIM, PreparedState, pick_variable, prepare_state
from xsfm.xr.timeline import resolve_time_step, step_times, steps_of

if TYPE_CHECKING:
    import torch

    from xsfm.models.base import Model
    from xsfm.observations import Observation

__all__ = ["DEFAULT_ASSIMILATION_MODEL", "assimilate", "forecast"]

DEFAULT_ASSIMILATION_MODEL = "lorenz63-flowdas"
METHODS = ("flowdas", "bpf", "enkf")
_OUT_TIME = "_time"


# -- parameters ----------------------------------------------------------------------------------
def _check_int(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def _ensemble_size(members: int | None, state: PreparedState, member_dim: Hashable) -> int:
    if state.members is None:
        return check_members(8 if members is None else members)
    if members is not None and check_members(members) != state.members:
        raise InputError(
            f"{state.label} is an initial ensemble of {state.members} along {member_dim!r}, but "
            f"members={members}; drop members= (the ensemble size comes from the state) or select "
            f"members of the state"
        )
    return state.members


def _load_flowdas(model: Any) -> Model:
    from xsfm.models.base import load_model

    m = load_model(model if model is not None else DEFAULT_ASSIMILATION_MODEL)
    if m.card.kind != "assimilation":
        raise ValueError(
            f"model {m.name!r} is a {m.card.kind} model; assimilate and forecast need an "
            "assimilation model (see xsfm.list_models())"
        )
    return m


def _flowdas_state(obj: Any, m: Model, time_dim: Hashable, member_dim: Hashable) -> PreparedState:
    card = m.card
    state_dims = [str(d) for d in card.grids.get("state_dims", [])]
    labels = {d: card.grids[d] for d in state_dims if d in card.grids}
    return prepare_state(
        obj,
        spec=dict(card.inputs[0]) if card.inputs else None,
        state_dims=state_dims,
        history=int(card.network.get("history", 1)),
        time_dim=time_dim,
        member_dim=member_dim,
        state_shape=card.network.get("state_shape"),
        state_labels=labels,
        model=f"model {m.name!r}",
    )


def _time_step(
    state: PreparedState, given: Any, card_step: Any, time_dim: Hashable, where: str
) -> tuple[Any, list[str]]:
    """Resolve the time step and check that a history of several states lies on it."""
    if state.start is None:
        return None, []
    step, note = resolve_time_step(
        given,
        card_step,
        np.asarray(state.start),
        state.time_attrs,
        time_dim=str(time_dim),
        where=where,
    )
    times = state.history_times
    if times is not None and times.size > 1:
        offsets = steps_of(times, start=state.start, time_step=step, name="state history")
        if not np.array_equal(offsets, np.arange(1 - times.size, 1)):
            raise InputError(
                f"{state.label}'s last {times.size} times {[str(t) for t in times]} are not "
                f"consecutive model steps of {step}; the model's history must be"
            )
    return step, [note] if note else []


def _operator_for(
    operator: Any,
    noise_std: float | None,
    obs: xr.DataArray,
    state: PreparedState,
    card_extra: Mapping[str, Any],
) -> tuple[Observation, xr.DataArray, str | None]:
    """The observation operator, the observations ordered for it, and the units it expects."""
    from xsfm.observations import Elementwise, as_operator

    if noise_std is None and "observation_noise_std" in obs.attrs:
        noise_std = float(obs.attrs["observation_noise_std"])
    on_state = [d for d in state.state_dims if d in obs.dims]
    source = operator
    if source is None and not on_state:
        source = obs.attrs.get("observation_operator", card_extra.get("observation_operator"))
    if source is not None:
        if isinstance(source, str):
            source = json.loads(source)
        if on_state:
            from xsfm.xr.pairing import align_labels

            obs = align_labels(obs, state.data, on_state, against=state.label)
        op = as_operator(source, noise_std)
        return op, obs, getattr(op, "units", None)
    if not on_state:
        raise InputError(
            "no observation operator: pass operator=... (an xsfm.observations operator, its dict, "
            "or a callable), set obs.attrs['observation_operator'], or give obs on the state's "
            f"dims {state.state_dims} to observe the state directly"
        )
    if len(state.state_dims) != 1 or len(on_state) != 1:
        from xsfm.xr.pairing import align_labels

        obs = align_labels(obs, state.data, on_state, against=state.label)
        components = None
    else:
        dim = on_state[0]
        wanted = np.asarray(state.data.indexes[dim]) if dim in state.data.indexes else None
        given = np.asarray(obs.indexes[dim]) if dim in obs.indexes else None
        if wanted is None or given is None:
            from xsfm.xr.pairing import align_labels

            obs = align_labels(obs, state.data, on_state, against=state.label)
            components = None
        else:
            unknown = [v for v in given.tolist() if v not in wanted.tolist()]
            if unknown:
                raise InputError(
                    f"obs has {dim} label(s) {unknown} that {state.label} lacks (it has "
                    f"{wanted.tolist()})"
                )
            order = sorted(range(len(given)), key=lambda i: wanted.tolist().index(given[i]))
            obs = obs.isel({dim: order})
            components = [wanted.tolist().index(v) for v in np.asarray(obs[dim]).tolist()]
    if noise_std is None:
        raise InputError(
            "observations of the state need their noise: pass noise_std=... (in the state's "
            "units) or set obs.attrs['observation_noise_std']"
        )
    op = Elementwise("identity", components=components, noise_std=noise_std)
    return op, obs, state.spec.get("units")


# -- running ---------------------------------------------------------------------------------------
def _resolve_device(device: str | None, data: xr.DataArray) -> str:
    from xsfm.backend import resolve_device

    if device in (None, "auto") and type(data.data).__module__.startswith("cupy"):
        return "cuda"
    return str(resolve_device(device if device is not None else "auto"))


def _flat_hist(hist: np.ndarray, index: np.ndarray, label: str) -> np.ndarray:
    """``[n, [M,] L, *state]`` float64 of one chunk, checked for NaN and inf."""
    h = np.asarray(hist, dtype=np.float64).reshape(index.size, *hist.shape[index.ndim :])
    if not np.isfinite(h).all():
        raise InvalidValuesError(f"{label} holds NaN or inf values; fill or drop them first")
    return h


def _rows(
    hist: np.ndarray, index: np.ndarray, members: int, ensemble: bool, label: str
) -> np.ndarray:
    """``[n * members, L, *state]`` rows of one chunk, sample-major."""
    h = _flat_hist(hist, index, label)
    if ensemble:
        return h.reshape(index.size * members, *h.shape[2:])
    return np.repeat(h, members, axis=0)


def _obs_rows(y: np.ndarray | None, index: np.ndarray, repeat: int) -> np.ndarray | None:
    if y is None:
        return None
    flat = np.asarray(y, dtype=np.float64).reshape(index.size, *y.shape[index.ndim :])
    if np.isinf(flat).any():
        raise InvalidValuesError("obs holds inf values; missing observations are NaN, never inf")
    return np.repeat(flat, repeat, axis=0)


def _flowdas_chunk(
    hist: np.ndarray, index: np.ndarray, y: np.ndarray | None = None, **kw: Any
) -> np.ndarray:
    """One chunk of FlowDAS: ``hist [..., [M,] L, *state]`` -> ``[..., M, T, *state]``."""
    from xsfm.backend import cached_network, from_torch, to_torch
    from xsfm.sampling.rng import stream_generators

    members, device = kw["members"], kw["device"]
    rows = to_torch(_rows(hist, index, members, kw["ensemble"], kw["label"]), device=device)
    gens = stream_generators(kw["seed"], index.ravel(), members, device=device)
    network = cached_network(kw["model"], device)
    y_rows = _obs_rows(y, index, members)
    if y_rows is None:
        out = network.forecast(rows, kw["n_steps"], gens, steps=kw["steps"])
    else:
        out = network.assimilate(
            rows,
            to_torch(y_rows, device=device),
            kw["operator"],
            generators=gens,
            steps=kw["steps"],
            guidance=kw["guidance"],
            members=members,
            resample_members=kw["resample_members"],
            **kw["guidance_options"],
        )
    values = from_torch(out.double().cpu())
    return values.reshape(*index.shape, members, *values.shape[1:])


def _filter_chunk(hist: np.ndarray, index: np.ndarray, y: np.ndarray, **kw: Any) -> np.ndarray:
    """One chunk of a classical filter: ``hist [..., [P,] 1, *state]`` -> ``[..., K, T, *state]``."""
    from xsfm.backend import from_torch, to_torch
    from xsfm.filters import bootstrap_particle_filter, ensemble_kalman_filter
    from xsfm.sampling.rng import stream_generators

    h = _flat_hist(hist, index, kw["label"])  # [n, [P,] 1, *state]
    x0 = h[:, :, 0] if kw["ensemble"] else h[:, 0]
    x0_t = to_torch(np.ascontiguousarray(x0), device=kw["device"])
    y_t = to_torch(_obs_rows(y, index, 1), device=kw["device"])
    gens = stream_generators(kw["seed"], index.ravel(), 1, device=kw["device"])
    common = {"state_ndim": kw["state_ndim"], "generators": gens}
    if kw["method"] == "bpf":
        result = bootstrap_particle_filter(
            x0_t,
            y_t,
            kw["transition"],
            kw["operator"],
            particles=kw["particles"],
            keep=kw["members"],
            **common,
        )
    else:
        result = ensemble_kalman_filter(
            x0_t, y_t, kw["transition"], kw["operator"], members=kw["members"], **common
        )
    values = np.moveaxis(from_torch(result.ensemble.double().cpu()), 2, 1)  # [n, K, T, *state]
    return values.reshape(*index.shape, *values.shape[1:])


def _run(
    func: Callable[..., np.ndarray],
    state: PreparedState,
    obs: PreparedObservations | None,
    *,
    members: int,
    n_steps: int,
    member_dim: Hashable,
    kwargs: dict[str, Any],
) -> xr.DataArray:
    """Apply ``func`` per chunk of the pass-through dims; lazy for dask input."""
    hist = state.data
    lead = [member_dim] if state.members is not None else []
    core_hist = [*lead, HIST_DIM, *state.state_dims]
    y, core_y = None, []
    if obs is not None:
        # the observations' own core dims get private names: they may share a name (``component``)
        # but not the size with the state's
        renamed = {d: f"_obs_{d}" for d in obs.obs_dims}
        y = obs.data.drop_vars([n for n in obs.data.coords if n in obs.obs_dims]).rename(renamed)
        core_y = [STEP_DIM, *renamed.values()]
    # one task per chunk of the pass-through dims: the state's chunks, else the observations'
    lazy = (
        hist if hist.chunks is not None else y if y is not None and y.chunks is not None else None
    )
    if lazy is not None:
        chunks = {d: lazy.chunksizes[d] for d in state.pass_dims if d in lazy.chunksizes}
        hist = hist.chunk({**dict.fromkeys(core_hist, -1), **chunks})
        if y is not None:
            y = y.chunk(
                {**dict.fromkeys(core_y, -1), **{d: c for d, c in chunks.items() if d in y.dims}}
            )
    index = sample_index(hist, state.pass_dims) if state.pass_dims else xr.DataArray(0)
    args = [hist, index] + ([y] if y is not None else [])
    core_in = [core_hist, []] + ([core_y] if y is not None else [])
    state_sizes = {d: state.data.sizes[d] for d in state.state_dims}
    out_core = {"_member": members, _OUT_TIME: n_steps, **state_sizes}
    result = xr.apply_ufunc(
        func,
        *args,
        input_core_dims=core_in,
        output_core_dims=[list(out_core)],
        dask="parallelized",
        output_dtypes=[np.float64],
        dask_gufunc_kwargs={"output_sizes": out_core, "allow_rechunk": False},
        kwargs=kwargs,
        keep_attrs=False,
    )
    return result


# -- labelling -------------------------------------------------------------------------------------
def _label(
    result: xr.DataArray,
    state: PreparedState,
    *,
    time_dim: Hashable,
    member_dim: Hashable,
    time_coords: Mapping[Hashable, xr.Variable],
    spec: Mapping[str, Any],
    source: str,
    call: str,
    notes: list[str],
    attrs: Mapping[str, Any],
) -> xr.Dataset:
    """Raw ``(*pass, _member, _time, *state)`` -> ``(member, *pass, time, *state)`` Dataset."""
    import xsfm

    da = result.rename({"_member": member_dim, _OUT_TIME: time_dim})
    da = da.transpose(member_dim, *state.pass_dims, time_dim, *state.state_dims)
    members = da.sizes[member_dim]
    coords: dict[Hashable, Any] = {
        member_dim: xr.Variable(member_dim, np.arange(members, dtype=np.int32), MEMBER_ATTRS),
        **state.coords,
        **time_coords,
    }
    da = da.assign_coords(coords).assign_attrs(
        {k: spec[k] for k in ("standard_name", "long_name", "units") if k in spec}
    )
    name = spec.get("name", "state")
    out_attrs = {k: v for k, v in attrs.items() if k not in ("source", "history")}
    out_attrs["source"] = f"xsfm {xsfm.__version__}, {source}"
    out_attrs["history"] = extend_history(attrs.get("history"), call, notes)
    return xr.Dataset({name: da}).assign_attrs(out_attrs)


def _time_coords(
    state: PreparedState, time_dim: Hashable, time_step: Any, n_steps: int, observed: Any
) -> dict[Hashable, xr.Variable]:
    steps = np.arange(1, n_steps + 1)
    coords: dict[Hashable, xr.Variable] = {
        "lead": xr.Variable(time_dim, steps, {"long_name": "model steps after the initial state"})
    }
    if state.start is not None:
        coords[time_dim] = xr.Variable(
            time_dim, step_times(state.start, time_step, steps), state.time_attrs
        )
    if observed is not None:
        coords["observed"] = xr.Variable(
            time_dim,
            np.isin(steps, observed),
            {"long_name": "an observation was assimilated at this step"},
        )
    return coords


def _call_text(kind: str, **kwargs: Any) -> str:
    return f"{kind}(" + ", ".join(f"{k}={v!r}" for k, v in kwargs.items() if v is not None) + ")"


# -- public --------------------------------------------------------------------------------------
def forecast(
    state: xr.DataArray | xr.Dataset,
    model: str | Model | None = None,
    lead: int = 15,
    members: int | None = None,
    seed: int = 0,
    *,
    steps: int | None = None,
    time_dim: str = "time",
    time_step: Any = None,
    member_dim: str = "member",
    device: str | None = None,
) -> xr.Dataset:
    """Unguided probabilistic rollout of a FlowDAS model from a known state or an initial ensemble.

    Parameters
    ----------
    state
        Initial state (see :mod:`xsfm.xr.state`): the card's state dims (e.g. ``component``), any
        pass-through dims, optionally ``time_dim`` holding the history, and optionally a
        ``member_dim`` making it an initial ensemble (each member starts from its own state).
        Units are converted to the card's. numpy or dask backed (dask stays lazy).
    model
        Registry name, path or :class:`~xsfm.models.base.Model` (default ``"lorenz63-flowdas"``).
    lead
        Number of model steps to forecast.
    members
        Ensemble size (default 8; with an initial ensemble, its size, and another value is an error).
    seed
        Seed of the per-(sample, member) random streams.
    steps
        Euler-Maruyama steps per model step (default: the card's, 500).
    time_dim, member_dim
        Names of the time and ensemble dims.
    time_step
        The model's time step in the units of ``time_dim`` (default: the card's ``time_step``).
    device
        ``"auto"``, ``"cpu"`` or ``"cuda"``.

    Returns
    -------
    xarray.Dataset
        Dims ``(member, *pass-through, time_dim, *state dims)``; ``time_dim`` holds the true time
        of each step when the state has a time, and ``lead`` (1..lead) counts the steps.

    Examples
    --------
    >>> import xsfm
    >>> ds = xsfm.datasets.lorenz63(trajectories=2, steps=2, burn_in=64)
    >>> fc = xsfm.assimilation.forecast(ds.state.isel(time=[0]), lead=2, members=3, steps=20)
    >>> fc["state"].dims, fc["time"].values.tolist()
    (('member', 'trajectory', 'time', 'component'), [1, 2])
    """
    m = _load_flowdas(model)
    lead = _check_int(lead, "lead", 1)
    seed = _check_int(seed, "seed", -(2**62))
    prepared = _flowdas_state(state, m, time_dim, member_dim)
    members = _ensemble_size(members, prepared, member_dim)
    step, notes = _time_step(
        prepared, time_step, m.card.grids.get("time_step"), time_dim, f"model {m.name!r}"
    )
    dev = _resolve_device(device, prepared.data)
    raw = _run(
        _flowdas_chunk,
        prepared,
        None,
        members=members,
        n_steps=lead,
        member_dim=member_dim,
        kwargs={
            "model": m,
            "members": members,
            "ensemble": prepared.members is not None,
            "label": prepared.label,
            "seed": seed,
            "n_steps": lead,
            "steps": steps,
            "device": dev,
        },
    )
    call = _call_text(
        "forecast", model=m.name, lead=lead, members=members, seed=seed, steps=steps, device=dev
    )
    return _label(
        raw,
        prepared,
        time_dim=time_dim,
        member_dim=member_dim,
        time_coords=_time_coords(prepared, time_dim, step, lead, None),
        spec=dict(m.card.outputs[0]) if m.card.outputs else prepared.spec,
        source=f"model {m.name} v{m.card.version} ({m.card.method}), unguided forecast",
        call=call,
        notes=notes,
        attrs=_attrs_of(state),
    )


def _attrs_of(obj: xr.DataArray | xr.Dataset) -> dict[str, Any]:
    return (
        dict(obj.attrs)
        if isinstance(obj, xr.Dataset)
        else {k: v for k, v in obj.attrs.items() if k == "history"}
    )


def assimilate(
    state: xr.DataArray | xr.Dataset,
    obs: xr.DataArray | xr.Dataset,
    model: str | Model | None = None,
    members: int | None = None,
    operator: Observation | dict[str, Any] | Callable[[torch.Tensor], torch.Tensor] | None = None,
    noise_std: float | None = None,
    steps: int | None = None,
    guidance: dict[str, Any] | None = None,
    seed: int = 0,
    *,
    method: str = "flowdas",
    transition: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    particles: int | None = None,
    state_dims: Sequence[Hashable] | None = None,
    time_dim: str = "time",
    time_step: Any = None,
    member_dim: str = "member",
    resample_members: bool | str = False,
    device: str | None = None,
    **guidance_options: Any,
) -> xr.Dataset:
    r"""Assimilate observations forward in time from a known state or an initial ensemble.

    Parameters
    ----------
    state
        The state at the initial time (see :mod:`xsfm.xr.state`): the model's state dims, any
        pass-through dims (``trajectory``...), ``time_dim`` as a dim (the history) or a scalar
        coordinate, and optionally ``member_dim`` (an initial ensemble: each member starts from its
        own state). Units are converted to the card's. numpy or dask backed (dask stays lazy).
    obs
        Observations with a ``time_dim`` coordinate (see :mod:`xsfm.xr.observations`): paired with
        the state by label on every shared dim; each time is assimilated at the model step it falls
        on (times may be irregular and unsorted; steps without one are forecast steps); NaN entries
        are missing; units are converted to the operator's. Observations on the state's own dims
        (e.g. ``component``) observe the state directly (no operator needed, ``noise_std`` in the
        state's units). The operator and its noise are read from ``obs.attrs``
        (``observation_operator``, ``observation_noise_std``) when not given.
    model
        FlowDAS model (``method="flowdas"``); default ``"lorenz63-flowdas"``.
    members
        Ensemble size (default 8; with an initial ensemble, its size). For ``"bpf"``, the number of
        equally weighted members kept from the particle cloud.
    operator, noise_std
        Observation operator (:mod:`xsfm.observations`, its dict/JSON, or a callable on physical
        states) and noise standard deviation :math:`\gamma`.
    steps
        Euler-Maruyama steps per model step (default: the card's, 500).
    guidance, **guidance_options
        FlowDAS guidance options (``zeta``, ``draws``, ``order``, ``weighting``, ``kappa``, ...), see
        :class:`~xsfm.sampling.guidance.Guidance`; they override the card's defaults.
    seed
        Seed of the per-(sample, member) random streams.
    method
        ``"flowdas"`` (default), or a classical filter: ``"bpf"`` (bootstrap particle filter) or
        ``"enkf"`` (stochastic ensemble Kalman filter), both needing ``transition``.
    transition
        ``transition(x, noise) -> x_next`` for the filters, one model step on tensors
        ``[B, P, *state]`` with standard-normal ``noise`` (Lorenz-63:
        :func:`xsfm.datasets.lorenz63_transition`).
    particles
        Particles of the bootstrap filter (default 1024; with an initial ensemble, its size).
    state_dims
        State dims for the filters (default: the state's dims that ``obs`` lacks).
    time_dim, member_dim
        Names of the time and ensemble dims.
    time_step
        The model's time step in the units of ``time_dim`` (a timedelta such as ``"6h"`` for
        datetimes). Default: the card's ``time_step``; for the filters, 1 when the time coordinate
        counts steps (``units: "1"``), else required.
    resample_members
        FlowDAS only (an extension of the paper): ``True``/``"likelihood"``, ``"diverged"`` or
        ``"predictive"``; see :meth:`xsfm.models.flowdas.FlowDAS.assimilate`.
    device
        ``"auto"``, ``"cpu"`` or ``"cuda"``.

    Returns
    -------
    xarray.Dataset
        Dims ``(member, *pass-through, time_dim, *state dims)`` at every model step from the first
        after the state to the last observation; ``time_dim`` holds each step's true time,
        ``observed`` whether it assimilated an observation, ``lead`` the step count.

    Examples
    --------
    >>> import xsfm
    >>> ds = xsfm.datasets.lorenz63(trajectories=2, steps=3, burn_in=64)
    >>> ana = ds.state.isel(time=[0]).sfm.assimilate(ds.obs, members=2, steps=20)
    >>> ana["state"].dims, ana["time"].values.tolist()
    (('member', 'trajectory', 'time', 'component'), [1, 2, 3])
    >>> bpf = ds.state.isel(time=[0]).sfm.assimilate(
    ...     ds.obs, method="bpf", transition=xsfm.datasets.lorenz63_transition(), particles=256,
    ...     members=4)
    >>> bpf["state"].sizes["member"]
    4
    """
    from xsfm.models.flowdas import RESAMPLE_MODES

    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    seed = _check_int(seed, "seed", -(2**62))
    valid = isinstance(resample_members, bool) or (
        isinstance(resample_members, str) and resample_members in RESAMPLE_MODES
    )
    if not valid:
        raise TypeError(
            "resample_members must be False, True (or 'likelihood'), 'predictive' or 'diverged', "
            f"got {resample_members!r}"
        )
    obs_da = pick_variable(obs, None, "obs")
    if method == "flowdas":
        m = _load_flowdas(model)
        prepared = _flowdas_state(state, m, time_dim, member_dim)
        card_step, card_extra, where = (
            m.card.grids.get("time_step"),
            m.card.extra,
            f"model {m.name!r}",
        )
    else:
        if resample_members:
            raise ValueError(
                f"resample_members is a FlowDAS option; method={method!r} resamples on its own "
                "terms (bpf) or not at all (enkf): drop resample_members"
            )
        if transition is None:
            raise ValueError(
                f"method={method!r} needs transition=... (x, noise) -> x_next, e.g. "
                "xsfm.datasets.lorenz63_transition() for Lorenz-63"
            )
        m = None
        if state_dims is None:
            da = pick_variable(state, None, "state")
            state_dims = [
                d for d in da.dims if d not in obs_da.dims and d not in (time_dim, member_dim)
            ]
            if not state_dims:
                raise InputError(
                    f"every dim of the state is also in obs; name the state dims with "
                    f"state_dims=... (e.g. {[d for d in da.dims if d not in (time_dim, member_dim)]})"
                )
        prepared = prepare_state(
            state,
            spec=None,
            state_dims=list(state_dims),
            history=1,
            time_dim=time_dim,
            member_dim=member_dim,
            model=f"the {method} filter",
        )
        card_step, card_extra, where = None, {}, f"the {method} filter"
    if method == "bpf":
        members = check_members(8 if members is None else members)
    else:
        members = _ensemble_size(members, prepared, member_dim)
    step, notes = _time_step(prepared, time_step, card_step, time_dim, where)
    op, obs_da, units = _operator_for(operator, noise_std, obs_da, prepared, card_extra)
    placed = prepare_observations(obs_da, prepared, time_dim=time_dim, time_step=step, units=units)
    notes += placed.notes
    state_shape = tuple(prepared.data.sizes[d] for d in prepared.state_dims)
    expected = op.output_shape(state_shape)
    shape = tuple(obs_da.sizes[d] for d in placed.obs_dims)
    if shape != tuple(expected):
        raise InputError(
            f"obs dims {placed.obs_dims} (beyond the state's dims and {time_dim!r}) have shape "
            f"{shape}, but the observation operator gives {tuple(expected)} per state; check "
            "operator= and the obs dims"
        )
    dev = _resolve_device(device, prepared.data)
    if method == "flowdas":
        assert m is not None
        kwargs = {
            "model": m,
            "members": members,
            "ensemble": prepared.members is not None,
            "label": prepared.label,
            "seed": seed,
            "n_steps": placed.n_steps,
            "steps": steps,
            "device": dev,
            "operator": op,
            "guidance": guidance,
            "guidance_options": guidance_options,
            "resample_members": resample_members,
        }
        func: Callable[..., np.ndarray] = _flowdas_chunk
        spec = dict(m.card.outputs[0]) if m.card.outputs else prepared.spec
        source = f"model {m.name} v{m.card.version} ({m.card.method}), guided assimilation"
        call = _call_text(
            "assimilate",
            model=m.name,
            members=members,
            operator=op.to_dict() if hasattr(op, "to_dict") else op,
            steps=steps,
            guidance={**(guidance or {}), **guidance_options} or None,
            seed=seed,
            resample_members=resample_members or None,
            device=dev,
        )
    else:
        if guidance is not None or guidance_options:
            raise ValueError(f"guidance options are FlowDAS options; method={method!r} takes none")
        if method == "enkf" and members < 2:
            raise ValueError(
                "the ensemble Kalman filter needs members >= 2 (it estimates covariances)"
            )
        n_particles = _particles(particles, prepared, member_dim)
        kwargs = {
            "method": method,
            "members": members,
            "ensemble": prepared.members is not None,
            "label": prepared.label,
            "seed": seed,
            "device": dev,
            "operator": op,
            "transition": transition,
            "particles": n_particles,
            "state_ndim": len(prepared.state_dims),
        }
        func = _filter_chunk
        spec = prepared.spec
        source = (
            f"bootstrap particle filter ({n_particles} particles, {members} members kept)"
            if method == "bpf"
            else f"stochastic ensemble Kalman filter ({members} members)"
        )
        call = _call_text(
            "assimilate",
            method=method,
            members=members,
            particles=n_particles if method == "bpf" else None,
            seed=seed,
        )
    raw = _run(
        func,
        prepared,
        placed,
        members=members,
        n_steps=placed.n_steps,
        member_dim=member_dim,
        kwargs=kwargs,
    )
    return _label(
        raw,
        prepared,
        time_dim=time_dim,
        member_dim=member_dim,
        time_coords={
            **placed.time_coords,
            **_time_coords(prepared, time_dim, step, placed.n_steps, placed.steps),
        },
        spec=spec,
        source=source,
        call=call,
        notes=notes,
        attrs=_attrs_of(state),
    )


def _particles(particles: int | None, state: PreparedState, member_dim: Hashable) -> int:
    if state.members is None:
        return _check_int(1024 if particles is None else particles, "particles", 1)
    if particles is not None and particles != state.members:
        raise InputError(
            f"{state.label} is an initial ensemble of {state.members} along {member_dim!r}, but "
            f"particles={particles}; drop particles= (the particles come from the state)"
        )
    return state.members
