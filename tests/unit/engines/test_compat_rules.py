"""engines.compat's version and device rules (TensorRT's engine-compatibility table, in compat's docstring), one case
per row: refuse (one HsError line), warn (EngineCompatibilityWarning, also in EngineInfo.warnings) or accept. Sidecars
are the real one written by get_or_build for a TensorRT-RTX-built engine, edited; full-TensorRT rows check against a
Flavor named "tensorrt" (its module is TensorRT-RTX's: nothing is deserialized) and synthetic GPUs."""

import json
import warnings

import pytest

from hyperstyle_trt.core.errors import HsError
from hyperstyle_trt.core.flavor import Flavor
from hyperstyle_trt.core.sidecar import sidecar_path
from hyperstyle_trt.engines.compat import EngineCompatibilityWarning, GpuInfo, check_engine
from tests.unit.engines.test_compat import _copy, built  # noqa: F401  (the module-scoped RTX-built engine)

pytestmark = pytest.mark.trt

H100 = GpuInfo("NVIDIA H100 80GB HBM3", 9, 0)
H200 = GpuInfo("NVIDIA H200", 9, 0)
A100 = GpuInfo("NVIDIA A100-SXM4-80GB", 8, 0)
T4 = GpuInfo("Tesla T4", 7, 5)
L40S = GpuInfo("NVIDIA L40S", 8, 9)


def _full(built, tmp_path, device, level="NONE", version="10.9.0.34", vc=False, drop=False):  # noqa: F811
    """The RTX-built engine's sidecar, edited to say full TensorRT `version` built it on `device` with hardware
    compatibility `level` (drop: no `compatibility` field, as sidecars before it)."""

    def edit(s):
        s["key_components"]["target"] = {"flavor": "tensorrt", "version": version, "device": device}
        if drop:
            s.pop("compatibility", None)
        else:
            s["compatibility"] = {"hardware_compatibility_level": level, "version_compatible": vc}

    return _copy(built, tmp_path, edit)


def _run(path, gpu, version="10.9.0.34", module=None):
    """check_engine with full TensorRT `version` on `gpu`: ("accept" | "warn", warning texts)."""
    fl = Flavor("tensorrt", module, version)
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        info = check_engine(path, flavor=fl, device=gpu)
    texts = [str(w.message) for w in got if issubclass(w.category, EngineCompatibilityWarning)]
    assert list(info.warnings) == texts
    return ("warn" if texts else "accept"), texts


def _refused(path, gpu, match, version="10.9.0.34"):
    with pytest.raises(HsError, match=match) as e:
        check_engine(path, flavor=Flavor("tensorrt", None, version), device=gpu)
    msg = str(e.value)
    assert "\n" not in msg and "rebuild it with `hs-export" in msg
    return msg


# ---- full TensorRT: device rows ------------------------------------------------------------------------------------
@pytest.mark.parametrize("level,device,gpu,want", [
    ("NONE", "NVIDIA H100 80GB HBM3 sm_90", H100, "accept"),
    ("NONE", "NVIDIA H100 80GB HBM3 sm_90", H200, "warn"),  # same CC, another model
    ("NONE", "NVIDIA H100 80GB HBM3 sm_90", A100, "refuse"),  # another CC
    ("SAME_COMPUTE_CAPABILITY", "NVIDIA H100 80GB HBM3 sm_90", H200, "accept"),
    ("SAME_COMPUTE_CAPABILITY", "NVIDIA H100 80GB HBM3 sm_90", A100, "refuse"),
    ("AMPERE_PLUS", "NVIDIA A100-SXM4-80GB sm_80", H200, "accept"),
    ("AMPERE_PLUS", "NVIDIA A100-SXM4-80GB sm_80", L40S, "accept"),
    ("AMPERE_PLUS", "NVIDIA A100-SXM4-80GB sm_80", T4, "refuse"),  # Turing is not Ampere-plus
])
def test_full_tensorrt_device_rules(built, tmp_path, level, device, gpu, want):  # noqa: F811
    path = _full(built, tmp_path, device, level)
    if want == "refuse":
        msg = _refused(path, gpu, f"e.engine is stale: built .* but this GPU is {gpu.describe()}")
        assert (level == "AMPERE_PLUS") == ("AMPERE_PLUS" in msg)
        return
    got, texts = _run(path, gpu)
    assert got == want, texts
    if want == "warn":
        assert f"built on {device}, but this GPU is {gpu.describe()}: same compute capability" in texts[0]
        assert "not recommended" in texts[0] and "hs-export" in texts[0] and "\n" not in texts[0]


def test_sidecar_without_compatibility_is_none(built, tmp_path):  # noqa: F811
    """Sidecars written before the field: hardware compatibility NONE (another model warns, another CC refuses)."""
    path = _full(built, tmp_path, "NVIDIA H100 80GB HBM3 sm_90", drop=True)
    assert "compatibility" not in json.loads(sidecar_path(path).read_text())
    assert _run(path, H200)[0] == "warn"
    _refused(path, A100, "with no hardware compatibility, but this GPU is NVIDIA A100-SXM4-80GB sm_80")


@pytest.mark.parametrize("device", ["no-gpu", "", "a GPU"])
def test_unknown_build_gpu_is_refused(built, tmp_path, device):  # noqa: F811
    _refused(_full(built, tmp_path, device), H200, "its GPU cannot be compared with NVIDIA H200 sm_90")


# ---- full TensorRT: version rows -----------------------------------------------------------------------------------
@pytest.mark.parametrize("built_v,here,vc,want", [
    ("10.8.0.43", "10.9.0.34", False, "refuse"),
    ("10.8.0.43", "10.9.0.34", True, "warn"),  # a later 10.x runs a version-compatible 10.x engine
    ("10.9.0.34", "10.8.0.43", True, "refuse"),  # never an older runtime
    ("10.9.0.34", "11.4.0.1", True, "warn"),  # 10 -> 11
    ("8.6.1.6", "10.9.0.34", True, "warn"),  # 8 -> 10
    ("9.3.0.1", "10.9.0.34", True, "refuse"),  # no other major pair
    ("10.9.0.34", "11.4.0.1", False, "refuse"),
])
def test_full_tensorrt_version_rules(built, tmp_path, built_v, here, vc, want):  # noqa: F811
    path = _full(built, tmp_path, "NVIDIA H200 sm_90", version=built_v, vc=vc)
    if want == "refuse":
        msg = _refused(path, H200, f"built with tensorrt {built_v}", version=here)
        assert ("version-compatible" in msg) and (here in msg)
        return
    got, texts = _run(path, H200, version=here)
    assert got == "warn" and "version-compatible" in texts[0] and "lean runtime" in texts[0]


# ---- TensorRT-RTX rows ---------------------------------------------------------------------------------------------
def test_rtx_sidecar_records_compatibility_and_profiles(built):  # noqa: F811
    path, fl = built
    if not fl.is_rtx:
        pytest.skip("TensorRT-RTX-built sidecar")
    side = json.loads(sidecar_path(path).read_text())
    assert side["compatibility"] == {"hardware_compatibility_level": "NONE", "version_compatible": False}
    assert side["profiles"] == [{"min": 1, "opt": 4, "max": 8}]  # conftest PROFILE: one profile


@pytest.mark.parametrize("target,gpu,want", [
    ("portable", GpuInfo("NVIDIA GeForce RTX 5090", 12, 0), "accept"),
    ("portable", GpuInfo("NVIDIA RTX A6000", 8, 6), "accept"),
    ("portable", GpuInfo("NVIDIA GeForce RTX 2080 Ti", 7, 5), "refuse"),  # Turing needs SM75 named
    ("cc:SM75", GpuInfo("NVIDIA GeForce RTX 2080 Ti", 7, 5), "accept"),
    ("cc:SM86,SM89", GpuInfo("NVIDIA GeForce RTX 4090", 8, 9), "accept"),
    ("cc:SM86", GpuInfo("NVIDIA GeForce RTX 4090", 8, 9), "refuse"),
])
def test_rtx_target_rules(built, tmp_path, target, gpu, want):  # noqa: F811
    path, fl = built
    if not fl.is_rtx:
        pytest.skip("TensorRT-RTX only")

    def edit(s):
        s["key_components"]["target"]["device"] = target

    p = _copy(built, tmp_path, edit)
    if want == "refuse":
        with pytest.raises(HsError, match=f"e.engine is stale: built .*but this GPU is {gpu.describe()}") as e:
            check_engine(p, device=gpu)
        assert "\n" not in str(e.value)
        return
    with warnings.catch_warnings():
        warnings.simplefilter("error", EngineCompatibilityWarning)  # RTX rows never warn
        assert check_engine(p, device=gpu).warnings == ()


def test_rtx_refuses_full_tensorrt_compatibility_options(conv_onnx, profile):
    from hyperstyle_trt.core.flavor import get_flavor
    from hyperstyle_trt.engines.builder import BuildOptions, build_serialized

    if not get_flavor().is_rtx:
        pytest.skip("TensorRT-RTX only")
    for opts in (BuildOptions(profile=profile, hardware_compatibility="AMPERE_PLUS"),
                 BuildOptions(profile=profile, version_compatible=True)):
        with pytest.raises(HsError, match="full-TensorRT options; TensorRT-RTX targets compute capabilities"):
            build_serialized(conv_onnx, opts)
    with pytest.raises(HsError, match="unknown hardware compatibility level 'AMPERE'; expected one of"):
        BuildOptions(hardware_compatibility="AMPERE")
