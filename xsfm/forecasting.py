"""Probabilistic forecasts on xarray objects: unguided FlowDAS rollouts.

``forecast`` is ``prepare -> run -> label`` as :mod:`xsfm.assimilation` is, without observations:
the state (a known state or an initial ensemble along ``member``) is prepared by
:func:`xsfm.xr.state.prepare_state_for_card`, rolled out chunk by chunk of its pass-through dims
(lazy for dask input; :func:`xsfm.run.flowdas_chunk`), and labelled with the true time of each
step (the card's ``time_step``), ``lead`` and the card's units and names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import xarray as xr

from xsfm.model import load_flowdas
from xsfm.progress import reporting
from xsfm.run import flowdas_chunk
from xsfm.xr.chunks import map_steps
from xsfm.xr.label import call_text, label_steps, provenance_attrs, step_coords
from xsfm.xr.params import check_int, ensemble_size
from xsfm.xr.state import prepare_state_for_card
from xsfm.xr.timeline import model_time_step

if TYPE_CHECKING:
    from xsfm.model import Model

__all__ = ["forecast"]


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
    progress: bool | None = None,
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
        Registry name, path or :class:`~xsfm.model.Model` (default ``"lorenz63-flowdas"``).
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
    progress
        Progress bar over the model steps of an eager (numpy) call: True, False, or None (default:
        on a terminal or in Jupyter). Lazy (dask) results show progress when computed.

    Returns
    -------
    xarray.Dataset
        Dims ``(member, *pass-through, time_dim, *state dims)``; ``time_dim`` holds the true time
        of each step when the state has a time, and ``lead`` (1..lead) counts the steps.

    Examples
    --------
    >>> import xsfm
    >>> ds = xsfm.datasets.lorenz63(trajectories=2, steps=2, burn_in=64)
    >>> fc = xsfm.forecasting.forecast(ds.state.isel(time=[0]), lead=2, members=3, steps=20)
    >>> fc["state"].dims, fc["time"].values.tolist()
    (('member', 'trajectory', 'time', 'component'), [1, 2])
    """
    from xsfm.backend import device_for

    m = load_flowdas(model)
    lead = check_int(lead, "lead", 1)
    seed = check_int(seed, "seed", -(2**62))
    prepared = prepare_state_for_card(state, m.card, time_dim=time_dim, member_dim=member_dim)
    members = ensemble_size(members, prepared, member_dim)
    step, notes = model_time_step(
        prepared, time_step, m.card.grids.get("time_step"), time_dim, f"model {m.name!r}"
    )
    dev = device_for(prepared.data.data, device)
    eager = prepared.data.chunks is None
    with reporting(lead, "forecast", progress if eager else False, "step"):
        raw = map_steps(
            flowdas_chunk,
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
    call = call_text(
        "forecast", model=m.name, lead=lead, members=members, seed=seed, steps=steps, device=dev
    )
    return label_steps(
        raw,
        prepared,
        time_dim=time_dim,
        member_dim=member_dim,
        time_coords=step_coords(prepared, time_dim, step, lead, None),
        spec=dict(m.card.outputs[0]) if m.card.outputs else prepared.spec,
        source=f"model {m.name} v{m.card.version} ({m.card.method}), unguided forecast",
        call=call,
        notes=notes,
        attrs=provenance_attrs(state),
    )
