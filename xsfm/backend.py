"""The boundary between arrays (numpy, cupy, dask) and torch tensors.

:func:`to_torch` shares memory whenever it can and copies only when it must:

==============================  ==================================================================
input                           what happens
==============================  ==================================================================
native-endian, C-contiguous,    zero-copy (``torch.from_numpy``; same memory)
writable numpy array
big-endian numpy array          one copy to native byte order (torch has no big-endian dtypes)
non-contiguous numpy array      one copy to C order (negative strides, e.g. a flipped latitude,
                                cannot be shared at all; other strides are made contiguous so that
                                tensors are always contiguous)
read-only numpy array           ``readonly="copy"`` (default): one copy, so the model may write into
                                its input and user memory is never touched. ``readonly="share"``:
                                zero-copy without torch's "not writable" warning; the caller
                                promises never to write into the tensor (it is not protected).
                                Going to a GPU copies anyway, so there the array is shared for the
                                transfer whatever ``readonly`` says.
cupy array                      zero-copy through DLPack (``torch.from_dlpack``); cupy is never
                                imported here, arrays are recognised by their type's module
dask array                      refused unless ``compute=True``: the caller converts per chunk
                                (inside ``map_blocks``/``apply_ufunc``), so graphs stay lazy
pint quantity, DataArray        refused / unwrapped: convert units first; a DataArray's ``.data``
==============================  ==================================================================

A requested ``dtype`` or ``device`` different from the array's costs one more copy (done by
torch, together with the move when both change).

:func:`from_torch` goes back: to numpy (sharing the CPU tensor's memory), or to cupy through
DLPack when ``like`` is a cupy array. ``bfloat16``, which numpy lacks, comes back as float32.

This module imports torch; ``import xsfm`` does not import it.

Examples
--------
>>> import numpy as np
>>> a = np.arange(6, dtype=np.float32).reshape(2, 3)
>>> t = to_torch(a, device="cpu")
>>> t.data_ptr() == a.ctypes.data   # zero-copy
True
>>> b = from_torch(t * 2, like=a)
>>> b.dtype, b[1, 2]
(dtype('float32'), np.float32(10.0))
"""

from __future__ import annotations

import threading
import warnings
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch

if TYPE_CHECKING:
    from xsfm.model import Model

__all__ = [
    "cached_network",
    "device_for",
    "from_torch",
    "is_cupy",
    "is_dask",
    "resolve_device",
    "to_torch",
]

DeviceLike = str | torch.device | None


def is_cupy(array: Any) -> bool:
    """Whether ``array`` is a cupy array (without importing cupy).

    Examples
    --------
    >>> import numpy as np
    >>> is_cupy(np.zeros(2))
    False
    """
    return type(array).__module__.split(".")[0] == "cupy"


def is_dask(array: Any) -> bool:
    """Whether ``array`` is a dask array (without importing dask).

    Examples
    --------
    >>> import numpy as np
    >>> is_dask(np.zeros(2))
    False
    """
    return type(array).__module__.split(".")[0] == "dask"


def resolve_device(device: DeviceLike = "auto") -> torch.device:
    """Turn ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:1"``, a torch device or None into a device.

    ``"auto"`` and None pick CUDA when torch sees a GPU, else the CPU.

    Raises
    ------
    ValueError
        A CUDA device asked for where torch sees none, or an unknown device string.

    Examples
    --------
    >>> resolve_device("cpu")
    device(type='cpu')
    """
    if device is None or (isinstance(device, str) and device == "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(
            f"unknown device {device!r}; use 'auto', 'cpu', 'cuda' or 'cuda:N'"
        ) from err
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device {device!r} asked for but torch sees no CUDA GPU (torch {torch.__version__}, "
            f"CUDA build: {torch.version.cuda}); use device='cpu' or 'auto', or install a CUDA "
            "build of torch"
        )
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ValueError(
            f"device {device!r} asked for but only {torch.cuda.device_count()} CUDA device(s) exist"
        )
    return dev


def _torch_dtype(dtype: Any) -> torch.dtype | None:
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    if isinstance(dtype, str) and hasattr(torch, dtype):
        candidate = getattr(torch, dtype)
        if isinstance(candidate, torch.dtype):
            return candidate
    np_dtype = np.dtype(dtype)
    return torch.from_numpy(np.zeros(0, dtype=np_dtype.newbyteorder("="))).dtype


def _native(array: np.ndarray) -> np.ndarray:
    if not array.dtype.isnative:
        return array.astype(array.dtype.newbyteorder("="))
    return array


def to_torch(
    array: Any,
    device: DeviceLike = "auto",
    dtype: Any = None,
    *,
    readonly: Literal["copy", "share"] = "copy",
    compute: bool = False,
) -> torch.Tensor:
    """Convert a numpy, cupy (or, with ``compute=True``, dask) array to a torch tensor.

    Memory is shared when possible and copied only when needed (see the module docstring).

    Parameters
    ----------
    array
        numpy array (any byte order, strides, writability), cupy array, array-like, a DataArray
        (its ``.data``), a torch tensor (moved/cast only), or a dask array with ``compute=True``.
    device
        ``"auto"`` (CUDA if available, else CPU), ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or a
        :class:`torch.device`.
    dtype
        Target dtype (torch or numpy spelling: ``torch.float32``, ``"float32"``, ``np.float64``);
        None keeps the array's.
    readonly
        What to do with a read-only numpy array on the CPU: ``"copy"`` (default) or ``"share"``
        (zero-copy; never write into the resulting tensor).
    compute
        Allow a dask array to be computed here.

    Returns
    -------
    torch.Tensor
        A contiguous tensor on ``device``.

    Raises
    ------
    TypeError
        A dask array without ``compute=True``, pint quantities, non-numeric dtypes.

    Examples
    --------
    >>> import numpy as np
    >>> big = np.arange(4, dtype=">f8")
    >>> to_torch(big, device="cpu").dtype
    torch.float64
    >>> flipped = np.arange(4.0)[::-1]
    >>> to_torch(flipped, device="cpu").tolist()
    [3.0, 2.0, 1.0, 0.0]
    """
    if readonly not in ("copy", "share"):
        raise ValueError(f"readonly must be 'copy' or 'share', got {readonly!r}")
    dev = resolve_device(device)
    tdtype = _torch_dtype(dtype)
    if hasattr(array, "variable") and hasattr(array, "dims"):  # an xarray DataArray
        array = array.data
    if isinstance(array, torch.Tensor):
        return array.to(device=dev, dtype=tdtype or array.dtype).contiguous()
    if type(array).__module__.split(".")[0] == "pint":
        raise TypeError(
            "got a pint quantity; convert units first (xsfm.xr.units.convert) and pass its magnitude"
        )
    if is_dask(array):
        if not compute:
            raise TypeError(
                "got a dask array: convert it chunk by chunk (inside dask.array.map_blocks or "
                "xarray.apply_ufunc(..., dask='parallelized')), or pass compute=True to load it"
            )
        array = array.compute()
    if is_cupy(array):
        tensor = torch.from_dlpack(array)
        return tensor.to(device=dev, dtype=tdtype or tensor.dtype).contiguous()
    if not isinstance(array, np.ndarray):
        if hasattr(array, "__dlpack__") and not isinstance(array, np.generic):
            tensor = torch.from_dlpack(array)
            return tensor.to(device=dev, dtype=tdtype or tensor.dtype).contiguous()
        array = np.asarray(array)
    if array.dtype.kind not in "biufc":
        raise TypeError(
            f"cannot convert an array of dtype {array.dtype} to a tensor; convert it to numbers "
            "first, e.g. .astype('float32')"
        )
    array = _native(array)
    # numpy calls size-1 dims contiguous whatever their (possibly negative) stride; torch does not
    if not array.flags.c_contiguous or any(stride < 0 for stride in array.strides):
        array = np.array(array, order="C", copy=True)
    if not array.flags.writeable:
        converts = dev.type != "cpu" or (tdtype is not None and tdtype != _torch_dtype(array.dtype))
        if readonly == "share" or converts:
            # Shared but never written: the caller promised (share) or torch copies right away.
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*not writable.*", category=UserWarning)
                tensor = torch.from_numpy(array)
            return tensor.to(device=dev, dtype=tdtype or tensor.dtype)
        array = array.copy()
    tensor = torch.from_numpy(array)
    return tensor.to(device=dev, dtype=tdtype or tensor.dtype)


def from_torch(tensor: torch.Tensor, like: Any = None, dtype: Any = None) -> Any:
    """Convert a tensor back to an array: numpy, or cupy when ``like`` is a cupy array.

    Parameters
    ----------
    tensor
        Any tensor (it is detached; gradients are dropped).
    like
        An array of the wanted library: a cupy array gives a cupy array (zero-copy through DLPack
        when the tensor is on the GPU); anything else (or None) gives numpy.
    dtype
        numpy dtype of the result; None keeps the tensor's (``bfloat16`` becomes float32).

    Returns
    -------
    numpy.ndarray or cupy.ndarray
        For a CPU tensor with an unchanged dtype, the numpy array shares the tensor's memory.

    Examples
    --------
    >>> import torch
    >>> from_torch(torch.ones(2, dtype=torch.bfloat16)).dtype
    dtype('float32')
    >>> from_torch(torch.ones(2), dtype="float64").dtype
    dtype('float64')
    """
    tensor = tensor.detach()
    if tensor.dtype == torch.bfloat16:
        tensor = tensor.float()
    if like is not None and is_cupy(like):
        import cupy

        if tensor.device.type != "cuda":
            tensor = tensor.cuda()
        out = cupy.from_dlpack(tensor.contiguous())
        return out if dtype is None else out.astype(dtype, copy=False)
    out = tensor.cpu().resolve_conj().resolve_neg().numpy()
    return out if dtype is None else out.astype(dtype, copy=False)


_cache: dict[tuple[str, str, str, str], Any] = {}
_lock = threading.Lock()


def cached_network(model: Model, device: str) -> torch.nn.Module:
    """The model's network on ``device``, built once per process (thread-safe).

    Dask workers call this for every chunk, so each process builds and verifies a model once.
    """
    where = str(model.path) if model.path is not None else f"in-memory:{id(model)}"
    key = (model.name, where, model.card.weights_sha256 or "", str(device))
    with _lock:
        if key not in _cache:
            _cache[key] = model.network(device)
        return _cache[key]


def device_for(data: Any, device: DeviceLike | None = None) -> str:
    """The device to run ``data`` on: ``auto`` (or None) picks CUDA for cupy arrays, else as :func:`resolve_device`.

    Examples
    --------
    >>> import numpy as np
    >>> device_for(np.zeros(2), "cpu")
    'cpu'
    """
    if device in (None, "auto") and is_cupy(data):
        return "cuda"
    return str(resolve_device(device if device is not None else "auto"))
