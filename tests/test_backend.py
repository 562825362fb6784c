from __future__ import annotations

import subprocess
import sys
import warnings

import dask.array
import hypothesis.extra.numpy as npst
import hypothesis.strategies as st
import numpy as np
import pytest
import torch
import xarray as xr
from hypothesis import given

from xsfm.backend import from_torch, is_cupy, is_dask, resolve_device, to_torch


def _shares(tensor: torch.Tensor, array: np.ndarray) -> bool:
    return tensor.data_ptr() == array.__array_interface__["data"][0]


@st.composite
def awkward_arrays(draw):
    """float32/float64 arrays, any byte order, possibly sliced/transposed/flipped/read-only."""
    dtype = draw(npst.floating_dtypes(sizes=(32, 64), endianness="?"))
    base = draw(
        npst.arrays(
            dtype,
            npst.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=6),
            elements=st.floats(width=dtype.itemsize * 8, allow_nan=True, allow_infinity=True),
        )
    )
    view = base
    if draw(st.booleans()):  # step/flip slices: non-contiguous, maybe negative strides
        steps = draw(
            st.lists(st.sampled_from([1, 2, -1, -2]), min_size=base.ndim, max_size=base.ndim)
        )
        view = view[tuple(slice(None, None, s) for s in steps)]
    if view.ndim > 1 and draw(st.booleans()):
        view = view.transpose(draw(st.permutations(list(range(view.ndim)))))
    if draw(st.booleans()):
        view = view.view()
        view.flags.writeable = False
    return view


@given(awkward_arrays(), st.sampled_from(["copy", "share"]))
def test_round_trip_exact(array, readonly):
    before = array.copy()
    flags = (array.flags.writeable, array.flags.c_contiguous, array.dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tensor = to_torch(array, device="cpu", readonly=readonly)
    assert tensor.is_contiguous()
    assert tuple(tensor.shape) == array.shape
    back = from_torch(tensor, like=array)
    assert back.dtype == array.dtype.newbyteorder("=")
    np.testing.assert_array_equal(back, array)  # exact; NaN == NaN here
    # the input is untouched
    assert (array.flags.writeable, array.flags.c_contiguous, array.dtype) == flags
    np.testing.assert_array_equal(array, before)


@given(awkward_arrays())
def test_writing_into_tensor_never_touches_readonly_input(array):
    if array.flags.writeable:
        array = array.view()
        array.flags.writeable = False
    before = array.copy()
    tensor = to_torch(array, device="cpu")  # default readonly="copy"
    tensor.fill_(1.5)
    np.testing.assert_array_equal(array, before)


def test_zero_copy_for_plain_arrays():
    for dtype in (np.float32, np.float64, np.int64, np.bool_):
        array = np.ones((3, 4), dtype=dtype)
        tensor = to_torch(array, device="cpu")
        assert _shares(tensor, array)
        back = from_torch(tensor)
        assert np.shares_memory(back, array)


def test_big_endian_is_copied_to_native():
    array = np.arange(6, dtype=">f4").reshape(2, 3)
    tensor = to_torch(array, device="cpu")
    assert tensor.dtype == torch.float32
    np.testing.assert_array_equal(tensor.numpy(), array)
    assert array.dtype == np.dtype(">f4")


def test_non_contiguous_and_negative_strides():
    base = np.arange(24.0).reshape(4, 6)
    for view in (base[::-1], base[:, ::2], base.T, base[::-2, ::-3]):
        tensor = to_torch(view, device="cpu")
        assert tensor.is_contiguous()
        np.testing.assert_array_equal(tensor.numpy(), view)


def test_readonly_share_is_zero_copy_without_warning():
    array = np.arange(4.0)
    array.flags.writeable = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        shared = to_torch(array, device="cpu", readonly="share")
        copied = to_torch(array, device="cpu")
    assert _shares(shared, array)
    assert not _shares(copied, array)


def test_readonly_with_dtype_change_copies_once_without_warning():
    array = np.arange(4.0)
    array.flags.writeable = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tensor = to_torch(array, device="cpu", dtype="float32")
    assert tensor.dtype == torch.float32
    tensor.add_(1)
    np.testing.assert_array_equal(array, np.arange(4.0))


@pytest.mark.parametrize("dtype", [torch.float32, "float32", np.float32, np.dtype("float32")])
def test_dtype_spellings(dtype):
    assert to_torch(np.zeros(2), device="cpu", dtype=dtype).dtype == torch.float32


def test_bfloat16_comes_back_as_float32():
    tensor = torch.tensor([1.0, 2.5], dtype=torch.bfloat16)
    assert from_torch(tensor).dtype == np.float32
    assert from_torch(tensor, dtype=np.float64).dtype == np.float64


def test_from_torch_detaches():
    tensor = torch.ones(2, requires_grad=True) * 2
    np.testing.assert_array_equal(from_torch(tensor), [2.0, 2.0])


def test_dask_needs_compute_true():
    array = dask.array.ones((4, 4), chunks=2)
    assert is_dask(array)
    assert not is_cupy(array)
    with pytest.raises(TypeError, match="map_blocks"):
        to_torch(array, device="cpu")
    np.testing.assert_array_equal(
        to_torch(array, device="cpu", compute=True).numpy(), np.ones((4, 4))
    )


def test_dataarray_and_lists_and_tensors():
    da = xr.DataArray(np.arange(3.0), dims="x")
    assert to_torch(da, device="cpu").tolist() == [0.0, 1.0, 2.0]
    assert to_torch([1, 2], device="cpu").dtype == torch.int64
    t = torch.ones(2, dtype=torch.float64)
    assert to_torch(t, device="cpu", dtype=torch.float32).dtype == torch.float32


def test_refuses_pint_and_strings():
    pint = pytest.importorskip("pint")
    with pytest.raises(TypeError, match="convert units first"):
        to_torch(pint.UnitRegistry().Quantity(np.ones(2), "m"), device="cpu")
    with pytest.raises(TypeError, match="astype"):
        to_torch(np.array(["a", "b"]), device="cpu")


def test_bad_readonly_option():
    with pytest.raises(ValueError, match="readonly"):
        to_torch(np.ones(2), device="cpu", readonly="maybe")


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device(None).type == expected
    with pytest.raises(ValueError, match="unknown device"):
        resolve_device("tpu-ish")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU message")
def test_cuda_without_gpu_is_a_clear_error():
    with pytest.raises(ValueError, match="device='cpu'"):
        resolve_device("cuda")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_round_trip():
    array = np.arange(12, dtype=">f8").reshape(3, 4)[:, ::-1]
    tensor = to_torch(array, device="cuda")
    assert tensor.device.type == "cuda"
    np.testing.assert_array_equal(from_torch(tensor), array)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cupy_round_trip_zero_copy():
    cupy = pytest.importorskip("cupy")
    array = cupy.arange(12, dtype=cupy.float32).reshape(3, 4)
    tensor = to_torch(array, device="cuda")
    assert tensor.data_ptr() == array.data.ptr
    back = from_torch(tensor, like=array)
    assert isinstance(back, cupy.ndarray)
    assert back.data.ptr == array.data.ptr


def test_import_xsfm_does_not_import_torch():
    code = "import sys, xsfm; assert 'torch' not in sys.modules, 'import xsfm imported torch'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_xarray_layer_modules_do_not_import_torch_cupy_or_hypothesis():
    code = (
        "import sys, xsfm.xr.grid, xsfm.xr.gridspec, xsfm.xr.variables, xsfm.xr.units\n"
        "import xsfm.xr.standardise, xsfm.xr.regrid, xsfm.xr.prepare, xsfm.xr.label\n"
        "import xsfm.xr.params, xsfm.testing, xsfm.errors\n"
        "heavy = {'torch', 'cupy', 'hypothesis', 'cf_xarray.units'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_gpu_batches_are_sized_from_the_measured_memory_of_one_sample():
    import xsfm
    from xsfm.run import gpu_batch_size

    assert gpu_batch_size(1, "cuda") >= 1
    assert gpu_batch_size(10**15, "cuda") == 1  # never zero, even for a huge sample
    coarse = xsfm.load_model("kolmogorov-sfm").example_input()
    kw = {"model": "kolmogorov-sfm", "members": 4, "steps": 2, "seed": 0, "device": "cuda"}
    auto = coarse.sfm.downscale(**kw)
    one = coarse.sfm.downscale(batch_size=1, **kw)
    np.testing.assert_allclose(auto["vorticity"].values, one["vorticity"].values, atol=1e-3)
