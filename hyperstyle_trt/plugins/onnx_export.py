"""ONNX side of the plugins: plugin nodes (op_type = spec name, domain "hyperstyle", string attributes
`plugin_version` and `plugin_namespace`, every spec attribute written explicitly) and the onnxscript
`custom_translation_table()` that maps the torch custom ops to those nodes for
`torch.onnx.export(..., dynamo=True, custom_translation_table=custom_translation_table())`. (One-node test models:
tests/unit/_helpers/onnx_models.py.)

The TensorRT ONNX parser maps such a node to the registered IPluginV3 creator (onnx-tensorrt's
FallbackPluginImporter, docs/tensorrt_plugins.md §2): creator name = op_type; version = the STRING attribute
`plugin_version` (default "1"); namespace = the STRING attribute `plugin_namespace` (default "", exact match). Full
TensorRT 10.x never reads the node's domain; TensorRT-RTX falls back to it, so both are written. Each creator field is
read from the attribute of the same name: INT -> INT32, INTS -> INT32 array, FLOAT(S) -> FLOAT32, STRING -> CHAR.
"""

from __future__ import annotations

from typing import Mapping, Sequence


from hyperstyle_trt.core.errors import HsError
from hyperstyle_trt.core.precision import precision
from hyperstyle_trt.plugins.registry import DOMAIN, OpSpec, get_spec

OPSET = 18  # default-domain opset of the graphs the exporter writes
DOMAIN_VERSION = 1


def is_plugin_node(node) -> bool:
    """True for an onnx NodeProto that a TensorRT parser would resolve to one of our creators: the hyperstyle domain
    (what TensorRT-RTX reads) or the `plugin_namespace` attribute (what full TensorRT reads)."""
    if node.domain == DOMAIN:
        return True
    return any(a.name == "plugin_namespace" and a.s == DOMAIN.encode() for a in node.attribute)


def opset_imports():
    """[default opset, hyperstyle domain] for a plugin model."""
    import onnx.helper as oh

    return [oh.make_opsetid("", OPSET), oh.make_opsetid(DOMAIN, DOMAIN_VERSION)]


def node_attributes(spec: OpSpec, attrs: Mapping[str, int] | None = None) -> dict:
    """Every spec attribute (resolved, ints) plus `plugin_version` and `plugin_namespace` (strings), as ONNX node
    attributes."""
    return {**spec.resolve_attrs(attrs), "plugin_version": spec.version, "plugin_namespace": spec.namespace}


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
        + [OpSchema.Attribute("plugin_version", OpSchema.AttrType.STRING, "TensorRT plugin version"),
           OpSchema.Attribute("plugin_namespace", OpSchema.AttrType.STRING, "TensorRT plugin namespace")])


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
