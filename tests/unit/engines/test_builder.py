"""Engine building with the importable TensorRT flavor (TensorRT-RTX on CPU machines): profiles, targets, errors."""

import onnx
import onnx.helper as oh
import pytest

from engines.builder import BuildOptions, batch_profile, build_serialized, build_target
from core.contract import TensorIO
from core.errors import HsError


pytestmark = pytest.mark.trt


def test_batch_profile():
    prof = batch_profile([TensorIO("x", ("B", 3, 16, 16)), TensorIO("fixed", (2, 5))], max_batch=8, opt_batch=4)
    assert prof == (("x", (1, 3, 16, 16), (4, 3, 16, 16), (8, 3, 16, 16)),)


def test_build_dynamic_and_targets(conv_onnx, profile):
    from core.flavor import get_flavor

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


def test_timing_cache(conv_onnx, tmp_path, profile):
    """Full TensorRT saves and reloads the timing cache; TensorRT-RTX has none (deprecated no-op calls skipped)."""
    from core.flavor import get_flavor

    tc = tmp_path / "tc" / "timing.cache"
    build_serialized(conv_onnx, BuildOptions(profile=profile), timing_cache=tc)
    assert tc.is_file() != get_flavor().is_rtx
    build_serialized(conv_onnx, BuildOptions(profile=profile), timing_cache=tc)  # loads it back
