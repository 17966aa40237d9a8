"""fp32 graph -> fp16 graph with the numerically sensitive ops kept in fp32 behind explicit Casts.

TensorRT 11 and TensorRT-RTX are strongly typed (no FP16 builder flag): the precision of every layer is the type of
its tensors in the ONNX graph, so the fp16 decision is made here, once, for every backend.

Policy (per node, in topological order):
- KEEP_FP32 ops (reductions and pooled means: ReduceSum/ReduceMean/AveragePool..., Pow/Sqrt/Reciprocal of the
  demodulation, normalizations) compute in fp32;
- FOLLOW ops (elementwise Add/Mul/Div..., reshapes) stay fp32 when every float variable input already is fp32, so a
  chain like Pow -> ReduceSum -> Add(1e-8) -> Sqrt -> Reciprocal stays fp32 (1e-8 is 0 in fp16);
- everything else (Conv, MatMul, Gemm, activations, plugin nodes) computes in fp16.
A Cast is inserted wherever a tensor crosses between the two (one per tensor and direction); fp32 constants feeding
fp16 nodes are rounded once (clipped to +-65504). BatchNorm statistics are folded in fp32 beforehand
(passes.batchnorm_to_affine). Graph inputs and outputs become fp16, so runtime buffers are fp16 end to end.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnx_graphsurgeon as gs

KEEP_FP32 = frozenset({"ReduceSum", "ReduceMean", "ReduceSumSquare", "ReduceL2", "ReduceProd", "Pow", "Sqrt",
                       "Reciprocal", "AveragePool", "GlobalAveragePool", "BatchNormalization", "LayerNormalization",
                       "InstanceNormalization", "GroupNormalization", "Softmax", "Exp", "Log"})
FOLLOW = frozenset({"Add", "Sub", "Mul", "Div", "Neg", "Abs", "Max", "Min", "Clip", "Reshape", "Squeeze",
                    "Unsqueeze", "Flatten", "Identity", "Expand", "Transpose"})
# Inputs that the ONNX spec types as float32 whatever T is (never converted).
FIXED_FP32_INPUTS = {"Resize": {2}, "Upsample": {1}}
FP16_MAX = 65504.0


def _is_f32(t) -> bool:
    return t is not None and t.dtype is not None and np.dtype(t.dtype) == np.float32


def node_precisions(graph: gs.Graph) -> dict[int, str]:
    """{id(node): "fp32" | "fp16" | "none"} following the module policy (graph must be toposorted)."""
    producer_prec: dict[str, str] = {}
    out: dict[int, str] = {}
    for n in graph.nodes:
        fin = [t for i, t in enumerate(n.inputs) if _is_f32(t) and i not in FIXED_FP32_INPUTS.get(n.op, ())]
        fout = [t for t in n.outputs if _is_f32(t)]
        if not fin and not fout:
            prec = "none"
        elif n.op in KEEP_FP32:
            prec = "fp32"
        elif n.op in FOLLOW:
            var = [t for t in fin if not isinstance(t, gs.Constant)]
            prec = "fp32" if var and all(producer_prec.get(t.name) == "fp32" for t in var) else "fp16"
        elif n.op == "Cast" and not fin:
            prec = "fp16"  # int -> float casts produce fp16
        else:
            prec = "fp16"
        out[id(n)] = prec
        for t in fout:
            producer_prec[t.name] = prec
    return out


def convert_to_fp16(graph: gs.Graph) -> dict[str, int]:
    """Convert `graph` in place (see module docstring). Returns {"fp16_nodes", "fp32_nodes", "casts"}."""
    graph.toposort()
    prec = node_precisions(graph)
    tensor_prec: dict[str, str] = {}
    for t in graph.inputs:
        if _is_f32(t):
            t.dtype = np.float16
            tensor_prec[t.name] = "fp16"
    const16: dict[str, gs.Constant] = {}
    casts: dict[tuple[str, str], gs.Variable] = {}
    new_nodes: list[gs.Node] = []

    def cast(t: gs.Variable, to: str) -> gs.Variable:
        key = (t.name, to)
        if key not in casts:
            dt = np.float16 if to == "fp16" else np.float32
            o = gs.Variable(f"{t.name}_to_{to}", dtype=dt, shape=t.shape)
            new_nodes.append(gs.Node("Cast", f"{t.name}_cast_{to}", {"to": onnx.helper.np_dtype_to_tensor_dtype(
                np.dtype(dt))}, inputs=[t], outputs=[o]))
            casts[key] = o
        return casts[key]

    def c16(c: gs.Constant) -> gs.Constant:
        if c.name not in const16:
            v = np.asarray(np.clip(c.values, -FP16_MAX, FP16_MAX), dtype=np.float16)
            const16[c.name] = gs.Constant(c.name + "_fp16", v)
        return const16[c.name]

    n16 = n32 = 0
    for n in list(graph.nodes):
        p = prec[id(n)]
        if p == "none":
            continue
        n16 += p == "fp16"
        n32 += p == "fp32"
        fixed = FIXED_FP32_INPUTS.get(n.op, ())
        for i, t in enumerate(n.inputs):
            if i in fixed or t is None or t.dtype is None:
                continue
            if isinstance(t, gs.Constant):
                if _is_f32(t) and p == "fp16":
                    n.inputs[i] = c16(t)
                continue
            have = tensor_prec.get(t.name)
            if have is not None and have != p:
                n.inputs[i] = cast(t, p)
        for t in n.outputs:
            if _is_f32(t):
                tensor_prec[t.name] = p
                if p == "fp16":
                    t.dtype = np.float16
        if n.op == "Cast" and p == "fp16" and n.attrs.get("to") == onnx.TensorProto.FLOAT:
            n.attrs["to"] = onnx.TensorProto.FLOAT16
        if n.op == "ConstantOfShape" and p == "fp16" and "value" in n.attrs:
            v = n.attrs["value"]
            n.attrs["value"] = gs.Constant(v.name, np.asarray(v.values, np.float16))
        if n.op == "Constant" and p == "fp16" and "value" in n.attrs:
            v = n.attrs["value"]
            if np.dtype(v.values.dtype) == np.float32:
                n.attrs["value"] = gs.Constant(v.name, np.asarray(np.clip(v.values, -FP16_MAX, FP16_MAX), np.float16))
    graph.nodes.extend(new_nodes)
    # Graph outputs produced in fp32 get a final Cast and keep their names.
    for k, t in enumerate(graph.outputs):
        if tensor_prec.get(t.name) == "fp32":
            name = t.name
            t.name = name + "_fp32"
            o = gs.Variable(name, dtype=np.float16, shape=t.shape)
            graph.nodes.append(gs.Node("Cast", f"{name}_output_cast", {"to": onnx.TensorProto.FLOAT16},
                                       inputs=[t], outputs=[o]))
            graph.outputs[k] = o
    graph.cleanup().toposort()
    return {"fp16_nodes": n16, "fp32_nodes": n32, "casts": len(new_nodes)}
