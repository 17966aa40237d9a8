"""`hs-bench`'s measurement: the shared state of one run (Ctx), the figures (percentiles, PSNR, error vs the
reference, device memory) and the feed-forward protocol, timed with benchmarks.timing.Timer.

Feed-forward methods: `warmup` calls; then `repeats` calls each timed on its own (per-batch latency: min / median /
max, cv, and p95 / p99 where the sample count supports them, benchmarks.spread); then `repeats` calls with one sync
after the last (throughput; ms/image = that time / (repeats * batch)). `spread` judges whether the figures are noisy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from hyperstyle_trt.benchmarks.bench_config import BenchConfig
from hyperstyle_trt.benchmarks.spread import timing_stats, verdict
from hyperstyle_trt.benchmarks.timing import Timer
from hyperstyle_trt.core.errors import HsError


class Unavailable(Exception):
    """The method cannot run on this machine; the message is the reason recorded in the JSON."""


@dataclass
class Ctx:
    """Shared state of one benchmark run: the model, the input batch x [B,3,S,S] (device, fp32, [-1,1])."""

    cfg: BenchConfig
    device: torch.device
    model: object
    x: torch.Tensor
    warmup: int
    repeats: int
    baseline_steps: int | None
    max_batch: int
    progress: object = None
    notes: list[str] = field(default_factory=list)
    ref_images: torch.Tensor | None = None
    _lpips: dict = field(default_factory=dict)

    @property
    def timer(self) -> Timer:
        return Timer(self.device)

    def sync(self) -> None:
        self.timer.sync()

    def lpips(self, net: str):
        if net not in self._lpips:
            from hyperstyle_trt.models.lpips import LPIPS

            try:
                self._lpips[net] = LPIPS(net, self.cfg.lpips_weights).to(self.device)
            except HsError as e:
                raise Unavailable(str(e)) from None
        return self._lpips[net]

    def advance(self, task) -> None:
        """One step of the progress bar `task` (none without a progress display)."""
        if self.progress is not None and task is not None:
            self.progress.advance(task)


@dataclass
class Runner:
    """fn(x) runs one inversion of x [b,3,S,S] and returns (images [b,3,size,size], pooled [b,3,S,S])."""

    fn: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
    info: dict = field(default_factory=dict)
    close: Callable[[], None] = lambda: None


# ---- figures ---------------------------------------------------------------------------------------------------------
def percentiles(ms: list[float]) -> dict[str, float]:
    """p50 / p95 / p99 / mean / n of `ms`, whatever n is (the benchmark records use spread.timing_stats, which omits
    the percentiles n cannot support)."""
    a = np.asarray(ms, dtype=np.float64)
    return {"p50": float(np.percentile(a, 50)), "p95": float(np.percentile(a, 95)), "p99": float(np.percentile(a, 99)),
            "mean": float(a.mean()), "n": int(a.size)}


def spread_record(stats: dict, unit: str, throughput_ms: float | None = None) -> dict:
    """A method's `spread`: the unit of its samples, n / min / median / max / cv / max_over_min from `stats`
    (spread.timing_stats) and the noisy verdict (spread.verdict) with its reasons."""
    keys = ("n", "min", "median", "max", "cv", "max_over_min")
    return {"unit": unit, **{k: stats[k] for k in keys}, **verdict(stats, throughput_ms)}


def psnr(mse01: float) -> float:
    return float("inf") if mse01 <= 0 else 10.0 * math.log10(1.0 / mse01)


def quality(pooled: torch.Tensor, x: torch.Tensor) -> dict[str, float]:
    """MSE on [0,1] and PSNR (dB) of the output pooled to the input size vs the input."""
    mse = float(((pooled.float().to(x.device) - x.float()) / 2).pow(2).mean())
    return {"mse": mse, "psnr_db": psnr(mse)}


def vs_reference(images: torch.Tensor, ref: torch.Tensor) -> dict[str, float]:
    """max |Δ| (in [-1,1] units) and PSNR (dB, on [0,1]) of the full-size output vs hyperstyle-ref's."""
    d = images.float().to(ref.device) - ref.float()  # an executor may return host tensors (onnxruntime on CPU)
    return {"max_abs_err": float(d.abs().max()), "psnr_db": psnr(float((d / 2).pow(2).mean()))}


def mem_start(dev: torch.device) -> int | None:
    """Device bytes in use now (CUDA; the allocator's peak is reset), None elsewhere."""
    if dev.type != "cuda":
        return None
    torch.cuda.synchronize(dev)
    torch.cuda.reset_peak_memory_stats(dev)
    free, total = torch.cuda.mem_get_info(dev)
    return total - free


def mem_end(dev: torch.device, used0: int | None) -> dict:
    """torch's allocator peak and the device's used-memory growth since `mem_start` (CUDA only)."""
    if dev.type != "cuda":
        return {"peak_torch_bytes": None, "device_used_growth_bytes": None, "note": "device memory: CUDA only"}
    torch.cuda.synchronize(dev)
    free, total = torch.cuda.mem_get_info(dev)
    return {"peak_torch_bytes": int(torch.cuda.max_memory_allocated(dev)),
            "device_used_growth_bytes": int(total - free - used0)}


# ---- feed-forward protocol -------------------------------------------------------------------------------------------
def tile(x: torch.Tensor, b: int) -> torch.Tensor:
    """x [n,...] repeated cyclically to b rows [b,...]."""
    return x[torch.arange(b, device=x.device) % x.shape[0]].contiguous()


def measure_feedforward(ctx: Ctx, name: str, runner: Runner, task=None) -> dict:
    """Warm-up, per-batch latency (each call timed on its own), throughput (one sync after `repeats` calls),
    quality; hyperstyle-ref's output becomes the reference of the others' error columns."""
    x, timer = ctx.x, ctx.timer
    b = x.shape[0]
    for _ in range(ctx.warmup):
        runner.fn(x)
        ctx.advance(task)
    timer.sync()
    lat = []
    for _ in range(ctx.repeats):
        lat.append(timer.throughput_ms(lambda: runner.fn(x), 1))
        ctx.advance(task)
    last: list = []

    def call() -> None:
        last[:] = [runner.fn(x)]  # the last call's outputs are the ones judged below
        ctx.advance(task)

    total_ms = timer.throughput_ms(call, ctx.repeats) * ctx.repeats
    images, pooled = last[0]
    stats = timing_stats(lat)
    rec = {"latency_ms_per_batch": stats,
           "spread": spread_record(stats, "ms per batch (each call timed on its own)", total_ms / ctx.repeats),
           "throughput": {"batches": ctx.repeats, "ms_per_batch": total_ms / ctx.repeats,
                          "images_per_s": 1e3 * b * ctx.repeats / total_ms},
           "ms_per_image": total_ms / (ctx.repeats * b),
           "quality": quality(pooled, x) | {"final": True}}
    if name == "hyperstyle-ref":
        ctx.ref_images = images.float().clone()
    elif ctx.ref_images is not None:
        rec["vs_ref"] = vs_reference(images, ctx.ref_images)
    return rec


def sweep_feedforward(ctx: Ctx, runner: Runner, batches: tuple[int, ...], task=None) -> list[dict]:
    """ms/image at each batch of the sweep (throughput: one sync after max(2, repeats // 2) calls, 1 warm-up)."""
    out = []
    n = max(2, ctx.repeats // 2)
    timer = ctx.timer
    for bs in batches:
        xb = tile(ctx.x, bs)
        runner.fn(xb)
        ms = timer.throughput_ms(lambda: runner.fn(xb), n) * n  # noqa: B023 - called here, within this iteration
        out.append({"batch": bs, "ms_per_batch": ms / n, "ms_per_image": ms / (n * bs), "calls": n})
        ctx.advance(task)
    return out
