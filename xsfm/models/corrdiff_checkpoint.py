"""Read NVIDIA PhysicsNeMo/Modulus ``.mdlus`` checkpoints of CorrDiff into xsfm networks.

A ``.mdlus`` file (``physicsnemo.Module.save``) is an archive -- a zip, or a tar in older
versions -- with three members:

* ``args.json`` -- ``{"__name__": class, "__module__": module, "__args__": {constructor args}}``;
* ``metadata.json`` -- e.g. ``{"physicsnemo_version": "2.2.2", "mdlus_file_version": "0.1.0"}``;
* ``model.pt`` -- the state dict, written by ``torch.save``.

:func:`load_corrdiff_checkpoint` refuses classes it does not know (naming them), maps the
constructor arguments onto :mod:`xsfm.nn.songunet` and loads the state dict with ``strict=True``.
Known classes: the regression wrappers ``UNet`` and ``CorrDiffRegressionUNet``, the denoisers
``EDMPrecondSR`` (legacy: ``scale_cond_input`` defaults to True) and ``EDMPrecondSuperResolution``,
and the bare backbones ``SongUNet`` and ``SongUNetPosEmbd``, from ``physicsnemo.*`` or ``modulus.*``
modules.
"""

from __future__ import annotations

import io
import json
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from xsfm.nn.songunet import (
    CorrDiffRegressionUNet,
    EDMPrecondSuperResolution,
    SongUNet,
    SongUNetPosEmbd,
)

__all__ = [
    "KNOWN_CLASSES",
    "build_corrdiff_network",
    "load_corrdiff_checkpoint",
    "read_mdlus",
]

#: PhysicsNeMo class names this module can build, and what they become.
KNOWN_CLASSES: dict[str, type[nn.Module]] = {
    "UNet": CorrDiffRegressionUNet,
    "CorrDiffRegressionUNet": CorrDiffRegressionUNet,
    "EDMPrecondSR": EDMPrecondSuperResolution,
    "EDMPrecondSuperResolution": EDMPrecondSuperResolution,
    "SongUNet": SongUNet,
    "SongUNetPosEmbd": SongUNetPosEmbd,
}

_BACKBONE_ARGS = {
    "label_dim",
    "augment_dim",
    "model_channels",
    "channel_mult",
    "channel_mult_emb",
    "num_blocks",
    "attn_resolutions",
    "dropout",
    "label_dropout",
    "embedding_type",
    "channel_mult_noise",
    "encoder_type",
    "decoder_type",
    "resample_filter",
    "additive_pos_embed",
    "bottleneck_attention",
}
_GRID_ARGS = {"gridtype", "N_grid_channels"}
# runtime switches of PhysicsNeMo that do not change the function computed on the CPU in float32
_RUNTIME_ARGS = {"use_fp16", "checkpoint_level", "use_apex_gn", "profile_mode", "amp_mode"}
_MEMBERS = ("args.json", "metadata.json", "model.pt")


def read_mdlus(
    path: str | Path, map_location: str | torch.device = "cpu"
) -> tuple[dict[str, Any], dict[str, Any], dict[str, torch.Tensor]]:
    """Read the three members of a ``.mdlus`` archive (zip or tar).

    Parameters
    ----------
    path
        The ``.mdlus`` file.
    map_location
        Device for the tensors.

    Returns
    -------
    tuple
        ``(args, metadata, state_dict)``: the parsed ``args.json`` and ``metadata.json`` and the
        state dict (tensors only).

    Raises
    ------
    ValueError
        If the file is neither a zip nor a tar archive or lacks a member.
    """
    path = Path(path)
    raw: dict[str, bytes] = {}
    # older checkpoints can be both tar and zip; PhysicsNeMo tests for tar first, so do we
    if tarfile.is_tarfile(path):
        with tarfile.open(path) as tar:
            for member in tar.getmembers():
                name = Path(member.name).name
                if member.isfile() and name in _MEMBERS:
                    f = tar.extractfile(member)
                    if f is not None:
                        raw[name] = f.read()
    elif zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                name = Path(info.filename).name
                if name in _MEMBERS and not info.is_dir():
                    raw[name] = archive.read(info)
    else:
        raise ValueError(f"{path} is not a .mdlus checkpoint (neither a zip nor a tar archive)")
    missing = [m for m in _MEMBERS if m not in raw]
    if missing:
        raise ValueError(f"{path} lacks {', '.join(missing)}; not a .mdlus checkpoint")
    args = json.loads(raw["args.json"])
    metadata = json.loads(raw["metadata.json"])
    # The one place in xsfm where torch.load is allowed: PhysicsNeMo stores the state dict with
    # torch.save. weights_only=True unpickles tensors and plain containers only, never code.
    state = torch.load(io.BytesIO(raw["model.pt"]), map_location=map_location, weights_only=True)
    if not isinstance(state, dict):
        raise ValueError(f"{path}: model.pt holds a {type(state).__name__}, not a state dict")
    return args, metadata, state


def _split_backbone_args(args: dict[str, Any], model_type: str, where: str) -> dict[str, Any]:
    args = dict(args)
    for key in _RUNTIME_ARGS:
        args.pop(key, None)
    act = args.pop("act", "silu")
    if act not in (None, "silu"):
        raise ValueError(f"{where}: activation {act!r} is not supported (only silu)")
    if model_type == "SongUNetPosEmbd":
        if args.pop("lead_time_mode", False) or args.pop("lead_time_channels", None):
            raise ValueError(f"{where}: lead-time embeddings (SongUNetPosLtEmbd) are not supported")
        if args.pop("prob_channels", None):
            raise ValueError(f"{where}: prob_channels (lead-time models) are not supported")
        args.pop("lead_time_steps", None)
        allowed = _BACKBONE_ARGS | _GRID_ARGS
    else:
        allowed = _BACKBONE_ARGS
    unknown = sorted(set(args) - allowed)
    if unknown:
        raise ValueError(f"{where}: unsupported {model_type} arguments {unknown}")
    return args


def build_corrdiff_network(class_name: str, args: dict[str, Any]) -> nn.Module:
    """Build the xsfm network for a PhysicsNeMo class and its constructor arguments.

    Parameters
    ----------
    class_name
        PhysicsNeMo class name (a key of :data:`KNOWN_CLASSES`).
    args
        The ``__args__`` of ``args.json``.

    Returns
    -------
    torch.nn.Module
        The untrained network (parameters to be loaded).

    Raises
    ------
    ValueError
        For an unknown class, model type or argument.

    Examples
    --------
    >>> net = build_corrdiff_network("UNet", {"img_resolution": 16, "img_in_channels": 3,
    ...     "img_out_channels": 2, "model_type": "SongUNet", "model_channels": 8,
    ...     "channel_mult": [1, 2], "num_blocks": 1, "attn_resolutions": []})
    >>> type(net).__name__
    'CorrDiffRegressionUNet'
    """
    if class_name not in KNOWN_CLASSES:
        raise ValueError(
            f"unknown checkpoint class {class_name!r}; xsfm reads {sorted(KNOWN_CLASSES)}"
        )
    args = dict(args)
    cls = KNOWN_CLASSES[class_name]
    if cls in (SongUNet, SongUNetPosEmbd):
        fixed = {k: args.pop(k) for k in ("img_resolution", "in_channels", "out_channels")}
        kwargs = _split_backbone_args(args, class_name, class_name)
        return cls(**fixed, **kwargs)
    fixed = {k: args.pop(k) for k in ("img_resolution", "img_in_channels", "img_out_channels")}
    model_type = args.pop("model_type", "SongUNetPosEmbd")
    if model_type not in ("SongUNet", "SongUNetPosEmbd"):
        raise ValueError(f"{class_name}: model_type {model_type!r} is not supported")
    if cls is CorrDiffRegressionUNet:
        # version 0.1.0 of the regression wrapper carried EDM arguments it did not use
        for key in ("img_channels", "sigma_min", "sigma_max", "sigma_data"):
            args.pop(key, None)
        extra: dict[str, Any] = {}
    else:
        args.pop("img_channels", None)  # EDMPrecondSR's deprecated, unused argument
        extra = {
            "sigma_data": args.pop("sigma_data", 0.5),
            "sigma_min": args.pop("sigma_min", 0.0),
            "sigma_max": args.pop("sigma_max", float("inf")),
            "scale_cond_input": args.pop("scale_cond_input", class_name == "EDMPrecondSR"),
        }
    kwargs = _split_backbone_args(args, model_type, class_name)
    return cls(**fixed, model_type=model_type, **extra, **kwargs)


def _migrate_legacy_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename the attention keys of early checkpoints (``block.norm2`` -> ``block.attn.norm``)."""
    out = {}
    renames = {"norm2": "attn.norm", "qkv": "attn.qkv", "proj": "attn.proj"}
    for key, value in state.items():
        head, _, tail = key.rpartition(".")
        prefix, _, last = head.rpartition(".")
        dotted = f".{key}"
        if last in renames and ".attn." not in dotted and (".enc." in dotted or ".dec." in dotted):
            key = f"{prefix}.{renames[last]}.{tail}"
        out[key] = value
    return out


def load_corrdiff_checkpoint(
    path: str | Path, map_location: str | torch.device = "cpu"
) -> tuple[nn.Module, dict[str, Any]]:
    """Load a CorrDiff ``.mdlus`` checkpoint into the equivalent xsfm network.

    Parameters
    ----------
    path
        ``checkpoints/regression.mdlus`` or ``checkpoints/diffusion.mdlus`` of a CorrDiff package
        (or any ``.mdlus`` of a known class).
    map_location
        Device for the weights.

    Returns
    -------
    module : torch.nn.Module
        In ``eval()`` mode: a :class:`~xsfm.nn.songunet.CorrDiffRegressionUNet` (call
        ``module.predict(img_lr)`` or ``module(zeros, img_lr)``), an
        :class:`~xsfm.nn.songunet.EDMPrecondSuperResolution` (call ``module(x, img_lr, sigma)``)
        or a bare :class:`~xsfm.nn.songunet.SongUNet`/:class:`~xsfm.nn.songunet.SongUNetPosEmbd`.
    info : dict
        ``class_name`` and ``module_name`` (as in ``args.json``), ``args`` (the constructor
        arguments as saved) and ``metadata`` (``metadata.json``, e.g. ``physicsnemo_version``).

    Raises
    ------
    ValueError
        If the archive is not a ``.mdlus`` file, names a class xsfm does not know, has
        unsupported arguments, or its tensors do not match the network.
    """
    args, metadata, state = read_mdlus(path, map_location=map_location)
    class_name = args.get("__name__")
    module_name = str(args.get("__module__", ""))
    if class_name not in KNOWN_CLASSES or module_name.split(".")[0] not in (
        "physicsnemo",
        "modulus",
    ):
        raise ValueError(
            f"{path}: unknown checkpoint class {module_name}.{class_name}; xsfm reads "
            f"{', '.join(sorted(KNOWN_CLASSES))} from physicsnemo or modulus"
        )
    ctor = args.get("__args__", {})
    if any(isinstance(v, str) and v.startswith("__physicsnemo") for v in ctor.values()):
        raise ValueError(f"{path}: nested physicsnemo modules in the arguments are not supported")
    module = build_corrdiff_network(class_name, ctor)
    state = _migrate_legacy_keys(state)
    # a fixed positional grid is not part of PhysicsNeMo 2.x state dicts; if an old one carries it,
    # use its values
    for key in [k for k in state if k.endswith("pos_embd")]:
        owner = module.get_submodule(key.rpartition(".")[0]) if "." in key else module
        if key.rpartition(".")[2] in getattr(owner, "_non_persistent_buffers_set", set()):
            owner.pos_embd = state.pop(key).to(owner.pos_embd.dtype)
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise ValueError(f"{path}: the tensors do not match {class_name}: {err}") from err
    module.to(map_location).eval()
    info = {
        "class_name": class_name,
        "module_name": module_name,
        "args": ctor,
        "metadata": metadata,
    }
    return module, info
