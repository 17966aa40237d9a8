"""onnx-graphsurgeon passes over exported graphs: I/O contract, BatchNorm folding, constant folding, plugin checks.

Every pass takes and returns a `gs.Graph` (mutated in place). The order used by the exporter:
`check_io` -> `batchnorm_to_affine` -> `fold` -> (`check_plugin_nodes`) -> (`fp16.convert_to_fp16` -> `fold`).
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import onnx
import onnx_graphsurgeon as gs

from hyperstyle_trt.core.contract import GraphIO
from hyperstyle_trt.core.errors import HsError


def import_graph(model: onnx.ModelProto) -> gs.Graph:
    return gs.import_onnx(model)


def export_model(graph: gs.Graph, opset: int) -> onnx.ModelProto:
    """gs.Graph -> ModelProto with the default-domain opset `opset` (custom domains keep version 1)."""
    graph.cleanup().toposort()
    model = gs.export_onnx(graph, do_type_check=True)
    for imp in model.opset_import:
        if imp.domain in ("", "ai.onnx"):
            imp.version = opset
    model.producer_name = "hyperstyle-trt"
    return model


def check_io(graph: gs.Graph, io: GraphIO, dynamic_batch: bool) -> gs.Graph:
    """Assert the graph's inputs/outputs are exactly `io` (names, order, ranks, static dims); name the dynamic
    batch dim "B". Raises HsError on a mismatch (an exporter change, or a wrapper bug)."""
    for kind, got, want in (("input", graph.inputs, io.inputs), ("output", graph.outputs, io.outputs)):
        names = [t.name for t in got]
        if names != [t.name for t in want]:
            raise HsError(f"exported graph {kind}s {names} differ from the contract {[t.name for t in want]}")
        for t, w in zip(got, want):
            shape = list(t.shape) if t.shape is not None else None
            if shape is None or len(shape) != len(w.shape):
                raise HsError(f"{kind} {t.name}: rank of {shape} differs from {list(w.shape)}")
            for i, (a, b) in enumerate(zip(shape, w.shape)):
                if isinstance(b, int) and not (i == 0 and dynamic_batch) and a != b:
                    raise HsError(f"{kind} {t.name}: shape {shape} differs from {list(w.shape)}")
            if dynamic_batch:
                shape[0] = "B"
            t.shape = shape
    return graph


def batchnorm_to_affine(graph: gs.Graph) -> gs.Graph:
    """Inference BatchNormalization -> Mul + Add with per-channel scale/shift computed in fp32 (float64 internally):
    scale = gamma / sqrt(var + eps), shift = beta - mean * scale. BNs that follow a Conv were already folded into
    it by the exporter; these are the pre-activation BNs of the IR-SE units. The constants stay fp32 until the fp16
    pass rounds them once."""
    for node in [n for n in graph.nodes if n.op == "BatchNormalization"]:
        x, g, b, m, v = node.inputs[:5]
        if not all(isinstance(t, gs.Constant) for t in (g, b, m, v)) or len(node.outputs) != 1:
            continue
        eps = float(node.attrs.get("epsilon", 1e-5))
        g, b, m, v = (t.values.astype(np.float64) for t in (g, b, m, v))
        scale = g / np.sqrt(v + eps)
        shift = b - m * scale
        rank = len(x.shape) if x.shape is not None else 4
        bshape = (1, -1) + (1,) * (rank - 2)
        sc = gs.Constant(f"{node.name}_scale", scale.astype(np.float32).reshape(bshape))
        sh = gs.Constant(f"{node.name}_shift", shift.astype(np.float32).reshape(bshape))
        y = node.outputs[0]
        mid = gs.Variable(f"{node.name}_scaled", dtype=x.dtype, shape=x.shape)
        graph.nodes.append(gs.Node("Mul", f"{node.name}_mul", inputs=[x, sc], outputs=[mid]))
        graph.nodes.append(gs.Node("Add", f"{node.name}_add", inputs=[mid, sh], outputs=[y]))
        node.outputs.clear()
        node.inputs.clear()
    graph.cleanup().toposort()
    return graph


def fold(graph: gs.Graph, size_threshold: int = 1 << 28) -> gs.Graph:
    """Constant folding (ONNX Runtime on the constant subgraphs) + dead-node cleanup + toposort. Folded tensors
    larger than `size_threshold` bytes are left as computation (bounds memory on the FFHQ hypernet)."""
    graph.cleanup().toposort()
    graph.fold_constants(size_threshold=size_threshold, error_ok=True)
    graph.cleanup().toposort()
    return graph


def op_counts(graph: gs.Graph) -> dict[str, int]:
    """{op type (domain-qualified for custom ops): count}, sorted by count."""
    c = Counter(f"{n.domain}::{n.op}" if n.domain not in (None, "", "ai.onnx") else n.op for n in graph.nodes)
    return dict(c.most_common())


def check_plugin_nodes(graph: gs.Graph, expect_plugins: bool) -> dict[str, int]:
    """Check every node of the plugin domain against its spec (plugins/registry.py): op type, namespace/version
    attributes, attribute values, input count. With `expect_plugins`, also require at least one plugin node and no
    grouped/per-sample-weight Conv left. Returns {op type: count}. HsError on any violation."""
    from hyperstyle_trt.plugins.registry import DOMAIN, all_specs  # optional at import time: plugins/ may be absent

    specs = {s.name: s for s in all_specs()}
    counts: Counter[str] = Counter()
    for n in graph.nodes:
        if n.domain != DOMAIN and n.op not in specs:
            continue
        spec = specs.get(n.op)
        if spec is None:
            raise HsError(f"node {n.name}: unknown plugin op {n.domain}::{n.op}; expected one of {sorted(specs)}")
        attrs = {k: v for k, v in n.attrs.items() if k not in ("plugin_namespace", "plugin_version")}
        resolved = spec.resolve_attrs(attrs)
        ns = n.attrs.get("plugin_namespace", n.domain)
        if ns != spec.namespace:
            raise HsError(f"node {n.name}: namespace {ns!r} != spec {spec.namespace!r}")
        ver = str(n.attrs.get("plugin_version", spec.version))
        if ver != spec.version:
            raise HsError(f"node {n.name}: plugin_version {ver!r} != spec {spec.version!r}")
        want = len(spec.present_inputs(resolved))
        if len(n.inputs) != want:
            raise HsError(f"node {n.name}: {len(n.inputs)} inputs, spec {spec.name} with {resolved} wants {want}")
        counts[n.op] += 1
    if expect_plugins:
        if not counts:
            raise HsError("plugin graph contains no plugin nodes")
        grouped = [n.name for n in graph.nodes if n.op in ("Conv", "ConvTranspose") and n.attrs.get("group", 1) > 1
                   and not isinstance(n.inputs[1], gs.Constant)]
        if grouped:
            raise HsError(f"plugin graph still has grouped per-sample-weight convs: {grouped[:3]}")
    return dict(counts)
