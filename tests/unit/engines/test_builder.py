"""Engine building with the importable TensorRT flavor (TensorRT-RTX on CPU machines): profiles, targets, errors."""

from pathlib import Path

import onnx
import onnx.helper as oh
import pytest

from hyperstyle_trt.engines.builder import BuildOptions, batch_profile, build_serialized, build_target
from hyperstyle_trt.core.contract import TensorIO
from hyperstyle_trt.core.errors import HsError


pytestmark = pytest.mark.trt


def test_batch_profile():
    prof = batch_profile([TensorIO("x", ("B", 3, 16, 16)), TensorIO("fixed", (2, 5))], max_batch=8, opt_batch=4)
    assert prof == (("x", (1, 3, 16, 16), (4, 3, 16, 16), (8, 3, 16, 16)),)


def test_build_dynamic_and_targets(conv_onnx, profile):
    from hyperstyle_trt.core.flavor import get_flavor

    fl = get_flavor()
    blob = build_serialized(conv_onnx, BuildOptions(profile=profile), fl)
    assert len(blob) > 1000
    if fl.is_rtx:
        assert build_target(fl)["device"] == "portable"
        assert build_target(fl, ("SM86",))["device"] == "cc:SM86"
        assert len(build_serialized(conv_onnx, BuildOptions(profile=profile, compute_capabilities=("SM86",)), fl))
        with pytest.raises(HsError, match="compute capability"):
            build_serialized(conv_onnx, BuildOptions(profile=profile, compute_capabilities=("SM90",)), fl)


def test_parse_error_is_one_line(tmp_path):
    g = oh.make_graph([oh.make_node("NoSuchOp", ["x"], ["y"])], "bad",
                      [oh.make_tensor_value_info("x", onnx.TensorProto.FLOAT16, [1, 3])],
                      [oh.make_tensor_value_info("y", onnx.TensorProto.FLOAT16, [1, 3])])
    p = tmp_path / "bad.onnx"
    onnx.save_model(oh.make_model(g, opset_imports=[oh.make_opsetid("", 18)]), str(p))
    with pytest.raises(HsError, match="could not parse bad.onnx") as e:
        build_serialized(p, BuildOptions())
    assert "\n" not in str(e.value)


class _ReadSpyPath(type(Path())):
    """A Path that records read_bytes() calls (the builder reads the timing cache through it)."""

    reads: list = []

    def read_bytes(self):
        _ReadSpyPath.reads.append(str(self))
        return super().read_bytes()


def test_timing_cache(conv_onnx, tmp_path, profile, monkeypatch):
    """Full TensorRT saves the timing cache, and a second build reads it back and still builds; TensorRT-RTX has none
    (its deprecated no-op calls are skipped: nothing is written or read)."""
    from hyperstyle_trt.core.flavor import get_flavor

    rtx = get_flavor().is_rtx
    tc = tmp_path / "tc" / "timing.cache"
    first = build_serialized(conv_onnx, BuildOptions(profile=profile), timing_cache=tc)
    assert len(first) > 1000 and tc.is_file() != rtx
    saved = b"" if rtx else tc.read_bytes()
    monkeypatch.setattr(_ReadSpyPath, "reads", [])
    second = build_serialized(conv_onnx, BuildOptions(profile=profile), timing_cache=_ReadSpyPath(tc))
    assert len(second) > 1000  # a real engine again, built with the cache loaded
    if rtx:
        assert _ReadSpyPath.reads == [] and not tc.exists()
    else:
        assert _ReadSpyPath.reads == [str(tc)] and len(saved) > 0 and tc.stat().st_size >= len(saved)
