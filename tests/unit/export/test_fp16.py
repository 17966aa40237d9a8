"""The fp16 pass on hand-built graphs: policy, casts, constants, I/O types; checked in ONNX Runtime."""

import numpy as np
import onnx
import onnx.helper as oh
import onnx_graphsurgeon as gs
import onnxruntime as ort

from hyperstyle_trt.export.fp16 import convert_to_fp16


def _demod_model():
    """y = conv(x, w) * rsqrt(sum(w'^2) + 1e-8): the demodulation chain that must stay fp32."""
    rng = np.random.default_rng(0)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32) * 0.1
    inits = [onnx.numpy_helper.from_array(w, "w"), onnx.numpy_helper.from_array(np.array(2.0, np.float32), "two"),
             onnx.numpy_helper.from_array(np.array(1e-8, np.float32), "eps"),
             onnx.numpy_helper.from_array(np.array([1, 2, 3], np.int64), "axes"),
             onnx.numpy_helper.from_array(np.array([2, 3], np.int64), "hw"),
             onnx.numpy_helper.from_array(np.array([1, 4, 1, 1], np.int64), "shape")]
    nodes = [oh.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
             oh.make_node("Pow", ["w", "two"], ["w2"]),
             oh.make_node("ReduceSum", ["w2", "axes"], ["s"], keepdims=0),
             oh.make_node("Add", ["s", "eps"], ["se"]),
             oh.make_node("Sqrt", ["se"], ["r"]),
             oh.make_node("Reciprocal", ["r"], ["d"]),
             oh.make_node("Reshape", ["d", "shape"], ["d4"]),
             oh.make_node("Mul", ["c", "d4"], ["y"]),
             oh.make_node("ReduceMean", ["y", "hw"], ["m"], keepdims=1)]
    g = oh.make_graph(nodes, "demod", [oh.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 3, 8, 8])],
                      [oh.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 4, 8, 8]),
                       oh.make_tensor_value_info("m", onnx.TensorProto.FLOAT, [1, 4, 1, 1])], initializer=inits)
    return onnx.shape_inference.infer_shapes(oh.make_model(g, opset_imports=[oh.make_opsetid("", 18)]))


def _run(model, x):
    s = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return s.run(None, {"x": x})


def test_fp16_policy_and_accuracy():
    m32 = _demod_model()
    graph = gs.import_onnx(m32)
    stats = convert_to_fp16(graph)
    m16 = gs.export_onnx(graph)
    onnx.checker.check_model(m16)
    prec = {n.op: n for n in graph.nodes}
    assert prec["Conv"].outputs[0].dtype == np.float16
    for op in ("Pow", "ReduceSum", "Add", "Sqrt", "Reciprocal"):  # the demod chain stays fp32 (1e-8 survives)
        assert prec[op].outputs[0].dtype == np.float32, op
    assert stats["fp32_nodes"] >= 6 and stats["casts"] >= 2
    assert [i.type.tensor_type.elem_type for i in m16.graph.input] == [onnx.TensorProto.FLOAT16]
    assert all(o.type.tensor_type.elem_type == onnx.TensorProto.FLOAT16 for o in m16.graph.output)
    x = np.random.default_rng(1).standard_normal((1, 3, 8, 8)).astype(np.float32)
    y32, m_32 = _run(m32, x)
    y16, m_16 = _run(m16, x.astype(np.float16))
    assert y16.dtype == np.float16
    assert np.abs(y16.astype(np.float32) - y32).max() < 1e-2 * max(1.0, np.abs(y32).max())
    assert np.abs(m_16.astype(np.float32) - m_32).max() < 1e-2


def test_constants_clipped_to_fp16_range():
    c = onnx.numpy_helper.from_array(np.array([1e6, -1e6, 0.5], np.float32), "c")
    g = oh.make_graph([oh.make_node("Mul", ["x", "c"], ["y"])], "clip",
                      [oh.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [3])],
                      [oh.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [3])], initializer=[c])
    graph = gs.import_onnx(oh.make_model(g, opset_imports=[oh.make_opsetid("", 18)]))
    convert_to_fp16(graph)
    (y,) = _run(gs.export_onnx(graph), np.ones(3, np.float16))
    assert np.isfinite(y).all() and y[0] == np.float16(65504)
