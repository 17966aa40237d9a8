"""`onnxruntime` executor: the plain graphs of an hs-export directory, I/O-bound to the Inverter's buffers.

Files (export/pipeline.py): `w_encoder_<prec>.onnx`, `hypernet_plain_<prec>.onnx` (dynamic batch, official OIHW Δ
[B,O,I,k,k] everywhere) and `generator_plain_<prec>.onnx` (standard ops; grouped conv with groups = B, so its batch
is fixed to the export's --plain-batch: `fixed_batch["generator"]`, the Inverter runs it on padded row chunks).
The same directory, tensor names and Δ ping-pong as the TensorRT path. CPU EP by default; device="cuda" uses the
CUDA execution provider where onnxruntime-gpu is installed.

Binding. Every input and output is bound by name to the memory of the Inverter's tensors (`IOBinding.bind_input /
bind_output` with `buffer_ptr`): no copies in or out. One IOBinding per (graph, batch, bound addresses) -- for the
Inverter's plans that is one per graph, batch and Δ parity (and per row chunk of the fixed-batch generator, shared by
every batch that covers it) -- made and bound at its first use (a warm-up or the first call at that batch, never
inside a capture), kept, and reused by every later call: a call looks its binding up by the tensors' addresses and
binds nothing. `prepare_batch` has nothing to do: the tensors a binding needs are not known before the first call.
Bindings of tensors that are not the Inverter's buffers (edit's render chunks) go to the same per-graph LRU, sized
from max_batch, so they cannot grow it without bound.

Run. `run_with_iobinding(binding, run_options)` with the run option `disable_synchronize_execution_providers=1`: on
the CUDA EP the run returns without `cudaStreamSynchronize` at its end (on the CPU EP it has no effect; the run is
synchronous anyway). `run` never calls `synchronize()`, `.cpu()`, `.item()` or converts to numpy; the numpy element
type of the bindings is taken once at construction.

Stream (CUDA EP). ORT enqueues on the stream given as the provider option `user_compute_stream` (a session-level
option, fixed when the session is created; the Python API sets `has_user_compute_stream` from it). The executor
makes the sessions with a stream of its own, and `use_stream(stream)` re-creates them once
(`InferenceSession.set_providers`) on the Inverter's stream. A call on that stream enqueues directly; a call on any
other stream (the Inverter's warm-up / capture stream, `invert(stream=...)`) is ordered with two preallocated CUDA
events: the EP stream waits for the caller's stream, the caller's stream waits for the run. No host sync either way.
The Inverter calls `use_stream` (the Executor hook) once in its constructor, after its stream exists.
`capturable` stays False: an ORT run is not something a torch CUDA-graph capture can hold (its scratch comes from
ORT's own arena, outside the graph's pool); ORT's own CUDA graphs (`enable_cuda_graph`) are not used here.

Memory (CPU EP). The peak came from ORT's NCHWc layout transformer (`NchwcTransformer`, part of the default
optimization level ORT_ENABLE_ALL), which rewrites convolutions with constant weights into MLAS's channel-blocked
NCHWc format. In the plain generator those are the blurs after each upsampling (a depthwise [C,1,H,W] single-channel
conv with a constant 4x4 kernel): the blocked conv pads its one output channel to a whole block (16 channels with
AVX-512) before `ReorderOutput` takes the channel back, so at 1024x1024 its intermediate is 16x the activation
(FFHQ-1024: 2.1 GiB RSS after setup, 6.2 GiB after the first generator run).
The CPU sessions are made with it disabled (`disabled_optimizers`, CPU_DISABLED_OPTIMIZERS; every other ALL-level
optimization stays): FFHQ-1024 then peaks at about 2.6 GiB (1.3 GiB after setup) at the same CPU time. Besides,
the sessions share one arena registered in onnxruntime's environment (`create_and_register_allocator` +
`session.use_env_allocators`), grown by exactly what is asked (`arena_extend_strategy` kSameAsRequested);
initializers are allocated at their size outside it (`session.use_device_allocator_for_initializers`); memory
patterns are off. The graphs run one after the other, so one arena serves the three. Without an arena
(`enable_cpu_mem_arena=False`) every large activation is mapped and faulted in again on each run, which costs CPU
time. Every setting measured is in benchmarks/results/cpu_default_ffhq1024.json. The settings are
`session_options` and `session_kwargs`.

NOT RUN: the CUDA EP path has not run anywhere. There is no GPU on the development machine, and the onnxruntime-gpu
wheel (about 255 MB) is over what can be sent to the GPU test machine. The CPU tests check its logic with a faked
CUDA EP: the provider options, the run options, the binding cache and the event ordering.

References:
- CUDA EP options (`user_compute_stream`, `has_user_compute_stream`, `enable_cuda_graph` / "Using CUDA Graphs"):
  https://onnxruntime.ai/docs/execution-providers/CUDA-ExecutionProvider.html and
  https://onnxruntime.ai/docs/api/c/struct_ort_c_u_d_a_provider_options.html
- `user_compute_stream` in the Python API (has_user_compute_stream set automatically; handle 0 is ignored):
  https://github.com/microsoft/onnxruntime/pull/19229
- IOBinding (`bind_input`, `bind_output`, `run_with_iobinding`): https://onnxruntime.ai/docs/api/python/api_summary.html
  and https://onnxruntime.ai/docs/performance/tune-performance/iobinding.html
- `synchronize_inputs / synchronize_outputs` are blocking provider syncs, for memory written on another stream:
  https://github.com/microsoft/onnxruntime/pull/9823 (not called: the events above order the streams instead)
- shared allocators and arena settings (`create_and_register_allocator`, `OrtArenaCfg`, `session.use_env_allocators`,
  `session.use_device_allocator_for_initializers`):
  https://onnxruntime.ai/docs/get-started/with-c.html#features and
  https://onnxruntime.ai/docs/api/python/api_summary.html
- the run option `disable_synchronize_execution_providers` (RunOptions.add_run_config_entry):
  https://github.com/microsoft/onnxruntime/pull/14088, why a run syncs by default:
  https://github.com/microsoft/onnxruntime/issues/12216, the end-of-run sync points and how a user stream plus the
  option removes them: https://github.com/microsoft/onnxruntime/issues/28539 (CUDA graph replay honours it since
  https://github.com/microsoft/onnxruntime/pull/28686)
"""

from __future__ import annotations

import json
from collections import OrderedDict
from pathlib import Path
from typing import Mapping

import torch

from hyperstyle_trt.core.config import get_config
from hyperstyle_trt.core.contract import GRAPHS, delta_modes, graph_io
from hyperstyle_trt.core.errors import HsError, one_line
from hyperstyle_trt.core.precision import precision as precision_of
from hyperstyle_trt.runtime.executors.base import Executor

NO_SYNC = "disable_synchronize_execution_providers"  # the run option: no stream sync at the end of a run
_LRU_SLACK = 16  # bindings per graph beyond the Inverter's plans (edit's render chunks)


def _ort():
    try:
        import onnxruntime
    except ImportError:
        raise HsError("executor 'onnxruntime' needs onnxruntime (pip install 'hyperstyle-trt[export]')") from None
    return onnxruntime


def graph_file(graph: str, precision: str) -> str:
    """The plain-set file name of `graph` (export.pipeline.artifact_name)."""
    return f"{graph}_{precision}.onnx" if graph == "w_encoder" else f"{graph}_plain_{precision}.onnx"


def _summary(path: Path) -> dict:
    p = path / "export_summary.json"
    if not p.is_file():
        return {}
    try:
        return json.loads(p.read_text())
    except (OSError, ValueError) as e:
        raise HsError(f"cannot read {p} ({type(e).__name__}); re-run hs-export --out {path}") from None


def _model_config(path: Path, precision: str) -> str:
    """The model preset the plain graphs were exported from (their sidecar's model_config)."""
    side = path / (graph_file("generator", precision) + ".json")
    cfg_name = None
    if side.is_file():
        try:
            cfg_name = json.loads(side.read_text()).get("model_config")
        except (OSError, ValueError):
            cfg_name = None
    cfg_name = cfg_name or (_summary(path).get("config") or {}).get("config")
    if not cfg_name:
        raise HsError(f"cannot tell which model {path} was exported from (no sidecar / export_summary.json); "
                      f"re-run hs-export --out {path}")
    return cfg_name


def cuda_provider(device_index: int, stream_handle: int) -> tuple[str, dict[str, str]]:
    """The CUDA EP with `stream_handle` (a cudaStream_t as int, non-zero) as its compute stream."""
    return ("CUDAExecutionProvider", {"device_id": str(device_index), "has_user_compute_stream": "1",
                                      "user_compute_stream": str(stream_handle)})


# CPU memory (see "Memory" in the module docstring): one shared arena, grown by what is asked, for all sessions
CPU_SESSION_CONFIG = {"session.use_env_allocators": "1", "session.use_device_allocator_for_initializers": "1"}
CPU_ARENA = {"arena_extend_strategy": 1}  # kSameAsRequested (the default kNextPowerOfTwo can double a request)
CPU_DISABLED_OPTIMIZERS = ("NchwcTransformer",)  # its blocked-layout copies were most of the CPU peak
_shared_arena: list[bool] = []  # [True] once the process-wide CPU arena is registered


def shared_cpu_arena(ort) -> None:
    """Register one CPU arena allocator in onnxruntime's process-wide environment (once per process); sessions with
    `session.use_env_allocators=1` take their activations from it instead of an arena each."""
    if _shared_arena:
        return
    info = ort.OrtMemoryInfo("Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, ort.OrtMemType.DEFAULT)
    try:
        ort.create_and_register_allocator(info, ort.OrtArenaCfg(CPU_ARENA))
    except Exception as e:  # noqa: BLE001 - onnxruntime raises its own types; registered already (by a caller)
        if "already" not in str(e).lower():
            raise HsError(f"onnxruntime cannot register the shared CPU arena ({type(e).__name__}: "
                          f"{one_line(e)})") from None
    _shared_arena.append(True)


def session_options(ort, device_type: str):
    """The SessionOptions of every session. CPU EP: the three sessions share one arena (`shared_cpu_arena`), the
    initializers are allocated at their exact size outside it, and no memory pattern is planned (a pattern
    pre-allocates the whole run's activations as one block per session and shape). See "Memory" in the module
    docstring."""
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    if device_type == "cpu":
        shared_cpu_arena(ort)
        opts.enable_mem_pattern = False
        for k, v in CPU_SESSION_CONFIG.items():
            opts.add_session_config_entry(k, v)
    return opts


def session_kwargs(device_type: str) -> dict:
    """The InferenceSession keyword arguments beyond options and providers: on the CPU EP the NCHWc layout
    transformer is disabled (CPU_DISABLED_OPTIMIZERS; see "Memory" in the module docstring)."""
    return {"disabled_optimizers": list(CPU_DISABLED_OPTIMIZERS)} if device_type == "cpu" and \
        CPU_DISABLED_OPTIMIZERS else {}


class OnnxRuntimeExecutor(Executor):
    """The plain ONNX graphs on onnxruntime (see the module docstring)."""

    name = "onnxruntime"

    def __init__(self, path: Path, device="cpu", precision: str = "fp32"):
        ort = _ort()
        self.path = Path(path)
        if precision not in ("fp32", "fp16"):
            raise HsError(f"precision must be 'fp32' or 'fp16', got {precision!r}")
        missing = [graph_file(g, precision) for g in GRAPHS if not (self.path / graph_file(g, precision)).is_file()]
        if missing:
            flags = "--fp32 " if precision == "fp32" else ""
            raise HsError(f"export directory {self.path} lacks {', '.join(missing)}; create it with "
                          f"hs-export --out {self.path} --plain {flags}--no-engines")
        dev = torch.device(device)
        self._ep_stream = None  # CUDA EP: the torch.cuda.Stream ORT enqueues on (user_compute_stream)
        if dev.type == "cuda":
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise HsError("device='cuda' needs onnxruntime-gpu (CUDAExecutionProvider not available); "
                              "use device='cpu'")
            if not torch.cuda.is_available():
                raise HsError("device='cuda' but torch.cuda.is_available() is False")
            dev = torch.device("cuda", dev.index if dev.index is not None else torch.cuda.current_device())
            self._ep_stream = torch.cuda.Stream(dev)  # until use_stream() hands over the Inverter's
            self._ready, self._done = torch.cuda.Event(), torch.cuda.Event()  # cross-stream ordering in run
            providers = [cuda_provider(dev.index, int(self._ep_stream.cuda_stream))]
        elif dev.type == "cpu":
            providers = ["CPUExecutionProvider"]
        else:
            raise HsError(f"the onnxruntime executor runs on 'cpu' or 'cuda', got {dev}")
        self.cfg = get_config(_model_config(self.path, precision))
        self.device, self.precision = dev, precision
        self.modes = delta_modes(self.cfg, per_channel=False)
        self.ohwi = False
        self.capturable = False
        self._ort_device = ("cuda", dev.index) if dev.type == "cuda" else ("cpu", 0)
        opts, kwargs = session_options(ort, dev.type), session_kwargs(dev.type)
        self.sessions = {}
        fixed = {}
        for g in GRAPHS:
            f = self.path / graph_file(g, precision)
            try:
                self.sessions[g] = ort.InferenceSession(str(f), opts, providers=providers, **kwargs)
            except Exception as e:  # noqa: BLE001 - onnxruntime raises its own exception types
                raise HsError(f"onnxruntime cannot load {f} ({type(e).__name__}: {one_line(e)})") from None
            b = self._check_io(g, f)
            if b is not None:
                fixed[g] = b
        self.fixed_batch = fixed
        self.run_options = ort.RunOptions()
        self.run_options.add_run_config_entry(NO_SYNC, "1")
        io = {g: self.io(g) for g in GRAPHS}
        self._names = {g: (io[g].input_names, io[g].output_names) for g in GRAPHS}
        self._all_names = {g: (*io[g].input_names, *io[g].output_names) for g in GRAPHS}
        self._elem = precision_of(self.precision).np_dtype()  # the bindings' element type (every I/O is float)
        self._torch_dtype = precision_of(self.precision).torch_dtype()
        self._iob: dict[str, OrderedDict] = {g: OrderedDict() for g in GRAPHS}  # {(batch, *addresses): IOBinding}
        self.prepare(8)  # the LRU's size until the Inverter's prepare(max_batch)

    @classmethod
    def from_export(cls, path: Path, device=None, precision: str | None = None,
                    max_batch: int | None = None) -> "OnnxRuntimeExecutor":
        path = Path(path)
        if precision is None:  # the fp32 set when present (the CPU path), else fp16
            precision = "fp32" if (path / graph_file("generator", "fp32")).is_file() or \
                not (path / graph_file("generator", "fp16")).is_file() else "fp16"
        return cls(path, device or "cpu", precision)

    def _check_io(self, graph: str, f: Path) -> int | None:
        """The session's I/O must be the contract's (names, dtypes, non-batch dims); returns a fixed batch or None."""
        sess, io = self.sessions[graph], graph_io(self.cfg, graph, self.modes, "B", False, self.precision)
        want_t = precision_of(self.precision).onnx
        fixed = set()
        for kind, have, want in (("inputs", sess.get_inputs(), io.inputs), ("outputs", sess.get_outputs(), io.outputs)):
            names = [t.name for t in have]
            if sorted(names) != sorted(t.name for t in want):
                raise HsError(f"{f.name}: {kind} {names} are not the contract's {[t.name for t in want]}; "
                              f"re-export with hs-export --out {self.path} --plain")
            by = {t.name: t for t in have}
            for t in want:
                h = by[t.name]
                if h.type != want_t or len(h.shape) != len(t.shape) or list(h.shape[1:]) != list(t.shape[1:]):
                    raise HsError(f"{f.name}: {t.name} is {h.type} {h.shape}, the contract says {want_t} "
                                  f"{list(t.shape)}; re-export with hs-export --out {self.path} --plain")
                if isinstance(h.shape[0], int):
                    fixed.add(h.shape[0])
        if len(fixed) > 1:
            raise HsError(f"{f.name}: inconsistent fixed batch sizes {sorted(fixed)}")
        return fixed.pop() if fixed else None

    # ---- setup ------------------------------------------------------------------------------------------------------
    def prepare(self, max_batch: int) -> None:
        """Size the per-graph binding LRU: the Inverter's plans bind at most 2 * max_batch sets per graph (hypernet:
        batch x parity; generator: parity x row chunk), plus room for edit's render chunks."""
        self._lru = 2 * max_batch + _LRU_SLACK

    def use_stream(self, stream) -> None:
        """Make `stream` (a torch.cuda.Stream on this device: the Inverter's default stream) the CUDA EP's
        `user_compute_stream`: the sessions are re-created with it once (`InferenceSession.set_providers`) and the
        bindings made for the old sessions dropped. Call it at setup, before the first run on it. A no-op on the CPU
        EP, for the stream already in use, and for the legacy default stream (handle 0, which ORT ignores: calls on
        it are ordered with events like any other stream's)."""
        if self._ep_stream is None or stream is None:
            return
        handle = int(stream.cuda_stream)
        if handle == 0 or handle == int(self._ep_stream.cuda_stream):
            return
        provider = cuda_provider(self.device.index, handle)
        for g, sess in self.sessions.items():
            try:
                sess.set_providers([provider])
            except Exception as e:  # noqa: BLE001 - onnxruntime raises its own exception types
                raise HsError(f"onnxruntime cannot re-create the {g} session on the Inverter's stream "
                              f"({type(e).__name__}: {one_line(e)})") from None
        self._ep_stream = stream
        for cache in self._iob.values():
            cache.clear()

    # ---- per call ---------------------------------------------------------------------------------------------------
    def _bind(self, graph: str, bindings: Mapping[str, torch.Tensor], batch: int):
        """A new IOBinding of `graph` with every I/O bound to `bindings[name]`'s memory, shape [batch, ...]."""
        io = self.sessions[graph].io_binding()
        dev, idx = self._ort_device
        ins, outs = self._names[graph]
        for names, bind in ((ins, io.bind_input), (outs, io.bind_output)):
            for n in names:
                t = bindings[n]
                assert t.is_contiguous() and t.shape[0] == batch and t.dtype == self._torch_dtype and \
                    t.device == self.device, (graph, n, tuple(t.shape), t.dtype, str(t.device), batch)
                bind(n, dev, idx, self._elem, list(t.shape), t.data_ptr())
        return io

    def binding(self, graph: str, bindings: Mapping[str, torch.Tensor], batch: int):
        """The IOBinding of (graph, batch, the tensors' addresses): made and bound at its first use, then reused.
        The addresses and batch fix every bound pointer and shape (dtypes and non-batch dims are the contract's)."""
        key = (batch, *(bindings[n].data_ptr() for n in self._all_names[graph]))
        cache = self._iob[graph]
        io = cache.get(key)
        if io is None:
            io = cache[key] = self._bind(graph, bindings, batch)
            if len(cache) > self._lru:
                cache.popitem(last=False)  # least recently used
        else:
            cache.move_to_end(key)
        return io

    def run(self, graph: str, bindings: Mapping[str, torch.Tensor], batch: int, stream) -> None:
        """Look up (first use: make) the graph's IOBinding for these tensors and run it without an end-of-run sync.
        CUDA EP: on `stream` directly when it is the EP's stream, else ordered with events; no host sync."""
        io, sess = self.binding(graph, bindings, batch), self.sessions[graph]
        ep = self._ep_stream
        if ep is None:  # CPU EP: the run is synchronous
            sess.run_with_iobinding(io, self.run_options)
            return
        s = stream if stream is not None else torch.cuda.current_stream(self.device)
        if s.cuda_stream == ep.cuda_stream:
            sess.run_with_iobinding(io, self.run_options)
            return
        self._ready.record(s)  # the inputs written on the caller's stream ...
        ep.wait_event(self._ready)  # ... before ORT reads them on its stream
        sess.run_with_iobinding(io, self.run_options)
        self._done.record(ep)
        s.wait_event(self._done)  # the caller's stream reads the outputs after the run

    def close(self) -> None:
        for cache in self._iob.values():
            cache.clear()
        self.sessions.clear()

    def describe(self) -> dict:
        ort = _ort()
        return super().describe() | {"onnxruntime": ort.__version__, "export_dir": str(self.path),
                                     "fixed_batch": dict(self.fixed_batch)}
