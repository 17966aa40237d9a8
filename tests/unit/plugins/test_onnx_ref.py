"""The onnx.reference ops of plugins.onnx_ref on one-node plugin graphs equal the PyTorch references (input order
and attributes reach the right arguments), and the fp16 graph stays within fp16 rounding of fp32.

fp16 gate: |y - ref| <= 1e-4 + 1e-3 |ref| (about 2x one fp16 rounding of the output, 2^-11 = 4.9e-4). Measured
(2026-12-01, the three attribute sets x input seeds 1..5): max |y - ref| / (|ref| + 1e-3) = 4.86e-4, max abs
1.9e-3 at |ref| up to 7.2."""

import numpy as np
import onnx.numpy_helper as onh
import pytest
import torch

from hyperstyle_trt.core.errors import HsError
from hyperstyle_trt.plugins.mod_conv.reference import mod_conv_ref
from tests.unit._helpers.onnx_models import single_node_model
from hyperstyle_trt.plugins.onnx_ref import run_reference
from hyperstyle_trt.plugins.to_rgb.reference import to_rgb_ref


def _feeds_and_all(model, seed=1):
    rng = np.random.default_rng(seed)
    dt = onh.helper.tensor_dtype_to_np_dtype(model.graph.input[0].type.tensor_type.elem_type)
    feeds = {i.name: rng.standard_normal([d.dim_value for d in i.type.tensor_type.shape.dim]).astype(dt)
             for i in model.graph.input}
    consts = {t.name: onh.to_array(t) for t in model.graph.initializer}
    t = {k: torch.from_numpy(np.array(v, dtype=np.float32)) for k, v in {**feeds, **consts}.items()}
    return feeds, t


@pytest.mark.parametrize("attrs", [{}, {"upsample": 1, "delta_mode": 1}, {"delta_mode": 2, "demodulate": 0}])
@pytest.mark.parametrize("dtype, atol, rtol", [("float32", 1e-5, 1e-5), ("float16", 1e-4, 1e-3)])
def test_mod_conv_node_equals_reference(attrs, dtype, atol, rtol):
    model = single_node_model("mod_conv", attrs, dims={"B": 2, "H": 4, "W": 6, "Cin": 8, "Cout": 12}, dtype=dtype)
    feeds, t = _feeds_and_all(model)
    (y,) = run_reference(model, feeds)
    a = {"upsample": 0, "delta_mode": 0, "demodulate": 1, **attrs}
    want = mod_conv_ref(t["x"], t["style"], t["weight"], t.get("delta"), t["noise"], t["bias"], **a).numpy()
    f = 2 if a["upsample"] else 1
    assert y.dtype == np.dtype(dtype) and y.shape == (2, 4 * f, 6 * f, 12)
    np.testing.assert_allclose(y.astype(np.float32), want, atol=atol, rtol=rtol)
    assert np.abs(want[0] - want[1]).max() > 1e-2  # per-sample inputs differ: batch mixing would be caught


@pytest.mark.parametrize("attrs", [{}, {"has_skip": 1, "delta_mode": 1}, {"has_skip": 1}])
def test_to_rgb_node_equals_reference(attrs):
    model = single_node_model("to_rgb", attrs, dims={"B": 3, "H": 8, "W": 4, "Cin": 8}, dtype="float32")
    feeds, t = _feeds_and_all(model, seed=2)
    (y,) = run_reference(model, feeds)
    a = {"has_skip": 0, "delta_mode": 0, **attrs}
    want = to_rgb_ref(t["x"], t["style"], t["weight"], t.get("delta"), t["bias"], t.get("skip"),
                      delta_mode=a["delta_mode"]).numpy()
    assert y.shape == (3, 8, 4, 3)
    np.testing.assert_allclose(y, want, atol=1e-5, rtol=1e-5)


def test_wrong_plugin_version_is_refused():
    model = single_node_model("to_rgb", {}, dtype="float32")
    for a in model.graph.node[0].attribute:
        if a.name == "plugin_version":
            a.s = b"2"
    feeds, _ = _feeds_and_all(model)
    with pytest.raises(HsError, match="plugin_version"):
        run_reference(model, feeds)
