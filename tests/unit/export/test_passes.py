"""Graph passes: BatchNorm folding, I/O contract checks, plugin-node checks, atomic ONNX writing."""

import numpy as np
import onnx
import onnx.helper as oh
import onnx_graphsurgeon as gs
import onnxruntime as ort
import pytest

from hyperstyle_trt.export import onnx_io, passes
from hyperstyle_trt.core.contract import GraphIO, TensorIO
from hyperstyle_trt.core.errors import HsError


def _bn_model(c: int = 4):
    rng = np.random.default_rng(0)
    arrs = {"g": 1 + 0.1 * rng.standard_normal(c), "b": 0.1 * rng.standard_normal(c),
            "m": 0.1 * rng.standard_normal(c), "v": 1 + 0.1 * np.abs(rng.standard_normal(c))}
    inits = [onnx.numpy_helper.from_array(v.astype(np.float32), k) for k, v in arrs.items()]
    g = oh.make_graph([oh.make_node("BatchNormalization", ["x", "g", "b", "m", "v"], ["y"], epsilon=1e-5)], "bn",
                      [oh.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["B", c, 5, 5])],
                      [oh.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["B", c, 5, 5])], initializer=inits)
    return oh.make_model(g, opset_imports=[oh.make_opsetid("", 18)])


def test_batchnorm_to_affine_matches():
    m = _bn_model()
    graph = passes.batchnorm_to_affine(gs.import_onnx(m))
    assert [n.op for n in graph.nodes] == ["Mul", "Add"]
    x = np.random.default_rng(1).standard_normal((2, 4, 5, 5)).astype(np.float32)

    def run(mm):
        return ort.InferenceSession(mm.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]

    np.testing.assert_allclose(run(gs.export_onnx(graph)), run(m), atol=1e-5)


def test_check_io_rejects_contract_mismatch():
    graph = gs.import_onnx(_bn_model())
    ok = GraphIO((TensorIO("x", ("B", 4, 5, 5)),), (TensorIO("y", ("B", 4, 5, 5)),))
    passes.check_io(graph, ok, dynamic_batch=True)
    with pytest.raises(HsError, match="inputs"):
        passes.check_io(graph, GraphIO((TensorIO("image", ("B", 4, 5, 5)),), ok.outputs), True)
    with pytest.raises(HsError, match="shape"):
        passes.check_io(graph, GraphIO((TensorIO("x", ("B", 4, 6, 5)),), ok.outputs), True)


def test_check_plugin_nodes():
    from tests.unit._helpers.onnx_models import single_node_model

    graph = gs.import_onnx(single_node_model("mod_conv", {"delta_mode": 2}))
    assert passes.check_plugin_nodes(graph, expect_plugins=True) == {"HsModConv": 1}
    graph.nodes[0].attrs["plugin_version"] = "99"
    with pytest.raises(HsError, match="plugin_version"):
        passes.check_plugin_nodes(graph, expect_plugins=True)
    with pytest.raises(HsError, match="no plugin nodes"):
        passes.check_plugin_nodes(gs.import_onnx(_bn_model()), expect_plugins=True)


def test_save_onnx_atomic_external_data(tmp_path):
    m = _bn_model(512)  # 2 KB tensors: above save_model's 1 KB inline limit
    p = tmp_path / "g.onnx"
    files = onnx_io.save_onnx_atomic(m, p, external_threshold=0)  # force external data
    assert files == [p, tmp_path / "g.onnx.data"] and files[1].stat().st_size > 0
    assert onnx_io.onnx_files(p) == files
    loaded = onnx.load(str(p))
    assert {t.name for t in loaded.graph.initializer} == {"g", "b", "m", "v"}
    files = onnx_io.save_onnx_atomic(_bn_model(), p)  # inline now: the stale data file goes away
    assert files == [p] and not (tmp_path / "g.onnx.data").exists()
    assert sorted(f.name for f in tmp_path.iterdir()) == ["g.onnx"]  # no temp files left


def test_save_onnx_atomic_unwritable(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(HsError, match="cannot create"):
        onnx_io.save_onnx_atomic(_bn_model(), blocker / "sub" / "g.onnx")
