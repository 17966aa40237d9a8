"""Test-only ONNX models of the plugin ops (moved out of hyperstyle_trt.plugins.onnx_export: only tests use them):
`single_node_model` (one plugin node, inputs named after the spec) and `chain_model` (one generator block: two
HsModConv + two HsToRGB with a skip). Nodes come from the package's `make_node`, so they are what the exporter
writes."""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from hyperstyle_trt.plugins.onnx_export import make_node, opset_imports
from hyperstyle_trt.plugins.registry import OpSpec, get_spec


def derived_dims(spec: OpSpec, attrs: Mapping[str, int], dims: Mapping[str, int]) -> dict[str, int]:
    """Fill the symbols a caller need not give: Ho/Wo (= H, W, doubled when upsample)."""
    d = dict(dims)
    f = 2 if attrs.get("upsample") else 1
    d.setdefault("Ho", d["H"] * f)
    d.setdefault("Wo", d["W"] * f)
    return d


def concrete_shape(sym: Sequence, dims: Mapping[str, int | str]) -> list:
    """Symbolic spec shape -> list of ints (or a dim name such as "B" for a dynamic batch). `X/2` -> dims[X] // 2."""
    out = []
    for s in sym:
        if isinstance(s, int):
            out.append(s)
        elif s.endswith("/2"):
            out.append(dims[s[:-2]] // 2)
        else:
            out.append(dims[s])
    return out


def single_node_model(op: str, attrs: Mapping[str, int] | None = None, dims: Mapping[str, int] | None = None,
                      dtype: str = "float16", dynamic_batch: bool = False,
                      constants: Sequence[str] = ("weight", "noise", "bias"), seed: int = 0):
    """A one-node plugin model. Inputs named after the spec; `constants` become random initializers (the rest graph
    inputs); `dims` gives B,H,W,Cin,Cout (defaults 2,8,8,16,16). With `dynamic_batch` the batch dim is the symbol
    "B". Output named after the spec output, with its shape. Returns an onnx.ModelProto (checked)."""
    import onnx
    import onnx.helper as oh
    import onnx.numpy_helper as onh

    spec = get_spec(op)
    a = spec.resolve_attrs(attrs)
    d = derived_dims(spec, a, {"B": 2, "H": 8, "W": 8, "Cin": 16, "Cout": 16, **(dims or {})})
    sym_d = {**d, "B": "B"} if dynamic_batch else d
    elem = onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    rng = np.random.default_rng(seed)
    inputs, inits = [], []
    for t in spec.present_inputs(a):
        shape = concrete_shape(t.shape_for(a), sym_d)
        if t.name in constants:
            val = rng.standard_normal(concrete_shape(t.shape_for(a), d)).astype(dtype)
            inits.append(onh.from_array(val, t.name))
        else:
            inputs.append(oh.make_tensor_value_info(t.name, elem, shape))
    out = spec.outputs[0]
    out_shape = concrete_shape(out.shape_for(a), {**sym_d, "Cout": d["Cout"]})
    outputs = [oh.make_tensor_value_info(out.name, elem, out_shape)]
    node = make_node(spec.key, spec.input_names(a), [out.name], name=f"{spec.key}0", attrs=a)
    graph = oh.make_graph([node], f"{spec.key}_single", inputs, outputs, initializer=inits)
    model = oh.make_model(graph, opset_imports=opset_imports(), producer_name="hyperstyle-trt")
    onnx.checker.check_model(model)
    return model


def chain_model(dtype: str = "float16", dynamic_batch: bool = True, batch: int = 2, c: int = 16, res: int = 4,
                seed: int = 0):
    """A small multi-layer plugin graph (one generator block): rgb0 = HsToRGB(x); h1 = HsModConv(x, up, full Δ);
    h2 = HsModConv(h1, per-channel Δ); rgb = HsToRGB(h2, skip=rgb0). Graph inputs x [B,res,res,c], style0..3
    [B,c], delta0 [B,c,3,3,c] (OHWI), delta1 [B,c,c]; weights/noise/bias are initializers; output rgb
    [B,2res,2res,3]."""
    import onnx
    import onnx.helper as oh
    import onnx.numpy_helper as onh

    rng = np.random.default_rng(seed)
    elem = oh.np_dtype_to_tensor_dtype(np.dtype(dtype))
    b = "B" if dynamic_batch else batch
    r2 = 2 * res
    inits = {"w0": (c, 3, 3, c), "noise0": (r2, r2), "b0": (c,), "w1": (c, 3, 3, c), "noise1": (r2, r2),
             "b1": (c,), "wr0": (3, c), "br0": (3,), "wr1": (3, c), "br1": (3,)}
    inputs = {"x": [b, res, res, c], "style0": [b, c], "style1": [b, c], "style2": [b, c], "style3": [b, c],
              "delta0": [b, c, 3, 3, c], "delta1": [b, c, c]}
    nodes = [
        make_node("to_rgb", ["x", "style3", "wr0", "br0"], ["rgb0"], "rgb0"),
        make_node("mod_conv", ["x", "style0", "w0", "delta0", "noise0", "b0"], ["h1"], "conv_up",
                  {"upsample": 1, "delta_mode": 1}),
        make_node("mod_conv", ["h1", "style1", "w1", "delta1", "noise1", "b1"], ["h2"], "conv", {"delta_mode": 2}),
        make_node("to_rgb", ["h2", "style2", "wr1", "br1", "rgb0"], ["rgb"], "rgb1", {"has_skip": 1}),
    ]
    graph = oh.make_graph(
        nodes, "hyperstyle_chain", [oh.make_tensor_value_info(n, elem, s) for n, s in inputs.items()],
        [oh.make_tensor_value_info("rgb", elem, [b, r2, r2, 3])],
        initializer=[onh.from_array(rng.standard_normal(s).astype(dtype), n) for n, s in inits.items()])
    model = oh.make_model(graph, opset_imports=opset_imports(), producer_name="hyperstyle-trt")
    onnx.checker.check_model(model)
    return model
