"""`hs-bench --batch 8`: end-to-end inversion benchmark, HyperStyle paths against optimization baselines.

The run (`run_bench`, one frozen BenchConfig in, one JSON-able record out) composes: bench_config (the flags,
validated), inputs (images, an export's model), methods (the registry: projector, pti, hyperstyle-ref,
hyperstyle-fast, hyperstyle-trt, hyperstyle-ort), measure (the feed-forward protocol and the figures, timed with
benchmarks.timing) and report (table, bench.json, plots). A method that cannot run here is recorded with status
"skipped" and its reason; one that raises is "failed" with the error's first line, and the others still run.

Measurement, feed-forward methods: `warmup` calls; then `repeats` calls each timed on its own (per-batch latency
p50/p95/p99); then `repeats` calls with one sync after the last (throughput; ms/image = that time / (repeats *
batch)). Optimisation methods run `baseline_steps` steps of their full schedule with a sync around every step;
their full-run time is setup + mean step time x full steps ("projected from K measured steps", labelled in every
output) unless --full-baselines runs them to completion. Peak device memory is torch's allocator peak
(CUDA only; TensorRT / onnxruntime allocate outside it, so their figure also records the device's used-memory
growth). Reconstruction: MSE / PSNR (on [0,1]) of the output pooled to the input size vs the input; fast paths
also: max |Δ| and PSNR of the full-size output vs hyperstyle-ref's.

Trust (benchmarks.spread): each method's `spread` (n, min / median / max, cv, noisy and why), p95 / p99 only where
the sample count supports them, the machine's load at the start and end (`machine`) and the rules used (`trust`).
A baseline's quality after K measured steps is labelled so (`quality.final` false, `quality.after`).

Outputs in --out: bench.json (every figure, the environment, the command line), ms_per_image.png (log scale) and,
with --sweep, ms_per_image_vs_batch.png; on the terminal a summary table that fits 100 columns (benchmarks.table),
the full table with --wide.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
from rich.markup import escape

from hyperstyle_trt.benchmarks.bench_config import (CPU_DEFAULTS, FAST, GPU_DEFAULTS, METHOD_NAMES, OPTIM,
                                                    BenchConfig)
from hyperstyle_trt.benchmarks.inputs import export_model, load_images
from hyperstyle_trt.benchmarks.measure import (Ctx, Unavailable, mem_end, mem_start, measure_feedforward,
                                               percentiles, psnr, quality, sweep_feedforward, vs_reference)
from hyperstyle_trt.benchmarks.methods import METHODS, Method, optim_steps_total, ref_runner
from hyperstyle_trt.benchmarks.report import speedups, write_outputs, write_partial
from hyperstyle_trt.benchmarks.spread import busy, machine_load, rules
from hyperstyle_trt.benchmarks.table import SUMMARY_WIDTH, print_table
from hyperstyle_trt.core.device import is_cuda, torch_device
from hyperstyle_trt.core.errors import HsError, one_line

__all__ = ["METHOD_NAMES", "METHODS", "OPTIM", "FAST", "BenchConfig", "run_bench", "environment", "pick_device",
           "percentiles", "psnr", "quality", "vs_reference"]


def environment(cfg: BenchConfig, device: torch.device, model) -> dict:
    """Versions (torch, CUDA, Triton, TensorRT flavor), driver, GPU, threads, config, weights, command line."""
    from hyperstyle_trt.core.sidecar import software_versions

    env = software_versions()
    try:
        import triton

        env["triton"] = triton.__version__
    except ImportError:
        env["triton"] = None
    from hyperstyle_trt.core import flavor

    if device.type == "cuda":
        try:
            fl = flavor.get_flavor()
            env["tensorrt_flavor"], env["tensorrt"] = fl.name, fl.version
        except HsError as e:
            env["tensorrt_flavor"], env["tensorrt"] = None, f"none: {one_line(e)}"
    else:  # no engine can run: name the installed flavor from its metadata, without importing its bindings
        import importlib.metadata as md

        found = flavor.available_flavors()
        dists = md.packages_distributions()
        env["tensorrt_flavor"] = found[0] if found else None
        env["tensorrt"] = (next((md.version(d) for d in dists.get(found[0], [])), "unknown") if found else
                           "none installed")
    env["driver"] = None
    if device.type == "cuda":
        try:
            v = torch._C._cuda_getDriverVersion()  # e.g. 12080 -> "12.8" (the CUDA version the driver supports)
            env["driver"] = f"CUDA driver API {v // 1000}.{(v % 1000) // 10}"
        except Exception:  # noqa: BLE001 - a private torch call: its absence only loses this field
            pass
        p = torch.cuda.get_device_properties(device)
        env["gpu_memory_bytes"] = int(p.total_memory)
        # torch's defaults, left as they are (the reference is "fp32" with whatever TF32 use these allow)
        env["tf32"] = {"cudnn": bool(torch.backends.cudnn.allow_tf32),
                       "matmul": bool(torch.backends.cuda.matmul.allow_tf32)}
    env["device"] = str(device)
    env["cpu_threads"] = torch.get_num_threads()
    env["config"] = model.cfg.name
    env["weights"] = ("embedded default (deterministic, untrained): timing is faithful, images are not"
                      if getattr(model, "is_default", False) else
                      {"export_dir": cfg.source.export_dir} if cfg.source.export_dir else
                      {"checkpoint": cfg.source.checkpoint, "w_encoder": cfg.source.w_encoder})
    env["command_line"] = " ".join(["hs-bench", *cfg.argv])
    return env


def pick_device(name: str) -> torch.device:
    """--device ("auto" | "cpu" | "cuda" | "cuda:N") -> the torch.device to run on; HsError when CUDA is asked for
    and absent."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if is_cuda(name) and not torch.cuda.is_available():
        raise HsError(f"--device {name}: CUDA is not available on this machine (use --device cpu)")
    return torch_device(name)


# ---- the run ---------------------------------------------------------------------------------------------------------
def run_bench(cfg: BenchConfig, console=None) -> dict:
    """Run every selected method, write bench.json and the plots into cfg.out, print the table. Returns the record."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    load_start = machine_load()
    if console is None:
        console = Console(stderr=True)
        if not console.is_terminal:  # logs: the summary in 100 columns; --wide: the whole table, one line a method
            console = Console(stderr=True, width=230 if cfg.wide else SUMMARY_WIDTH)
    device = pick_device(cfg.source.device)
    try:
        import matplotlib  # noqa: F401 - checked before any work: the plots need it
    except ImportError:
        raise HsError("hs-bench needs matplotlib (pip install 'hyperstyle-trt[bench]')") from None
    out = Path(cfg.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / ".hs_probe").write_bytes(b"")
        (out / ".hs_probe").unlink()
    except OSError as e:
        raise HsError(f"--out {out} is not writable: {e.strerror}") from None
    dflt = GPU_DEFAULTS if device.type == "cuda" else CPU_DEFAULTS
    warmup = dflt["warmup"] if cfg.warmup is None else cfg.warmup
    repeats = dflt["repeats"] if cfg.repeats is None else cfg.repeats
    steps = None if cfg.full_baselines else (cfg.baseline_steps or dflt["baseline_steps"])
    notes = []
    if busy(load_start):
        notes.append(busy(load_start))
        console.print(f"[yellow]{escape(notes[-1])}[/yellow]")
    if device.type == "cpu":
        notes.append(f"no CUDA GPU: running on CPU with warm-up {warmup}, {repeats} timed batches and "
                     f"{'all' if steps is None else steps} baseline steps; CPU figures, not GPU ones")
        console.print(f"[yellow]{escape(notes[-1])}[/yellow]")

    from hyperstyle_trt.models.checkpoint import build_model

    config = cfg.source.config
    if device.type == "cpu" and config is None and cfg.source.checkpoint is None and cfg.source.export_dir is None:
        config = "tiny"
        notes.append("no CUDA GPU and no --config: the tiny config runs (FFHQ-1024 on a CPU takes hours with the "
                     "baselines; pass --config ffhq1024 to run it anyway)")
        console.print(f"[yellow]{escape(notes[-1])}[/yellow]")
    if cfg.source.export_dir is not None:  # the export's own model is the reference (and the baselines' generator)
        model = export_model(cfg.source.export_dir, device=device)
    else:
        model = build_model(config, cfg.source.checkpoint, cfg.source.w_encoder, device=device, quiet=True)
    if getattr(model, "is_default", False):
        notes.append("embedded default weights (deterministic, untrained): timing is faithful, images are not")
    x, img_note = load_images(cfg.images, cfg.batch, model.cfg.hypernet.input_size)
    x = x.to(device)
    max_batch = max([cfg.batch, *cfg.sweep])
    ctx = Ctx(cfg, device, model, x, warmup, repeats, steps, max_batch, notes=notes)
    record = {"schema": 1, "kind": "hs-bench e2e", "config": cfg.to_dict(), "environment": environment(cfg, device,
                                                                                                       model),
              "batch": cfg.batch, "iters": cfg.iters, "images": img_note, "warmup": warmup, "repeats": repeats,
              "baseline_steps": steps, "notes": notes, "methods": {}, "sweep": {}, "trust": rules(),
              "machine": {"cpu_count": load_start["cpu_count"], "load_start": load_start["load"], "load_end": None}}
    # the reference runs first when selected (the fast paths' error columns need its output); otherwise its output
    # is computed once, untimed, for those columns
    order = sorted(cfg.methods, key=lambda m: (m != "hyperstyle-ref", METHOD_NAMES.index(m)))
    with Progress(TextColumn("{task.description:<16}"), BarColumn(bar_width=24), MofNCompleteColumn(),
                  TimeElapsedColumn(), TextColumn("{task.fields[status]}", markup=False), console=console,
                  transient=False) as prog:
        ctx.progress = prog
        if "hyperstyle-ref" not in cfg.methods and any(m in FAST for m in cfg.methods):
            t = prog.add_task("reference output", total=1, status="")
            ctx.ref_images = ref_runner(ctx).fn(x)[0].float().clone()
            prog.advance(t)
        for name in order:
            record["methods"][name] = _run_method(ctx, METHODS[name], prog)
            write_partial(record, out)
        record["methods"] = {m: record["methods"][m] for m in cfg.methods}
    record["machine"]["load_end"] = machine_load()["load"]
    speedups(record)
    paths = write_outputs(record, out)
    print_table(record, console, wide=cfg.wide)
    for p in paths:
        console.print(f"wrote {escape(str(p))}")
    return record


def _run_method(ctx: Ctx, m: Method, prog) -> dict:
    """One method's record: its figures and status "ok", or "skipped" / "failed" with the reason. Its progress bar
    exists from the start, stops when the method ends, and shows "skipped: <reason>" / "failed: <reason>"."""
    rec: dict = {"name": m.name, "kind": m.kind, "description": m.help}
    if m.kind == "optimization":
        total = optim_steps_total(m.name, ctx.x.shape[0], ctx.baseline_steps)
    else:
        total = ctx.warmup + 2 * ctx.repeats + (len(ctx.cfg.sweep) if m.name in FAST and ctx.cfg.sweep else 0)
    task = prog.add_task(m.name, total=total, status="")
    used0 = mem_start(ctx.device)
    t0 = time.perf_counter()
    runner = None
    try:
        if m.kind == "optimization":
            rec |= m.run(ctx, task)
        else:
            runner = m.runner(ctx)
            rec["setup_s"] = time.perf_counter() - t0
            rec["runner"] = runner.info
            rec |= measure_feedforward(ctx, m.name, runner, task)
            if ctx.cfg.sweep and m.name in FAST:
                rec["sweep"] = sweep_feedforward(ctx, runner, ctx.cfg.sweep, task)
        rec["status"] = "ok"
        rec["memory"] = mem_end(ctx.device, used0)
    except Unavailable as e:
        rec |= {"status": "skipped", "reason": str(e)}
        prog.console.print(f"[yellow]{m.name}: skipped: {escape(str(e))}[/yellow]")
    except HsError as e:
        rec |= {"status": "failed", "reason": str(e)}
        prog.console.print(f"[red]{m.name}: failed: {escape(str(e))}[/red]")
    except Exception as e:  # noqa: BLE001 - one method's failure is recorded; the others still run
        msg = one_line(e)
        rec |= {"status": "failed", "reason": msg if msg == type(e).__name__ else f"{type(e).__name__}: {msg}"}
        prog.console.print(f"[red]{m.name}: failed: {escape(rec['reason'])}[/red]")
    finally:
        if runner is not None:
            try:
                runner.close()
            except Exception:  # noqa: BLE001 - closing a backend must not lose the figures
                pass
        if ctx.device.type == "cuda":
            torch.cuda.empty_cache()
    prog.update(task, status=bar_status(rec))
    prog.stop_task(task)  # its elapsed time stops here, whatever its count reached
    rec["wall_s"] = time.perf_counter() - t0
    return rec


def bar_status(rec: dict, width: int = 36) -> str:
    """The text beside a method's progress bar once it ends: "", "noisy", or "skipped: <reason>" / "failed: <reason>"
    cut to `width` characters (the full reason is in the table, the log line above and bench.json)."""
    st = rec.get("status")
    if st == "ok":
        return "noisy" if (rec.get("spread") or {}).get("noisy") else ""
    text = " ".join(f"{st}: {rec.get('reason', '')}".split())
    return text if len(text) <= width else text[:width - 1] + "…"
