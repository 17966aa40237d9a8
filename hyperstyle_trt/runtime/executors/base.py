"""The executor interface: what `runtime.Inverter` hands an executor and what an executor must do with it.

An executor *adapts* one backend (torch modules, onnxruntime sessions, TensorRT engines) to the three graphs of
`core.contract` (`w_encoder`, `hypernet`, `generator`). It owns no loop, no buffers, no batching and no CUDA-graph
capture: those live once in the Inverter (runtime/inverter.py). An executor's whole job is "bind these tensors to
this graph's named I/O and enqueue it on this stream".

What the Inverter does (so executors need not)
-----------------------------------------------
1. It reads the executor's contract: `executor.io(graph)` (default: `core.contract.graph_io(cfg, graph, modes, "B",
   ohwi, precision)`) and allocates ONE buffer per distinct tensor, `torch.empty(TensorIO.concrete(rows),
   dtype=TensorIO.dtype, device=executor.device)`, with rows = max_batch rounded up to a multiple of every fixed
   batch (`fixed_batch`). Buffers are contiguous, never reallocated and never moved, so `data_ptr()` of a batch-b
   view (`buf[:b]`, contiguous, same start address) is stable for the Inverter's lifetime.
2. Buffers and their roles (names are the contract's):

       x        [R,3,S,S]          the input image    -> w_encoder:image, hypernet:image
       codes    [R,L,D]            w_encoder:codes    -> generator:codes
       y        [R,3,size,size]    generator:image    (the current reconstruction; read by nobody inside the loop)
       y_pool   [R,3,S,S]          generator:image_pooled -> hypernet:recon_pooled
       set0/set1  one tensor per tuned layer each, shaped like `delta_<layer>` (== `acc_<layer>`)

   Ping-pong of the two Δ sets, iteration t = 1..T (set0 is zeroed first: Δ = 0 is the untuned generator):

       w_encoder(image=x)                                  -> codes
       generator(codes, delta_* = set0)                    -> image=y, image_pooled=y_pool        (y_0)
       t odd : hypernet(image=x, recon_pooled=y_pool, delta_* = set0) -> acc_* = set1
               generator(codes, delta_* = set1)            -> y, y_pool
       t even: hypernet(x, y_pool, delta_* = set1)         -> acc_* = set0
               generator(codes, delta_* = set0)            -> y, y_pool

   so acc_* of iteration t is bound as delta_* of iteration t+1 and of the generator; the final Δ is set[T % 2].
   A graph never reads and writes the same buffer.
3. For every call it builds (once per batch size, at plan time, not per call) a `bindings` mapping
   {I/O name of that graph: tensor view [b, ...] of the buffer above} that holds EVERY input and output of the graph.
4. It picks the stream: on CUDA a `torch.cuda.Stream` (the caller's `stream=`, or the one the Inverter captures on);
   during CUDA-graph capture it is the capturing stream. On CPU it is None.
5. Before its first call at a batch size b (when it builds b's plan: before b's warm-up and the eager run that
   precedes b's capture, never inside a capture) it calls `executor.prepare_batch(b)` once.
6. It warms up eagerly at each batch size before capturing that size (every kernel variant, weight caches filled),
   captures when `executor.capturable`, and replays; it validates every user input before anything runs. A graph
   captured at one batch is replayed after calls at other batches (B=3, B=1, B=3 again).

What an executor must do
------------------------
- `run(graph, bindings, batch, stream)`: read the inputs from and write the outputs INTO the given tensors (by
  name; `bindings[name].data_ptr()` is what a TensorRT executor passes to `set_tensor_address`), enqueued on
  `stream` (`stream.cuda_stream` is the cudaStream_t; work on any other stream breaks capture and ordering). No
  host sync, no allocation of its own buffers in `run` (allocate in `prepare` / the constructor; a torch executor's
  transient op outputs are the exception: under capture they come from the graph's private pool and replay does not
  allocate). Nothing a captured graph holds may change with a later call at another batch: per-batch state lives
  apart per batch, made in `prepare_batch(b)` (TensorRT: one execution context per engine and batch, its input
  shapes set once; never re-shaped, since a graph captured around it froze its state).
- `batch` == `bindings[...].shape[0]` for every tensor; for a graph in `fixed_batch` it is always that batch (the
  Inverter splits and pads rows for it; pad rows hold finite stale values and their outputs are ignored).
- Tell the Inverter what it runs: `cfg` (core.config.HyperStyleConfig), `device` (torch.device), `precision`
  ("fp32" | "fp16": the dtype of every float I/O), `modes` ({layer: DeltaMode}, core.contract.delta_modes), `ohwi`
  (full 3x3 Δ as [B,O,3,3,I]), `max_batch` (largest batch its graphs accept; None: unbounded), `fixed_batch`
  ({graph: its only batch}, e.g. the plain generator's `plain_batch`), `capturable` (its `run` may be recorded in a
  CUDA graph: no host sync, no Python-side state that changes between replays).
- `check(max_batch)`: raise HsError (one line) before the Inverter allocates anything if it cannot serve
  `max_batch` (profile too small, ...). `prepare(max_batch)`: allocate its own workspaces/contexts once.
  `prepare_batch(b)`: create what calls at batch b need (default: nothing); a call at a batch not prepared may
  create it itself, but never inside a capture.
- Constructors: `from_model(model, device, precision)` (from a models.hyperstyle.HyperStyle) and/or
  `from_export(path, device, precision, max_batch)` (an hs-export directory); the base ones raise HsError naming
  the executors that can. Every user-facing failure is an HsError whose message is one line.

Executors register by name in `runtime.executors` (`register_executor`); a backend (tensorrt, onnxruntime) is
imported only when its executor is asked for.
"""

from __future__ import annotations

import abc
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Mapping

from hyperstyle_trt.core.contract import DeltaMode, GraphIO, graph_io
from hyperstyle_trt.core.errors import HsError

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from hyperstyle_trt.core.config import HyperStyleConfig


class Executor(abc.ABC):
    """One backend for the three contract graphs. See the module docstring for the full contract.

    Attributes every executor sets in its constructor:
        cfg: HyperStyleConfig; device: torch.device; precision: "fp32" | "fp16";
        modes: {layer name: DeltaMode} of the tuned layers; ohwi: bool (full 3x3 Δ layout OHWI vs OIHW).
    Class/instance attributes with defaults:
        name (registry name), capturable (False), max_batch (None = unbounded), fixed_batch ({}).
    """

    name: ClassVar[str] = "?"
    capturable: bool = False
    max_batch: int | None = None
    fixed_batch: Mapping[str, int] = {}

    cfg: "HyperStyleConfig"
    device: "torch.device"
    precision: str
    modes: dict[str, DeltaMode]
    ohwi: bool

    # ---- construction -------------------------------------------------------------------------------------------
    @classmethod
    def from_model(cls, model, device, precision: str) -> "Executor":
        """An executor over a models.hyperstyle.HyperStyle (fp32, any device; the executor moves/casts copies)."""
        raise HsError(f"executor {cls.name!r} cannot run from a checkpoint; use Inverter.from_export(...)")

    @classmethod
    def from_export(cls, path: Path, device=None, precision: str | None = None,
                    max_batch: int | None = None) -> "Executor":
        """An executor over the files of an hs-export directory (HsError naming any missing file)."""
        raise HsError(f"executor {cls.name!r} cannot run from an export directory; use Inverter.from_checkpoint(...)")

    # ---- the contract -------------------------------------------------------------------------------------------
    def io(self, graph: str) -> GraphIO:
        """The graph's I/O with a dynamic batch "B" (dtype = precision's, Δ shapes per `modes` / `ohwi`)."""
        return graph_io(self.cfg, graph, self.modes, "B", self.ohwi, self.precision)

    def check(self, max_batch: int) -> None:
        """HsError (one line) if this executor cannot serve batches up to `max_batch`; called before allocation."""
        if self.max_batch is not None and max_batch > self.max_batch:
            raise HsError(f"max_batch={max_batch} exceeds what executor {self.name!r} was built for "
                          f"(max {self.max_batch}); rebuild with hs-export --max-batch {max_batch} or lower it")

    def prepare(self, max_batch: int) -> None:
        """Allocate the executor's own state (contexts, workspaces) once; after `check`, before any `run`."""
        return None

    def prepare_batch(self, batch: int) -> None:
        """Create the per-batch state (e.g. TensorRT execution contexts with their input shapes) that `run` at
        `batch` needs, once per batch; the Inverter calls it before its first call at `batch`, outside any CUDA-graph
        capture (fixed-batch graphs run at their own batch: prepare that one in `prepare`). Default: nothing."""
        return None

    def use_stream(self, stream) -> None:
        """The Inverter's default stream (CUDA: a torch.cuda.Stream; called once by the Inverter's constructor after
        `prepare`, before warm-up; never on CPU). An executor whose backend fixes its stream at setup (onnxruntime's
        CUDA EP: user_compute_stream) adopts it here; `run` still receives each call's stream. Default: nothing."""
        return None

    @abc.abstractmethod
    def run(self, graph: str, bindings: Mapping[str, "torch.Tensor"], batch: int, stream) -> None:
        """Run `graph` at `batch` reading its inputs from and writing its outputs into `bindings` (every I/O name of
        `io(graph)` -> a contiguous tensor [batch, ...] of the contract dtype on `device`), enqueued on `stream`
        (torch.cuda.Stream, possibly capturing; None on CPU). No host sync; no allocation of own buffers."""

    def close(self) -> None:
        """Release backend resources (sessions, engines, contexts). Idempotent."""
        return None

    def describe(self) -> dict:
        """JSON-able facts for logs and benchmarks (name, precision, device, layout, backend versions)."""
        return {"executor": self.name, "precision": self.precision, "device": str(self.device),
                "delta_layout": "OHWI" if self.ohwi else "OIHW",
                "per_channel_layers": sorted(k for k, v in self.modes.items() if v == DeltaMode.PER_CHANNEL)}
