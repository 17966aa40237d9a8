"""Caller contracts that guard GPU memory are real checks (HsError, one line), not asserts that python -O removes:
contiguity and the preallocated output of the mod_conv / to_rgb launchers, the staged path's workspace size, and
the TensorRT plugin's enqueue-before-configure. The launchers check before launching, so these run on CPU tensors
without the Triton interpreter (nothing is launched)."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from hyperstyle_trt.core.errors import HsError

pytest.importorskip("triton", reason="triton not installed (pip install 'hyperstyle-trt[kernels]')")

ROOT = Path(__file__).resolve().parents[3]
B, H, W, CIN, COUT = 2, 4, 4, 16, 8


def _mod_conv_args(dt=torch.float16):
    g = torch.Generator().manual_seed(0)

    def r(*s):
        return torch.randn(*s, generator=g).to(dt)
    return dict(x=r(B, H, W, CIN), style=r(B, CIN), weight=r(COUT, 3, 3, CIN), delta=None, noise=r(B, H, W, 1),
                bias=r(COUT))


def _to_rgb_args(dt=torch.float16):
    g = torch.Generator().manual_seed(0)

    def r(*s):
        return torch.randn(*s, generator=g).to(dt)
    return dict(x=r(B, H, W, CIN), style=r(B, CIN), weight=r(3, CIN), delta=None, bias=r(3))


@pytest.mark.parametrize("launcher", ["hyperstyle_trt.plugins.mod_conv.kernel:mod_conv_triton",
                                      "hyperstyle_trt.plugins.mod_conv.staged:mod_conv_staged"])
def test_mod_conv_launchers_refuse_strided_tensors_and_wrong_out(launcher):
    import importlib

    mod, fn = launcher.split(":")
    f = getattr(importlib.import_module(mod), fn)
    name = fn
    a = _mod_conv_args()
    x_t = a["x"].transpose(1, 2)  # same shape as x (H == W), not contiguous
    with pytest.raises(HsError, match=rf"^{name}: x must be contiguous \(got strides"):
        f(**{**a, "x": x_t})
    w_t = torch.randn(COUT, CIN, 3, 3).half().permute(0, 2, 3, 1)  # OHWI view of an OIHW tensor
    with pytest.raises(HsError, match=rf"^{name}: weight must be contiguous"):
        f(**{**a, "weight": w_t})
    out_t = torch.empty(B, W, H, COUT).half().transpose(1, 2)
    with pytest.raises(HsError, match=rf"^{name}: out must be contiguous"):
        f(**a, out=out_t)
    with pytest.raises(HsError, match=rf"^{name}: out must be \[2, 4, 4, 8\] torch.float16, got \[2, 4, 4, 7\]"):
        f(**a, out=torch.empty(B, H, W, COUT - 1).half())
    with pytest.raises(HsError, match=r"out must be \[2, 8, 8, 8\]"):  # upsample doubles the output
        f(**a, upsample=1, out=torch.empty(B, H, W, COUT).half())


def test_to_rgb_launcher_refuses_strided_tensors_and_wrong_out():
    from hyperstyle_trt.plugins.to_rgb.kernel import to_rgb_triton

    a = _to_rgb_args()
    with pytest.raises(HsError, match=r"^to_rgb_triton: x must be contiguous"):
        to_rgb_triton(**{**a, "x": a["x"].transpose(1, 2)})
    skip = torch.randn(B, W, H, 3).half().transpose(1, 2)
    with pytest.raises(HsError, match=r"^to_rgb_triton: skip must be contiguous"):
        to_rgb_triton(**a, skip=skip)
    with pytest.raises(HsError, match=r"^to_rgb_triton: out must be \[2, 4, 4, 3\] torch.float16, got \[2, 4, 4, 3\] "
                                      r"torch.float32"):
        to_rgb_triton(**a, out=torch.empty(B, H, W, 3))


def test_staged_workspace_is_checked():
    from hyperstyle_trt.plugins.mod_conv.staged import check_workspace, mod_conv_staged
    from hyperstyle_trt.plugins.mod_conv.strategy import split_k, workspace_layout

    a = _mod_conv_args()
    total = workspace_layout(B, CIN, COUT, 0, "fp16", split=split_k(B, H, W, CIN, COUT, 0, "fp16"), HW=H * W).total
    assert total > 0
    msg = rf"^mod_conv_staged: workspace has {total - 1} bytes, this launch needs {total}$"
    with pytest.raises(HsError, match=msg):
        mod_conv_staged(**a, workspace=torch.empty(total - 1, dtype=torch.uint8))
    with pytest.raises(HsError, match="contiguous 1-D uint8 tensor, got torch.float32"):
        mod_conv_staged(**a, workspace=torch.empty(total))
    with pytest.raises(HsError, match="contiguous 1-D uint8"):
        check_workspace(torch.empty(2 * total, dtype=torch.uint8)[::2], total, torch.device("cpu"))
    with pytest.raises(HsError, match="workspace is on meta, the inputs on cpu"):
        check_workspace(torch.empty(total, dtype=torch.uint8, device="meta"), total, torch.device("cpu"))
    check_workspace(torch.empty(total, dtype=torch.uint8), total, torch.device("cpu"))  # exactly enough is fine


def test_checks_survive_python_O():
    """python -O strips asserts: the checks must still raise."""
    code = ("import torch\nfrom hyperstyle_trt.core.errors import HsError\n"
            "from hyperstyle_trt.plugins.mod_conv.staged import check_workspace\n"
            "from hyperstyle_trt.plugins.mod_conv.kernel import check_contiguous\nn = 0\n"
            "for f in (lambda: check_workspace(torch.empty(3, dtype=torch.uint8), 4, torch.device('cpu')),\n"
            "          lambda: check_contiguous('k', x=torch.empty(4, 4).t())):\n"
            "    try:\n        f()\n    except HsError as e:\n        n += 1\n        print(e)\n"
            "print('debug', __debug__, 'raised', n)\n")
    r = subprocess.run([sys.executable, "-O", "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "debug False raised 2", r.stdout


@pytest.mark.trt
def test_trt_plugin_enqueue_before_configure_is_an_hs_error():
    from hyperstyle_trt.plugins.trt_common import plugin_classes

    Plugin, _ = plugin_classes("mod_conv")
    p = Plugin({}, None)
    assert p.dtype is None
    with pytest.raises(HsError, match=r"^HsModConv: enqueue before configure_plugin/on_shape_change"):
        p.enqueue([], [], [0] * len(p.input_names), [0], 0, 0)
