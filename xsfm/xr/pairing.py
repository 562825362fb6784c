"""Pairing by label: observations with states, coarse samples with fine ones.

Wherever xarray gives labels (trajectories, times, cases, stations), two objects that go together
are paired by their labels, never by position: :func:`align_labels` reorders one to the other's
labels and names every label either side lacks; :func:`pair_samples` does the same for the sample
dims of a training pair and refuses samples without a partner, saying how many.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np
import xarray as xr

from xsfm.errors import InputError, raise_all

__all__ = ["align_labels", "pair_samples"]


def _labels(da: xr.DataArray, dim: Hashable) -> np.ndarray | None:
    return np.asarray(da.indexes[dim]) if dim in da.indexes else None


def align_labels(
    obs: xr.DataArray | xr.Dataset,
    state: xr.DataArray | xr.Dataset,
    dims: Sequence[Hashable],
    *,
    what: str = "obs",
    against: str = "the state",
) -> xr.DataArray:
    """Reorder ``obs`` to ``state``'s labels on ``dims``; an error names labels either side lacks.

    Two unlabelled dims of the same size are taken as they are (there is nothing else to go by);
    one labelled and one not is an error.

    Examples
    --------
    >>> state = xr.DataArray([0.0, 1.0], dims="trajectory", coords={"trajectory": ["a", "b"]})
    >>> obs = xr.DataArray([10.0, 11.0], dims="trajectory", coords={"trajectory": ["b", "a"]})
    >>> align_labels(obs, state, ["trajectory"]).values.tolist()
    [11.0, 10.0]
    """
    problems: list[Exception] = []
    picks: dict[Hashable, np.ndarray] = {}
    for dim in dims:
        mine, theirs = _labels(obs, dim), _labels(state, dim)
        if mine is None and theirs is None:
            if obs.sizes[dim] != state.sizes[dim]:
                problems.append(
                    InputError(
                        f"{what} has {obs.sizes[dim]} entries along {dim!r} but {against} has "
                        f"{state.sizes[dim]}; neither has labels on {dim!r} to pair them by"
                    )
                )
            continue
        if mine is None or theirs is None:
            side = what if mine is None else against
            problems.append(
                InputError(
                    f"{side} has no {dim!r} coordinate but the other side has labels on it: "
                    f"observations are paired with states by label, so give both the same "
                    f"{dim!r} coordinate (e.g. .assign_coords({dim}=...))"
                )
            )
            continue
        for name, values in ((what, mine), (against, theirs)):
            if len(set(values.tolist())) != len(values):
                problems.append(InputError(f"{name} has repeated labels along {dim!r}"))
        missing = [v for v in theirs.tolist() if v not in set(mine.tolist())]
        extra = [v for v in mine.tolist() if v not in set(theirs.tolist())]
        if missing:
            problems.append(
                InputError(
                    f"{what} lacks {dim} label(s) {missing[:10]} that {against} has; give "
                    f"observations for them (NaN where there are none)"
                )
            )
        if extra:
            problems.append(
                InputError(
                    f"{what} has {dim} label(s) {extra[:10]} that {against} lacks; select the "
                    f"observations of {against}'s {dim!r} labels"
                )
            )
        if not (missing or extra):
            position = {v: i for i, v in enumerate(mine.tolist())}
            picks[dim] = np.array([position[v] for v in theirs.tolist()])
    raise_all(problems, f"pairing {what} with {against}")
    return obs.isel(picks) if picks else obs


def pair_samples(
    coarse: xr.Dataset, fine: xr.Dataset, sample_dims: Sequence[Hashable]
) -> xr.Dataset:
    """``fine`` reordered to ``coarse``'s labels on ``sample_dims``; unpaired samples are refused.

    Examples
    --------
    >>> c = xr.Dataset({"a": ("time", [0.0, 1.0])}, coords={"time": [10, 20]})
    >>> f = xr.Dataset({"b": ("time", [2.0, 1.0])}, coords={"time": [20, 10]})
    >>> pair_samples(c, f, ["time"])["b"].values.tolist()
    [1.0, 2.0]
    """
    problems: list[Exception] = []
    for dim in sample_dims:
        if dim not in fine.dims:
            problems.append(
                InputError(f"the coarse samples have dim {dim!r}, the fine ones do not")
            )
            continue
        mine, theirs = _labels(fine, dim), _labels(coarse, dim)
        if mine is None or theirs is None:
            continue
        lonely_coarse = [v for v in theirs.tolist() if v not in set(mine.tolist())]
        lonely_fine = [v for v in mine.tolist() if v not in set(theirs.tolist())]
        if lonely_coarse or lonely_fine:
            problems.append(
                InputError(
                    f"along {dim!r}, {len(lonely_coarse)} coarse sample(s) have no fine partner "
                    f"(e.g. {[str(v) for v in lonely_coarse[:3]]}) and {len(lonely_fine)} fine "
                    f"sample(s) have no coarse partner (e.g. {[str(v) for v in lonely_fine[:3]]}); "
                    f"select the common labels first, e.g. coarse.sel({dim}=common), fine.sel({dim}=common)"
                )
            )
    raise_all(problems, "pairing coarse and fine samples")
    present = [d for d in sample_dims if d in fine.dims]
    return align_labels(fine, coarse, present, what="fine", against="coarse")
