"""ONNX side of the plugins: plugin nodes (op_type = spec name, domain "hyperstyle", string attribute
`plugin_version`, every spec attribute written explicitly), one-node test models, and the onnxscript
`custom_translation_table()` that maps the torch custom ops to those nodes for
`torch.onnx.export(..., dynamo=True, custom_translation_table=custom_translation_table())`.

The TensorRT ONNX parser maps such a node to the registered IPluginV3 creator: op_type = creator name, namespace from
the node domain, version from `plugin_version` (TENSORRT.md 3.2); the INT attributes become INT32 plugin fields.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from models.errors import HsError
from plugins.registry import DOMAIN, OpSpec, get_spec

OPSET = 18  # default-domain opset of the graphs the exporter writes
DOMAIN_VERSION = 1


def opset_imports():
    """[default opset, hyperstyle domain] for a plugin model."""
    import onnx.helper as oh

    return [oh.make_opsetid("", OPSET), oh.make_opsetid(DOMAIN, DOMAIN_VERSION)]


def node_attributes(spec: OpSpec, attrs: Mapping[str, int] | None = None) -> dict:
    """Every spec attribute (resolved, ints) plus `plugin_version` (string), as ONNX node attributes."""
    return {**spec.resolve_attrs(attrs), "plugin_version": spec.version}


def make_node(op: str, inputs: Sequence[str], outputs: Sequence[str], name: str | None = None,
              attrs: Mapping[str, int] | None = None):
    """A plugin NodeProto. `op`: spec key, name or torch op; `inputs` must be the present inputs in spec order for
    these attributes (HsError otherwise; an absent optional input is left out, not given as "")."""
    import onnx.helper as oh

    spec = get_spec(op)
    a = node_attributes(spec, attrs)
    want = spec.input_names(a)
    if len(inputs) != len(want):
        raise HsError(f"{spec.name} with {spec.resolve_attrs(attrs)} takes inputs {list(want)}, got {len(inputs)}")
    return oh.make_node(spec.name, list(inputs), list(outputs), name=name or spec.name, domain=DOMAIN, **a)


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
    outputs = [oh.make_tensor_value_info(out.name, elem, concrete_shape(out.shape_for(a), {**sym_d, "Cout": d["Cout"]}))]
    node = make_node(spec.key, spec.input_names(a), [out.name], name=f"{spec.key}0", attrs=a)
    graph = oh.make_graph([node], f"{spec.key}_single", inputs, outputs, initializer=inits)
    model = oh.make_model(graph, opset_imports=opset_imports(), producer_name="hyperstyle-trt")
    onnx.checker.check_model(model)
    return model
