"""runtime.embed: the Python half of the C++ embedding (raw caller buffers -> Inverter -> caller output buffers).
The C++ side itself is tested by CTest (cpp/tests, `make cpp && ctest --test-dir cpp/build`)."""

import numpy as np
import pytest
import torch

from hyperstyle_trt.core.errors import HsError
from hyperstyle_trt.runtime.embed import Embedded, uint8_hwc
from hyperstyle_trt.runtime.result import InverterResult

U8, F32 = 0, 1


def view(a: np.ndarray, code: int | None = None):
    """The (address, dtype code, shape, device) tuple hs::Inverter hands over for a host array."""
    return (a.ctypes.data, code if code is not None else (U8 if a.dtype == np.uint8 else F32), a.shape, -1)


@pytest.fixture(scope="module")
def emb(inv):
    return Embedded(inv)


def test_info(emb, inv):
    assert emb.info() == {"input_size": 64, "size": 128, "n_latent": inv.cfg.generator.n_latent,
                          "style_dim": inv.cfg.generator.style_dim, "max_batch": 4, "n_iters": inv.n_iters,
                          "cuda_device": -1}


def test_host_buffers_bitwise_equal_inverter(emb, inv, images_u8, images_f):
    x = np.ascontiguousarray(images_u8[:2])
    out8 = np.full((2, 128, 128, 3), 0xAB, np.uint8)
    codes = np.full((2, inv.cfg.generator.n_latent, inv.cfg.generator.style_dim), 7, np.float32)
    emb.invert_into(view(x), view(out8), view(codes), 1, 0)
    want = inv.invert(x, n_iters=1, copy=True)
    np.testing.assert_array_equal(out8, want.to_uint8())
    np.testing.assert_array_equal(codes, want.codes.numpy())
    xf = images_f[:2].numpy().copy()
    outf = np.full((2, 3, 128, 128), 7, np.float32)
    emb.invert_into(view(xf), view(outf), None, 1, 0)
    np.testing.assert_array_equal(outf, inv.invert(torch.from_numpy(xf), n_iters=1).images.numpy())
    np.testing.assert_array_equal(xf, images_f[:2].numpy())  # the input buffer is only read


@pytest.mark.parametrize("case, match", [
    ("wrong size", r"images: uint8 \[2, 60, 60, 3\] on host, expected uint8 \[B,64,64,3\]"),
    ("null", r"images: null data pointer \(expected uint8 \[2, 64, 64, 3\] in host memory\)"),
    ("batch 0", r"images: batch 0"),
    ("float HWC", r"images: float32 \[2, 64, 64, 3\] on host, expected .* float32 \[B,3,64,64\]"),
    ("out shape", r"out_images: uint8 \[2, 64, 64, 3\] on host, expected uint8 \[2, 128, 128, 3\] or float32"),
    ("codes shape", r"out_codes: float32 \[2, 5\] on host, expected float32 \[2, 12, 32\]"),
    ("cuda on cpu", r"images: a CUDA buffer \(device 0\) but this Inverter runs on the CPU"),
    ("dtype code", r"images: dtype code 7, expected 0 \(uint8\) or 1 \(float32\)"),
])
def test_bad_buffers_one_line_error_before_work(emb, case, match):
    x = np.zeros((2, 64, 64, 3), np.uint8)
    out = np.full((2, 128, 128, 3), 0xAB, np.uint8)
    codes = None
    img = view(x)
    if case == "wrong size":
        img = view(np.zeros((2, 60, 60, 3), np.uint8))
    elif case == "null":
        img = (0, U8, (2, 64, 64, 3), -1)
    elif case == "batch 0":
        img = (x.ctypes.data, U8, (0, 64, 64, 3), -1)
    elif case == "float HWC":
        img = (x.ctypes.data, F32, (2, 64, 64, 3), -1)
    elif case == "out shape":
        out = np.full((2, 64, 64, 3), 0xAB, np.uint8)
    elif case == "codes shape":
        codes = view(np.zeros((2, 5), np.float32))
    elif case == "cuda on cpu":
        img = (x.ctypes.data, U8, (2, 64, 64, 3), 0)
    elif case == "dtype code":
        img = (x.ctypes.data, 7, (2, 64, 64, 3), -1)
    with pytest.raises(HsError, match=match) as e:
        emb.invert_into(img, view(out), codes, 1, 0)
    assert "\n" not in str(e.value)
    assert (out == 0xAB).all()  # nothing was written


def test_uint8_hwc_is_to_uint8():
    """The device-side conversion used for uint8 outputs equals InverterResult.to_uint8 bitwise (incl. the clamp
    edges and exact .5 roundings)."""
    g = torch.Generator().manual_seed(0)
    y = torch.rand(2, 3, 16, 16, generator=g) * 2.4 - 1.2
    y[0, 0, 0, :6] = torch.tensor([-1.0, 1.0, 0.0, 1 / 255 - 1, -1.5, 1.5])
    res = InverterResult(images=y, images_pooled=y, codes=y, deltas={})
    np.testing.assert_array_equal(uint8_hwc(y).numpy(), res.to_uint8())
