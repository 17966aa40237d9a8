"""The runtime benchmark: ms/image of `runtime.Inverter` (the fast path) beside the fp32 eager reference.

    python -m hyperstyle_trt.benchmarks.runtime --json out.json            # on a GPU; FFHQ-1024, B=1 and 8, T=5
    hs-bench runtime --export hs_export --executor tensorrt --json out.json   # engines as the fast path
    hs-bench runtime --cpu-dry-run --config tiny --batches 1 --reps 1         # harness check on a CPU

For every batch size B, in one process and on the same inputs:
    fast       Inverter(torch executor, fp16, CUDA graph per (B, T)): invert() of a device fp16 batch; with --export,
               Inverter.from_export(DIR, executor=--executor) instead (its precision; reference = the export's model)
    eager16    the same Inverter configuration without CUDA graphs (what the graphs save: launch/Python overhead),
               timed with check_values=False as the fast path is
    reference  models.hyperstyle.HyperStyle.invert in fp32, eager, TF32 off (the numerical source of truth)
Timing: benchmarks.timing.Timer (the one harness): CUDA events on the caller's stream around `reps` calls after
`warmup` calls: `ms_per_call` with one sync at the end (throughput), `latency_ms` the median of per-call syncs;
ms_per_image = ms_per_call / B. The fast path is timed with check_values=False (device input vouched for: no host
sync); `checked_ms_per_image` with the default NaN/range check of device inputs (one host sync per call, so no
CPU/GPU overlap between calls).
Per-stage breakdown (CUDA events): each graph's executor call(s) captured on its own (Inverter.stages) and replayed:
w_encoder x1, hypernet x T, generator x (T+1) per inversion; for the reference the modules eagerly.
Error beside speed: PSNR of the fast path's final images against the reference ((y+1)/2 clamped, 10 log10(1/MSE))
and the worst per-layer relative Δ error. Goals (issue 12, H100/H200): B=8 <= 3 ms/image, B=1 <= 6 ms/image;
reported, not asserted. `--profile` adds the top CUDA kernels of one eager fp16 inversion (torch.profiler).

On a machine without CUDA it refuses with one line (exit 2) unless --cpu-dry-run, which runs the same harness with
host timers on the CPU (fp32 for both paths; the figures are not GPU figures and are marked so).
With --json the report is (re)written atomically after every finished batch size with "complete": false, and once
more at the end with "complete": true; on Ctrl-C / SIGINT (e.g. `timeout -s INT`) the rows finished so far are
written ("complete": false, "interrupted": true) and the exit status is 130.
"""

from __future__ import annotations

import math
import statistics
import time
from pathlib import Path
from typing import Callable

import click
import torch

from hyperstyle_trt.benchmarks.inputs import export_model
from hyperstyle_trt.benchmarks.timing import Timer
from hyperstyle_trt.core.atomic import write_json_atomic
from hyperstyle_trt.core.entry import interruptible, run as run_command
from hyperstyle_trt.core.errors import HsError
from hyperstyle_trt.core.sidecar import software_versions

GOALS_MS_PER_IMAGE = {1: 6.0, 8: 3.0}


def _images(b: int, s: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand((b, 3, s, s), generator=g) * 2 - 1).contiguous()  # [B,3,S,S] in [-1,1]


def _psnr01(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float(((((a.float() + 1) / 2).clamp(0, 1) - ((b.float() + 1) / 2).clamp(0, 1)) ** 2).mean())
    return math.inf if mse == 0 else 10 * math.log10(1 / mse)


def _stage_graph(fn: Callable[[object], None], cuda: bool) -> Callable[[], None]:
    """fn(stream) captured in a CUDA graph of its own (after an eager warm call on the capture stream)."""
    if not cuda:
        return lambda: fn(None)
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        fn(s)
    s.synchronize()
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g, stream=s):
        fn(s)
    return g.replay


def _reference_stages(model, x: torch.Tensor, T: int, timer: Timer, reps: int) -> dict:
    """ms per stage of the fp32 eager reference (modules as HyperStyle.invert calls them)."""
    with torch.no_grad():
        codes = model.encode(x)
        y = model.decoder(codes)
        step = model.hypernet(torch.cat([x, model.pool(y)], 1))
        w = timer.throughput_ms(lambda: model.encode(x), reps)
        g = timer.throughput_ms(lambda: model.decoder(codes, step), reps)
        h = timer.throughput_ms(lambda: model.hypernet(torch.cat([x, model.pool(y)], 1)), reps)
    return {"w_encoder_ms": w, "hypernet_ms": h, "generator_ms": g,
            "per_inversion_ms": {"w_encoder": w, "hypernet": T * h, "generator": (T + 1) * g}}


def _fast_stages(inv, b: int, T: int, timer: Timer, reps: int, cuda: bool) -> dict:
    st = {k: _stage_graph(fn, cuda and inv.use_graphs) for k, fn in inv.stages(b).items()}
    ms = {k: timer.throughput_ms(fn, reps) for k, fn in st.items()}
    return {"w_encoder_ms": ms["w_encoder"], "hypernet_ms": ms["hypernet"], "generator_ms": ms["generator"],
            "per_inversion_ms": {"w_encoder": ms["w_encoder"], "hypernet": T * ms["hypernet"],
                                 "generator": (T + 1) * ms["generator"]}}


def _profile_top(inv, x, T: int, top: int = 15) -> list[dict]:
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        inv.invert(x, n_iters=T)
        torch.cuda.synchronize()
    rows = []
    for e in sorted(prof.key_averages(), key=lambda e: -getattr(e, "device_time_total", 0))[:top]:
        rows.append({"name": e.key[:120], "calls": e.count, "cuda_ms": getattr(e, "device_time_total", 0) / 1e3})
    return rows


def _bench_batch(fast, eager, ref, b: int, T: int, reps: int, warmup: int, timer: Timer, cuda: bool,
                 profile: bool) -> dict:
    """One batch size: fast path, eager fp16 (GPU), fp32 reference, stages, errors (module docstring)."""
    x32 = _images(b, ref.cfg.hypernet.input_size, seed=b).to(fast.device)
    x = x32.to(fast.x.dtype)
    row: dict = {"batch": b, "n_iters": T}
    few, fewer = (max(3, reps // 4), max(2, reps // 5)) if cuda else (1, 1)  # a CPU dry run only checks the harness
    t1 = time.perf_counter()
    res = fast.invert(x, n_iters=T, copy=True)  # the first call at (b, T) captures its graph
    row["first_call_s"] = time.perf_counter() - t1
    for _ in range(warmup):
        fast.invert(x, n_iters=T)

    def call_fast():
        fast.invert(x, n_iters=T, check_values=False)  # the caller vouches for its device input: no host sync

    def call_checked():
        fast.invert(x, n_iters=T)  # NaN/range check of the device input: one 8-byte read, a host sync per call

    call = timer.throughput_ms(call_fast, reps)
    checked = timer.throughput_ms(call_checked, few)
    row["fast"] = {"ms_per_call": call, "ms_per_image": call / b,
                   "latency_ms": timer.latency_ms(call_fast, few),
                   "checked_ms_per_image": checked / b,
                   "stages": _fast_stages(fast, b, T, timer, reps, cuda)}
    if eager is not None:
        def call_eager():
            eager.invert(x, n_iters=T, check_values=False)  # like for like with `fast`: no host sync per call

        for _ in range(max(1, warmup)):
            call_eager()
        e = timer.throughput_ms(call_eager, few)
        row["eager16"] = {"ms_per_call": e, "ms_per_image": e / b}
    with torch.no_grad():
        out = ref.invert(x32, n_iters=T)
        r = timer.throughput_ms(lambda: ref.invert(x32, n_iters=T), fewer)
    row["reference"] = {"ms_per_call": r, "ms_per_image": r / b,
                        "stages": _reference_stages(ref, x32, T, timer, fewer)}
    row["speedup_vs_reference"] = r / call
    row["psnr_db"] = min(_psnr01(res.images[i].cpu(), out.image[i].cpu()) for i in range(b))
    d_rel = {k: float((res.deltas[k].float() - d).abs().max() / d.abs().max().clamp_min(1e-12))
             for k, d in out.deltas.items()}
    worst = max(d_rel, key=d_rel.get)
    row["delta_rel_err"] = {"worst_layer": worst, "worst": d_rel[worst], "median": statistics.median(d_rel.values())}
    goal = GOALS_MS_PER_IMAGE.get(b)
    row["goal_ms_per_image"] = goal
    row["goal_met"] = None if goal is None or not cuda else row["fast"]["ms_per_image"] <= goal
    if profile and cuda and eager is not None:
        row["profile_eager16_top_kernels"] = _profile_top(eager, x, T)
    return row


def run(config: str = "ffhq1024", batches=(1, 8), T: int = 5, reps: int = 20, warmup: int = 3,
        cpu_dry_run: bool = False, profile: bool = False, log=print, export: Path | None = None,
        executor: str = "tensorrt", json_path: Path | None = None) -> dict:
    """Measure (module docstring) and return the JSON-able report. json_path: write the report there (atomically)
    after every finished batch size ("complete": false) and at the end ("complete": true); on KeyboardInterrupt the
    partial report ("interrupted": true) is written and the KeyboardInterrupt re-raised."""
    from hyperstyle_trt.models.checkpoint import build_model
    from hyperstyle_trt.runtime import Inverter

    cuda = torch.cuda.is_available() and not cpu_dry_run
    if not cuda and not cpu_dry_run:
        raise HsError("benchmarks.runtime needs a CUDA GPU (torch.cuda.is_available() is False); nothing measured "
                      "(--cpu-dry-run checks the harness on a CPU)")
    dev = torch.device("cuda" if cuda else "cpu")
    prec = "fp16" if cuda else "fp32"
    if cuda:
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    timer = Timer("cuda" if cuda else "cpu")
    mb = max(batches)
    rows: list[dict] = []
    st: dict = {"config": config, "precision": prec, "fast": None, "build_s": None}

    def report(complete: bool, **extra) -> dict:
        fast = st["fast"]
        return {"benchmark": "runtime", "config": st["config"], "precision": st["precision"],
                "device": _device_name(cuda), "cpu_dry_run": not cuda,
                "note": None if cuda else "CPU dry run: host timers, fp32; not GPU figures",
                "versions": software_versions(), "inverter": None if fast is None else fast.describe(),
                "build_s": st["build_s"],
                "max_memory_allocated": torch.cuda.max_memory_allocated() if cuda else None,
                "complete": complete, **extra, "rows": list(rows)}

    def save(rep: dict) -> None:
        if json_path is not None:
            write_json_atomic(json_path, rep)

    try:
        t0 = time.perf_counter()
        if export is not None:
            model = export_model(Path(export))
            st["config"] = model.cfg.name
            fast = Inverter.from_export(export, executor=executor, max_batch=mb, n_iters=T, device=dev)
            eager = Inverter.from_export(export, executor=executor, max_batch=mb, n_iters=T, device=dev,
                                         cuda_graphs=False, warmup=False) if cuda else None
            st["precision"] = fast.precision
        else:
            model = build_model(config, quiet=True)
            fast = Inverter.from_model(model, executor="torch", device=dev, precision=prec, max_batch=mb, n_iters=T)
            eager = Inverter.from_model(model, executor="torch", device=dev, precision=prec, max_batch=mb,
                                        n_iters=T, cuda_graphs=False, warmup=False) if cuda else None
        st["fast"], st["build_s"] = fast, time.perf_counter() - t0
        ref = model.to(dev).eval()
        for b in batches:
            row = _bench_batch(fast, eager, ref, b, T, reps, warmup, timer, cuda, profile)
            log(_line(row, cuda))
            rows.append(row)
            save(report(False))  # what is finished survives a later interrupt or crash
    except KeyboardInterrupt:
        save(report(False, interrupted=True))
        raise
    final = report(True)
    save(final)
    return final


def _device_name(cuda: bool) -> str:
    if not cuda:
        return "cpu"
    p = torch.cuda.get_device_properties(0)
    return f"{p.name} (sm_{p.major}{p.minor})"


def _line(row: dict, cuda: bool) -> str:
    f, r, st = row["fast"], row["reference"], row["fast"]["stages"]["per_inversion_ms"]
    goal = "" if row["goal_met"] is None else \
        f" goal {row['goal_ms_per_image']} ms/img {'met' if row['goal_met'] else 'MISSED'}"
    eager = f" eager16 {row['eager16']['ms_per_image']:.2f}" if "eager16" in row else ""
    return (f"B={row['batch']} T={row['n_iters']}: fast {f['ms_per_image']:.2f} ms/img (call {f['ms_per_call']:.2f},"
            f" latency {f['latency_ms']:.2f}){eager} | reference {r['ms_per_image']:.2f} ms/img | x"
            f"{row['speedup_vs_reference']:.1f} | stages/inversion W {st['w_encoder']:.2f} H {st['hypernet']:.2f}"
            f" G {st['generator']:.2f} ms | PSNR {row['psnr_db']:.1f} dB, Δ rel {row['delta_rel_err']['worst']:.1e}"
            f"{goal}{'' if cuda else ' [CPU dry run]'}")


@click.command("runtime", help=__doc__.splitlines()[0], context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", default="ffhq1024", show_default=True, help="model preset")
@click.option("--batches", default="1,8", show_default=True, help="comma-separated batch sizes")
@click.option("--iters", type=int, default=5, show_default=True, help="T, refinement iterations")
@click.option("--reps", type=int, default=20, show_default=True)
@click.option("--warmup", type=int, default=3, show_default=True)
@click.option("--json", "json_path", type=click.Path(path_type=Path), default=None,
              help="write the report here (atomically)")
@click.option("--profile", is_flag=True, help="top CUDA kernels of one eager fp16 inversion")
@click.option("--cpu-dry-run", is_flag=True, help="run the harness on the CPU (not a measurement)")
@click.option("--export", type=click.Path(path_type=Path), default=None,
              help="hs-export dir: its engines/graphs are the fast path")
@click.option("--executor", default="tensorrt", show_default=True,
              help="executor for --export (tensorrt | onnxruntime)")
@interruptible
def cli(config, batches, iters, reps, warmup, json_path, profile, cpu_dry_run, export, executor) -> int:
    try:
        sizes = tuple(int(v) for v in batches.split(","))
        if not sizes or min(sizes) < 1 or iters < 1 or reps < 1:
            raise ValueError
    except ValueError:
        raise HsError(f"--batches must be positive integers (got {batches!r}); --iters/--reps >= 1") from None
    try:
        run(config, sizes, iters, reps, warmup, cpu_dry_run, profile, export=export, executor=executor,
            json_path=json_path)
    except KeyboardInterrupt:
        if json_path is not None:
            click.echo(f'partial report ("complete": false) in {json_path}', err=True)
        raise
    if json_path is not None:
        click.echo(f"wrote {json_path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """`python -m hyperstyle_trt.benchmarks.runtime` / `hs-bench runtime` through core.entry.run: 0, or 2 with one
    `error:` line (no GPU without --cpu-dry-run, bad --batches), 130 on Ctrl-C (the partial report is written)."""
    return run_command(cli, argv)


if __name__ == "__main__":
    main()
