"""Without any TensorRT flavor the export still writes the ONNX graphs and says clearly why engines were skipped."""

from hyperstyle_trt.export.config import ExportConfig
from hyperstyle_trt.engines.pipeline import build_engines
from hyperstyle_trt.export.pipeline import ExportReport
from hyperstyle_trt.core.errors import HsError


def test_engines_skipped_without_tensorrt(monkeypatch, tiny_model, tmp_path):
    from hyperstyle_trt.core import flavor

    def no_trt(name=None):
        raise HsError("no TensorRT flavor importable (tensorrt: not installed; tensorrt_rtx: not installed)")

    monkeypatch.setattr(flavor, "get_flavor", no_trt)
    report = ExportReport(config={})
    build_engines(ExportConfig(config="tiny", out=tmp_path), tiny_model, {}, report)
    assert report.engines_skipped.startswith("engines skipped: no TensorRT flavor importable")
    assert report.artifacts == []
