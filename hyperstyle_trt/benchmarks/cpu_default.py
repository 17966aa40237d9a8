"""CPU inversion per photo and peak memory, one fresh process per executor: what hs-invert's default path costs.

    python -m hyperstyle_trt.benchmarks.cpu_default                       # FFHQ-1024, B=1, T=5, min of 3
    python -m hyperstyle_trt.benchmarks.cpu_default --config tiny --executors onnxruntime,torch --repeats 2 \\
        --out /tmp/cpu_default.json

Each case runs in its own child process (so `ru_maxrss` is that case's peak alone), one after the other:
    onnxruntime  Inverter.from_source(ModelSource(device="cpu")): the CPU default (plain graphs from the graph
                 cache, export.graph_cache; exported first when the cache has no entry, which the row's setup_s
                 and peak then include: run once to fill it)
    torch        the same with executor="torch" (the default before onnxruntime became it)
    reference    models.hyperstyle.HyperStyle.invert (the model the runtime wraps; no Inverter)
A child builds its case (setup_s), inverts the same photo (B=1, uint8 -> resized to the model input) once to warm
up (first_s), then `repeats` times (s_per_img = the minimum, all times listed), and reports its own peak RSS
(`resource.getrusage(RUSAGE_SELF).ru_maxrss`, GiB) and each timed inversion's process CPU seconds (`cpu_s`, all
threads: the comparison that holds when other jobs load the machine). The parent prints a table and writes the
JSON (every row with the command that made it, the machine and versions).
"""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import time

import click

from hyperstyle_trt.core.entry import interruptible, run

CASES = ("onnxruntime", "torch", "reference")


def _photo(path: str | None):
    import numpy as np
    from PIL import Image

    if path:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    import skimage.data

    return skimage.data.astronaut()  # 512x512 RGB, resized by the Inverter like any uint8 photo


def _child(case: str, config: str, iters: int, repeats: int, photo: str | None) -> dict:
    import torch

    img = _photo(photo)
    t0 = time.perf_counter()
    if case == "reference":
        from hyperstyle_trt.models.checkpoint import build_model
        from hyperstyle_trt.runtime import inputs

        model = build_model(config, quiet=True)
        x = inputs.prepare(img, model.cfg.hypernet.input_size, torch.device("cpu"), True).tensor

        def once():
            with torch.no_grad():
                model.invert(x, n_iters=iters)
    else:
        from hyperstyle_trt.core.source import ModelSource
        from hyperstyle_trt.runtime import Inverter

        src = ModelSource(config=config, device="cpu", executor=None if case == "onnxruntime" else case)
        inv = Inverter.from_source(src, max_batch=1, n_iters=iters)

        def once():
            inv.invert(img)
    setup = time.perf_counter() - t0
    times, cpu = [], []
    for _ in range(repeats + 1):
        t, c = time.perf_counter(), time.process_time()
        once()
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return {"case": case, "setup_s": round(setup, 2), "first_s": round(times[0], 3),
            "s_per_img": round(min(times[1:]), 3), "times_s": [round(t, 3) for t in times[1:]],
            "cpu_s": [round(c, 2) for c in cpu[1:]],
            "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3),
            "torch_threads": torch.get_num_threads()}


def _machine() -> dict:
    from hyperstyle_trt.core.sidecar import software_versions

    mem = None
    try:
        mem = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError):
        pass
    return {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(), "mem_gib": mem,
            **software_versions()}


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", default="ffhq1024", show_default=True, help="Model preset (embedded default weights).")
@click.option("--executors", default=",".join(CASES), show_default=True, help="Cases, in order (comma-separated).")
@click.option("--iters", type=int, default=5, show_default=True, help="HyperStyle iterations T.")
@click.option("--repeats", type=int, default=3, show_default=True, help="Timed inversions per case (min kept).")
@click.option("--photo", default=None, type=click.Path(dir_okay=False, exists=True),
              help="An aligned face photo (default: skimage's astronaut).")
@click.option("--out", default=None, type=click.Path(dir_okay=False), help="Write the rows as JSON here.")
@click.option("--child", default=None, hidden=True)
@interruptible
def cli(config, executors, iters, repeats, photo, out, child):
    """CPU s/img and peak RSS of hs-invert's executors, each in a fresh process."""
    from hyperstyle_trt.core.errors import HsError

    if child:
        click.echo(json.dumps(_child(child, config, iters, repeats, photo)))
        return 0
    cases = [c for c in executors.split(",") if c]
    bad = [c for c in cases if c not in CASES]
    if bad or not cases:
        raise HsError(f"--executors {bad or executors!r}: expected a comma-separated subset of {list(CASES)}")
    rows = []
    for case in cases:
        cmd = [sys.executable, "-m", "hyperstyle_trt.benchmarks.cpu_default", "--config", config, "--iters",
               str(iters), "--repeats", str(repeats), "--child", case] + (["--photo", photo] if photo else [])
        t = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            raise HsError(f"case {case} failed (exit {r.returncode}): {(r.stderr.strip().splitlines() or [''])[-1]}")
        row = json.loads(r.stdout.strip().splitlines()[-1]) | {"wall_s": round(time.perf_counter() - t, 1),
                                                              "command": " ".join(cmd[1:])}
        rows.append(row)
        click.echo(f"{case:12s} {row['s_per_img']:8.2f} s/img  peak RSS {row['peak_rss_gib']:6.2f} GiB  "
                   f"(setup {row['setup_s']:.1f} s, first {row['first_s']:.2f} s)")
    if out:
        from hyperstyle_trt.core.atomic import write_json_atomic

        write_json_atomic(out, {"config": config, "batch": 1, "iters": iters, "repeats": repeats,
                                "photo": photo or "skimage.data.astronaut", "machine": _machine(), "rows": rows})
    return 0


def main(argv: list[str] | None = None) -> int:
    return run(cli, argv)


if __name__ == "__main__":
    sys.exit(main())
