"""Tiny-config parity of every exported graph with the PyTorch reference (ORT for plain graphs, onnx.reference for
plugin graphs). Tolerances: export/verify.py GATES, per graph and output (relative to max(1, max|ref|)), each about
2-3x the worst value measured on the tiny config over three seeds (fp32 <= 1.6e-6, fp16 <= 4.0e-3; figures there)."""

import json

import onnx
import pytest

from hyperstyle_trt.export.verify import gate
from hyperstyle_trt.plugins.registry import all_specs


def _arts(report, kind="onnx"):
    return {a.path.name: a for a in report.artifacts if a.kind == kind}


def test_all_graphs_written_and_verified(tiny_export):
    cfg, report = tiny_export
    arts = _arts(report)
    want = {f"{g}_{p}.onnx" for g in ("w_encoder", "hypernet_plain", "generator_plain", "hypernet_plugin")
            for p in ("fp32", "fp16")}
    assert want <= set(arts), sorted(arts)
    for name, a in arts.items():
        assert a.status == "ok", (name, a.status)
        assert a.max_rel_err is not None and a.errors, name
        for e in a.errors:  # every output judged against its own gate
            want = gate("tiny", a.graph, e["name"], a.precision, plugin=a.variant == "plugin")
            assert e["tol"] == want and e["rel"] <= want, (name, e)
        assert (cfg.out / (name + ".json")).is_file()
    assert (cfg.out / "export_summary.json").is_file()


def test_fp32_is_tight_and_fp16_reported(tiny_export):
    """fp32 graphs agree to fp32 rounding; fp16 graphs really are fp16 (a non-zero error, well above fp32's)."""
    _, report = tiny_export
    for a in _arts(report).values():
        if a.precision == "fp32":
            assert a.max_rel_err < 5e-6, (a.path.name, a.max_rel_err)
        else:
            assert 1e-5 < a.max_rel_err < 1e-2, (a.path.name, a.max_rel_err)


def test_fixed_named_io(tiny_export, tiny_model):
    cfg, _ = tiny_export
    tuned = tiny_model.cfg.tuned
    g = onnx.load(str(cfg.out / "generator_plain_fp16.onnx"))
    assert [i.name for i in g.graph.input] == ["codes"] + [t.input_name for t in tuned]
    assert [o.name for o in g.graph.output] == ["image", "image_pooled"]
    assert g.graph.input[0].type.tensor_type.shape.dim[0].dim_value == cfg.plain_batch  # fixed batch (grouped conv)
    h = onnx.load(str(cfg.out / "hypernet_plugin_fp16.onnx"))
    assert [i.name for i in h.graph.input] == ["image", "recon_pooled"] + [t.input_name for t in tuned]
    assert [o.name for o in h.graph.output] == ["acc_" + t.name.replace(".", "_") for t in tuned]
    assert h.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "B"
    # plugin variant: per-channel Δ [B,Cout,Cin] for the non-shared layers, full OHWI [B,Cout,3,3,Cin] for the shared
    # ones (HsModConv v2), toRGB [B,3,Cin,1,1]; the generator takes what the hypernet gives
    def dims(vi):
        return [d.dim_param or d.dim_value for d in vi.type.tensor_type.shape.dim]

    conv1 = next(t for t in tuned if t.name == "conv1")
    c8 = next(t for t in tuned if t.name == "convs.8")
    gp = onnx.load(str(cfg.out / "generator_plugin_fp16.onnx"))
    for vis in (h.graph.input, h.graph.output, gp.graph.input):
        d = {v.name.replace("acc_", "delta_"): dims(v) for v in vis}
        assert d["delta_conv1"] == ["B", conv1.out_ch, 3, 3, conv1.in_ch]
        assert d["delta_convs_8"] == ["B", c8.out_ch, c8.in_ch]
    d = {v.name: dims(v) for v in g.graph.input}  # plain: official OIHW
    assert d["delta_conv1"] == [cfg.plain_batch, conv1.out_ch, conv1.in_ch, 3, 3]
    for o in h.graph.output:
        assert o.type.tensor_type.elem_type == onnx.TensorProto.FLOAT16


def test_fp16_graph_keeps_sensitive_ops_fp32(tiny_export):
    cfg, _ = tiny_export
    side = json.loads((cfg.out / "generator_plain_fp16.onnx.json").read_text())
    assert side["fp16"]["fp32_nodes"] > 0 and side["fp16"]["casts"] > 0
    m = onnx.shape_inference.infer_shapes(onnx.load(str(cfg.out / "generator_plain_fp16.onnx")))
    types = {v.name: v.type.tensor_type.elem_type for v in list(m.graph.value_info) + list(m.graph.output)}
    reduce_outs = [n.output[0] for n in m.graph.node if n.op_type == "ReduceSum"]
    assert reduce_outs and all(types.get(t) == onnx.TensorProto.FLOAT for t in reduce_outs)
    conv_outs = [n.output[0] for n in m.graph.node if n.op_type == "Conv"]
    assert all(types.get(t) == onnx.TensorProto.FLOAT16 for t in conv_outs)


def test_dynamic_batch_graphs_run_at_other_batches(tiny_export, tiny_model):
    from hyperstyle_trt.core import contract as C
    from hyperstyle_trt.models import graphs as G
    from hyperstyle_trt.export.verify import verify_graph

    cfg, _ = tiny_export
    for name, graph, plugin in (("w_encoder_fp32.onnx", "w_encoder", False),
                                ("hypernet_plain_fp32.onnx", "hypernet", False),
                                ("hypernet_plugin_fp32.onnx", "hypernet", True)):
        modes = C.delta_modes(tiny_model.cfg, per_channel=plugin)
        io = C.graph_io(tiny_model.cfg, graph, modes, ohwi=plugin)
        for b in (1, 3):
            errs = verify_graph(cfg.out / name, tiny_model, graph, modes, G.example_inputs(io, b, seed=b), "fp32",
                                plugin=False, ohwi=plugin)
            assert all(e.ok for e in errs), (name, b, errs)


def test_sidecar_contents(tiny_export, tiny_model):
    cfg, _ = tiny_export
    side = json.loads((cfg.out / "hypernet_plain_fp32.onnx.json").read_text())
    assert side["graph"] == "hypernet" and side["precision"] == "fp32" and side["model_config"] == "tiny"
    assert len(side["sha256"]) == 64 and side["versions"]["torch"]
    assert side["inputs"]["image"][0] == "B"
    assert side["export_config"]["config"] == "tiny"
    assert side["delta_layout"] == "OIHW" and side["delta_modes"]["convs.8"] == "full"
    side = json.loads((cfg.out / "hypernet_plugin_fp32.onnx.json").read_text())
    assert side["delta_layout"] == "OHWI" and side["delta_modes"]["convs.8"] == "per_channel"
    conv1 = tiny_model.cfg.tuned[0]
    assert side["outputs"]["acc_conv1"] == ["B", conv1.out_ch, 3, 3, conv1.in_ch]


@pytest.mark.parametrize("prec", ["fp32", "fp16"])
def test_plugin_generator_parity(tiny_export, prec):
    _, report = tiny_export
    arts = _arts(report)
    name = f"generator_plugin_{prec}.onnx"
    if name not in arts:
        pytest.fail(f"plugin generator not exported: {report.notes}")
    assert arts[name].status == "ok"
    for e in arts[name].errors:
        assert e["rel"] <= gate("tiny", "generator", e["name"], prec, plugin=True), e
    side = json.loads((tiny_export[0].out / (name + ".json")).read_text())
    assert side["plugins"] == {s.name: s.version for s in all_specs()} and side["inputs"]["codes"][0] == "B"
    assert side["plugins"]["HsModConv"] == "2"  # v2: weight and full Δ OHWI
    assert side["delta_modes"]["convs.8"] == "per_channel" and side["delta_layout"] == "OHWI"
    assert "Conv" not in side["ops"] and side["ops"]["hyperstyle::HsModConv"] == 11
