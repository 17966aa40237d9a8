"""The `tensorrt` executor: the three engines of an hs-export directory, bound by name to the Inverter's buffers.

    ex = TensorRTExecutor.from_export(Path("hs_export"), device="cuda", precision="fp16", max_batch=8)
    ex.prepare(8)                                   # one device-memory block per engine
    ex.prepare_batch(4)                             # one execution context per engine at batch 4, shapes set once
    ex.run("hypernet", bindings, batch=4, stream)   # addresses that moved + execute_async_v3

Engines: `w_encoder_<prec>.engine`, `hypernet_<variant>_<prec>.engine`, `generator_<variant>_<prec>.engine`, the
plugin set when it is complete, else the plain one (the plain generator has the fixed batch `plain_batch`); fp16
before fp32 unless `precision` is given. TensorRT flavor: whichever `core.flavor` finds (the one the engines were
built with when it is importable). Before anything is deserialized every engine passes `engines.compat.check_engine`
(flavor + version, GPU, plugin versions, plugin build digest; the Python plugin creators are registered there, i.e.
`register_plugins()` precedes deserialization). After deserializing, each engine's I/O names, directions, dtypes,
formats and non-batch dims are compared with `core.contract.graph_io`: a mismatch is one HsError line.

Contexts. The Inverter captures one CUDA graph per (batch, T), and a graph captured around `execute_async_v3`
freezes the context it enqueued (its shapes and internal state), so a context is never re-shaped once a graph may
hold it: each engine gets ONE execution context PER BATCH SIZE, created without device memory of its own
(engines.contexts); once, at creation, it selects the narrowest optimization profile covering its batch
(engines.profiles: one profile per batch bucket; an older one-profile engine: profile 0), on torch's current stream,
then synchronized, and then sets its dynamic inputs' shapes. All contexts of an engine share one device-memory block
of `device_memory_size_v2` bytes (the largest any profile needs), a torch uint8 tensor allocated once in `prepare`;
safe because the Inverter runs every graph on one stream, one call after another (TensorRT forbids only concurrent
use of a block or a profile). `prepare_batch(b)` creates the contexts of batch b; the Inverter calls it before its
first call at b, i.e. before the eager run that precedes any capture at b. `run` creates a missing one itself (a
direct caller that skipped prepare_batch), except while torch's current stream is capturing: one HsError line.

`run` is then: `set_tensor_address(name, bindings[name].data_ptr())` on that batch's context for the addresses
that moved since that context's previous enqueue (the hypernet's and generator's Δ inputs alternate between the
Inverter's two buffer sets, so they move every iteration and are set before each enqueue, inside a capture too: the
executor never copies between the sets), then `execute_async_v3(stream)`. Nothing in `run` allocates device memory
or synchronizes; a context's first `run` also checks the bound tensors' names, shapes, dtypes, contiguity and device
(host-side only; the context's shapes were checked against the contract when it was created).
Not yet run on a GPU or with full TensorRT: exercised with a fake TensorRT and TensorRT-RTX-built engines only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from hyperstyle_trt.core import contract as C
from hyperstyle_trt.core.config import get_config
from hyperstyle_trt.core.errors import HsError
from hyperstyle_trt.core.precision import PRECISIONS, precision
from hyperstyle_trt.engines import compat
from hyperstyle_trt.engines.contexts import create_context, device_memory_size, set_device_memory
from hyperstyle_trt.engines.profiles import describe_ranges, engine_profiles, pick_profile, select_profile
from hyperstyle_trt.runtime.executors.base import Executor

# TensorRT DataType name -> numpy name of a binding: the float precisions from the one table, the rest as numpy has them
TRT_DTYPES = {**{p.trt: p.numpy for p in PRECISIONS.values()}, "BF16": "bfloat16", "INT32": "int32",
              "INT64": "int64", "INT8": "int8", "UINT8": "uint8", "BOOL": "bool"}


def engine_name(graph: str, variant: str, precision: str) -> str:
    """File name hs-export gives a graph's engine (export.pipeline.artifact_name + ".engine"; the W encoder is shared
    by both variants)."""
    return (f"{graph}_{precision}" if graph == "w_encoder" else f"{graph}_{variant}_{precision}") + ".engine"


def find_engines(path: Path, precision: str | None = None) -> tuple[str, str, dict[str, Path]]:
    """(variant, precision, {graph: engine path}) of the first complete engine set in an hs-export directory:
    precision `precision` (None: fp16, then fp32), the plugin set before the plain one. HsError naming the missing
    files (and why hs-export skipped engines, from export_summary.json) otherwise."""
    path = Path(path)
    if not path.is_dir():
        raise HsError(f"export directory {path} not found; create it with `hs-export --out {path}`")
    if precision is not None and precision not in C.PRECISIONS:
        raise HsError(f"unknown precision {precision!r}; expected one of {list(C.PRECISIONS)}")
    precs = [precision] if precision else ["fp16", "fp32"]
    best: list[Path] | None = None
    for prec in precs:
        for variant in ("plugin", "plain"):
            files = {g: path / engine_name(g, variant, prec) for g in C.GRAPHS}
            missing = [p for p in files.values() if not p.is_file()]
            if not missing:
                return variant, prec, files
            if best is None or len(missing) < len(best):
                best = missing
    why = ""
    try:
        import json

        skipped = json.loads((path / "export_summary.json").read_text()).get("engines_skipped")
        why = f" (hs-export said: {skipped})" if skipped else ""
    except (OSError, ValueError, AttributeError):
        pass
    prec = precision or "fp16"
    raise HsError(f"{path} has no complete TensorRT engine set: missing {', '.join(p.name for p in best or [])}{why}; "
                  f"build them with `hs-export --{prec} --out {path}` on a machine with TensorRT")


@dataclass
class _Context:
    """One execution context of an engine at one batch (its optimization profile selected and input shapes set once, at
    creation; `profile` None for a static engine). `addr`: the addresses bound in it ({name: ptr}, mirrors the context's
    state); `checked`: its first run's bindings passed."""

    batch: int
    context: Any
    profile: int | None = None
    addr: dict[str, int] = field(default_factory=dict)
    checked: bool = False


@dataclass
class _Graph:
    """One engine, its device-memory block and its contexts. `dynamic`: (input name, shape without batch) of the inputs
    whose batch is a runtime dim; `fixed`: the engine's static batch (None when dynamic); `profile`: (min, max) batch
    over all its optimization profiles; `profiles`: (min, opt, max) batch per profile index; `memory`: the uint8 device
    tensor holding the block every context of this engine uses (None before prepare), `mem_ptr` / `mem_bytes`: the block
    (256-byte aligned start, device_memory_size bytes); `contexts`: {batch: _Context}."""

    name: str
    path: Path
    engine: Any
    io: C.GraphIO
    dynamic: tuple[tuple[str, tuple[int, ...]], ...]
    fixed: int | None
    profile: tuple[int, int] | None
    profiles: tuple[tuple[int, int, int], ...] = ()
    memory: Any = None
    mem_ptr: int = 0
    mem_bytes: int = 0
    contexts: dict[int, _Context] = field(default_factory=dict)


def _dims(d) -> tuple[int, ...]:
    return tuple(int(v) for v in d)


def _capturing(device) -> bool:
    """Whether torch's current stream on `device` is capturing a CUDA graph (False off CUDA)."""
    if getattr(device, "type", None) != "cuda":
        return False
    import torch

    return bool(torch.cuda.is_current_stream_capturing())


def _inspect(trt, graph: str, path: Path, engine, io: C.GraphIO, rebuild: str) -> _Graph:
    """Compare the engine's I/O with the contract `io` (names, directions, dtypes, LINEAR format, non-batch dims);
    HsError (one line) on the first difference. Returns the graph's state."""
    n = int(engine.num_io_tensors)
    names = [engine.get_tensor_name(i) for i in range(n)]
    want = io.input_names + io.output_names
    missing, extra = [x for x in want if x not in names], [x for x in names if x not in want]
    if missing or extra:
        raise HsError(f"{path.name} does not match the {graph} I/O contract: missing {missing[:4]}"
                      f"{' ...' if len(missing) > 4 else ''}, unexpected {extra[:4]}{' ...' if len(extra) > 4 else ''}"
                      f"; rebuild it with `{rebuild}`")
    dynamic, fixed = [], set()
    for t in io.inputs + io.outputs:
        is_input = t in io.inputs
        mode = engine.get_tensor_mode(t.name)
        if getattr(mode, "name", str(mode)) != ("INPUT" if is_input else "OUTPUT"):  # trt.TensorIOMode
            raise HsError(f"{path.name}: {t.name} is an {'input' if is_input else 'output'} of {graph} in the contract "
                          f"but {getattr(mode, 'name', mode)} in the engine; rebuild it with `{rebuild}`")
        dt = engine.get_tensor_dtype(t.name)
        got = TRT_DTYPES.get(getattr(dt, "name", str(dt)), str(dt))
        if got != t.dtype:
            raise HsError(f"{path.name}: {t.name} is {got} in the engine, the contract wants {t.dtype} "
                          f"(an {precision(t.dtype).name} export); "
                          f"rebuild it with `{rebuild}`")
        fmt = getattr(engine, "get_tensor_format", None)
        if fmt is not None and getattr(fmt(t.name), "name", "LINEAR") != "LINEAR":
            raise HsError(f"{path.name}: {t.name} has format {fmt(t.name).name}, expected LINEAR")
        shape = _dims(engine.get_tensor_shape(t.name))
        if len(shape) != len(t.shape) or shape[1:] != tuple(t.shape[1:]):
            raise HsError(f"{path.name}: {t.name} is {list(shape)} in the engine, the contract wants "
                          f"{['B', *t.shape[1:]]}; rebuild it with `{rebuild}`")
        if not is_input:
            continue
        if shape[0] < 0:
            dynamic.append((t.name, shape[1:]))
        else:
            fixed.add(shape[0])
    if dynamic and fixed or len(fixed) > 1:
        raise HsError(f"{path.name}: its inputs disagree on the batch (static {sorted(fixed)} and dynamic); "
                      f"rebuild it with `{rebuild}`")
    profiles = engine_profiles(engine, [n for n, _ in dynamic]) if dynamic else ()
    return _Graph(graph, path, engine, io, tuple(dynamic), next(iter(fixed)) if fixed else None,
                  (min(p[0] for p in profiles), max(p[2] for p in profiles)) if profiles else None, profiles)


class TensorRTExecutor(Executor):
    """TensorRT engines of an hs-export directory (see the module docstring). Attributes besides the base ones:
    `flavor` (core.flavor.Flavor), `variant` ("plugin" | "plain"), `engines` ({graph: engine path})."""

    name = "tensorrt"
    capturable = True

    def __init__(self, cfg, variant: str, precision: str, flavor, engines: Mapping[str, tuple[Path, Any]], device,
                 runtime: Any = None, rebuild: str = "hs-export"):
        """`engines`: {graph: (path, deserialized ICudaEngine)} for the three contract graphs; `runtime` the
        trt.Runtime that deserialized them (kept alive with them)."""
        import torch

        self.cfg, self.variant, self.precision, self.flavor = cfg, variant, precision, flavor
        self.device = torch.device(device)
        self.ohwi = variant == "plugin"
        self.modes = C.delta_modes(cfg, per_channel=self.ohwi)
        self._runtime = runtime
        self.engines = {g: Path(p) for g, (p, _) in engines.items()}
        self._graphs: dict[str, _Graph] = {}
        for g in C.GRAPHS:
            if g not in engines:
                raise HsError(f"no {g} engine given; expected engines for {list(C.GRAPHS)}")
            path, eng = engines[g]
            self._graphs[g] = _inspect(flavor.module, g, Path(path), eng, self.io(g), rebuild)
        his = [s.profile[1] for s in self._graphs.values() if s.profile is not None]
        self.max_batch = min(his) if his else None
        self.fixed_batch = {g: s.fixed for g, s in self._graphs.items() if s.fixed is not None}

    # ---- construction -------------------------------------------------------------------------------------------
    @classmethod
    def from_export(cls, path: Path, device=None, precision: str | None = None,
                    max_batch: int | None = None) -> "TensorRTExecutor":
        """Find the engine set (find_engines), check every engine (engines.compat.check_engine: registers the plugin
        creators), then deserialize. HsError (one line) before any deserialization on a missing, stale or foreign
        engine, on a machine without CUDA or a GPU the flavor cannot run on."""
        import torch

        path = Path(path)
        variant, prec, files = find_engines(path, precision)
        dev = torch.device("cuda") if device is None else torch.device(device)
        if dev.type != "cuda":
            raise HsError(f"the tensorrt executor runs on a CUDA device, got device={str(dev)!r}; "
                          f"use executor='onnxruntime' for the CPU")
        gpu = compat.current_gpu(dev)  # HsError on a machine without CUDA, before anything is read
        infos = {g: compat.check_engine(p, device=gpu) for g, p in files.items()}
        flavors = {(i.flavor.name, i.flavor.version) for i in infos.values()}
        rebuild = compat.rebuild_command(files["generator"], infos["generator"].sidecar)
        if len(flavors) > 1:
            raise HsError(f"{path}: the engines were built with different TensorRT flavors {sorted(flavors)}; "
                          f"rebuild them with `{rebuild}`")
        cfgs = {i.sidecar.get("model_config") for i in infos.values()}
        if len(cfgs) != 1 or None in cfgs:
            raise HsError(f"{path}: the engines' sidecars name different (or no) model configs {sorted(map(str, cfgs))}"
                          f"; rebuild them with `{rebuild}`")
        cfg = get_config(cfgs.pop())
        fl = infos["generator"].flavor
        runtime, log = compat.make_runtime(fl)
        engines = {g: (info.path, compat.deserialize(info, runtime, log)) for g, info in infos.items()}
        if dev.index is None:
            dev = torch.device("cuda", torch.cuda.current_device())
        ex = cls(cfg, variant, prec, fl, engines, dev, runtime, rebuild)
        if max_batch is not None:
            ex.check(max_batch)
        return ex

    # ---- the Executor interface ---------------------------------------------------------------------------------
    def check(self, max_batch: int) -> None:
        """HsError when a dynamic engine's profiles do not cover every batch 1..max_batch."""
        for g in self._graphs.values():
            if g.profile is not None and g.profile[0] > 1:
                raise HsError(f"{g.path.name}: its profile starts at batch {g.profile[0]}, the Inverter needs 1")
        if self.max_batch is not None and max_batch > self.max_batch:
            raise HsError(f"max_batch={max_batch} exceeds the engines' profile (max {self.max_batch}); rebuild with "
                          f"`hs-export --max-batch {max_batch} ...` or lower max_batch")
        for g in self._graphs.values():
            gap = next((b for b in range(1, max_batch + 1) if g.profiles and pick_profile(g.profiles, b) is None), None)
            if gap is not None:
                raise HsError(f"{g.path.name}: no optimization profile covers batch {gap} (profiles "
                              f"{describe_ranges(g.profiles)}); rebuild with `hs-export --max-batch {max_batch} ...`")

    def prepare(self, max_batch: int) -> None:
        """Allocate each engine's device-memory block once (`device_memory_size_v2` bytes from a 256-byte aligned
        start, as TensorRT requires, inside one uint8 tensor on `device`) and create the contexts of fixed-batch
        engines. Contexts of dynamic engines come with `prepare_batch`."""
        import torch

        for g in self._graphs.values():
            if g.memory is None:
                g.mem_bytes = max(device_memory_size(g.engine), 256)
                g.memory = torch.empty(g.mem_bytes + 255, dtype=torch.uint8, device=self.device)
                g.mem_ptr = -(-g.memory.data_ptr() // 256) * 256
            if g.fixed is not None:
                self._context(g, g.fixed)

    def prepare_batch(self, batch: int) -> None:
        """Create (once) every dynamic engine's execution context at `batch`, its input shapes set; fixed-batch
        engines keep the one context `prepare` made. Not inside a CUDA-graph capture."""
        for g in self._graphs.values():
            if g.memory is None:
                raise HsError("TensorRTExecutor.prepare_batch before prepare(): no device memory for the contexts")
            if g.fixed is None:
                self._context(g, batch)

    def run(self, graph: str, bindings: Mapping[str, Any], batch: int, stream) -> None:
        """Bind `bindings` by name in `graph`'s context for `batch` and enqueue it on `stream` (see the module
        docstring). No allocation, no sync: capturable."""
        g = self._graphs[graph]
        c = g.contexts.get(batch)
        if c is None:
            if g.memory is None:
                raise HsError("TensorRTExecutor.run before prepare() (or after close()): no execution context")
            c = self._context(g, batch)  # a caller that skipped prepare_batch(batch); refused under capture
        if not c.checked:
            self._check_bindings(g, batch, bindings)
            c.checked = True
        ctx, addr = c.context, c.addr
        for name, t in bindings.items():
            ptr = t.data_ptr()
            if addr.get(name) != ptr:
                if not ctx.set_tensor_address(name, ptr):
                    raise HsError(f"{g.path.name}: TensorRT refused the address of {name}")
                addr[name] = ptr
        if not ctx.execute_async_v3(_stream_handle(stream)):
            raise HsError(f"{self.flavor.name}: execute_async_v3 of {g.path.name} failed at batch {batch}")

    def _context(self, g: _Graph, batch: int) -> _Context:
        """`g`'s context at `batch`, created on first use: no own device memory (the engine's block is set), every
        dynamic input's shape set once, the context's I/O shapes checked against the contract (host-side only)."""
        c = g.contexts.get(batch)
        if c is not None:
            return c
        if g.fixed is not None and batch != g.fixed:
            raise HsError(f"{g.path.name} has the fixed batch {g.fixed}, called with {batch}")
        index = pick_profile(g.profiles, batch) if g.profiles else None
        if g.profiles and index is None:
            raise HsError(f"{g.path.name}: batch {batch} is outside its profile{'s' if len(g.profiles) > 1 else ''} "
                          f"{describe_ranges(g.profiles)}")
        if _capturing(self.device):
            raise HsError(f"{g.path.name}: no execution context for batch {batch} while a CUDA graph is being captured;"
                          f" call prepare_batch({batch}) before capturing at that batch")
        ctx = create_context(self.flavor.module, g.engine)
        if ctx is None:
            raise HsError(f"{self.flavor.name} could not create an execution context for {g.path.name} "
                          f"at batch {batch}")
        set_device_memory(ctx, g.mem_ptr, g.mem_bytes)
        if index is not None:  # once, before the shapes (selecting a profile resets them); never re-selected
            self._select_profile(g, ctx, index)
        for name, rest in g.dynamic:
            if not ctx.set_input_shape(name, (batch, *rest)):
                raise HsError(f"{g.path.name}: TensorRT refused input shape {[batch, *rest]} for {name}")
        for t in g.io.inputs + g.io.outputs:
            ctx_shape, expect = _dims(ctx.get_tensor_shape(t.name)), t.concrete(batch)
            if ctx_shape != expect:
                raise HsError(f"{g.path.name}: {t.name} is {list(ctx_shape)} at batch {batch}, the contract wants "
                              f"{list(expect)}")
        c = g.contexts[batch] = _Context(batch, ctx, index)
        return c

    def _select_profile(self, g: _Graph, ctx, index: int) -> None:
        """Select optimization profile `index` in a new context on torch's current stream of the device, then wait
        for that stream (setup time, outside any capture: the switch may enqueue copies the Inverter's stream must
        not race)."""
        import torch

        stream = torch.cuda.current_stream(self.device) if self.device.type == "cuda" else None
        try:
            select_profile(ctx, index, 0 if stream is None else int(stream.cuda_stream), len(g.profiles))
        except HsError as e:
            raise HsError(f"{g.path.name}: {e}") from None
        if stream is not None:
            stream.synchronize()

    def _check_bindings(self, g: _Graph, batch: int, bindings: Mapping[str, Any]) -> None:
        """A context's first run: `bindings` name exactly the graph's I/O, each a contiguous tensor on `device` of
        the contract's dtype and shape at `batch` (host-side only)."""
        want = set(g.io.input_names + g.io.output_names)
        if set(bindings) != want:
            raise HsError(f"{g.name} bindings must name exactly its I/O: missing {sorted(want - set(bindings))[:4]}, "
                          f"unexpected {sorted(set(bindings) - want)[:4]}")
        for t in g.io.inputs + g.io.outputs:
            b, expect = bindings[t.name], t.concrete(batch)
            if tuple(b.shape) != expect or str(b.dtype).removeprefix("torch.") != t.dtype:
                raise HsError(f"{g.name}:{t.name} bound to {str(b.dtype).removeprefix('torch.')} {list(b.shape)}, "
                              f"expected {t.dtype} {list(expect)}")
            if not b.is_contiguous() or b.device != self.device:
                raise HsError(f"{g.name}:{t.name} must be a contiguous tensor on {self.device}, got "
                              f"{'non-contiguous' if not b.is_contiguous() else str(b.device)}")

    def close(self) -> None:
        """Free contexts, then their device memory, then engines, then the runtime (TensorRT's dependency order).
        Idempotent."""
        for g in self._graphs.values():
            g.contexts.clear()
        for g in self._graphs.values():
            g.memory, g.mem_ptr, g.mem_bytes = None, 0, 0
        for g in self._graphs.values():
            g.engine = None
        self._runtime = None

    def describe(self) -> dict:
        return {**super().describe(), "tensorrt_flavor": self.flavor.name, "tensorrt": self.flavor.version,
                "variant": self.variant, "engines": {g: p.name for g, p in self.engines.items()},
                "max_batch": self.max_batch, "fixed_batch": dict(self.fixed_batch),
                "contexts": {g: sorted(s.contexts) for g, s in self._graphs.items()},
                "profiles": {g: [list(p) for p in s.profiles] for g, s in self._graphs.items()},
                "context_memory_bytes": {g: s.mem_bytes if s.memory is not None else 0
                                         for g, s in self._graphs.items()}}


def _stream_handle(stream) -> int:
    """cudaStream_t of a torch.cuda.Stream (or an int handle). The executor never uses the default stream silently:
    None is refused."""
    if stream is None:
        raise HsError("the tensorrt executor needs the Inverter's CUDA stream, got None")
    return int(getattr(stream, "cuda_stream", stream))
