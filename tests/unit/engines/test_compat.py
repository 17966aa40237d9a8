"""engines.compat.check_engine on a real engine built here with TensorRT-RTX (CPU build; it cannot be deserialized
here) and on sidecars edited from it: every mismatch is one HsError line naming what differs and the rebuild
command."""

import json
import shlex
from pathlib import Path

import pytest

from hyperstyle_trt.core.errors import HsError
from hyperstyle_trt.core.sidecar import read_sidecar, sidecar_path
from hyperstyle_trt.engines.compat import GpuInfo, check_engine, rebuild_command
from hyperstyle_trt.export.config import ExportConfig

pytestmark = pytest.mark.trt

A6000 = GpuInfo("NVIDIA RTX A6000", 8, 6)  # SM86: a compute capability TensorRT-RTX runs on
H200 = GpuInfo("NVIDIA H200", 9, 0)  # SM90: TensorRT-RTX does not


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """(engine path, flavor) of a tiny dynamic-batch fp16 conv engine, sidecar written by get_or_build with an
    export_config as engines.pipeline records it."""
    from hyperstyle_trt.core.flavor import get_flavor
    from hyperstyle_trt.engines.builder import BuildOptions, get_or_build
    from tests.unit.engines.conftest import PROFILE, make_conv_onnx

    d = tmp_path_factory.mktemp("compat")
    onnx = make_conv_onnx(d / "w_encoder_fp16.onnx")
    cfg = ExportConfig(config="tiny", precisions=("fp16",), variants=("plugin",), max_batch=4, out=d)
    res = get_or_build(onnx, d / "w_encoder_fp16.engine", BuildOptions(profile=PROFILE), d / "cache",
                       record={"kind": "engine", "graph": "w_encoder", "variant": "shared", "precision": "fp16",
                               "model_config": "tiny", "export_config": cfg.to_dict()})
    return res.path, get_flavor()


def _copy(built, tmp_path, edit=None, name="e.engine"):
    """Copy the built engine + sidecar to tmp_path; `edit(sidecar dict)` mutates the sidecar first."""
    src, _ = built
    dst = tmp_path / name
    dst.write_bytes(src.read_bytes())
    side = json.loads(sidecar_path(src).read_text())
    if edit is not None:
        edit(side)
    sidecar_path(dst).write_text(json.dumps(side))
    return dst


def _one_line_error(path, match, **kw):
    with pytest.raises(HsError, match=match) as e:
        check_engine(path, **kw)
    msg = str(e.value)
    assert "\n" not in msg
    return msg


def _rebuild_args(msg):
    """The arguments of the `hs-export ...` command quoted in an error message."""
    cmd = msg.split("`")[1]
    args = shlex.split(cmd)
    assert args[0] == "hs-export"
    return args


def test_ok_engine_passes(built, tmp_path):
    path, fl = built
    if not fl.is_rtx:
        pytest.skip("the synthetic GPU below is a TensorRT-RTX target; full TensorRT checks the real GPU (gpu tests)")
    info = check_engine(path, device=A6000)
    assert info.flavor.name == fl.name and info.plugins == {} and info.aot is False
    assert info.sidecar["key_components"]["target"] == {"flavor": fl.name, "version": fl.version,
                                                        "device": "portable"}


def test_rebuild_command_from_export_config(built):
    path, _ = built
    args = _rebuild_args("`" + rebuild_command(path, read_sidecar(path)) + "`")
    assert args == ["hs-export", "--config", "tiny", "--fp16", "--plugin", "--max-batch", "4", "--out",
                    str(path.parent)]
    # without export_config: precision and model config from the sidecar
    assert rebuild_command(Path("/x/y.engine"), {"precision": "fp32", "model_config": "tiny"}) == \
        "hs-export --config tiny --fp32 --out /x"


def test_flavor_version_mismatch(built, tmp_path):
    def edit(s):
        s["key_components"]["target"]["version"] = "0.9.0"

    msg = _one_line_error(_copy(built, tmp_path, edit), "is stale: built with .* 0.9.0, but", device=A6000)
    assert built[1].version in msg
    assert _rebuild_args(msg)[-2:] == ["--out", str(tmp_path)]


def test_flavor_name_mismatch(built, tmp_path):
    fl = built[1]
    other = "tensorrt" if fl.is_rtx else "tensorrt_rtx"

    def edit(s):
        s["key_components"]["target"]["flavor"] = other

    _one_line_error(_copy(built, tmp_path, edit), f"built with {other} .*, but {fl.name} {fl.version} is the TensorRT",
                    flavor=fl, device=A6000)


def test_gpu_target_mismatch(built, tmp_path):
    if not built[1].is_rtx:
        pytest.skip("RTX compute-capability targets; full TensorRT's GPU check is below")

    def edit(s):
        s["key_components"]["target"]["device"] = "cc:SM89"
        s["export_config"]["compute_capabilities"] = ["SM89"]

    path = _copy(built, tmp_path, edit)
    msg = _one_line_error(path, r"built for cc:SM89, but this GPU is NVIDIA RTX A6000 sm_86", device=A6000)
    args = _rebuild_args(msg)
    assert args[args.index("--compute-capability") + 1] == "SM86"  # rebuild for the GPU at hand
    assert check_engine(path, device=GpuInfo("NVIDIA RTX 4090", 8, 9)).flavor.is_rtx  # a listed target passes


def test_rtx_refuses_unsupported_cc(built, tmp_path):
    if not built[1].is_rtx:
        pytest.skip("TensorRT-RTX only")
    msg = _one_line_error(_copy(built, tmp_path), r"TensorRT-RTX .* does not run engines on NVIDIA H200 sm_90",
                          device=H200)
    assert "SM86" in msg and "install full TensorRT" in msg


def test_full_tensorrt_gpu_mismatch(built, tmp_path):
    """Full TensorRT's target is the build GPU (name + sm); checked against the GPU the engine is to run on. Same
    compute capability, another model: TensorRT runs it and warns, so check_engine warns (it refused before the
    engine-compatibility rules, test_compat_rules.py); another compute capability is refused."""
    from hyperstyle_trt.core.flavor import Flavor
    from hyperstyle_trt.engines.compat import EngineCompatibilityWarning

    fl = built[1]
    fake = Flavor("tensorrt", fl.module, "11.4.0")

    def edit(s):
        s["key_components"]["target"] = {"flavor": "tensorrt", "version": "11.4.0", "device": "NVIDIA H100 sm_90"}

    path = _copy(built, tmp_path, edit)
    with pytest.warns(EngineCompatibilityWarning, match=r"built on NVIDIA H100 sm_90, but this GPU is NVIDIA H200 "
                                                        r"sm_90"):
        assert check_engine(path, flavor=fake, device=H200).warnings
    _one_line_error(path, r"built on NVIDIA H100 sm_90 .*, but this GPU is NVIDIA A100 sm_80", flavor=fake,
                    device=GpuInfo("NVIDIA A100", 8, 0))


def _plugin_edit(version="2", digest=None):
    from hyperstyle_trt.plugins.registry import build_digest

    def edit(s):
        s["key_components"]["plugins"] = {"HsModConv": version, "HsToRGB": "1"}
        s["key_components"]["plugin_build"] = digest or build_digest(["HsModConv", "HsToRGB"])

    return edit


def test_plugin_engine_ok_registers_creators(built, tmp_path):
    if not built[1].is_rtx:
        pytest.skip("synthetic RTX GPU")
    from hyperstyle_trt.plugins.registry import get_spec

    edit = _plugin_edit(version=get_spec("HsModConv").version)
    info = check_engine(_copy(built, tmp_path, edit), device=A6000)
    assert info.plugins == {"HsModConv": get_spec("HsModConv").version, "HsToRGB": get_spec("HsToRGB").version}
    reg = info.flavor.module.get_plugin_registry()
    assert reg.get_creator("HsModConv", get_spec("HsModConv").version, "hyperstyle") is not None


def test_plugin_version_mismatch(built, tmp_path):
    from hyperstyle_trt.plugins.registry import get_spec

    now = get_spec("HsModConv").version
    old = str(int(now) - 1)
    _one_line_error(_copy(built, tmp_path, _plugin_edit(version=old)),
                    f"plugin HsModConv v{old} at build time, v{now} in this code", device=A6000)


def test_plugin_build_digest_mismatch(built, tmp_path):
    from hyperstyle_trt.plugins.registry import get_spec

    edit = _plugin_edit(version=get_spec("HsModConv").version, digest="0123456789abcdef")
    msg = _one_line_error(_copy(built, tmp_path, edit), "plugin build digest 0123456789abcdef at build time",
                          device=A6000)
    assert "workspace" in msg and "hs-export" in msg


def test_plugin_engine_without_registered_creators(built, tmp_path, monkeypatch):
    """register=False and an empty registry (a fake flavor module): refused before any deserialize."""
    from hyperstyle_trt.core.flavor import Flavor
    from hyperstyle_trt.plugins.registry import get_spec

    fl = built[1]

    class EmptyRegistry:
        def get_creator(self, name, version, namespace):
            return None

    class Module:
        ComputeCapability = fl.module.ComputeCapability if fl.is_rtx else None

        @staticmethod
        def get_plugin_registry():
            return EmptyRegistry()

    fake = Flavor(fl.name, Module, fl.version)
    edit = _plugin_edit(version=get_spec("HsModConv").version)
    path = _copy(built, tmp_path, edit)
    gpu = A6000 if fl.is_rtx else GpuInfo("x", 9, 0)
    _one_line_error(path, r"plugin hyperstyle::HsModConv v\d+ is not registered", flavor=fake, device=gpu,
                    register=False)

    def broken(flavor=None):
        raise HsError("no TensorRT flavor importable")

    monkeypatch.setattr("hyperstyle_trt.plugins.register_plugins", broken)
    _one_line_error(path, "uses plugins HsModConv v.* cannot be registered: no TensorRT flavor", flavor=fake,
                    device=gpu)


def test_missing_and_corrupt_sidecar(built, tmp_path):
    path = _copy(built, tmp_path)
    sidecar_path(path).unlink()
    msg = _one_line_error(path, r"sidecar e.engine.json is missing", device=A6000)
    assert _rebuild_args(msg) == ["hs-export", "--fp16", "--out", str(tmp_path)]
    sidecar_path(path).write_text("{not json")
    _one_line_error(path, "sidecar e.engine.json is unreadable", device=A6000)
    sidecar_path(path).write_text(json.dumps({"schema": 1, "artifact": "e.engine"}))  # an ONNX-like sidecar
    _one_line_error(path, "not an engine sidecar", device=A6000)
    _one_line_error(tmp_path / "nope.engine", "engine .*nope.engine not found", device=A6000)


def test_engine_bytes_changed(built, tmp_path):
    path = _copy(built, tmp_path)
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))
    _one_line_error(path, "sha256 differs", device=A6000)


def test_no_cuda_refuses_in_one_line(built, tmp_path):
    """A CPU machine: the sidecar checks pass, then the GPU query refuses (nothing is deserialized)."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    _one_line_error(_copy(built, tmp_path), r"no CUDA GPU visible .* executor='onnxruntime'")


def test_real_deserialize_attempt_on_cpu_is_one_line(built):
    """The one real deserialization attempt: TensorRT refuses without a CUDA driver (cudaError 35 observed with
    TensorRT-RTX 1.7.1); engines.compat.deserialize turns it into one HsError line."""
    import torch

    from hyperstyle_trt.engines.compat import deserialize, make_runtime

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU (the engine may deserialize)")
    path, fl = built
    info = check_engine(path, device=A6000) if fl.is_rtx else None
    if info is None:
        pytest.skip("full TensorRT without a GPU cannot have built this engine")
    runtime, log = make_runtime(info.flavor)
    with pytest.raises(HsError, match=r"could not deserialize w_encoder_fp16.engine: .*[Cc]uda") as e:
        deserialize(info, runtime, log)
    assert "\n" not in str(e.value)


def test_no_flavor_importable_names_the_engine(built, tmp_path, monkeypatch):
    import hyperstyle_trt.engines.compat as compat

    def none(name=None):
        raise HsError("no TensorRT flavor importable (tensorrt: not installed; tensorrt_rtx: not installed)")

    monkeypatch.setattr(compat, "get_flavor", none)
    monkeypatch.setattr(compat, "available_flavors", lambda: [])
    _one_line_error(_copy(built, tmp_path), r"e.engine needs tensorrt\S* \S+: no TensorRT flavor importable",
                    device=A6000)
