"""Reading and writing model files: safetensors weights with the card in the metadata.

Format
------
A model is either a directory holding ``card.json`` and ``weights.safetensors``, or a single
``.safetensors`` file whose metadata holds the card under ``xsfm_card``. Weights are never unpickled:
files are checked to be safetensors (8-byte little-endian header length, then a JSON header) before
anything else reads them; pickles and zip checkpoints (``torch.save``) are refused without being opened
by any unpickler.

Integrity
---------
``weights_sha256`` in the card is the sha256 of the file's *tensor data* (every byte after the header).
Hashing the data rather than the whole file lets the card, hash included, live inside the same file's
metadata. A mismatch is refused with :class:`~xsfm.errors.ModelFormatError`.
"""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xsfm.errors import ModelFormatError
from xsfm.models.card import ModelCard

if TYPE_CHECKING:
    import torch

__all__ = [
    "CARD_FILE",
    "EXAMPLE_FILE",
    "METADATA_KEY",
    "WEIGHTS_FILE",
    "has_example",
    "load_card",
    "load_weights",
    "read_safetensors_header",
    "save_model_files",
    "tensor_data_sha256",
]

CARD_FILE = "card.json"
EXAMPLE_FILE = "example.safetensors"
WEIGHTS_FILE = "weights.safetensors"
METADATA_KEY = "xsfm_card"
_MAX_HEADER = 100 * 1024 * 1024

_FOREIGN_SIGNATURES = {
    b"\x80": "a Python pickle (e.g. written by torch.save with the legacy format)",
    b"PK": "a zip archive (e.g. a torch.save checkpoint, which holds a pickle)",
    b"\x89HDF": "an HDF5 file",
    b"CDF": "a netCDF-3 file",
}


def _foreign_kind(head: bytes) -> str | None:
    for signature, kind in _FOREIGN_SIGNATURES.items():
        if head.startswith(signature):
            return kind
    return None


def read_safetensors_header(path: str | Path) -> tuple[dict[str, Any], int]:
    """Read and validate the JSON header of a safetensors file without loading tensors.

    Returns
    -------
    header, data_offset
        The parsed header (tensor entries and ``__metadata__``) and the byte offset of the data.

    Raises
    ------
    ModelFormatError
        If the file is not a safetensors file (pickles and zip checkpoints are named as such).
    """
    path = Path(path)
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(8)
        n = struct.unpack("<Q", head)[0] if len(head) == 8 else 0
        valid_length = 0 < n <= min(_MAX_HEADER, size - 8)
        first = f.read(1) if valid_length else b""
        raw = first + f.read(n - 1) if first == b"{" else b""
    if not raw:
        # Not safetensors: say what it is (a pickle or a torch.save zip is never opened further).
        foreign = _foreign_kind(head)
        if foreign is not None:
            raise ModelFormatError(
                f"{path} is {foreign}, not safetensors. xsfm never unpickles model files because "
                "unpickling runs arbitrary code. Convert the weights in a trusted environment with "
                "safetensors.torch.save_file(state_dict, 'weights.safetensors') and load that."
            )
        if len(head) < 8:
            raise ModelFormatError(f"{path} is too short ({size} bytes) to be a safetensors file")
        raise ModelFormatError(
            f"{path} is not a safetensors file (no JSON header of {n} bytes after the 8-byte "
            f"length in a {size}-byte file); xsfm reads weights only from safetensors files"
        )
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ModelFormatError(
            f"{path} is not a safetensors file (its header is not JSON: {err})"
        ) from None
    if not isinstance(header, dict):
        raise ModelFormatError(f"{path} is not a safetensors file (header is not a JSON object)")
    return header, 8 + n


def tensor_data_sha256(path: str | Path) -> str:
    """sha256 of the tensor data of a safetensors file (all bytes after the header).

    Examples
    --------
    >>> import tempfile, pathlib, torch
    >>> from safetensors.torch import save_file
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> save_file({"w": torch.zeros(2)}, d / "a.safetensors", metadata={"k": "1"})
    >>> save_file({"w": torch.zeros(2)}, d / "b.safetensors", metadata={"k": "2"})
    >>> tensor_data_sha256(d / "a.safetensors") == tensor_data_sha256(d / "b.safetensors")
    True
    """
    _, offset = read_safetensors_header(path)
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        f.seek(offset)
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _locate(path: Path) -> tuple[Path | None, Path | None]:
    """Return (card_json, weights_file) for a model directory or a single safetensors file."""
    if path.is_dir():
        card = path / CARD_FILE
        weights = path / WEIGHTS_FILE
        others = sorted(path.glob("*.safetensors"))
        if not weights.exists() and len(others) == 1:
            weights = others[0]
        return (card if card.exists() else None, weights if weights.exists() else None)
    return None, path


def load_card(path: str | Path) -> ModelCard:
    """Load the card of a model directory or single-file model.

    ``card.json`` wins when present; otherwise the card comes from the safetensors metadata.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no model at {path}: neither a directory nor a file exists there")
    card_file, weights = _locate(path)
    if card_file is not None:
        try:
            return ModelCard.from_json(card_file.read_text())
        except (json.JSONDecodeError, TypeError) as err:
            raise ModelFormatError(f"{card_file} is not a valid model card: {err}") from None
    if weights is None:
        raise ModelFormatError(
            f"{path} holds neither {CARD_FILE} nor a .safetensors file; a model directory needs "
            f"{CARD_FILE} (and {WEIGHTS_FILE} for learned models)"
        )
    header, _ = read_safetensors_header(weights)
    meta = header.get("__metadata__") or {}
    if METADATA_KEY not in meta:
        raise ModelFormatError(
            f"{weights} is a safetensors file without an xsfm card in its metadata "
            f"(key {METADATA_KEY!r}); put a {CARD_FILE} beside it in a directory, or save it with "
            "xsfm (Model.save)"
        )
    return ModelCard.from_json(meta[METADATA_KEY])


def weights_file(path: str | Path) -> Path | None:
    """The weights file of a model directory or single-file model (``None`` if absent)."""
    return _locate(Path(path))[1]


def load_weights(path: str | Path, card: ModelCard, device: str = "cpu") -> dict[str, torch.Tensor]:
    """Load the tensors of a model after checking format and sha256 against ``card``.

    Raises
    ------
    ModelFormatError
        Not safetensors, or the sha256 of its tensor data differs from ``card.weights_sha256``.
    """
    from safetensors.torch import load_file

    file = weights_file(path)
    if file is None:
        raise FileNotFoundError(
            f"model {card.name!r} at {path} has no weights file ({WEIGHTS_FILE})"
        )
    digest = tensor_data_sha256(file)
    if card.weights_sha256 is None:
        raise ModelFormatError(
            f"model {card.name!r}: the card has no weights_sha256, so {file} cannot be verified; "
            "save the model with xsfm (Model.save) to record it"
        )
    if digest != card.weights_sha256:
        raise ModelFormatError(
            f"model {card.name!r}: sha256 of the weights in {file} is {digest}, but the card says "
            f"{card.weights_sha256}. The file was changed or belongs to another model; retrain or "
            "restore the original weights."
        )
    return load_file(str(file), device=device)


def save_model_files(
    directory: str | Path, card: ModelCard, tensors: dict[str, torch.Tensor]
) -> ModelCard:
    """Write ``weights.safetensors`` (card in metadata) and ``card.json`` into ``directory``.

    Returns the card with ``weights_sha256`` filled in.
    """
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    weights = directory / WEIGHTS_FILE
    contiguous = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    # First write to learn the data hash (independent of metadata), then write again with the full card.
    save_file(contiguous, str(weights), metadata={METADATA_KEY: card.to_json(indent=None)})
    card = card.replace(weights_sha256=tensor_data_sha256(weights))
    save_file(contiguous, str(weights), metadata={METADATA_KEY: card.to_json(indent=None)})
    (directory / CARD_FILE).write_text(card.to_json() + "\n")
    return card


def save_card_only(directory: str | Path, card: ModelCard) -> None:
    """Write just ``card.json`` (weightless models such as the interpolation baseline)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / CARD_FILE).write_text(card.to_json() + "\n")


def has_example(model: Any) -> bool:
    """Whether a model (anything with a ``path``) ships an example input file."""
    path = getattr(model, "path", None)
    return path is not None and Path(path).is_dir() and (Path(path) / EXAMPLE_FILE).exists()
