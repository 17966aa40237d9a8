"""In-process soak: thousands of inversions through ONE Inverter per executor; resident memory and output drift.

    python -m hyperstyle_trt.benchmarks.soak --calls 10000 --out benchmarks/results/soak_inprocess.json
    python -m hyperstyle_trt.benchmarks.soak --calls 200 --sample-every 10 --warmup 50 --check-every 50

Each executor (default torch and onnxruntime) runs in its own child process (RSS is per process); the children run
at the same time, each with `--threads` torch threads; progress
lines (one per RSS sample) go to stderr. A child builds the Inverter the way hs-invert does
(`Inverter.from_source(ModelSource(config=..., device="cpu", executor=...), max_batch=...)`; onnxruntime runs the
plain graphs of the per-user graph cache, exported there once) and then makes `calls` invert calls:

    batch sizes   a fixed schedule (numpy seed `--seed`): uniform over 1..max_batch+1; B = max_batch+1 is split into
                  chunks by the Inverter (copied results); odd calls pass float [B,3,S,S] in [-1,1], even calls
                  uint8 [B,H,W,3] photos of another size (resized by the Inverter); every other call asks copy=True.
    RSS           current resident set (/proc/self/statm, not the ru_maxrss peak) after construction (call 0) and
                  after every `--sample-every` calls. growth_kib_per_1000_calls: the least-squares slope of RSS over
                  the samples taken at calls >= `--warmup` (the warm-up ones are left out: allocator pools and
                  per-batch-size plans fill there), in KiB per 1,000 calls; plus RSS first / after warm-up / last.
    budget        with --budget-s, a child stops at its first RSS sample past that many seconds of calls (never in
                  the warm-up): calls_done < calls and stopped_by_budget in its row.
    drift         call 1 and every `--check-every`-th call invert the same probe batch (float, B = max_batch+1,
                  chunked); its images and codes are compared with (a) call 1's output of this Inverter
                  (max_abs_vs_first: 0.0 means bit-identical) and (b) a fresh reference: models.hyperstyle.HyperStyle
                  built from the same embedded weights before the loop (no Inverter, no executor), its own invert of
                  the probe kept (max_abs_vs_reference). drift = any check differing from call 1 in either figure.
    gc            after the warm-up and at the end (both after gc.collect()): live Python objects and live
                  torch.Tensor objects (gc.get_objects()).

The parent prints one line per executor and writes the JSON (the command that made it, the settings, the machine,
one row per executor). Exit 2 with one line when an option is bad or a child fails.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import time
import warnings

import click

from hyperstyle_trt.core.entry import interruptible, run

EXECUTORS = ("torch", "onnxruntime")
PHOTO_SIZE = 80  # side of the uint8 photos of even calls (resized to the model input by the Inverter)


def rss_kib() -> int:
    """Current resident set size of this process in KiB (/proc/self/statm's second field x page size)."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") // 1024


def batch_schedule(calls: int, max_batch: int, seed: int) -> list[int]:
    """`calls` batch sizes, uniform over 1..max_batch+1 (numpy RandomState(seed)): the same list for every executor."""
    import numpy as np

    return [int(b) for b in np.random.RandomState(seed).randint(1, max_batch + 2, size=calls)]


def growth_per_1000(samples: list[tuple[int, int]], warmup: int = 0) -> float | None:
    """Least-squares slope of RSS (KiB) over call number for the samples at calls >= warmup, x 1000 (KiB per 1,000
    calls); None with fewer than 2 such samples or no spread in calls. (Also benchmarks.load's server growth.)"""
    import numpy as np

    pts = [(c, k) for c, k in samples if c >= warmup]
    if len(pts) < 2 or len({c for c, _ in pts}) < 2:
        return None
    c, k = np.array(pts, dtype=np.float64).T
    return float(np.polyfit(c, k, 1)[0] * 1000.0)


def _live() -> dict:
    import torch

    gc.collect()
    objs = gc.get_objects()
    with warnings.catch_warnings():  # isinstance on torch's deprecated module attributes warns
        warnings.simplefilter("ignore")
        return {"objects": len(objs), "tensors": sum(isinstance(o, torch.Tensor) for o in objs)}


def _child(executor: str, config: str, calls: int, max_batch: int, iters: int, sample_every: int, warmup: int,
           check_every: int, seed: int, threads: int, budget_s: float | None) -> dict:
    """One executor's soak in this process (see the module docstring); returns its row."""
    import torch

    from hyperstyle_trt.core.source import ModelSource
    from hyperstyle_trt.models.checkpoint import build_model
    from hyperstyle_trt.runtime import Inverter

    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    inv = Inverter.from_source(ModelSource(config=config, device="cpu", executor=executor), max_batch=max_batch,
                               n_iters=iters)
    setup_s = time.perf_counter() - t0
    S = inv.input_size
    gen = torch.Generator().manual_seed(seed)
    probe = torch.rand(max_batch + 1, 3, S, S, generator=gen) * 2 - 1

    model = build_model(config, quiet=True)  # the fresh reference: the fp32 model on the same weights, no Inverter
    with torch.no_grad():
        out = model.invert(probe, n_iters=iters)
    ref = {"images": out.image.clone(), "codes": out.codes.clone()}
    del model, out

    def maxabs(a, b) -> float:
        return float((a.float() - b.float()).abs().max())

    schedule = batch_schedule(calls, max_batch, seed)
    samples = [(0, rss_kib())]
    checks, first, live_warm = [], None, None
    counts = {b: 0 for b in range(1, max_batch + 2)}  # calls per batch size, as run (check calls: max_batch+1)
    t1 = time.perf_counter()
    done = 0
    for k in range(1, calls + 1):
        if k == 1 or k % check_every == 0:
            res = inv.invert(probe, copy=True)
            counts[max_batch + 1] += 1
            if first is None:
                first = (res.images.clone(), res.codes.clone())
            checks.append({"call": k,
                           "max_abs_vs_first": max(maxabs(res.images, first[0]), maxabs(res.codes, first[1])),
                           "max_abs_vs_reference": {"images": maxabs(res.images, ref["images"]),
                                                    "codes": maxabs(res.codes, ref["codes"])}})
        else:
            b = schedule[k - 1]
            counts[b] += 1
            if k % 2:
                x = torch.rand(b, 3, S, S, generator=gen) * 2 - 1
            else:
                x = torch.randint(0, 256, (b, PHOTO_SIZE, PHOTO_SIZE, 3), generator=gen, dtype=torch.uint8).numpy()
            res = inv.invert(x, copy=k % 4 < 2)
            float(res.images[0, 0, 0, 0])  # read the result as a caller would
        del res
        done = k
        if k % sample_every == 0:
            samples.append((k, rss_kib()))
            print(f"soak {executor}: call {k}/{calls}, RSS {samples[-1][1] / 1024:.1f} MiB, "
                  f"{time.perf_counter() - t1:.0f} s", file=sys.stderr, flush=True)
        if k == warmup:
            live_warm = _live()
        if budget_s is not None and k % sample_every == 0 and k > warmup and time.perf_counter() - t1 > budget_s:
            break
    loop_s = time.perf_counter() - t1
    live_end = _live()
    c0 = checks[0]
    drift = any(c["max_abs_vs_first"] != 0.0 or c["max_abs_vs_reference"] != c0["max_abs_vs_reference"]
                for c in checks)
    after = [kib for c, kib in samples if c >= warmup]
    return {"executor": executor, "setup_s": round(setup_s, 2), "loop_s": round(loop_s, 1),
            "calls_done": done, "stopped_by_budget": done < calls, "s_per_call": round(loop_s / done, 4),
            "torch_threads": torch.get_num_threads(),
            "calls_per_batch_size": counts,
            "growth_kib_per_1000_calls": None if (g := growth_per_1000(samples, warmup)) is None else round(g, 1),
            "rss_first_mib": round(samples[0][1] / 1024, 1),
            "rss_after_warmup_mib": round(after[0] / 1024, 1) if after else None,
            "rss_last_mib": round(samples[-1][1] / 1024, 1), "rss_max_after_warmup_mib":
                round(max(after) / 1024, 1) if after else None,
            "rss_samples_kib": samples, "checks": checks, "drift": drift,
            "live_after_warmup": live_warm, "live_end": live_end}


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", default="tiny", show_default=True, help="Model preset (embedded default weights).")
@click.option("--executors", default=",".join(EXECUTORS), show_default=True,
              help="Executors, one child process each (comma-separated).")
@click.option("--calls", type=int, default=10000, show_default=True, help="Invert calls per executor.")
@click.option("--max-batch", type=int, default=2, show_default=True,
              help="The Inverter's max_batch (the schedule also sends max_batch+1, chunked).")
@click.option("--iters", type=int, default=1, show_default=True, help="HyperStyle iterations T per call.")
@click.option("--sample-every", type=int, default=500, show_default=True, help="Calls between RSS samples.")
@click.option("--warmup", type=int, default=1000, show_default=True,
              help="Calls left out of the growth slope (samples at calls >= this count).")
@click.option("--check-every", type=int, default=1000, show_default=True,
              help="Calls between drift checks (plus call 1).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the batch schedule and inputs.")
@click.option("--threads", type=int, default=1, show_default=True, help="torch threads per child.")
@click.option("--budget-s", type=float, default=None,
              help="Stop a child at its first RSS sample past this many seconds of calls (after the warm-up); its "
                   "row says calls_done.")
@click.option("--out", default=None, type=click.Path(dir_okay=False), help="Write the report as JSON here.")
@click.option("--child", default=None, hidden=True)
@interruptible
def cli(config, executors, calls, max_batch, iters, sample_every, warmup, check_every, seed, threads, budget_s, out,
        child):
    """Thousands of inversions through one Inverter per executor: RSS growth per 1,000 calls and output drift."""
    from hyperstyle_trt.core.errors import HsError

    for name, v in (("--calls", calls), ("--max-batch", max_batch), ("--iters", iters),
                    ("--sample-every", sample_every), ("--check-every", check_every), ("--threads", threads)):
        if v < 1:
            raise HsError(f"{name} must be an integer >= 1, got {v}")
    if not 0 <= warmup < calls:
        raise HsError(f"--warmup must be in 0..{calls - 1} (fewer than --calls), got {warmup}")
    if budget_s is not None and budget_s <= 0:
        raise HsError(f"--budget-s must be > 0 seconds, got {budget_s}")
    settings = [config, calls, max_batch, iters, sample_every, warmup, check_every, seed, threads, budget_s]
    if child:
        click.echo(json.dumps(_child(child, *settings)))
        return 0
    names = [e for e in executors.split(",") if e]
    bad = [e for e in names if e not in EXECUTORS]
    if bad or not names:
        raise HsError(f"--executors {bad or executors!r}: expected a comma-separated subset of {list(EXECUTORS)}")
    base = [sys.executable, "-m", "hyperstyle_trt.benchmarks.soak", "--config", config, "--calls", str(calls),
            "--max-batch", str(max_batch), "--iters", str(iters), "--sample-every", str(sample_every), "--warmup",
            str(warmup), "--check-every", str(check_every), "--seed", str(seed), "--threads", str(threads)]
    if budget_s is not None:
        base += ["--budget-s", str(budget_s)]
    t = time.perf_counter()
    procs = {e: subprocess.Popen(base + ["--child", e], stdout=subprocess.PIPE, text=True) for e in names}
    rows = []
    for e, p in procs.items():
        so, _ = p.communicate()
        if p.returncode != 0:
            for q in procs.values():
                if q.poll() is None:
                    q.kill()
            raise HsError(f"soak child {e} failed (exit {p.returncode}); its stderr is above")
        rows.append(json.loads(so.strip().splitlines()[-1]) | {"command": " ".join(base[1:] + ["--child", e])})
    for r in rows:
        click.echo(f"{r['executor']:12s} growth {r['growth_kib_per_1000_calls']} KiB/1000 calls after {warmup}  "
                   f"RSS {r['rss_first_mib']} -> {r['rss_after_warmup_mib']} -> {r['rss_last_mib']} MiB  "
                   f"drift {r['drift']}  {r['calls_done']} calls, {r['s_per_call']} s/call")
    if out:
        from hyperstyle_trt.benchmarks.cpu_default import _machine
        from hyperstyle_trt.benchmarks.spread import machine_load
        from hyperstyle_trt.core.atomic import write_json_atomic

        write_json_atomic(out, {"command": " ".join(["python"] + base[1:] + ["--executors", ",".join(names),
                                                                            "--out", str(out)]),
                                "config": config, "calls": calls, "max_batch": max_batch, "iters": iters,
                                "sample_every": sample_every, "warmup_calls": warmup, "check_every": check_every,
                                "seed": seed, "threads": threads, "budget_s": budget_s,
                                "wall_s": round(time.perf_counter() - t, 1),
                                "machine": _machine() | {"load_at_end": machine_load()["load"]}, "rows": rows})
    return 0


def main(argv: list[str] | None = None) -> int:
    return run(cli, argv)


if __name__ == "__main__":
    sys.exit(main())
