"""A small multi-layer plugin graph (_helpers.onnx_models.chain_model: 2 HsModConv + 2 HsToRGB with a skip) runs in
the ONNX reference evaluator equal to the composed PyTorch references, and parses + builds with TensorRT (fp16,
dynamic batch 1..8)."""

import numpy as np
import onnx.numpy_helper as onh
import pytest
import torch

from hyperstyle_trt.plugins.mod_conv.reference import mod_conv_ref
from tests.unit._helpers.onnx_models import chain_model
from hyperstyle_trt.plugins.onnx_ref import run_reference
from hyperstyle_trt.plugins.to_rgb.reference import to_rgb_ref
from _trt_util import build, parse, plugin_layers


def _feeds(model, batch, seed=3):
    rng = np.random.default_rng(seed)
    out = {}
    for i in model.graph.input:
        shape = [batch if d.dim_param else d.dim_value for d in i.type.tensor_type.shape.dim]
        scale = 0.1 if i.name.startswith("delta") else 1.0
        out[i.name] = (scale * rng.standard_normal(shape)).astype(np.float32)
    return out


def test_chain_reference_evaluator_equals_composed_references():
    model = chain_model("float32", dynamic_batch=True)
    feeds = _feeds(model, batch=3)
    (y,) = run_reference(model, feeds)
    t = {k: torch.from_numpy(v) for k, v in feeds.items()}
    t.update({i.name: torch.from_numpy(onh.to_array(i).copy()) for i in model.graph.initializer})
    rgb0 = to_rgb_ref(t["x"], t["style3"], t["wr0"], None, t["br0"])
    h1 = mod_conv_ref(t["x"], t["style0"], t["w0"], t["delta0"], t["noise0"], t["b0"], upsample=1, delta_mode=1)
    h2 = mod_conv_ref(h1, t["style1"], t["w1"], t["delta1"], t["noise1"], t["b1"], delta_mode=2)
    want = to_rgb_ref(h2, t["style2"], t["wr1"], None, t["br1"], rgb0)
    assert y.shape == (3, 8, 8, 3)
    np.testing.assert_allclose(y, want.numpy(), atol=1e-5, rtol=1e-5)


@pytest.mark.trt
@pytest.mark.parametrize("dynamic", [False, True], ids=["static", "dyn1-8"])
def test_chain_parses_and_builds_fp16(trt, dynamic):
    parsed, net = parse(trt, chain_model("float16", dynamic_batch=dynamic))
    assert len(plugin_layers(trt, net)) == 4
    assert tuple(net.get_output(0).shape) == (-1 if dynamic else 2, 8, 8, 3)
    engine = build(trt, parsed, net, dynamic)
    assert engine is not None and len(engine) > 0
