"""ONNX -> serialized TensorRT engine with whichever flavor is importable (`tensorrt` preferred, else
`tensorrt_rtx`), strongly typed (precision comes from the ONNX tensor types; no FP16 flag exists in TensorRT 11 /
RTX), one optimization profile per batch bucket (engines/profiles.py), a timing cache per GPU, and the content-hash
cache (engines/cache.py).

    opts = BuildOptions(profile=batch_profile(io, max_batch=8), batch_buckets=batch_buckets(8))
    res = get_or_build(Path("hypernet_plugin_fp16.onnx"), Path("hypernet_plugin_fp16.engine"), opts, cache_dir)
    res.status  # "built" | "cache-hit" | "up-to-date", with "(rejected ...: why)" when a bad entry was replaced

Engines are built with Polygraphy's loaders: NetworkFromOnnxPath(strongly_typed=True) (engines/network.py), CreateConfig
/ CreateConfigRTX (profiles, optimization level, workspace, RTX compute-capability targets) and EngineBytesFromNetwork
(which also saves the timing cache). Hand-written where Polygraphy has no equivalent: the timing cache is read best
effort, from a file keyed by flavor, version and GPU (a cache written on another GPU is never loaded; get_or_build names
it in its status), and written back atomically; TensorRT's defaults are kept where Polygraphy's differ (TF32 allowed,
LAYER_NAMES_ONLY profiling verbosity), so an engine is byte for byte what the TensorRT API builds; parsing an in-memory
model whose weights lie beside a file (the AOT route), and freeing builder objects in dependency order
(network.Network).

Building needs no GPU on TensorRT-RTX (portable engine, or `compute_capabilities` such as ("SM86",)); running the
engine does. Python plugin creators are registered (plugins.trt_common.register_plugins) before any plugin graph
is parsed; the engine then calls back into Python at enqueue. With `aot_plugins` (full TensorRT >= 10.9 only) the
plugin nodes take the QDP route instead (plugins/qdp.py): the Triton kernels are compiled for the building GPU and
embedded, and the engine runs without Python (C++ runtime, trtexec); the kernel sources, Triton version and SM then
join the cache key. Not yet run with full TensorRT (only TensorRT-RTX is installed where this was written): the
full-TensorRT config (CreateConfig(tf32=True), hardware-compatibility level, version-compatible flag) and the
timing-cache load / save.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

from hyperstyle_trt.core.atomic import write_bytes_atomic
from hyperstyle_trt.core.errors import HsError, one_line
from hyperstyle_trt.core.flavor import Flavor, get_flavor
from hyperstyle_trt.core.sidecar import sha256_file, software_versions, write_sidecar
from hyperstyle_trt.engines.cache import EngineCache, cache_key, verify_engine
from hyperstyle_trt.engines.network import Network, last_error, parse_onnx, polygraphy_log, polygraphy_trt
from hyperstyle_trt.engines.profiles import Profile, batch_buckets, batch_profile, profile_batches  # noqa: F401
from hyperstyle_trt.export.onnx_io import plugin_versions


HW_LEVELS = ("NONE", "AMPERE_PLUS", "SAME_COMPUTE_CAPABILITY")  # trt.HardwareCompatibilityLevel members


@dataclass(frozen=True)
class BuildOptions:
    """profile: ((input name, min shape, opt shape, max shape), ...), the optimization profile (empty for a static
    graph); batch_buckets: ((min, opt, max) batch, ...) (engines.profiles.batch_buckets): one profile per bucket
    instead, in that index order, each `profile`'s shapes with the bucket's batch (empty: `profile` alone);
    compute_capabilities: TensorRT-RTX targets ("SM86", ...), empty =
    portable (ignored by full TensorRT, which builds for the GPU it runs on); optimization_level: builder level 0..5
    (None = default); workspace_bytes: workspace pool limit (None = default); aot_plugins: plugin nodes as AOT QDPs
    (full TensorRT >= 10.9; the engine embeds the kernels and needs no Python at run time);
    hardware_compatibility: full TensorRT's HardwareCompatibilityLevel name (HW_LEVELS; "NONE": the build GPU's
    model only); version_compatible: full TensorRT's VERSION_COMPATIBLE flag (later TensorRT runtimes may run the
    engine; it embeds a lean runtime, loaded only with engine host code allowed). Both are recorded in the sidecar
    (`compatibility`) for engines.compat."""

    profile: Profile = ()
    compute_capabilities: tuple[str, ...] = ()
    optimization_level: int | None = None
    workspace_bytes: int | None = None
    aot_plugins: bool = False
    strongly_typed: bool = field(default=True, init=False)
    batch_buckets: tuple[tuple[int, int, int], ...] = ()
    hardware_compatibility: str = "NONE"
    version_compatible: bool = False

    def __post_init__(self) -> None:
        if self.batch_buckets and not self.profile:
            raise HsError("batch buckets need a profile to take the non-batch shapes from (a static graph has none)")
        if self.hardware_compatibility not in HW_LEVELS:
            raise HsError(f"unknown hardware compatibility level {self.hardware_compatibility!r}; expected one of "
                          f"{list(HW_LEVELS)}")

    @property
    def all_profiles(self) -> tuple[Profile, ...]:
        """The optimization profiles in index order: one per batch bucket, else `profile` alone, else none."""
        if not self.batch_buckets:
            return (self.profile,) if self.profile else ()
        return tuple(tuple((name, (lo, *mn[1:]), (opt, *op[1:]), (hi, *mx[1:])) for name, mn, op, mx in self.profile)
                     for lo, opt, hi in self.batch_buckets)

    def to_dict(self) -> dict:
        """JSON-able options (the cache key's `build` and the sidecar's build_options). Fields added after the
        first engines were cached appear only when set, so engines built without them keep their keys."""
        d = asdict(self)
        d["profile"] = [[n, list(a), list(b), list(c)] for n, a, b, c in self.profile]
        d["compute_capabilities"] = list(self.compute_capabilities)
        d["batch_buckets"] = [list(b) for b in self.batch_buckets]
        for key, default in (("batch_buckets", []), ("hardware_compatibility", "NONE"), ("version_compatible", False)):
            if d[key] == default:
                del d[key]
        return d


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
    TensorRT-RTX, with a Triton whose kernels TensorRT's AOT launch cannot match (plugins.qdp.aot_contract_problem:
    every Triton >= 3.3, so every Triton the kernels support), on TensorRT without `tensorrt.plugin.aot_impl`
    (< 10.9) or without a CUDA GPU."""
    if flavor.is_rtx:
        raise HsError("AOT plugins need full TensorRT >= 10.9 (tensorrt.plugin); TensorRT-RTX accepts only IPluginV3 "
                      "creators, whose engines call back into Python (docs/tensorrt_plugins.md §3)")
    from hyperstyle_trt.plugins.qdp import aot_contract_problem

    problem = aot_contract_problem()
    if problem:
        raise HsError(f"--aot-plugins: {problem}")
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
    """A trt.ILogger that keeps warnings and errors (for one-line error reports) instead of printing them; the
    runtime's deserializer uses it (engines/compat.py)."""

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
    return one_line(errs[-1] if errs else "see TensorRT log")


def _compute_capabilities(trt, ccs: tuple[str, ...]) -> dict:
    """CreateConfigRTX's keywords for `ccs`: ("SM86", "SM120") -> compute_capabilities=[(8, 6), (12, 0)];
    ("CURRENT",) -> use_gpu=True (the building GPU); () -> portable. HsError naming the accepted ones otherwise."""
    known = [m for m in trt.ComputeCapability.__members__ if m.startswith("SM")]
    if ccs == ("CURRENT",):
        return {"use_gpu": True}
    for cc in ccs:
        if cc not in known:
            raise HsError(f"unknown compute capability {cc!r}; expected one of {known} (or 'CURRENT' alone)")
    return {"compute_capabilities": [(int(cc[2:-1]), int(cc[-1])) for cc in ccs]} if ccs else {}


def _config(ptrt, fl: Flavor, options: BuildOptions, cache_blob: bytes | None):
    """Polygraphy's CreateConfig (full TensorRT) / CreateConfigRTX (compute-capability targets) for `options`, one
    Polygraphy Profile per optimization profile (index order kept), with TensorRT's own defaults where Polygraphy's
    differ: TF32 stays allowed (CreateConfig clears it unless tf32=True) and profiling verbosity stays
    LAYER_NAMES_ONLY (Polygraphy asks for DETAILED). Full TensorRT: the hardware-compatibility level and
    version-compatible flag when asked for (TensorRT-RTX refuses both: its engines target compute capabilities and
    are tied to their release). With `cache_blob`, the timing cache is loaded with ignore_mismatch=False (as
    Polygraphy's load_timing_cache does): TensorRT itself refuses a cache written on another device; the file name
    already keys it by GPU (timing_cache_path)."""
    trt = fl.module
    profiles = []
    for profile in options.all_profiles:
        prof = ptrt.Profile()
        for name, lo, opt, hi in profile:
            prof.add(name, min=lo, opt=opt, max=hi)
        profiles.append(prof)
    kw = dict(profiles=profiles, builder_optimization_level=options.optimization_level,
              profiling_verbosity=trt.ProfilingVerbosity.LAYER_NAMES_ONLY,
              memory_pool_limits=None if options.workspace_bytes is None
              else {trt.MemoryPoolType.WORKSPACE: options.workspace_bytes})
    if fl.is_rtx:
        if options.hardware_compatibility != "NONE" or options.version_compatible:
            raise HsError("hardware compatibility levels and version-compatible engines are full-TensorRT options; "
                          "TensorRT-RTX targets compute capabilities (--compute-capability) and its engines run only "
                          "with the release that built them")
        from polygraphy.backend.tensorrt_rtx import CreateConfigRTX

        config = CreateConfigRTX(**_compute_capabilities(trt, options.compute_capabilities), **kw)
    else:
        if options.hardware_compatibility != "NONE":
            kw["hardware_compatibility_level"] = getattr(trt.HardwareCompatibilityLevel,
                                                         options.hardware_compatibility)
        config = ptrt.CreateConfig(tf32=True, version_compatible=options.version_compatible or None, **kw)
    if cache_blob is None:
        return config

    def load_timing_cache(builder, network, cfg):
        cfg.set_timing_cache(cfg.create_timing_cache(cache_blob), ignore_mismatch=False)

    return ptrt.PostprocessConfig(config, load_timing_cache)


def timing_cache_path(cache_dir: Path, target: dict) -> Path:
    """The timing cache of one flavor, version and GPU (`target` as build_target gives it: full TensorRT's device is
    the build GPU's name and compute capability): `<cache_dir>/timing_<flavor>_<version>_<device>.cache`, the device
    with every run of characters other than letters, digits, '.' and '-' turned into '_'."""
    device = re.sub(r"[^A-Za-z0-9.-]+", "_", str(target.get("device", "unknown"))).strip("_") or "unknown"
    return Path(cache_dir) / f"timing_{target['flavor']}_{target['version']}_{device}.cache"


def foreign_timing_caches(cache_dir: Path, target: dict) -> list[str]:
    """Names of the timing caches in `cache_dir` of this flavor and version that are NOT `target`'s (another GPU,
    or the GPU-less name `timing_<flavor>_<version>.cache` of earlier builds): a build never loads them."""
    mine = timing_cache_path(cache_dir, target).name
    prefix = f"timing_{target['flavor']}_{target['version']}"
    try:
        names = sorted(p.name for p in Path(cache_dir).glob(f"{prefix}*.cache"))
    except OSError:
        return []
    return [n for n in names if n != mine and (n == prefix + ".cache" or n.startswith(prefix + "_"))]


def build_network(net: Network, options: BuildOptions, timing_cache: Path | None = None) -> bytes:
    """Build a parsed network (network.parse_onnx) with Polygraphy's EngineBytesFromNetwork; returns the serialized
    engine. HsError with TensorRT's last error, in one line, on failure. Full TensorRT loads the timing cache at
    `timing_cache` and saves the merged cache back atomically (both best effort: the cache is an optimization only);
    TensorRT-RTX has none (its timing-cache calls are deprecated no-ops; kernels are compiled at run time)."""
    from polygraphy.exception import PolygraphyException

    fl = net.flavor
    ptrt = polygraphy_trt(fl)
    use_cache = timing_cache is not None and not fl.is_rtx
    blob = None
    if use_cache:
        try:
            blob = timing_cache.read_bytes() if timing_cache.is_file() else b""
        except OSError:
            blob = b""  # the timing cache is an optimization only
    config = _config(ptrt, fl, options, blob)
    with contextlib.ExitStack() as stack:
        save = None
        if use_cache:
            try:  # Polygraphy saves the merged cache here; it is then written to `timing_cache` atomically
                save = stack.enter_context(tempfile.TemporaryFile("w+b"))
            except OSError:
                pass  # the timing cache is an optimization only
        kept = stack.enter_context(polygraphy_log())
        stack.enter_context(warnings.catch_warnings())  # CreateConfig always sets a timing cache; RTX deprecates it
        warnings.filterwarnings("ignore", "Use Deprecated in TensorRT-RTX.*Timing cache", DeprecationWarning)
        try:
            # the tuple is not callable: Polygraphy does not own it, `net` frees it in order (network.Network)
            engine = ptrt.EngineBytesFromNetwork((net.builder, net.network, net.parser), config,
                                                 save_timing_cache=save)()
        except PolygraphyException as e:
            raise HsError(f"TensorRT ({fl.name}) failed to build {net.name}: {last_error(kept, e)}") from None
        if save is not None:
            try:
                save.seek(0)
                timing_cache.parent.mkdir(parents=True, exist_ok=True)
                write_bytes_atomic(timing_cache, save.read())
            except (OSError, HsError):
                pass  # the timing cache is an optimization only
    return bytes(engine)


def build_serialized(onnx_path: Path, options: BuildOptions, flavor: Flavor | None = None,
                     timing_cache: Path | None = None) -> bytes:
    """Parse `onnx_path` (external data beside it) and build (parse_onnx, build_network); returns the serialized
    engine. HsError with the parser's / builder's last error on failure. With `options.aot_plugins` and plugin
    nodes, the QDP route: the AOT kernels are registered and a rewritten model is parsed, its path argument still
    locating the external weights."""
    fl = flavor or get_flavor()
    onnx_path = Path(onnx_path)
    if options.aot_plugins and plugin_versions(onnx_path):
        from hyperstyle_trt.plugins.qdp import qdp_model_bytes, register_qdp

        register_qdp(check_aot(fl))
        net = parse_onnx(qdp_model_bytes(onnx_path), fl, external_data_path=onnx_path, register=False)
    else:
        net = parse_onnx(onnx_path, fl)
    with net:
        return build_network(net, options, timing_cache)


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
    replaced, never used. `record` (config, shapes, ...) goes into the engine's sidecar, with `profiles` ({"min",
    "opt", "max"} batch per optimization profile index, [] for a static graph) and `compatibility`
    ({"hardware_compatibility_level", "version_compatible"}: what engines.compat checks). A full-TensorRT build loads
    only this GPU's timing cache (timing_cache_path); the caches of other GPUs found beside it are named in `status`
    ("timing cache ... not loaded: another GPU")."""
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
            "versions": software_versions(fl), "build_options": options.to_dict(),
            "profiles": [profile_batches(p) for p in options.all_profiles],
            "compatibility": {"hardware_compatibility_level": options.hardware_compatibility,
                              "version_compatible": options.version_compatible}}
    t0 = time.perf_counter()
    if hit.path is not None:
        status, build_s = "cache-hit", 0.0
        src = hit.path
    else:
        foreign = [] if fl.is_rtx else foreign_timing_caches(cache_dir, target)  # RTX keeps no timing cache
        if foreign:
            notes.append(f"timing cache {', '.join(foreign)} not loaded: another GPU than {target.get('device')}")
        blob = build_serialized(onnx_path, options, fl, timing_cache_path(cache_dir, target))
        build_s = time.perf_counter() - t0
        src = cache.store(key, blob, {**side, "build_s": round(build_s, 3)})
        status = "built"
    _place(src, engine_path)
    write_sidecar(engine_path, {**side, "build_s": round(build_s, 3), "cache_key": key,
                                "engine_sha256": sha256_file(engine_path), "status": status})
    if notes:
        status += " (" + "; ".join(notes) + ")"
    return EngineResult(engine_path, status, build_s, engine_path.stat().st_size, key)
