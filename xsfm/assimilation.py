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

from collections.abc import Callable, Hashable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from xsfm.errors import InputError
from xsfm.forecasting import forecast
from xsfm.model import load_flowdas
from xsfm.progress import reporting
from xsfm.run import filter_chunk, flowdas_chunk
from xsfm.xr.chunks import map_steps
from xsfm.xr.label import call_text, label_steps, provenance_attrs, step_coords
from xsfm.xr.observations import (
    operator_source,
    prepare_observations,
)
from xsfm.xr.params import check_int, check_members, ensemble_size, particle_count
from xsfm.xr.state import (
    pick_variable,
    prepare_state,
    prepare_state_for_card,
)
from xsfm.xr.timeline import model_time_step

if TYPE_CHECKING:
    import torch

    from xsfm.model import Model
    from xsfm.observations import Observation

__all__ = ["DEFAULT_ASSIMILATION_MODEL", "assimilate", "forecast"]

DEFAULT_ASSIMILATION_MODEL = "lorenz63-flowdas"
METHODS = ("flowdas", "bpf", "enkf", "etkf")
FILTER_OPTIONS = {
    "bpf": ("regularisation", "resample_threshold"),
    "enkf": ("inflation", "localisation", "period"),
    "etkf": ("inflation", "rotate", "localisation", "period"),
}


def assimilate(
    state: xr.DataArray | xr.Dataset,
    obs: xr.DataArray | xr.Dataset,
    model: str | Model | None = None,
    members: int | None = None,
    operator: Observation | dict[str, Any] | Callable[[torch.Tensor], torch.Tensor] | None = None,
    noise_std: float | None = None,
    steps: int | None = None,
    guidance: dict[str, Any] | str | None = None,
    seed: int = 0,
    *,
    method: str = "flowdas",
    transition: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    particles: int | None = None,
    state_dims: Sequence[Hashable] | None = None,
    time_dim: str = "time",
    time_step: Any = None,
    member_dim: str = "member",
    resample_members: bool | str | None = None,
    inflation: float = 1.0,
    rotate: bool = False,
    localisation: float | None = None,
    period: float | None = None,
    regularisation: float = 0.0,
    resample_threshold: float | None = None,
    device: str | None = None,
    progress: bool | None = None,
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
        :class:`~xsfm.sampling.guidance.Guidance`; they override the card's defaults
        (``card.sampler["defaults"]``, which may also set ``members`` and ``resample_members``).
        ``guidance`` may instead name one of the card's settings, ``card.sampler["presets"]``
        (``lorenz63-flowdas``: ``"paper"``, the FlowDAS paper's zeta with independent members).
    seed
        Seed of the per-(sample, member) random streams.
    method
        ``"flowdas"`` (default), or a classical filter (:mod:`xsfm.filters`), each needing
        ``transition``: ``"bpf"`` (bootstrap particle filter), ``"enkf"`` (stochastic EnKF,
        centred perturbed observations) or ``"etkf"`` (square-root ETKF; LETKF with
        ``localisation``).
    transition
        ``transition(x, noise) -> x_next`` for the filters, one model step on tensors
        ``[B, P, *state]`` with standard-normal ``noise`` (Lorenz-63:
        :func:`xsfm.datasets.lorenz63_transition`).
    particles
        Particles of the bootstrap filter (default 1024; with an initial ensemble, its size).
    state_dims
        State dims for the filters (default: the state's dims that ``obs`` lacks; name them
        when ``obs`` is shared by every trajectory, i.e. lacks a pass-through dim too).
    time_dim, member_dim
        Names of the time and ensemble dims.
    time_step
        The model's time step in the units of ``time_dim`` (a timedelta such as ``"6h"`` for
        datetimes). Default: the card's ``time_step``; for the filters, 1 when the time coordinate
        counts steps (``units: "1"``), else required.
    resample_members
        FlowDAS only (an extension of the paper): ``False``, ``True``/``"likelihood"``,
        ``"diverged"`` or ``"predictive"``; see :meth:`xsfm.models.flowdas.FlowDAS.assimilate`.
        Default (None): the card's.
    inflation, localisation, period
        EnKF/ETKF: multiplicative inflation of the analysis anomalies after each analysis; the
        Gaspari-Cohn half-width in grid steps of the state dim (taper zero beyond twice it); the
        period of a periodic state dim (e.g. 40 for Lorenz-96); with a period, station
        observations (a dim with coordinates named like the state dims) wrap around the domain.
    rotate
        ETKF: a random mean-preserving rotation of the anomalies after each analysis (DAPPER's
        ``rot``).
    regularisation, resample_threshold
        BPF: jitter of duplicates after resampling in kernel bandwidths; resample only when the
        effective sample size is below this fraction of the particles (None: at every step).
    device
        ``"auto"``, ``"cpu"`` or ``"cuda"``.
    progress
        Progress bar over the model steps of an eager (numpy) call: True, False, or None (default:
        on a terminal or in Jupyter). Lazy (dask) results show progress when computed.

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
    from xsfm.backend import device_for
    from xsfm.models.flowdas import RESAMPLE_MODES
    from xsfm.observations import as_operator

    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    seed = check_int(seed, "seed", -(2**62))
    valid = (
        resample_members is None
        or isinstance(resample_members, bool)
        or (isinstance(resample_members, str) and resample_members in RESAMPLE_MODES)
    )
    if not valid:
        raise TypeError(
            "resample_members must be False, True (or 'likelihood'), 'predictive' or 'diverged', "
            f"got {resample_members!r}"
        )
    obs_da = pick_variable(obs, None, "obs")
    if method == "flowdas":
        m = load_flowdas(model)
        prepared = prepare_state_for_card(state, m.card, time_dim=time_dim, member_dim=member_dim)
        guidance, guidance_options, card_members, card_resample = _card_settings(
            m, guidance, guidance_options
        )
        if resample_members is None:
            resample_members = card_resample
        if members is None and prepared.members is None:
            members = card_members
        card_step, card_extra, where = (
            m.card.grids.get("time_step"),
            m.card.extra,
            f"model {m.name!r}",
        )
    else:
        if isinstance(guidance, str):
            raise ValueError(f"guidance={guidance!r} names a FlowDAS setting; method={method!r}")
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
        # a period (for localisation) says the domain is periodic: stations wrap around too
        card_extra = {"periodic": True} if period is not None else {}
        card_step, where = None, f"the {method} filter"
    if method == "bpf":
        default = 8 if prepared.members is None else min(8, prepared.members)
        members = check_members(default if members is None else members)
    else:
        members = ensemble_size(members, prepared, member_dim)
    step, notes = model_time_step(prepared, time_step, card_step, time_dim, where)
    source, obs_da, noise_std, default_units = operator_source(
        operator, noise_std, obs_da, prepared, card_extra
    )
    op = as_operator(source, noise_std)
    units = getattr(op, "units", None) or default_units
    state_shape = tuple(prepared.data.sizes[d] for d in prepared.state_dims)
    placed = prepare_observations(
        obs_da,
        prepared,
        time_dim=time_dim,
        time_step=step,
        units=units,
        shape=op.output_shape(state_shape),
    )
    notes += placed.notes
    dev = device_for(prepared.data.data, device)
    common = {"members": members, "seed": seed}
    kwargs = {**common, "ensemble": prepared.members is not None, "label": prepared.label}
    kwargs.update(device=dev, operator=op)
    given = {
        "inflation": inflation != 1.0,
        "rotate": bool(rotate),
        "localisation": localisation is not None,
        "period": period is not None,
        "regularisation": regularisation != 0.0,
        "resample_threshold": resample_threshold is not None,
    }
    if m is not None:
        if any(given.values()):
            raise ValueError(
                f"{[k for k, v in given.items() if v]} are options of the classical filters "
                "(method='enkf', 'etkf' or 'bpf'), not of FlowDAS"
            )
        kwargs.update(model=m, n_steps=placed.n_steps, steps=steps, guidance=guidance)
        kwargs.update(guidance_options=guidance_options, resample_members=resample_members)
        func: Callable[..., np.ndarray] = flowdas_chunk
        spec = dict(m.card.outputs[0]) if m.card.outputs else prepared.spec
        source = f"model {m.name} v{m.card.version} ({m.card.method}), guided assimilation"
        options = {**(guidance or {}), **guidance_options} or None
        call = call_text(
            "assimilate", model=m.name, operator=getattr(op, "to_dict", lambda: op)(), steps=steps,
            guidance=options, resample_members=resample_members or None, device=dev, **common,
        )  # fmt: skip
    else:
        if guidance is not None or guidance_options:
            raise ValueError(f"guidance options are FlowDAS options; method={method!r} takes none")
        if method != "bpf" and members < 2:
            raise ValueError(f"method={method!r} needs members >= 2 (it estimates covariances)")
        wrong = [k for k, v in given.items() if v and k not in FILTER_OPTIONS[method]]
        if wrong:
            raise ValueError(
                f"method={method!r} takes none of {wrong}; its options are "
                f"{list(FILTER_OPTIONS[method])}"
            )
        n_particles = particle_count(particles, prepared, member_dim)
        options = {"regularisation": regularisation, "resample_threshold": resample_threshold}
        if method != "bpf":
            # observations of the state's own dim: their positions are the observed components
            direct = isinstance(source, dict) and source.get("function") == "identity"
            components = source.get("components") if direct else None
            positions = None if components is None else np.asarray(components, float).reshape(-1, 1)
            if positions is None:
                positions = op.positions(state_shape)  # gridded operators say where they look
            options = {"inflation": inflation, "localisation": localisation, "period": period}
            if method == "etkf":
                options["rotate"] = bool(rotate)
            options.update(kind="stochastic" if method == "enkf" else "etkf")
            options.update(obs_positions=positions)
        kwargs.update(method=method, transition=transition, particles=n_particles, options=options)
        kwargs.update(state_ndim=len(prepared.state_dims))
        func, spec = filter_chunk, prepared.spec
        names = {"bpf": "bootstrap particle filter", "enkf": "stochastic EnKF", "etkf": "ETKF"}
        size = (
            f"{n_particles} particles, {members} kept" if method == "bpf" else f"{members} members"
        )
        settings = ", ".join(f"{k}={v}" for k, v in options.items() if k in FILTER_OPTIONS[method])
        source = f"{names[method]} ({size}; {settings})"
        particles = n_particles if method == "bpf" else None
        call = call_text("assimilate", method=method, particles=particles, **common, **{
            k: v for k, v in options.items() if k in FILTER_OPTIONS[method]
        })  # fmt: skip
    _check_size(prepared, members, placed.n_steps, state_shape, particles or 0)
    eager = prepared.data.chunks is None
    with reporting(placed.n_steps, "assimilate", progress if eager else False, "step"):
        raw = map_steps(
            func,
            prepared,
            placed,
            members=members,
            n_steps=placed.n_steps,
            member_dim=member_dim,
            kwargs=kwargs,
        )
    return label_steps(
        raw,
        prepared,
        time_dim=time_dim,
        member_dim=member_dim,
        time_coords={
            **placed.time_coords,
            **step_coords(prepared, time_dim, step, placed.n_steps, placed.steps),
        },
        spec=spec,
        source=source,
        call=call,
        notes=notes,
        attrs=provenance_attrs(state),
    )


def _check_size(
    prepared: Any, members: int, n_steps: int, state_shape: tuple[int, ...], particles: int
) -> None:
    """Refuse a call whose trajectories (one chunk's, for dask input) cannot fit in memory."""
    from xsfm.xr.params import check_fits_in_memory, rows_at_once

    rows = rows_at_once(prepared.data, prepared.pass_dims)
    hint = (
        "use fewer members or steps, or chunk the state with dask and write to zarr"
        if prepared.data.chunks is None
        else "use fewer members or steps, or smaller chunks along the pass-through dims"
    )
    per_row = 8 * (members * n_steps + particles) * int(np.prod(state_shape))
    check_fits_in_memory(
        rows * per_row,
        f"assimilate(members={members}{f', particles={particles}' if particles else ''}) over "
        f"{n_steps} steps on {rows} trajectory(ies)",
        hint,
    )


def _card_settings(
    model: Model, guidance: dict[str, Any] | str | None, options: dict[str, Any]
) -> tuple[dict[str, Any] | None, dict[str, Any], int | None, bool | str]:
    """The card's FlowDAS defaults (or a named preset), overridden by the caller's options.

    Returns ``(guidance, guidance_options, members, resample_members)``: the caller's explicit
    ``guidance`` dict and options win over the card's settings.
    """
    sampler = model.card.sampler
    settings = dict(sampler.get("defaults", {}))
    if isinstance(guidance, str):
        presets = sampler.get("presets", {})
        if guidance not in presets:
            raise ValueError(
                f"guidance={guidance!r}: model {model.name!r} has the settings "
                f"{sorted(presets) or 'none'}; or pass a dict of guidance options"
            )
        settings = dict(presets[guidance])
        guidance = None
    members = settings.pop("members", None)
    resample = settings.pop("resample_members", False)
    explicit = {**(guidance or {}), **options}
    return None, {**settings, **explicit}, members, resample
