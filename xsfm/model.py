"""The :class:`Model` object: a card, where its weights live, and the network built from them."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from xsfm.errors import ModelFormatError
from xsfm.models.card import ModelCard
from xsfm.models.io import (
    EXAMPLE_FILE,
    WEIGHTS_FILE,
    load_card,
    load_weights,
    save_card_only,
    save_model_files,
)

if TYPE_CHECKING:
    import torch
    import xarray as xr

__all__ = ["Model", "build_network", "load_model"]


TRAIN_HINTS = {
    "cwa-2km": (
        "They are NVIDIA's CorrDiff Taiwan package (NGC model nvidia/modulus/"
        "corrdiff_inference_package, file corrdiff_inference_package.zip: what earth2studio's "
        "CorrDiffTaiwan downloads; licence and terms on NGC). Download it and import it with "
        "`xsfm import corrdiff corrdiff_inference_package.zip models/cwa-2km`."
    ),
}


def build_network(card: ModelCard) -> torch.nn.Module:
    """Build the (untrained) network a card describes."""
    if card.method == "interpolation":
        from xsfm.models.interpolation import InterpolationDownscaler

        return InterpolationDownscaler.from_config(card.network)
    if card.kind == "downscaling" and card.network.get("architecture") == "physicsnemo-corrdiff":
        from xsfm.models.corrdiff_package import CorrDiffPackageDownscaler

        return CorrDiffPackageDownscaler(card.network)
    if card.kind == "downscaling":
        from xsfm.models.downscaling import build_downscaler

        network = dict(card.network)
        if network.get("method") in ("sfm", "sfm-two-stage"):
            # cards written before base_noise existed used white noise: keep it whatever the default
            network.setdefault("base_noise", "white")
        return build_downscaler(network)
    if card.kind == "assimilation":
        from xsfm.models.flowdas import build_flowdas

        return build_flowdas(card.network)
    raise ModelFormatError(f"model {card.name!r}: no network for kind={card.kind!r}")


class Model:
    """A model: its :class:`~xsfm.models.card.ModelCard`, its files and its network.

    Get one with :func:`xsfm.load_model` (or from :mod:`xsfm.training`). The network is built and its
    weights verified (sha256) on first use, on the device asked for.

    Examples
    --------
    >>> import xsfm
    >>> m = xsfm.load_model("interpolation")
    >>> m.card.kind
    'downscaling'
    """

    def __init__(
        self,
        card: ModelCard,
        path: str | os.PathLike[str] | None = None,
        network: torch.nn.Module | None = None,
    ) -> None:
        self.card = card
        self.path = Path(path) if path is not None else None
        self._networks: dict[str, Any] = {}
        if network is not None:
            self._networks["cpu"] = network.cpu().eval()

    def __getstate__(self) -> dict[str, Any]:
        """Pickle without built networks when they can be rebuilt from the model's files.

        Dask sends the model with every task to its workers; a file-backed model travels as its
        card and path (a few kB) and each worker process loads the weights once
        (:func:`xsfm.backend.cached_network`). An in-memory model keeps its CPU network.
        """
        state = dict(self.__dict__)
        if self.path is not None and self.path.is_dir():
            state["_networks"] = {}
        else:
            state["_networks"] = {k: v for k, v in self._networks.items() if k == "cpu"}
        return state

    @property
    def name(self) -> str:
        """The model's registry name."""
        return self.card.name

    @property
    def needs_weights(self) -> bool:
        """Whether the network has learned parameters or buffers that must come from a file."""
        return self.card.weights_sha256 is not None or self.card.method != "interpolation"

    def network(self, device: str | torch.device = "cpu") -> torch.nn.Module:
        """The network on ``device``, in eval mode (built and verified on first call, then cached)."""
        import torch

        key = str(torch.device(device))
        if key not in self._networks:
            if "cpu" in self._networks:
                self._networks[key] = self._networks["cpu"].to(key)
            else:
                state = None
                if self.needs_weights:
                    from xsfm.models.registry import check_weights_available, has_weights

                    path = self.path
                    check_weights_available(
                        self.name,
                        path if path is not None else Path("."),
                        path is not None and has_weights(path),
                        TRAIN_HINTS.get(self.name, f"xsfm train ... --out models/{self.name}"),
                    )
                    state = load_weights(path, self.card, device="cpu")
                module = build_network(self.card)
                if state is not None:
                    module.load_state_dict(state, strict=True)
                self._networks["cpu"] = module.eval()
                self._networks[key] = self._networks["cpu"].to(key)
        return self._networks[key]

    def fine_latlon(self) -> tuple[np.ndarray, np.ndarray] | None:
        """2-D latitude and longitude of a curvilinear fine grid, or None.

        A card whose fine grid is curvilinear names two buffers of its weights in
        ``grids["fine"]["latlon"]`` (``{"lat": "out_lat", "lon": "out_lon"}``); they are read from
        the weights file (or the in-memory network), in degrees north and east.
        """
        spec = self.card.grids.get("fine", {}).get("latlon")
        if not spec:
            return None
        names = (str(spec["lat"]), str(spec["lon"]))
        if self.path is not None and (self.path / WEIGHTS_FILE).is_file():
            from safetensors import safe_open

            with safe_open(str(self.path / WEIGHTS_FILE), framework="numpy") as f:
                lat, lon = (np.asarray(f.get_tensor(n), dtype=np.float64) for n in names)
        else:
            net = self.network("cpu")
            lat, lon = (net.get_buffer(n).double().numpy() for n in names)
        return lat, lon

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Save to a model directory (``card.json`` + ``weights.safetensors``); return its path.

        Examples
        --------
        >>> import tempfile, xsfm
        >>> p = xsfm.load_model("interpolation").save(tempfile.mkdtemp() + "/m")
        >>> xsfm.load_model(p).card.method
        'interpolation'
        """
        path = Path(path)
        if self.needs_weights:
            module = self.network("cpu")
            self.card = save_model_files(path, self.card, module.state_dict())
        else:
            save_card_only(path, self.card)
        source = self.path / EXAMPLE_FILE if self.path is not None else None
        if (
            source is not None
            and source.is_file()
            and source.resolve() != (path / EXAMPLE_FILE).resolve()
        ):
            shutil.copyfile(self.path / EXAMPLE_FILE, path / EXAMPLE_FILE)
        self.path = path
        return path

    def example_input(self) -> xr.Dataset:
        """A small valid input Dataset for this model (CF attrs, units, grid).

        Examples
        --------
        >>> import xsfm
        >>> ds = xsfm.load_model("interpolation").example_input()
        >>> ds["tas"].attrs["units"]
        'K'
        """
        from xsfm.xr.examples import example_input

        return example_input(self)

    def __repr__(self) -> str:
        where = f" from {self.path}" if self.path is not None else ""
        return f"<xsfm.Model {self.name}{where}: {self.card!r}>"

    def _repr_html_(self) -> str:
        return self.card._repr_html_()


def load_model(name_or_path: str | os.PathLike[str] | Model) -> Model:
    """Load a model by registry name or path (a model directory or a ``.safetensors`` file).

    The card is read now; the weights are verified (sha256) and loaded when the network is first used.

    Examples
    --------
    >>> import xsfm
    >>> xsfm.load_model("interpolation").card.method
    'interpolation'
    """
    if isinstance(name_or_path, Model):
        return name_or_path
    from xsfm.models.registry import resolve_model_path

    path = resolve_model_path(name_or_path)
    card = load_card(path)
    return Model(card, path)


def load_flowdas(model: Any = None) -> Model:
    """An assimilation model by name, path or handle (default ``lorenz63-flowdas``); other kinds are refused."""
    m = load_model(model if model is not None else "lorenz63-flowdas")
    if m.card.kind != "assimilation":
        raise ValueError(
            f"model {m.name!r} is a {m.card.kind} model; assimilate and forecast need an "
            "assimilation model (see xsfm.list_models())"
        )
    return m
