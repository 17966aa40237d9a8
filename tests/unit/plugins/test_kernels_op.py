"""torch.ops.hyperstyle.mod_conv / to_rgb on CPU equal the references, pass torch.library.opcheck, and the Python
API refuses impl="cuda" with a one-line HsError where CUDA/triton is missing (no silent fallback)."""

from pathlib import Path

import pytest
import torch

import hyperstyle_trt.plugins.mod_conv.op as mc
import hyperstyle_trt.plugins.to_rgb.op as tr
from hyperstyle_trt.core.errors import HsError
from hyperstyle_trt.plugins.mod_conv.reference import mod_conv_ref
from hyperstyle_trt.plugins.to_rgb.reference import to_rgb_ref

no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")


def _mc_args(upsample, delta_mode, b=2, h=4, w=4, cin=8, cout=8):
    f = 2 if upsample else 1
    delta = {0: None, 1: 0.5 * torch.randn(b, cout, 3, 3, cin), 2: 0.5 * torch.randn(b, cout, cin)}[delta_mode]
    return (torch.randn(b, h, w, cin), torch.randn(b, cin), torch.randn(cout, 3, 3, cin), delta,
            torch.randn(f * h, f * w), torch.randn(cout), upsample, delta_mode, 1)


def _rgb_args(skip, delta_mode, b=2, h=4, w=6, cin=8):
    return (torch.randn(b, h, w, cin), torch.randn(b, cin), torch.randn(3, cin),
            0.5 * torch.randn(b, 3, cin) if delta_mode else None, torch.randn(3),
            torch.randn(b, h // 2, w // 2, 3) if skip else None, delta_mode)


@pytest.mark.parametrize("upsample, delta_mode", [(0, 0), (0, 1), (1, 2), (1, 1)])
def test_mod_conv_op_cpu_equals_reference_and_passes_opcheck(upsample, delta_mode):
    args = _mc_args(upsample, delta_mode)
    got = torch.ops.hyperstyle.mod_conv(*args)
    torch.testing.assert_close(got, mod_conv_ref(*args), atol=0, rtol=0)
    torch.testing.assert_close(mc.mod_conv(*args[:7], impl="ref"), got, atol=0, rtol=0)  # delta_mode inferred
    torch.library.opcheck(torch.ops.hyperstyle.mod_conv.default, args)


@pytest.mark.parametrize("skip, delta_mode", [(0, 0), (1, 1), (1, 0)])
def test_to_rgb_op_cpu_equals_reference_and_passes_opcheck(skip, delta_mode):
    args = _rgb_args(skip, delta_mode)
    got = torch.ops.hyperstyle.to_rgb(*args)
    torch.testing.assert_close(got, to_rgb_ref(*args), atol=0, rtol=0)
    torch.testing.assert_close(tr.to_rgb(*args[:6], impl="ref"), got, atol=0, rtol=0)
    torch.library.opcheck(torch.ops.hyperstyle.to_rgb.default, args)


def test_fake_impls_give_contract_output_shapes():
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode() as mode:
        args = [mode.from_tensor(a) if isinstance(a, torch.Tensor) else a for a in _mc_args(1, 2, b=3, h=5, w=7)]
        assert torch.ops.hyperstyle.mod_conv(*args).shape == (3, 10, 14, 8)
        args = [mode.from_tensor(a) if isinstance(a, torch.Tensor) else a for a in _rgb_args(1, 1, b=3)]
        assert torch.ops.hyperstyle.to_rgb(*args).shape == (3, 4, 6, 3)


@no_cuda
def test_impl_cuda_refuses_without_cuda():
    with pytest.raises(HsError, match="impl='cuda' needs") as e:
        mc.mod_conv(*_mc_args(0, 1)[:6], impl="cuda")
    assert "\n" not in str(e.value)
    with pytest.raises(HsError, match="impl='cuda' needs"):
        tr.to_rgb(*_rgb_args(1, 0)[:6], impl="cuda")
    with pytest.raises(HsError, match="impl='cuda' needs"):
        mc.launch_raw(1, 2, 3, 0, 4, 5, 6, 1, 4, 4, 8, 8, 0, 0, 1, "float16", 0)
    with pytest.raises(HsError, match="impl='cuda' needs"):
        tr.launch_raw(1, 2, 3, 0, 4, 0, 6, 1, 4, 4, 8, 0, 0, "float16", 0)


def test_bad_impl_and_delta_rank_raise_hs_error():
    with pytest.raises(HsError, match="impl must be"):
        mc.mod_conv(*_mc_args(0, 0)[:6], impl="triton")
    with pytest.raises(HsError, match="impl must be"):
        tr.to_rgb(*_rgb_args(0, 0)[:6], impl="fast")
    x, s, w, _, n, b = _mc_args(0, 0)[:6]
    with pytest.raises(HsError, match="delta must be"):
        mc.mod_conv(x, s, w, torch.randn(2, 8, 8, 3), n, b)


def test_op_modules_import_without_compiling_or_touching_cuda(tmp_path):
    import os
    import subprocess
    import sys

    code = ("import hyperstyle_trt.plugins.mod_conv.op, hyperstyle_trt.plugins.to_rgb.op, torch\n"
            "import hyperstyle_trt.plugins.mod_conv.kernel, hyperstyle_trt.plugins.to_rgb.kernel\n"
            "assert not torch.cuda.is_initialized()\n")
    cache = tmp_path / "triton_cache"
    env = dict(os.environ, TRITON_CACHE_DIR=str(cache))
    root = Path(__file__).resolve().parents[3]
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env, cwd=root)
    assert r.returncode == 0, r.stderr[-2000:]
    assert not cache.exists() or not any(cache.iterdir())  # nothing compiled at import
