"""Is this engine usable here? Compare an engine's sidecar with the running code and machine BEFORE deserializing.

    info = check_engine(Path("hs_export/generator_plugin_fp16.engine"))   # HsError (one line) if not
    info.flavor, info.plugins, info.sidecar

engines.builder.get_or_build writes `<engine>.json` with the inputs the engine was built from (`key_components`:
TensorRT flavor + version and build target, plugin op versions, `plugin_build` = plugins.registry.build_digest of the
plugin code an engine freezes at build time, build options) and `engine_sha256`. A runtime cannot recompute the cache
key (that needs the ONNX), so it compares the parts that can change under an engine without its file changing:

| what                          | mismatch means                                                                  |
|-------------------------------|---------------------------------------------------------------------------------|
| sidecar present, readable     | nothing says what the engine was built from                                     |
| engine sha256                 | the file is not the one the sidecar describes (corrupt, or replaced by hand)    |
| flavor                        | another library's plan (tensorrt vs tensorrt_rtx) is refused                   |
| version, device               | TensorRT's engine-compatibility rules, table below                              |
| plugin op versions            | the graph's plugin nodes mean something else to today's creators               |
| plugin build digest           | e.g. HsModConv's workspace size is fixed at build time from the strategy code: |
|                               | an engine built by other strategy code would hand today's kernels a workspace   |
|                               | sized for another split-K layout, and they would write past it                  |
| AOT kernel digest             | an AOT engine embeds kernels compiled from other sources / Triton / SM          |
| plugin creators registered    | a Python-plugin engine cannot deserialize without them                          |

Every failure is one HsError line naming the engine, what differs, and the `hs-export` command that rebuilds it
(flags from the sidecar's export_config).

Version and device, by TensorRT's documented rules. The sidecar records the build target (`key_components.target`:
full TensorRT's build GPU as "NVIDIA H200 sm_90", TensorRT-RTX's "portable" or "cc:SM86,SM89") and `compatibility`
({"hardware_compatibility_level": "NONE" | "AMPERE_PLUS" | "SAME_COMPUTE_CAPABILITY", "version_compatible": bool});
sidecars written before that field: NONE, not version-compatible.

| flavor | what differs                                    | engine built with         | here                         |
|--------|-------------------------------------------------|---------------------------|------------------------------|
| full   | TensorRT version                                | default                   | refuse                       |
| full   | later version, same major (or 8->10, 10->11)    | version_compatible        | warn (lean runtime: slower)  |
| full   | earlier version, or another major pair          | version_compatible        | refuse                       |
| full   | compute capability                              | NONE / SAME_COMPUTE_CAP.  | refuse                       |
| full   | GPU model, same compute capability              | NONE                      | warn (TensorRT warns too)    |
| full   | GPU model, same compute capability              | SAME_COMPUTE_CAPABILITY   | accept                       |
| full   | any GPU of compute capability >= 8.0            | AMPERE_PLUS               | accept                       |
| full   | GPU of compute capability < 8.0                 | AMPERE_PLUS               | refuse                       |
| full   | build GPU unknown ("no-gpu", unparseable)       | any                       | refuse                       |
| RTX    | TensorRT-RTX version                            | any                       | refuse                       |
| RTX    | CC the library cannot run (e.g. SM90)           | any                       | refuse (needs full TensorRT) |
| RTX    | CC not among the engine's targets               | cc:SM..                   | refuse                       |
| RTX    | CC < 8.0 (Turing)                               | portable                  | refuse (needs target SM75)   |

Sources (NVIDIA; quotes and details in docs/tensorrt.md §2):
https://docs.nvidia.com/deeplearning/tensorrt/11.1.0/inference-library/engine-compatibility.html,
https://docs.nvidia.com/deeplearning/tensorrt/10.16.1/inference-library/version-compatibility.html,
https://docs.nvidia.com/deeplearning/tensorrt/10.16.1/getting-started/support-matrix.html ("Engine Portability"),
NvInfer.h's HardwareCompatibilityLevel, TensorRT's own error / warning texts (NVIDIA/TensorRT issues 2176 and 2900),
https://docs.nvidia.com/deeplearning/tensorrt-rtx/latest/inference-library/engine-compatibility.html and
https://docs.nvidia.com/deeplearning/tensorrt-rtx/latest/inference-library/cpu-engines.html.

Warnings are EngineCompatibilityWarning (Python `warnings`), also listed in EngineInfo.warnings. Not yet run on a GPU
or with full TensorRT: the full-TensorRT rows are exercised with edited sidecars and synthetic GPUs (GpuInfo) only.
"""

from __future__ import annotations

import re
import shlex
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hyperstyle_trt.core.device import is_cuda, parse_device, torch_device
from hyperstyle_trt.core.errors import HsError, one_line
from hyperstyle_trt.core.flavor import FLAVORS, Flavor, available_flavors, get_flavor
from hyperstyle_trt.core.sidecar import read_sidecar, sha256_file, sidecar_path


@dataclass(frozen=True)
class GpuInfo:
    """The GPU an engine is to run on: torch's device name and compute capability."""

    name: str
    major: int
    minor: int

    @property
    def sm(self) -> str:
        return f"sm_{self.major}{self.minor}"

    @property
    def rtx_cc(self) -> str:
        """TensorRT-RTX's ComputeCapability member name for this GPU ("SM86")."""
        return f"SM{self.major}{self.minor}"

    def describe(self) -> str:
        """Same form as engines.builder.build_target's full-TensorRT device: "NVIDIA H200 sm_90"."""
        return f"{self.name} {self.sm}"


def current_gpu(device: Any = None) -> GpuInfo:
    """The GPU `device` names (None: torch's current CUDA device; an int, "cuda:N" or torch.device; a GpuInfo is
    returned as is). HsError when no CUDA GPU is visible: no TensorRT engine can run without one."""
    if isinstance(device, GpuInfo):
        return device
    import torch

    if not torch.cuda.is_available():
        raise HsError("no CUDA GPU visible (torch.cuda.is_available() is False): TensorRT engines run only on a GPU; "
                      "use executor='onnxruntime' or 'torch' on this machine")
    text = "cuda" if device is None else parse_device(f"cuda:{device}" if isinstance(device, int) else device)
    if not is_cuda(text):
        raise HsError(f"TensorRT engines run on a CUDA device, got device {text!r}")
    p = torch.cuda.get_device_properties(torch_device(text))
    return GpuInfo(p.name, p.major, p.minor)


@dataclass(frozen=True)
class EngineInfo:
    """What check_engine established: the engine, its sidecar, the flavor to deserialize it with, its plugin ops
    ({op type: version}, empty for a plain engine), whether they are AOT (embedded kernels, no Python) and the
    warnings it issued (EngineCompatibilityWarning: runs, but not as built for)."""

    path: Path
    sidecar: dict
    flavor: Flavor
    plugins: dict[str, str] = field(default_factory=dict)
    aot: bool = False
    warnings: tuple[str, ...] = ()


def rebuild_command(engine_path: Path, sidecar: dict | None, gpu: GpuInfo | None = None,
                    flavor_changed: bool = False) -> str:
    """The `hs-export` command that rebuilds `engine_path` in its own directory: flags from the sidecar's
    export_config (written by engines.pipeline), else from its graph precision / model config. On TensorRT-RTX a
    target-CC mismatch suggests `--compute-capability` for `gpu`."""
    out = Path(engine_path).parent
    side = sidecar or {}
    ec = side.get("export_config") if isinstance(side.get("export_config"), dict) else None
    args = ["hs-export"]
    if ec is None:
        cfg = side.get("model_config")
        if cfg and cfg != "ffhq1024":
            args += ["--config", str(cfg)]
        prec = side.get("precision")
        args += ["--fp32"] if prec == "fp32" else ["--fp16"]
        args += ["--out", str(out)]
        return shlex.join(args)
    cfg, ckpt = ec.get("config"), ec.get("checkpoint")
    if cfg is not None and not (cfg == "ffhq1024" and ckpt is None):
        args += ["--config", str(cfg)]
    if ckpt:
        args += ["--checkpoint", str(ckpt)]
    if ec.get("w_encoder"):
        args += ["--w-encoder", str(ec["w_encoder"])]
    precs = list(ec.get("precisions") or ["fp16"])
    args += ["--both-precisions"] if len(precs) > 1 else (["--fp32"] if precs == ["fp32"] else ["--fp16"])
    variants = list(ec.get("variants") or ["plain", "plugin"])
    if len(variants) == 1:
        args += [f"--{variants[0]}"]
    for key, flag, default in (("max_batch", "--max-batch", 8), ("opt_batch", "--opt-batch", None),
                               ("plain_batch", "--plain-batch", 1)):
        if ec.get(key, default) != default:
            args += [flag, str(ec[key])]
    if ec.get("verify") is False:
        args += ["--no-verify"]
    ccs = list(ec.get("compute_capabilities") or [])
    if ccs and gpu is not None and gpu.rtx_cc not in ccs and not flavor_changed:
        ccs = [gpu.rtx_cc]
    if not flavor_changed:  # a --compute-capability is for TensorRT-RTX only
        for cc in ccs:
            args += ["--compute-capability", str(cc)]
    if ec.get("aot_plugins"):
        args += ["--aot-plugins"]
    if ec.get("cache_dir"):
        args += ["--cache-dir", str(ec["cache_dir"])]
    args += ["--out", str(out)]
    return shlex.join(args)


def _resolve_flavor(flavor: Flavor | str | None, recorded: str | None) -> Flavor:
    """The flavor to check against: the given one; else the one the engine was built with when it is importable
    (an engine from TensorRT-RTX stays on RTX where both are installed); else the detected default."""
    if isinstance(flavor, Flavor):
        return flavor
    if flavor is not None:
        return get_flavor(flavor)
    if recorded in FLAVORS and recorded in available_flavors():
        try:
            return get_flavor(recorded)
        except HsError:
            pass  # a broken install of the recorded flavor: compare with whatever is importable
    return get_flavor()


def check_plugins_registered(flavor: Flavor, plugins: dict[str, str]) -> None:
    """HsError unless a creator for every {op type: version} is in the flavor's plugin registry."""
    from hyperstyle_trt.plugins.registry import get_spec

    registry = flavor.module.get_plugin_registry()
    for op, version in sorted(plugins.items()):
        ns = get_spec(op).namespace
        if registry.get_creator(op, str(version), ns) is None:
            raise HsError(f"plugin {ns}::{op} v{version} is not registered with {flavor.name}: call "
                          f"hyperstyle_trt.plugins.register_plugins() before deserializing a plugin engine")


def check_engine(engine_path: Path | str, flavor: Flavor | str | None = None, device: Any = None,
                 register: bool = True, verify_sha256: bool = True) -> EngineInfo:
    """Check `engine_path` against the running code and machine before it is deserialized (table above).

    flavor: a core.flavor.Flavor or name (None: the recorded flavor when importable, else the detected one);
    device: the GPU to run on (see current_gpu; a GpuInfo in tests); register: register the Python plugin creators
    (plugins.register_plugins) for a plugin engine and check they are in the registry (False: only check);
    verify_sha256: re-hash the engine file (a few seconds for FFHQ engines). Returns an EngineInfo; raises one
    HsError line otherwise."""
    path = Path(engine_path)
    if not path.is_file():
        raise HsError(f"engine {path} not found; build it with `{rebuild_command(path, None)}`")
    side = read_sidecar(path)
    comp = side.get("key_components") if side is not None else None
    if not isinstance(comp, dict) or not isinstance(comp.get("target"), dict):
        what = "missing" if not sidecar_path(path).exists() else "unreadable or not an engine sidecar"
        raise HsError(f"{path.name}: its sidecar {sidecar_path(path).name} is {what}, so nothing says what the engine "
                      f"was built from; rebuild it with `{rebuild_command(path, side)}`")

    def stale(what: str, gpu: GpuInfo | None = None, flavor_changed: bool = False) -> HsError:
        return HsError(f"{path.name} is stale: {what}; rebuild it with "
                       f"`{rebuild_command(path, side, gpu, flavor_changed)}`")

    if verify_sha256 and side.get("engine_sha256") != sha256_file(path):
        raise stale("its sha256 differs from the sidecar's (corrupt, or not the engine the sidecar describes)")
    target = comp["target"]
    try:
        fl = _resolve_flavor(flavor, target.get("flavor"))
    except HsError as e:
        raise HsError(f"{path.name} needs {target.get('flavor')} {target.get('version')}: {e}") from None
    if target.get("flavor") != fl.name:
        raise stale(f"built with {target.get('flavor')} {target.get('version')}, but {fl.name} {fl.version} is "
                    f"the TensorRT here", flavor_changed=True)
    notes: list[str] = []
    _check_version(path, side, fl, str(target.get("version")), stale, notes.append)
    gpu = current_gpu(device)
    _check_device(path, side, fl, str(target.get("device", "")), gpu, stale, notes.append)

    plugins = {str(k): str(v) for k, v in (comp.get("plugins") or {}).items()}
    aot = bool((comp.get("build") or {}).get("aot_plugins")) and bool(plugins)
    if plugins:
        from hyperstyle_trt.plugins.registry import build_digest, get_spec

        for op, version in sorted(plugins.items()):
            try:
                now = get_spec(op).version
            except HsError:
                raise stale(f"it uses plugin {op}, which this code does not have") from None
            if now != version:
                raise stale(f"plugin {op} v{version} at build time, v{now} in this code")
        digest = build_digest(list(plugins))
        if comp.get("plugin_build") != digest:
            raise stale(f"plugin build digest {comp.get('plugin_build')} at build time, {digest} in this code (the "
                        f"plugin code an engine freezes, e.g. HsModConv's workspace size, changed)")
        if aot:
            from hyperstyle_trt.plugins.qdp import kernel_digest

            kd = kernel_digest(gpu.major * 10 + gpu.minor)
            if (comp.get("build") or {}).get("kernel_digest") != kd:
                raise stale(f"its AOT kernels were compiled from other sources, Triton or SM than {gpu.sm} with "
                            f"this code")
        else:
            if register:
                from hyperstyle_trt.plugins import register_plugins

                try:
                    register_plugins(fl.name)
                except HsError as e:
                    raise HsError(f"{path.name} uses plugins {_fmt(plugins)} and they cannot be registered: {e}"
                                  ) from None
                except Exception as e:  # a broken TensorRT or plugin import: still one line, still before deserializing
                    raise HsError(f"{path.name} uses plugins {_fmt(plugins)} and they cannot be registered: "
                                  f"{type(e).__name__}: {one_line(e)}") from None
            try:
                check_plugins_registered(fl, plugins)
            except HsError as e:
                raise HsError(f"{path.name}: {e}") from None
    for msg in notes:
        warnings.warn(msg, EngineCompatibilityWarning, stacklevel=2)
    return EngineInfo(path, side, fl, plugins, aot, tuple(notes))


def _fmt(plugins: dict[str, str]) -> str:
    return ", ".join(f"{k} v{v}" for k, v in sorted(plugins.items()))


def _built_on(built_for: str) -> tuple[str, int, int] | None:
    """(GPU name, CC major, CC minor) of full TensorRT's build device "NVIDIA H200 sm_90" (build_target); None for
    "no-gpu" or anything else."""
    m = re.fullmatch(r"(.+) sm_(\d+)(\d)", built_for.strip())
    return (m.group(1), int(m.group(2)), int(m.group(3))) if m else None


def _compat(side: dict) -> tuple[str, bool]:
    """(hardware-compatibility level, version-compatible) the engine was built with: the sidecar's `compatibility`,
    else its build options; sidecars written before either existed: ("NONE", False)."""
    c = side.get("compatibility") if isinstance(side.get("compatibility"), dict) else {}
    b = (side.get("key_components") or {}).get("build") or {}
    level = str(c.get("hardware_compatibility_level", b.get("hardware_compatibility", "NONE")) or "NONE").upper()
    return level.removeprefix("K"), bool(c.get("version_compatible", b.get("version_compatible", False)))


def _version(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", str(v))[:4])


def _check_version(path: Path, side: dict, fl: Flavor, built: str, stale, warn) -> None:
    """Refuse another TensorRT version unless the engine is version-compatible and this runtime may run it: a later
    release of the same major, or TensorRT 10 -> 11 / 8 -> 10 (TensorRT-RTX engines: only their own release)."""
    if built == fl.version:
        return
    _, vc = _compat(side)
    old, new = _version(built), _version(fl.version)
    majors_ok = old[:1] == new[:1] or (old[:1], new[:1]) in (((8,), (10,)), ((10,), (11,)))
    if fl.is_rtx or not vc:
        raise stale(f"built with {fl.name} {built}, but {fl.name} {fl.version} is installed"
                    + ("" if fl.is_rtx else " (and it was not built version-compatible)"))
    if new < old or not majors_ok:
        raise stale(f"built with {fl.name} {built} (version-compatible), which {fl.name} {fl.version} cannot run "
                    f"(only later releases of the same major, or 8 -> 10, 10 -> 11, run such an engine)")
    warn(f"{path.name}: built with {fl.name} {built} as a version-compatible engine; {fl.version} runs it through "
         f"the lean runtime embedded in it, which may be slower than an engine built with {fl.version}")


def _check_device(path: Path, side: dict, fl: Flavor, built_for: str, gpu: GpuInfo, stale, warn) -> None:
    """The device rows of the table above (HsError to refuse, `warn(msg)` where TensorRT only warns)."""
    if fl.is_rtx:
        cc_names = getattr(getattr(fl.module, "ComputeCapability", None), "__members__", {})
        if gpu.rtx_cc not in cc_names:
            supported = ", ".join(n for n in cc_names if n.startswith("SM"))
            raise HsError(f"{path.name}: TensorRT-RTX {fl.version} does not run engines on {gpu.describe()} (it "
                          f"supports {supported}); install full TensorRT and rebuild with "
                          f"`{rebuild_command(path, side, gpu, flavor_changed=True)}`")
        if built_for == "portable":
            if gpu.major < 8:  # portable engines cover 8.0 and later; Turing (SM75) must be a named target
                raise stale(f"built portable (compute capability 8.0 and later), but this GPU is {gpu.describe()}; "
                            f"TensorRT-RTX builds Turing engines only for an explicit SM75 target", gpu)
            return
        ccs = built_for[3:].split(",") if built_for.startswith("cc:") else []
        if gpu.rtx_cc not in ccs:
            raise stale(f"built for {built_for or 'an unknown target'}, but this GPU is {gpu.describe()}", gpu)
        return
    level, _ = _compat(side)
    built = _built_on(built_for)
    if built is None:
        raise stale(f"built on {built_for or 'an unknown GPU'}, so its GPU cannot be compared with "
                    f"{gpu.describe()}", gpu)
    name, major, minor = built
    if level == "AMPERE_PLUS":
        if gpu.major < 8:
            raise stale(f"built with hardware compatibility AMPERE_PLUS (compute capability 8.0 and later), but "
                        f"this GPU is {gpu.describe()}", gpu)
        return
    if (major, minor) != (gpu.major, gpu.minor):
        what = "SAME_COMPUTE_CAPABILITY" if level == "SAME_COMPUTE_CAPABILITY" else "no hardware compatibility"
        raise stale(f"built on {built_for} with {what}, but this GPU is {gpu.describe()} (TensorRT refuses a plan "
                    f"from another compute capability)", gpu)
    if level == "NONE" and name != gpu.name:
        warn(f"{path.name}: built on {built_for}, but this GPU is {gpu.describe()}: same compute capability, "
             f"another GPU model; TensorRT runs it but warns that this is not recommended (tactics were timed on "
             f"the other model: it may be slower, or fail); rebuild here with `{rebuild_command(path, side, gpu)}`")


class EngineCompatibilityWarning(UserWarning):
    """An engine TensorRT runs here but documents as not recommended or possibly slower (check_engine)."""


def make_runtime(flavor: Flavor):
    """(trt.Runtime, logger) for `flavor`; the logger keeps warnings and errors for one-line reports."""
    from hyperstyle_trt.engines.builder import _make_logger

    log = _make_logger(flavor.module)
    return flavor.module.Runtime(log), log


def deserialize(info: EngineInfo, runtime, log):
    """The ICudaEngine of a checked engine (check_engine first: it registers the plugin creators a plugin engine needs),
    deserialized by `runtime` (make_runtime); for a version-compatible engine (check_engine verified its sha256 against
    the sidecar our builder wrote) the runtime is allowed to run the host code it embeds. HsError with TensorRT's last
    error line when the library refuses it (e.g. no usable CUDA driver). Keep `runtime` alive as long as the engine;
    free contexts, engines, runtime in that order."""
    from hyperstyle_trt.engines.builder import _errors

    try:
        blob = info.path.read_bytes()
    except OSError as e:
        raise HsError(f"cannot read engine {info.path}: {e.strerror or e}") from None
    if _compat(info.sidecar)[1] and hasattr(runtime, "engine_host_code_allowed"):
        runtime.engine_host_code_allowed = True  # a version-compatible plan runs the lean runtime it embeds
    engine = runtime.deserialize_cuda_engine(blob)
    del blob
    if engine is None:
        fl = info.flavor
        raise HsError(f"{fl.name} {fl.version} could not deserialize {info.path.name}: {_errors(log)}")
    return engine
