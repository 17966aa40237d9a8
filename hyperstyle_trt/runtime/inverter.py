"""`Inverter`: the HyperStyle refinement loop on preallocated buffers, one CUDA graph per (batch, T).

    from hyperstyle_trt import Inverter
    inv = Inverter.from_checkpoint(None, config="tiny", executor="torch", device="cpu", precision="fp32")
    res = inv.invert(images, n_iters=5)     # res.images [B,3,size,size], res.codes, res.deltas, res.to_uint8()

The loop (models.hyperstyle.HyperStyle.invert, the official run_inversion):
    codes = W(x); y0 = G(codes, Δ=0); for t in 1..T: Δ_t = Δ_{t-1} + H(x, pool(y_{t-1})); y_t = G(codes, Δ_t)
runs here once for every executor (runtime/executors/base.py: executors only bind and enqueue). Construction does
the work once: buffers for max_batch (the contract's shapes and dtypes), the two Δ sets that ping-pong, executor
preparation, and on CUDA an eager warm-up at every batch size 1..max_batch (every kernel variant: the mod_conv
strategy and split-K change with the batch bucket, Triton specializes per shape; the OHWI weight cache is filled
eagerly) before any capture. On CUDA (capturable executors) the whole loop of a (batch, T) is captured as one CUDA
graph at its first use, or at construction for `capture=[...]`; `invert` then copies the input into its buffer and
replays: no allocation, no shape work, no host sync besides the optional value check (`check_values`, one 8-byte
device->host read). Batches above max_batch are split into chunks; smaller ones use their own graph.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping, Sequence

import torch

from hyperstyle_trt.core.config import HyperStyleConfig
from hyperstyle_trt.core.contract import GRAPHS, acc_name
from hyperstyle_trt.core.errors import HsError
from hyperstyle_trt.core.precision import FLOAT_DTYPES, precision as precision_of
from hyperstyle_trt.models.delta import to_official
from hyperstyle_trt.runtime import inputs as _inputs
from hyperstyle_trt.runtime.construct import InverterConstructors
from hyperstyle_trt.runtime.executors.base import Executor
from hyperstyle_trt.runtime.result import InverterResult

Steps = list[tuple[str, dict[str, torch.Tensor], int]]  # (graph, bindings, batch) per executor call


@dataclass
class _Plan:
    """The executor calls of one batch size b, bindings built once (views of the buffers' first rows)."""

    batch: int
    wenc: Steps
    gen: tuple[Steps, Steps]  # [p]: generator reading Δ set p
    hyp: tuple[Steps, Steps]  # [p]: hypernet reading set 1-p, writing set p
    zero: list[torch.Tensor]  # set 0's views, zeroed before y0
    out: dict[str, object] = field(default_factory=dict)


def _positive_int(name: str, v) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise HsError(f"{name} must be an integer >= 1, got {v!r}")
    return v


class Inverter(InverterConstructors):
    """Real images in; inverted images, W+ codes and per-image generator offsets out (see the module docstring).

    Thread safety: every public method holds one lock (calls from several threads are serialized). Results are
    views of the Inverter's buffers unless `copy=True`: from several threads, pass copy=True.
    """

    def __init__(self, executor: Executor, max_batch: int = 8, n_iters: int = 5, stream=None,
                 cuda_graphs: bool = True, capture: Iterable[int] = (), check_values: bool = True,
                 warmup: bool | None = None, decoder_state: Callable[[], Mapping] | Mapping | None = None):
        """executor: a runtime.executors.base.Executor; max_batch: rows of every buffer (larger batches are split);
        n_iters: default T; stream: the torch.cuda.Stream to run on (default: one of its own; `invert(stream=)`
        overrides per call); cuda_graphs: capture and replay on CUDA when the executor allows it; capture: batch
        sizes whose graph (at n_iters) is captured now instead of at first use; check_values: reject NaN/Inf and
        values outside [-1,1] of device float inputs (host inputs are always checked); warmup: eager warm-up of
        every batch size 1..max_batch at construction (default: on CUDA); decoder_state: the fp32 rosinality
        Generator state_dict (or a callable returning it) for fine_tuned_weights."""
        self.max_batch = _positive_int("max_batch", max_batch)
        self.n_iters = _positive_int("n_iters", n_iters)
        self.executor = executor
        self.cfg: HyperStyleConfig = executor.cfg
        self.device: torch.device = executor.device
        self.precision = executor.precision
        self.size = self.cfg.generator.size
        self.input_size = self.cfg.hypernet.input_size
        self.check_values = bool(check_values)
        self._decoder_state = decoder_state
        self._lock = threading.RLock()
        self._cuda = self.device.type == "cuda"
        self._check_stream(stream)
        executor.check(self.max_batch)
        capture = sorted({_positive_int("capture batch", b) for b in capture})
        if capture and capture[-1] > self.max_batch:
            raise HsError(f"capture batch {capture[-1]} exceeds max_batch={self.max_batch}")
        fixed = [_positive_int("fixed batch", v) for v in executor.fixed_batch.values()]
        step = math.lcm(*fixed) if fixed else 1
        self.rows = -(-self.max_batch // step) * step  # buffer rows: a multiple of every fixed graph batch
        self._alloc()
        executor.prepare(self.max_batch)
        self.use_graphs = bool(cuda_graphs and self._cuda and executor.capturable)
        self._plans: dict[int, _Plan] = {}
        self._graphs: dict[tuple[int, int], object] = {}
        if self._cuda:
            with torch.cuda.device(self.device):
                self.stream = stream if stream is not None else torch.cuda.Stream(self.device)
                executor.use_stream(self.stream)
                self._capture_stream = torch.cuda.Stream(self.device)
                self._pool = torch.cuda.graph_pool_handle() if self.use_graphs else None
                self._host_x = torch.zeros(self.x.shape, dtype=self.x.dtype, pin_memory=True)
                self._host_x_free = torch.cuda.Event()  # recorded after each upload from _host_x
                self._host_stats = torch.zeros(2, dtype=self.x.dtype, pin_memory=True)
                self._stats = torch.zeros(2, dtype=self.x.dtype, device=self.device)
            self._stats_graphs: dict[int, object] = {}
        else:
            self.stream = None
        self._last_stream = None  # the stream the previous invert ran on
        if warmup if warmup is not None else self._cuda:
            self.warmup()
        if self.use_graphs:  # capture= only names graphs to capture early; without graphs there is nothing to capture
            with self._lock:
                for b in capture:
                    self._graph(b, self.n_iters)

    def _check_stream(self, stream) -> None:
        if stream is None:
            return
        if not self._cuda:
            raise HsError("stream= applies to CUDA Inverters; this one runs on the CPU")
        if not isinstance(stream, torch.cuda.Stream):
            raise HsError(f"stream must be a torch.cuda.Stream (or torch.cuda.ExternalStream), got "
                          f"{type(stream).__name__}")
        if stream.device != self.device:
            raise HsError(f"stream is on {stream.device}, this Inverter runs on {self.device}")

    def _alloc(self) -> None:
        """One zeroed buffer per contract tensor, `rows` rows (zeros: pad rows of fixed-batch graphs stay finite)."""
        ex, r = self.executor, self.rows
        io = {g: ex.io(g) for g in GRAPHS}

        def buf(t):
            dt = precision_of(t.dtype).torch_dtype() if t.dtype in FLOAT_DTYPES else None
            assert dt is not None, t
            return torch.zeros(t.concrete(r), dtype=dt, device=ex.device)

        self.io = io
        self.x = buf(io["w_encoder"].tensor("image"))
        self.codes = buf(io["w_encoder"].tensor("codes"))
        self.y = buf(io["generator"].tensor("image"))
        self.y_pool = buf(io["generator"].tensor("image_pooled"))
        assert io["hypernet"].tensor("image").shape == io["w_encoder"].tensor("image").shape
        assert io["hypernet"].tensor("recon_pooled").shape == io["generator"].tensor("image_pooled").shape
        self.specs = self.cfg.tuned
        self.sets: tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]] = ({}, {})
        for s in self.specs:
            t = io["hypernet"].tensor(s.input_name)
            assert t.shape == io["hypernet"].tensor(acc_name(s)).shape == io["generator"].tensor(s.input_name).shape
            for k in (0, 1):
                self.sets[k][s.name] = buf(t)

    @property
    def buffer_bytes(self) -> int:
        """Device bytes of the Inverter's own buffers."""
        ts = [self.x, self.codes, self.y, self.y_pool, *self.sets[0].values(), *self.sets[1].values()]
        return sum(t.numel() * t.element_size() for t in ts)

    # ---- plans -------------------------------------------------------------------------------------------------------
    def _steps(self, graph: str, b: int, views: Callable[[int, int], dict[str, torch.Tensor]]) -> Steps:
        fixed = self.executor.fixed_batch.get(graph)
        if fixed is None:
            return [(graph, views(0, b), b)]
        return [(graph, views(i, i + fixed), fixed) for i in range(0, b, fixed)]  # pad rows up to the multiple

    def _plan(self, b: int) -> _Plan:
        plan = self._plans.get(b)
        if plan is not None:
            return plan
        # b's first use (warm-up / the eager run before b's capture / an eager call): never inside a capture
        self.executor.prepare_batch(b)

        def wenc(i, j):
            return {"image": self.x[i:j], "codes": self.codes[i:j]}

        def gen(p):
            return lambda i, j: {"codes": self.codes[i:j], "image": self.y[i:j], "image_pooled": self.y_pool[i:j],
                                 **{s.input_name: self.sets[p][s.name][i:j] for s in self.specs}}

        def hyp(p):
            return lambda i, j: {"image": self.x[i:j], "recon_pooled": self.y_pool[i:j],
                                 **{s.input_name: self.sets[1 - p][s.name][i:j] for s in self.specs},
                                 **{acc_name(s): self.sets[p][s.name][i:j] for s in self.specs}}

        plan = _Plan(b, self._steps("w_encoder", b, wenc), (self._steps("generator", b, gen(0)),
                     self._steps("generator", b, gen(1))), (self._steps("hypernet", b, hyp(0)),
                     self._steps("hypernet", b, hyp(1))), [t[:b] for t in self.sets[0].values()])
        self._plans[b] = plan
        return plan

    def _run(self, steps: Steps, stream) -> None:
        for graph, bindings, batch in steps:
            self.executor.run(graph, bindings, batch, stream)

    def _loop(self, plan: _Plan, n_iters: int, stream) -> None:
        """W -> G(Δ=0) -> T x (H -> G), Δ ping-ponging between the two sets (final Δ in set T % 2)."""
        self._run(plan.wenc, stream)
        for t in plan.zero:
            t.zero_()
        self._run(plan.gen[0], stream)
        for t in range(1, n_iters + 1):
            p = t % 2
            self._run(plan.hyp[p], stream)
            self._run(plan.gen[p], stream)

    # ---- CUDA --------------------------------------------------------------------------------------------------------
    def warmup(self, batches: Iterable[int] | None = None) -> None:
        """Run the loop once (T=2: both Δ parities) eagerly at each batch size (default 1..max_batch) on the capture
        stream: compiles every kernel variant and fills weight caches before any capture."""
        with self._lock:
            if not self._cuda:
                for b in batches or range(1, self.max_batch + 1):
                    self._loop(self._plan(b), 2, None)
                return
            s = self._capture_stream
            with torch.cuda.device(self.device):
                s.wait_stream(torch.cuda.current_stream(self.device))  # weights / buffers made on the caller's stream
                if self._last_stream is not None:
                    s.wait_stream(self._last_stream)  # an earlier invert may still use the buffers
                with torch.cuda.stream(s):
                    for b in batches or range(1, self.max_batch + 1):
                        self._loop(self._plan(b), 2, s)
                s.synchronize()

    def _graph(self, b: int, n_iters: int):
        """The CUDA graph of (b, T): captured at first use after an eager run at b on the capture stream (which also
        resets any per-batch executor state, e.g. TensorRT input shapes, outside the capture)."""
        key = (b, n_iters)
        g = self._graphs.get(key)
        if g is not None:
            return g
        plan, cs = self._plan(b), self._capture_stream
        with torch.cuda.device(self.device):
            cs.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(cs):
                self._loop(plan, 1, cs)
            cs.synchronize()
            g = torch.cuda.CUDAGraph()
            # One pool for all graphs: no tensor allocated inside a capture outlives it (results live in the
            # buffers), and graphs never run concurrently (one stream, one lock), so they may share scratch.
            with torch.cuda.graph(g, pool=self._pool, stream=cs, capture_error_mode="thread_local"):
                self._loop(plan, n_iters, cs)
        self._graphs[key] = g
        return g

    def _device_value_check(self, b: int, s) -> None:
        """min/max of the input buffer's first b rows on the device (a reduction captured per b when graphs are on:
        its scratch comes from the graph pool, so the check allocates nothing), then one blocking 2-value copy into
        pinned host memory (the stream sync this check costs)."""
        xb = self.x[:b]

        def body():
            torch.aminmax(xb, out=(self._stats[0], self._stats[1]))

        if self.use_graphs:
            g = self._stats_graphs.get(b)
            if g is None:
                cs = self._capture_stream
                cs.wait_stream(s)
                with torch.cuda.stream(cs):
                    body()
                cs.synchronize()
                g = torch.cuda.CUDAGraph()
                with torch.cuda.graph(g, pool=self._pool, stream=cs, capture_error_mode="thread_local"):
                    body()
                self._stats_graphs[b] = g
                s.wait_stream(cs)
            g.replay()
        else:
            body()
        self._host_stats.copy_(self._stats)  # blocking: waits for the input upload and the reduction on s
        lo, hi = self._host_stats.tolist()
        msg = _inputs.value_error(lo, hi)
        if msg:
            raise HsError(msg)

    # ---- inversion ---------------------------------------------------------------------------------------------------
    def invert(self, images, n_iters: int | None = None, copy: bool = False, stream=None,
               check_values: bool | None = None) -> InverterResult:
        """Invert `images` (runtime.inputs: uint8 HWC [H,W,3] / [B,H,W,3], resized to SxS; float [B,3,S,S] in
        [-1,1]; CUDA arrays via __cuda_array_interface__ / DLPack) with T = n_iters (default: the Inverter's).

        Returns device tensors in the Inverter's dtype. With copy=False (default) and B <= max_batch they are VIEWS
        of the Inverter's buffers, valid until its next invert/edit call; copy=True (and any B > max_batch, run in
        chunks) returns owned tensors. stream: run on this torch.cuda.Stream (default: the Inverter's); the
        caller's current stream waits for the result (no host sync). Bad input -> HsError before any work."""
        T = self.n_iters if n_iters is None else _positive_int("n_iters", n_iters)
        self._check_stream(stream)
        check = self.check_values if check_values is None else bool(check_values)
        prep = _inputs.prepare(images, self.input_size, self.device, check)
        x, b = prep.tensor, prep.batch
        with self._lock:
            if b > self.max_batch and prep.needs_value_check:
                msg = _inputs.value_error(*map(float, torch.aminmax(x.float())))  # whole batch, before any chunk
                if msg:
                    raise HsError(msg)
            if b <= self.max_batch:
                return self._invert_chunk(x, T, copy, stream, prep.needs_value_check)
            parts = [self._invert_chunk(x[i:i + self.max_batch], T, True, stream, False)
                     for i in range(0, b, self.max_batch)]
            return InverterResult.concat(parts, self._official)

    def _invert_chunk(self, x: torch.Tensor, T: int, copy: bool, stream, check: bool) -> InverterResult:
        b = int(x.shape[0])
        if not self._cuda:
            self.x[:b].copy_(x)
            with torch.no_grad():
                self._loop(self._plan(b), T, None)
            res = self._result(b, T)
            return res.copy() if copy else res
        s = stream if stream is not None else self.stream
        caller = torch.cuda.current_stream(self.device)
        with torch.cuda.device(self.device), torch.cuda.stream(s):
            if s != caller:
                s.wait_stream(caller)
            if self._last_stream is not None and self._last_stream != s:
                s.wait_stream(self._last_stream)  # the previous call's replay still reads/writes the buffers there
            self._last_stream = s
            if x.device.type == "cpu":
                self._host_x_free.synchronize()  # the previous call's upload from _host_x has completed
                self._host_x[:b].copy_(x)  # one host conversion into pinned memory, then an async upload
                self.x[:b].copy_(self._host_x[:b], non_blocking=True)
                self._host_x_free.record(s)
            else:
                self.x[:b].copy_(x)
            if check:
                self._device_value_check(b, s)
            if self.use_graphs:
                g = self._graph(b, T)
                s.wait_stream(self._capture_stream)
                g.replay()
            else:
                with torch.no_grad():
                    self._loop(self._plan(b), T, s)
            res = self._result(b, T)
            if copy:
                res = res.copy()
        if s != caller:
            caller.wait_stream(s)
        return res

    def _official(self, name: str, t: torch.Tensor) -> torch.Tensor:
        """A contract-layout Δ [b,...] as the official [b,O,I,k,k] (a view: permute / broadcast)."""
        spec = next(s for s in self.specs if s.name == name)
        return to_official(t, self.executor.modes[name], self.executor.ohwi, spec.kernel)

    def _result(self, b: int, T: int) -> InverterResult:
        plan = self._plan(b)
        if T not in plan.out:
            raw = {s.name: self.sets[T % 2][s.name][:b] for s in self.specs}
            plan.out[T] = InverterResult(self.y[:b], self.y_pool[:b], self.codes[:b],
                                         {k: self._official(k, v) for k, v in raw.items()}, raw, T, owned=False)
        r = plan.out[T]
        return InverterResult(r.images, r.images_pooled, r.codes, dict(r.deltas), dict(r.raw_deltas), T, owned=False)

    def stages(self, batch: int) -> dict[str, Callable[[object], None]]:
        """For benchmarks and profiling: {"w_encoder" | "hypernet" | "generator": fn(stream)} running that graph's
        executor call(s) once at `batch` on the loop's buffers (hypernet: Δ set 0 -> set 1, generator: set 1), as
        the loop does. They read whatever the buffers hold (run an invert first) and overwrite the results."""
        b = _positive_int("batch", batch)
        if b > self.max_batch:
            raise HsError(f"batch {b} exceeds max_batch={self.max_batch}")
        plan = self._plan(b)
        return {"w_encoder": lambda s: self._run(plan.wenc, s), "hypernet": lambda s: self._run(plan.hyp[1], s),
                "generator": lambda s: self._run(plan.gen[1], s)}

    # ---- after inversion ---------------------------------------------------------------------------------------------
    def edit(self, res: InverterResult, direction, strength: float | Sequence[float] = 1.0) -> torch.Tensor:
        """Re-render `res` with its per-image Δ kept and the codes moved along a latent `direction` ([style_dim] or
        [n_latent, style_dim] tensor/array, or a .pt/.npy file): codes + strength * direction. A scalar strength
        returns [B,3,size,size]; a sequence of K strengths returns [K,B,3,size,size] (rendered in batches of up to
        max_batch). strength 0 reproduces res.images. Owned tensors on the Inverter's device."""
        from hyperstyle_trt.runtime.edit import render_edit

        with self._lock:
            return render_edit(self, res, direction, strength)

    def fine_tuned_weights(self, res: InverterResult, i: int) -> dict[str, torch.Tensor]:
        """The rosinality Generator state_dict (fp32, CPU) of image i with its offsets folded in:
        W' = W * (1 + Δ_i) for every tuned layer. Loaded into models.stylegan2.Generator, G'(res.codes[i]) renders
        res.images[i] with no Δ input. Save it with runtime.edit.save_weights (safetensors)."""
        from hyperstyle_trt.runtime.edit import fold_weights

        with self._lock:
            return fold_weights(self, res, i)

    def decoder_state(self) -> Mapping[str, torch.Tensor]:
        """The fp32 generator state_dict the Inverter's weights came from (HsError when unknown)."""
        st = self._decoder_state
        if st is None:
            raise HsError("this Inverter does not know its generator weights; build it with from_checkpoint or "
                          "pass decoder_state=")
        if callable(st):
            st = self._decoder_state = st()
        return st

    def close(self) -> None:
        """Release the executor's backend resources and the captured graphs."""
        with self._lock:
            self._graphs.clear()
            if self._cuda:
                self._stats_graphs.clear()
            self.executor.close()

    def describe(self) -> dict:
        return self.executor.describe() | {"max_batch": self.max_batch, "rows": self.rows, "n_iters": self.n_iters,
                                           "cuda_graphs": self.use_graphs, "buffer_bytes": self.buffer_bytes,
                                           "captured": sorted(self._graphs)}
