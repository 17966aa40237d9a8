"""ONNX -> serialized TensorRT engine with whichever flavor is importable (`tensorrt` preferred, else
`tensorrt_rtx`), strongly typed (precision comes from the ONNX tensor types; no FP16 flag exists in TensorRT 11 /
RTX), one optimization profile over the batch, a timing cache, and the content-hash cache (engines/cache.py).

    opts = BuildOptions(profile=batch_profile(io, max_batch=8))
    res = get_or_build(Path("hypernet_plugin_fp16.onnx"), Path("hypernet_plugin_fp16.engine"), opts, cache_dir)
    res.status  # "built" | "cache-hit" | "up-to-date", with "(rejected ...: why)" when a bad entry was replaced

Building needs no GPU on TensorRT-RTX (portable engine, or `compute_capabilities` such as ("SM86",)); running the
engine does. Python plugin creators are registered (plugins.trt_common.register_plugins) before any plugin graph
is parsed; the engine then calls back into Python at enqueue. With `aot_plugins` (full TensorRT >= 10.9 only) the
plugin nodes take the QDP route instead (plugins/qdp.py): the Triton kernels are compiled for the building GPU and
embedded, and the engine runs without Python (C++ runtime, trtexec); the kernel sources, Triton version and SM then
join the cache key.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from hyperstyle_trt.engines.cache import EngineCache, cache_key, verify_engine
from hyperstyle_trt.export.onnx_io import plugin_versions
from hyperstyle_trt.core.flavor import Flavor, get_flavor
from hyperstyle_trt.core.atomic import write_bytes_atomic
from hyperstyle_trt.core.sidecar import sha256_file, software_versions, write_sidecar
from hyperstyle_trt.core.errors import HsError


@dataclass(frozen=True)
class BuildOptions:
    """profile: ((input name, min shape, opt shape, max shape), ...), empty for a static graph;
    compute_capabilities: TensorRT-RTX targets ("SM86", ...), empty = portable (ignored by full TensorRT, which
    builds for the GPU it runs on); optimization_level: builder level 0..5 (None = default);
    workspace_bytes: workspace pool limit (None = default); aot_plugins: plugin nodes as AOT QDPs (full TensorRT
    >= 10.9; the engine embeds the kernels and needs no Python at run time)."""

    profile: tuple[tuple[str, tuple[int, ...], tuple[int, ...], tuple[int, ...]], ...] = ()
    compute_capabilities: tuple[str, ...] = ()
    optimization_level: int | None = None
    workspace_bytes: int | None = None
    aot_plugins: bool = False
    strongly_typed: bool = field(default=True, init=False)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["profile"] = [[n, list(a), list(b), list(c)] for n, a, b, c in self.profile]
        d["compute_capabilities"] = list(self.compute_capabilities)
        return d


def batch_profile(inputs, max_batch: int, opt_batch: int | None = None) -> tuple:
    """One profile entry per input whose dim 0 is symbolic: batch 1..max_batch, opt = opt_batch or max_batch.
    `inputs`: core.contract.TensorIO-like objects (name, shape with a str batch dim)."""
    opt = opt_batch or max_batch
    out = []
    for t in inputs:
        if isinstance(t.shape[0], str):
            rest = tuple(int(d) for d in t.shape[1:])
            out.append((t.name, (1, *rest), (opt, *rest), (max_batch, *rest)))
    return tuple(out)


def build_target(flavor: Flavor, compute_capabilities: tuple[str, ...] = ()) -> dict:
    """What the engine is built for. RTX: "portable" or the target CCs (no GPU needed). Full TensorRT: the GPU's
    name and compute capability (queried through torch only here, at build time)."""
    t = {"flavor": flavor.name, "version": flavor.version}
    if flavor.is_rtx:
        t["device"] = "portable" if not compute_capabilities else "cc:" + ",".join(compute_capabilities)
        return t
    import torch

    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(torch.cuda.current_device())  # the device TensorRT builds on
        t["device"] = f"{p.name} sm_{p.major}{p.minor}"
    else:
        t["device"] = "no-gpu"
    return t


def check_aot(flavor: Flavor) -> int:
    """The SM the AOT plugin kernels are compiled for: the GPU full TensorRT builds on. HsError (one line) on
    TensorRT-RTX, on TensorRT without `tensorrt.plugin.aot_impl` (< 10.9) or without a CUDA GPU."""
    if flavor.is_rtx:
        raise HsError("AOT plugins need full TensorRT >= 10.9 (tensorrt.plugin); TensorRT-RTX accepts only IPluginV3 "
                      "creators, whose engines call back into Python (docs/tensorrt_plugins.md §3)")
    try:
        import tensorrt.plugin as trtp
    except ImportError as e:
        raise HsError(f"AOT plugins need tensorrt.plugin (TensorRT >= 10.9): {e}") from None
    if not hasattr(trtp, "aot_impl"):
        raise HsError(f"TensorRT {flavor.version} has no tensorrt.plugin.aot_impl; AOT plugins need TensorRT >= 10.9")
    import torch

    if not torch.cuda.is_available():
        raise HsError("AOT plugins are compiled for the GPU TensorRT builds on, and no CUDA GPU is visible")
    major, minor = torch.cuda.get_device_capability(torch.cuda.current_device())
    return major * 10 + minor


def _make_logger(trt):
    """A trt.ILogger that keeps warnings and errors (for one-line error reports) instead of printing them."""

    class Logger(trt.ILogger):
        def __init__(self):
            trt.ILogger.__init__(self)
            self.messages: list[tuple[str, str]] = []

        def log(self, severity, msg):
            if severity <= trt.ILogger.Severity.WARNING:
                self.messages.append((str(severity).split(".")[-1], msg))

    return Logger()


def _errors(log) -> str:
    errs = [m for s, m in log.messages if s in ("ERROR", "INTERNAL_ERROR")]
    return (errs[-1] if errs else "see TensorRT log").splitlines()[0][:300]


def build_serialized(onnx_path: Path, options: BuildOptions, flavor: Flavor | None = None,
                     timing_cache: Path | None = None) -> bytes:
    """Parse `onnx_path` (external data beside it) and build; returns the serialized engine. HsError with the
    parser's/builder's first error on failure. Full TensorRT loads/saves the timing cache at `timing_cache`;
    TensorRT-RTX has none (its timing-cache calls are deprecated no-ops; kernels are compiled at run time)."""
    fl = flavor or get_flavor()
    trt = fl.module
    uses_plugins = bool(plugin_versions(onnx_path))
    aot = options.aot_plugins and uses_plugins
    if aot:
        from hyperstyle_trt.plugins.qdp import qdp_model_bytes, register_qdp

        register_qdp(check_aot(fl))
    elif uses_plugins:
        from hyperstyle_trt.plugins.trt_common import register_plugins

        register_plugins(fl.name)
    log = _make_logger(trt)
    builder = network = parser = config = prof = cache = None
    try:
        builder = trt.Builder(log)
        network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
        parser = trt.OnnxParser(network, log)
        if aot:  # the QDP route parses a rewritten model; its path argument still locates the external weights
            parsed = parser.parse(qdp_model_bytes(onnx_path), str(onnx_path))
        else:
            parsed = parser.parse_from_file(str(onnx_path))
        if not parsed:
            errs = [str(parser.get_error(i).desc()) for i in range(parser.num_errors)]
            raise HsError(f"TensorRT ({fl.name}) could not parse {onnx_path.name}: "
                          f"{(errs[0] if errs else _errors(log)).splitlines()[0][:300]}")
        config = builder.create_builder_config()
        if options.profile:
            prof = builder.create_optimization_profile()
            for name, lo, opt, hi in options.profile:
                prof.set_shape(name, lo, opt, hi)
            config.add_optimization_profile(prof)
        if options.optimization_level is not None:
            config.builder_optimization_level = options.optimization_level
        if options.workspace_bytes is not None:
            config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, options.workspace_bytes)
        if fl.is_rtx and options.compute_capabilities:
            config.num_compute_capabilities = len(options.compute_capabilities)
            for i, cc in enumerate(options.compute_capabilities):
                if not hasattr(trt.ComputeCapability, cc):
                    raise HsError(f"unknown compute capability {cc!r}; expected one of "
                                  f"{list(trt.ComputeCapability.__members__)}")
                config.set_compute_capability(getattr(trt.ComputeCapability, cc), i)
        cache = None
        if timing_cache is not None and not fl.is_rtx:  # RTX: timing-cache calls are deprecated no-ops (kernels JIT)
            try:
                blob = timing_cache.read_bytes() if timing_cache.is_file() else b""
            except OSError:
                blob = b""  # the timing cache is an optimization only
            cache = config.create_timing_cache(blob)
            config.set_timing_cache(cache, ignore_mismatch=True)
        engine = builder.build_serialized_network(network, config)
        if engine is None:
            raise HsError(f"TensorRT ({fl.name}) failed to build {onnx_path.name}: {_errors(log)}")
        if cache is not None:
            try:
                timing_cache.parent.mkdir(parents=True, exist_ok=True)
                write_bytes_atomic(timing_cache, bytes(config.get_timing_cache().serialize()))
            except (OSError, HsError):
                pass  # the timing cache is an optimization only
        return bytes(engine)
    finally:
        # TensorRT objects go in dependency order: the parser (it owns the network's weights), the network, the
        # builder-made objects, then the builder. Python would free them in the order they were assigned, the
        # builder first, which leaves the network dangling: a crash at some later, unrelated point.
        del parser
        del network
        del cache, prof, config
        del builder


def _place(src: Path, dst: Path) -> None:
    """Put the cached engine at `dst` atomically: a hard link (no second copy of a 640 MB engine) when both are
    on one filesystem, else a copy. Both paths are verified by sha256 before any later use."""
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")  # unique per process: concurrent exports don't collide
    try:
        if tmp.exists():
            tmp.unlink()
        try:
            os.link(src, tmp)
        except OSError:
            shutil.copyfile(src, tmp)
        tmp.replace(dst)
    except OSError as e:
        raise HsError(f"cannot write engine {dst}: {e.strerror or e}") from None


@dataclass(frozen=True)
class EngineResult:
    path: Path
    status: str  # "built" | "cache-hit" | "up-to-date" (+ " (replaced ...: why)")
    build_s: float
    size: int
    key: str


def get_or_build(onnx_path: Path, engine_path: Path, options: BuildOptions, cache_dir: Path,
                 record: dict | None = None, flavor: Flavor | None = None) -> EngineResult:
    """Return a verified engine at `engine_path` for `onnx_path`, building only when neither the artifact nor the
    cache holds one for the same content key. A stale/corrupt artifact or cache entry is reported in `status` and
    replaced, never used. `record` (config, shapes, ...) goes into the engine's sidecar."""
    fl = flavor or get_flavor()
    onnx_path, engine_path = Path(onnx_path), Path(engine_path)
    target = build_target(fl, options.compute_capabilities)
    build = options.to_dict()
    if options.aot_plugins and plugin_versions(onnx_path):
        from hyperstyle_trt.plugins.qdp import kernel_digest

        build["kernel_digest"] = kernel_digest(check_aot(fl))  # the engine embeds the compiled kernels
    key, comp = cache_key(onnx_path, target, build)
    notes = []
    why = verify_engine(engine_path, key)
    if why is None:
        return EngineResult(engine_path, "up-to-date", 0.0, engine_path.stat().st_size, key)
    if why != "missing":
        notes.append(f"replaced {engine_path.name}: {why}")
    cache = EngineCache(cache_dir)
    hit = cache.lookup(key)
    if hit.status not in ("hit", "miss"):
        notes.append(hit.status)
    side = {**(record or {}), "onnx": onnx_path.name, "key_components": comp,
            "versions": software_versions(fl), "build_options": options.to_dict()}
    t0 = time.perf_counter()
    if hit.path is not None:
        status, build_s = "cache-hit", 0.0
        src = hit.path
    else:
        blob = build_serialized(onnx_path, options, fl, cache_dir / f"timing_{fl.name}_{fl.version}.cache")
        build_s = time.perf_counter() - t0
        src = cache.store(key, blob, {**side, "build_s": round(build_s, 3)})
        status = "built"
    _place(src, engine_path)
    write_sidecar(engine_path, {**side, "build_s": round(build_s, 3), "cache_key": key,
                                "engine_sha256": sha256_file(engine_path), "status": status})
    if notes:
        status += " (" + "; ".join(notes) + ")"
    return EngineResult(engine_path, status, build_s, engine_path.stat().st_size, key)
