"""The one timing harness of the benchmarks (`hs-bench`, `hs-bench kernels`, `hs-bench tune`, benchmarks.runtime).

`Timer(device)`: on a CUDA device, two CUDA events on the caller's current stream around the timed calls (`b` is
recorded after the last call returns, so host work inside a call that the GPU waits for is counted); on the CPU,
`time.perf_counter` around the calls (the CPU fallback: a dry run of the harness, not a GPU figure).

    t = Timer("cuda")
    t.throughput_ms(fn, reps)   # ms per call: `reps` back-to-back calls, one sync after the last
    t.samples_ms(fn, reps)      # [ms] one per call, each call synced on its own (per-call latency)
    t.latency_ms(fn, reps)      # the median of samples_ms

`kernel_us(fn, warmup, iters, device)` is the kernel benchmarks' per-call figure: on CUDA, `fn` captured in a CUDA
graph of enough back-to-back calls for >= 50 µs of GPU work (so Python's replay cost stays hidden for small kernels),
`reps` replays per sample (>= 200 µs) between the events, the median over `iters` samples, per call; eager calls when
`fn` synchronizes the host (torch's sync-debug "error" mode) or capture fails (the reason lands in CAPTURE_FAILURES).
On the CPU: the median of `iters` perf_counter samples of one call each.
"""

from __future__ import annotations

import statistics
import time
from typing import Callable

import torch

from hyperstyle_trt.core.device import is_cuda
from hyperstyle_trt.core.errors import one_line

CAPTURE_FAILURES: list[str] = []  # one line per capture error in this process (a failed capture can leave torch's
# allocator unable to capture again, so later rows are eager too: `hs-bench kernels`' goal lines say so)


class Timer:
    """CUDA events on the current stream of a CUDA `device`, perf_counter on "cpu" (module docstring)."""

    def __init__(self, device="cpu"):
        self.cuda = is_cuda(device)

    def sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize()

    def throughput_ms(self, fn: Callable[[], object], reps: int) -> float:
        """ms per call over `reps` back-to-back calls of `fn`, one sync after the last (pending work is synced
        first)."""
        self.sync()
        if not self.cuda:
            t0 = time.perf_counter()
            for _ in range(reps):
                fn()
            return (time.perf_counter() - t0) * 1e3 / reps
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        for _ in range(reps):
            fn()
        b.record()
        b.synchronize()
        return a.elapsed_time(b) / reps

    def samples_ms(self, fn: Callable[[], object], reps: int) -> list[float]:
        """ms of each of `reps` calls, each synced on its own."""
        return [self.throughput_ms(fn, 1) for _ in range(reps)]

    def latency_ms(self, fn: Callable[[], object], reps: int) -> float:
        """The median of `samples_ms(fn, reps)`."""
        return statistics.median(self.samples_ms(fn, reps))


def sync_free(fn: Callable[[], object]) -> str | None:
    """None if fn() runs without a host synchronization (torch's sync-debug "error" mode), else why not."""
    prev = torch.cuda.get_sync_debug_mode()
    torch.cuda.set_sync_debug_mode("error")
    try:
        fn()
        return None
    except RuntimeError as e:
        return one_line(e)
    finally:
        torch.cuda.set_sync_debug_mode(prev)
        torch.cuda.synchronize()


def _capture(fn: Callable[[], object], calls: int) -> torch.cuda.CUDAGraph:
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for _ in range(calls):
            fn()
    return graph


def kernel_us(fn: Callable[[], object], warmup: int, iters: int, device="cuda") -> tuple[float, str]:
    """Median µs per call of `fn` and how it ran: "graph", "eager" (CUDA) or "cpu" (module docstring)."""
    if not is_cuda(device):
        for _ in range(max(1, warmup)):
            fn()
        return statistics.median(Timer("cpu").samples_ms(fn, iters)) * 1e3, "cpu"
    timer = Timer(device)
    side = torch.cuda.Stream()  # warm-up on a side stream, as torch.cuda.graph's documentation does before capture
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(max(1, warmup)):  # also compiles a Triton kernel before any capture
            fn()
    torch.cuda.current_stream().wait_stream(side)
    torch.cuda.synchronize()

    def sample(run: Callable[[], object], reps: int) -> float:
        return timer.throughput_ms(run, reps) * 1e3

    run, how, calls = fn, "eager", 1
    why = sync_free(fn)
    if why is None:
        try:
            graph = _capture(fn, 1)
            run, how = graph.replay, "graph"
            for _ in range(max(1, warmup)):
                run()
            one = sample(run, 3)
            if one < 50.0:
                calls = min(64, int(50.0 / max(one, 0.1)) + 1)
                del graph
                graph = _capture(fn, calls)
                run = graph.replay
                run()
        except RuntimeError as e:  # capture is not possible for this callable: time eager launches instead
            CAPTURE_FAILURES.append(one_line(e))
            run, how, calls = fn, "eager", 1
            torch.cuda.synchronize()
    else:
        CAPTURE_FAILURES.append(f"host sync: {why}")
    reps = max(1, min(100, int(200.0 / max(sample(run, 1), 1e-3)) + 1))
    return statistics.median(sample(run, reps) for _ in range(iters)) / calls, how
