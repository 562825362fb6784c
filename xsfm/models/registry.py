"""Where models come from: shipped with the package, registered by the user, or on ``XSFM_MODEL_PATH``.

Lookup order for a name: models registered in this process with :func:`register_model`, then directories
on ``XSFM_MODEL_PATH`` (``os.pathsep``-separated; each entry is a model directory or a directory of model
directories, named after the model), then models shipped inside the package. A string that is not a known
name but an existing path is loaded from that path.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

from xsfm.errors import UnknownModelError, WeightsMissingError
from xsfm.models.io import CARD_FILE, load_card, weights_file

__all__ = ["SHIPPED_DIR", "list_models", "register_model", "resolve_model_path", "unregister_model"]

SHIPPED_DIR = Path(__file__).parent / "shipped"
ENV_VAR = "XSFM_MODEL_PATH"

_registered: dict[str, Path] = {}


def _is_model_location(path: Path) -> bool:
    return (
        (path / CARD_FILE).is_file() or any(path.glob("*.safetensors"))
        if path.is_dir()
        else (path.suffix == ".safetensors" and path.is_file())
    )


def _env_models() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for entry in os.environ.get(ENV_VAR, "").split(os.pathsep):
        if not entry:
            continue
        root = Path(entry).expanduser()
        if root.is_file() and root.suffix == ".safetensors":
            found.setdefault(root.stem, root)
        elif root.is_dir() and _is_model_location(root):
            found.setdefault(root.name, root)
        elif root.is_dir():
            for child in sorted(root.iterdir()):
                if _is_model_location(child):
                    name = child.stem if child.is_file() else child.name
                    found.setdefault(name, child)
    return found


def _shipped_models() -> dict[str, Path]:
    if not SHIPPED_DIR.is_dir():
        return {}
    return {p.name: p for p in sorted(SHIPPED_DIR.iterdir()) if (p / CARD_FILE).is_file()}


def _all_models() -> dict[str, Path]:
    models = _shipped_models()
    models.update(_env_models())
    models.update(_registered)
    return models


def list_models() -> list[str]:
    """Names of all known models: shipped, on ``XSFM_MODEL_PATH`` and registered.

    Examples
    --------
    >>> import xsfm
    >>> "interpolation" in xsfm.list_models()
    True
    """
    return sorted(_all_models())


def register_model(name: str, path: str | Path, *, overwrite: bool = False) -> None:
    """Make the model at ``path`` (a directory or a ``.safetensors`` file) loadable as ``name``.

    The card is read (and so validated) now; weights are checked when the model is first used.

    Examples
    --------
    >>> import tempfile, xsfm
    >>> path = xsfm.load_model("interpolation").save(tempfile.mkdtemp() + "/interp")
    >>> xsfm.register_model("my-interp", path)
    >>> "my-interp" in xsfm.list_models()
    True
    >>> xsfm.models.registry.unregister_model("my-interp")
    """
    path = Path(path).expanduser().resolve()
    if not path.exists():
        raise FileNotFoundError(
            f"cannot register {name!r}: {path} does not exist (give a model directory holding "
            f"{CARD_FILE}, or a .safetensors file saved by xsfm)"
        )
    load_card(path)
    if name in _registered and not overwrite and _registered[name] != path:
        raise ValueError(
            f"a model named {name!r} is already registered from {_registered[name]}; pass "
            "overwrite=True to replace it"
        )
    _registered[name] = path


def unregister_model(name: str) -> None:
    """Forget a model registered with :func:`register_model`."""
    _registered.pop(name, None)


def resolve_model_path(name_or_path: str | os.PathLike[str]) -> Path:
    """Return the location of a model given its name or path.

    Raises
    ------
    UnknownModelError
        Neither a known name nor an existing path; the message suggests close names.
    """
    models = _all_models()
    key = os.fspath(name_or_path)
    if key in models:
        return models[key]
    path = Path(key).expanduser()
    if path.exists():
        return path
    close = difflib.get_close_matches(key, list(models), n=3, cutoff=0.5)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise UnknownModelError(
        f"unknown model {key!r}.{hint} Known models: {', '.join(sorted(models))}. "
        f"Register your own with xsfm.register_model(name, path) or add its directory to "
        f"${ENV_VAR}."
    )


def check_weights_available(name: str, path: Path, has_weights: bool, train_hint: str) -> None:
    """Raise :class:`WeightsMissingError` for a card whose weights are not here.

    ``train_hint`` is a command (``xsfm train ...``), or a sentence saying where the weights come
    from (it then ends with a full stop).
    """
    if has_weights:
        return
    how = train_hint if train_hint.endswith(".") else f"Train them with `{train_hint}`."
    raise WeightsMissingError(
        f"model {name!r} is known (its card is at {path}) but its weights are not available here: "
        f"they cannot ship with xsfm. {how} Then point xsfm to the model directory with "
        f"xsfm.register_model({name!r}, '/path/to/model_dir') or by adding the directory that "
        f"holds '{name}/' to ${ENV_VAR}."
    )


def has_weights(path: Path) -> bool:
    """Whether the model at ``path`` has a weights file."""
    return weights_file(path) is not None
