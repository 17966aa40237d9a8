"""A selected graph that cannot be produced (e.g. the plugin ops are not importable) is a SKIPPED row and makes the
run fail (exit 1 in hs-export): no silent fallback to another variant."""

import hyperstyle_trt.export.pipeline as pipeline
from hyperstyle_trt.export.config import ExportConfig
from hyperstyle_trt.core.errors import HsError


def test_missing_plugin_ops_are_reported(monkeypatch, tiny_model, tmp_path):
    def unavailable(model, modes):
        raise HsError("the hyperstyle torch custom ops are not available "
                      "(No module named 'hyperstyle_trt.plugins.mod_conv.op')")

    monkeypatch.setattr(pipeline, "plugin_generator", unavailable)
    cfg = ExportConfig(config="tiny", variants=("plugin",), out=tmp_path, build_engines=False, verify=False)
    report = pipeline.run_onnx_export(cfg, model=tiny_model)
    rows = {a.path.name: a.status for a in report.artifacts}
    assert rows["generator_plugin_fp16.onnx"].startswith("SKIPPED: the hyperstyle torch custom ops")
    assert rows["hypernet_plugin_fp16.onnx"] == "ok" and rows["w_encoder_fp16.onnx"] == "ok"
    assert [a.path.name for a in report.failed] == ["generator_plugin_fp16.onnx"]
    assert not (tmp_path / "generator_plugin_fp16.onnx").exists()


def test_failed_graph_check_is_a_fail_row(monkeypatch, tiny_model, tmp_path):
    def bad_nodes(graph, expect_plugins):
        raise HsError("node HsModConv_0: plugin_version '2' != spec '1'")

    monkeypatch.setattr(pipeline.passes, "check_plugin_nodes", bad_nodes)
    cfg = ExportConfig(config="tiny", variants=("plugin",), out=tmp_path, build_engines=False, verify=False)
    report = pipeline.run_onnx_export(cfg, model=tiny_model)
    rows = {a.path.name: a.status for a in report.artifacts}
    assert rows["generator_plugin_fp16.onnx"] == "FAIL export: node HsModConv_0: plugin_version '2' != spec '1'"
    assert rows["hypernet_plugin_fp16.onnx"] == "ok"
