"""Model cards: everything needed to use, check and reproduce a model, as plain JSON.

A card travels with the weights (``card.json`` beside ``weights.safetensors`` and a copy in the safetensors
metadata under ``xsfm_card``). Variables are declared the cf-xarray way, as data: a list of
``{name, standard_name, units, long_name}`` dicts (plus optional ``level``/``level_units`` for a pressure
level, ``aliases`` for GRIB short names), resolved against a dataset by :mod:`xsfm.xr.variables`.
"""

from __future__ import annotations

import dataclasses
import html
import json
from typing import Any, Literal

__all__ = ["ModelCard", "VariableSpec"]

Kind = Literal["downscaling", "assimilation"]

VariableSpec = dict[str, Any]
"""One declared variable: ``{"name", "standard_name", "units", "long_name", ...}``."""

_REQUIRED_VARIABLE_KEYS = ("name", "units")


@dataclasses.dataclass
class ModelCard:
    """Description of a model: identity, method, variables, grids, statistics and provenance.

    Parameters
    ----------
    name, version
        Registry name and version string.
    kind
        ``"downscaling"`` or ``"assimilation"``.
    method
        Method name (``"sfm"``, ``"regression"``, ``"interpolation"``, ``"flowdas"``, ...).
    description
        One paragraph for humans.
    network
        JSON config from which the network module is built (``Module.from_config``).
    inputs, outputs
        Declared variables, ``[{name, standard_name, units, long_name}, ...]``. An empty ``inputs`` list
        with ``any_variables=True`` in ``extra`` means the model takes any variable (interpolation).
    grids
        ``{"coarse": grid spec, "fine": grid spec}`` (see :mod:`xsfm.xr.gridspec`) or a rule such as
        ``{"rule": "factor", "factor": 4}``.
    normalisation
        Statistics used by the network (informative copy; the network holds them as buffers).
    sampler
        Sampler defaults, e.g. ``{"solver": "euler", "steps": 50}``.
    training
        How the model was trained: command, seed, data, wall time.
    metrics
        Figures measured at release.
    licence
        SPDX identifier of the weights' licence.
    weights_sha256
        sha256 of the weights' tensor data (see :mod:`xsfm.models.io`); ``None`` for weightless models.
    extra
        Anything else (method-specific).

    Examples
    --------
    >>> card = ModelCard(name="demo", version="1", kind="downscaling", method="interpolation")
    >>> ModelCard.from_json(card.to_json()) == card
    True
    """

    name: str
    version: str
    kind: Kind
    method: str
    description: str = ""
    network: dict[str, Any] = dataclasses.field(default_factory=dict)
    inputs: list[VariableSpec] = dataclasses.field(default_factory=list)
    outputs: list[VariableSpec] = dataclasses.field(default_factory=list)
    grids: dict[str, Any] = dataclasses.field(default_factory=dict)
    normalisation: dict[str, Any] = dataclasses.field(default_factory=dict)
    sampler: dict[str, Any] = dataclasses.field(default_factory=dict)
    training: dict[str, Any] = dataclasses.field(default_factory=dict)
    metrics: dict[str, Any] = dataclasses.field(default_factory=dict)
    licence: str = "Apache-2.0"
    weights_sha256: str | None = None
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in ("downscaling", "assimilation"):
            raise ValueError(
                f"model card {self.name!r}: kind must be 'downscaling' or 'assimilation', "
                f"got {self.kind!r}"
            )
        for role in ("inputs", "outputs"):
            for i, spec in enumerate(getattr(self, role)):
                missing = [k for k in _REQUIRED_VARIABLE_KEYS if k not in spec]
                if missing:
                    raise ValueError(
                        f"model card {self.name!r}: {role}[{i}] lacks {missing}; every declared "
                        "variable needs at least a name and units"
                    )

    # -- serialisation -------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Return the card as a plain JSON-serialisable dict."""
        return dataclasses.asdict(self)

    def to_json(self, indent: int | None = 2) -> str:
        """Return the card as JSON text."""
        return json.dumps(self.to_dict(), indent=indent, sort_keys=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelCard:
        """Build a card from a dict, refusing unknown keys by name."""
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - fields)
        if unknown:
            raise ValueError(
                f"model card has unknown keys {unknown}; known keys are {sorted(fields)} "
                "(put method-specific entries under 'extra')"
            )
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> ModelCard:
        """Parse a card from JSON text."""
        return cls.from_dict(json.loads(text))

    # -- conveniences --------------------------------------------------------------------------------
    @property
    def input_names(self) -> list[str]:
        """Names of the declared inputs, in channel order."""
        return [spec["name"] for spec in self.inputs]

    @property
    def output_names(self) -> list[str]:
        """Names of the declared outputs, in channel order."""
        return [spec["name"] for spec in self.outputs]

    def replace(self, **changes: Any) -> ModelCard:
        """Return a copy with some fields replaced."""
        return dataclasses.replace(self, **changes)

    def _variables_html(self, role: str) -> str:
        rows = "".join(
            "<tr>"
            + "".join(
                f"<td>{html.escape(str(spec.get(key, '')))}</td>"
                for key in ("name", "standard_name", "units", "long_name")
            )
            + "</tr>"
            for spec in getattr(self, role)
        )
        if not rows:
            rows = "<tr><td colspan='4'><i>any variable</i></td></tr>"
        head = "".join(f"<th>{h}</th>" for h in ("name", "standard_name", "units", "long_name"))
        return f"<table><tr>{head}</tr>{rows}</table>"

    def _repr_html_(self) -> str:
        """Rich display for Jupyter."""
        esc = html.escape
        facts = {
            "kind": self.kind,
            "method": self.method,
            "licence": self.licence,
            "sampler": json.dumps(self.sampler),
            "grids": json.dumps({k: _grid_summary(v) for k, v in self.grids.items()}),
            "weights sha256": self.weights_sha256 or "(no weights)",
        }
        facts_html = "".join(
            f"<tr><th style='text-align:left'>{esc(k)}</th><td>{esc(str(v))}</td></tr>"
            for k, v in facts.items()
        )
        metrics = ""
        if self.metrics:
            body = esc(json.dumps(self.metrics, indent=1))
            metrics = f"<details><summary>metrics</summary><pre>{body}</pre></details>"
        training = ""
        if self.training:
            body = esc(json.dumps(self.training, indent=1))
            training = f"<details><summary>training</summary><pre>{body}</pre></details>"
        return (
            f"<div class='xsfm-card'><b>xsfm model {esc(self.name)}</b> v{esc(self.version)}"
            f"<p>{esc(self.description)}</p><table>{facts_html}</table>"
            f"<details open><summary>inputs</summary>{self._variables_html('inputs')}</details>"
            f"<details open><summary>outputs</summary>{self._variables_html('outputs')}</details>"
            f"{metrics}{training}</div>"
        )

    def __repr__(self) -> str:
        ins = ", ".join(self.input_names) or "any"
        outs = ", ".join(self.output_names) or "same as inputs"
        return (
            f"<ModelCard {self.name} v{self.version}: {self.kind}/{self.method}, "
            f"inputs [{ins}] -> outputs [{outs}]>"
        )


def _grid_summary(spec: Any) -> Any:
    """Short description of a grid spec for display: each axis as ``name: size x step units``.

    Examples
    --------
    >>> _grid_summary({"y": {"name": "y", "size": 64, "start": 0.0, "step": 0.1, "units": "m"},
    ...                "periodic": True})
    'y: 64 x 0.1 m; periodic'
    """
    if not isinstance(spec, dict):
        return spec
    dims = spec.get("dims")
    if dims:
        return {d: spec.get("coords", {}).get(d, {}).get("size") for d in dims}
    parts = []
    for key, axis in spec.items():
        if isinstance(axis, dict) and "size" in axis:
            step = f" x {axis['step']:g}" if isinstance(axis.get("step"), (int, float)) else ""
            units = f" {axis['units']}" if axis.get("units") not in (None, "1") else ""
            parts.append(f"{axis.get('name', key)}: {axis['size']}{step}{units}")
        elif isinstance(axis, dict) and {"lat", "lon"} <= set(axis):
            parts.append("2-D latitude/longitude")
        elif key == "periodic" and axis:
            parts.append("periodic")
        elif key in ("rule", "factor", "time_step") and not isinstance(axis, (dict, list)):
            parts.append(f"{key} {axis}")
    return (
        "; ".join(parts)
        if parts
        else {k: v for k, v in spec.items() if not isinstance(v, (list, dict))}
    )
