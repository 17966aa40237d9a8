"""ONNX side of the plugins: plugin nodes (op_type = spec name, domain "hyperstyle", string attribute
`plugin_version`, every spec attribute written explicitly), one-node test models, and the onnxscript
`custom_translation_table()` that maps the torch custom ops to those nodes for
`torch.onnx.export(..., dynamo=True, custom_translation_table=custom_translation_table())`.

The TensorRT ONNX parser maps such a node to the registered IPluginV3 creator: op_type = creator name, namespace from
the node domain, version from `plugin_version` (docs/tensorrt_plugins.md §2); the INT attributes become INT32 plugin
fields.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from hyperstyle_trt.core.errors import HsError
from hyperstyle_trt.core.precision import precision
from hyperstyle_trt.plugins.registry import DOMAIN, OpSpec, get_spec

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


def op_schema(op: str, attrs: Mapping[str, int] | None = None):
    """An (unregistered) onnx OpSchema for one input variant of a plugin op: exactly the inputs present for `attrs`,
    every spec attribute as INT plus `plugin_version` as STRING. onnxscript needs a schema to record a node."""
    from onnx.defs import OpSchema

    spec = get_spec(op)
    a = spec.resolve_attrs(attrs)
    return OpSchema(
        spec.name, DOMAIN, DOMAIN_VERSION, doc=spec.summary,
        inputs=[OpSchema.FormalParameter(t.name, t.dtype) for t in spec.present_inputs(a)],
        outputs=[OpSchema.FormalParameter(t.name, t.dtype) for t in spec.outputs],
        type_constraints=[(k, [precision(v).onnx for v in vs], "") for k, vs in spec.type_constraints],
        attributes=[OpSchema.Attribute(x.name, OpSchema.AttrType.INT, x.doc) for x in spec.attributes]
        + [OpSchema.Attribute("plugin_version", OpSchema.AttrType.STRING, "TensorRT plugin version")])


def emit_plugin_node(op: str, tensors: Mapping[str, object], attrs: Mapping[str, int]):
    """Record a plugin node while onnxscript traces (inside a translation function). `tensors`: {spec input name:
    symbolic tensor or None}; the inputs present for `attrs` must be given (HsError otherwise). Returns the output."""
    import onnxscript.values as osv

    spec = get_spec(op)
    a = spec.resolve_attrs(attrs)
    names = spec.input_names(a)
    missing = [n for n in names if tensors.get(n) is None]
    extra = [n for n, t in tensors.items() if t is not None and n not in names]
    if missing or extra:
        raise HsError(f"{spec.name} with {a}: missing inputs {missing}, unexpected inputs {extra}")
    node_op = osv.Op(osv.Opset(DOMAIN, DOMAIN_VERSION), spec.name, op_schema(spec.key, a))
    return node_op(*[tensors[n] for n in names], **node_attributes(spec, a))


def make_translation(key: str, overload):
    """An onnxscript translation for torch op `overload` emitting the plugin node of op `key`. Its signature copies
    the torch schema (the exporter passes arguments by it); arguments are bound to the contract by name, absent
    attributes take their spec default, and `has_skip` follows from `skip`."""
    import inspect

    spec = get_spec(key)
    params = [inspect.Parameter(a.name, inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                default=a.default_value if a.has_default_value() else inspect.Parameter.empty)
              for a in overload._schema.arguments]

    def translate(*args, **kwargs):
        bound = inspect.Signature(params).bind(*args, **kwargs)
        bound.apply_defaults()
        got = dict(bound.arguments)
        tensors = {t.name: got.get(t.name) for t in spec.inputs}
        attrs = {a: int(got[a]) for a in spec.attr_names if got.get(a) is not None}
        if "has_skip" in spec.attr_names:
            attrs.setdefault("has_skip", int(tensors.get("skip") is not None))
        return emit_plugin_node(key, tensors, attrs)

    translate.__signature__ = inspect.Signature(params)
    translate.__name__ = translate.__qualname__ = f"hyperstyle_{key}"
    return translate


def custom_translation_table() -> dict:
    """{torch op overload: onnxscript translation} for torch.onnx.export(dynamo=True, custom_translation_table=...).
    Maps torch.ops.hyperstyle.mod_conv / to_rgb (registered by plugins/<op>/op.py) to HsModConv / HsToRGB nodes."""
    import torch

    from hyperstyle_trt.plugins.generator import load_torch_ops

    load_torch_ops()
    table = {}
    for key in ("mod_conv", "to_rgb"):
        overload = getattr(torch.ops.hyperstyle, key).default
        table[overload] = make_translation(key, overload)
    return table
