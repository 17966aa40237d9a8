"""hs-invert on a video: peak memory against the clip's length, and frames/s per stage, one child process per run.

    python -m hyperstyle_trt.benchmarks.video memory                  # tiny, 48 and 192 frames of 640x480
    python -m hyperstyle_trt.benchmarks.video throughput --config ffhq1024 --frames 12 --size 1280x720 \\
        --align-size 1024 --edit seed:0:-10,10 --out benchmarks/results/video_ffhq1024.json

The parent writes a synthetic clip per case (runtime.video.synth.make_clip of grace_hopper, shipped in matplotlib;
H.264 through runtime.video.io.write_clip), then runs `hs-invert CLIP --out OUT ...` in a fresh child process
(the CPU default executor unless --executor); its peak RSS is the child's own (`os.wait4`'s rusage ru_maxrss),
with its wall time. The parent reads each run's results.json (per-stage seconds and frames/s, jitter,
flicker, frames without a face) and writes one JSON with the exact hs-invert command of every row, the machine
(CPU count, load average before / after) and versions.

memory: the video path streams (only O(--temporal-window + --batch) frames held), so the peak must not grow with
the clip's length: `peak_growth_mib` is the longest clip's peak minus the shortest's; `frames_mib` what holding
every decoded frame of the longest clip would have cost.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click

from hyperstyle_trt.core.entry import interruptible, run


def _hs_invert(argv: list[str]) -> dict:
    """Run hs-invert in a child process; its own peak RSS from os.wait4's rusage (ru_maxrss, KiB on Linux)."""
    exe = Path(sys.executable).with_name("hs-invert")
    cmd = [str(exe)] if exe.is_file() else [sys.executable, "-m", "hyperstyle_trt.cli.invert"]
    t = time.perf_counter()
    p = subprocess.Popen([*cmd, *argv], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    err = p.stderr.read()
    _, status, usage = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        raise SystemExit(f"hs-invert failed ({p.returncode}):\n{err.decode(errors='replace')[-3000:]}")
    return {"rc": p.returncode, "wall_s": round(time.perf_counter() - t, 2),
            "peak_rss_mib": round(usage.ru_maxrss / 1024, 1)}


def _clip(path: Path, frames: int, size: tuple[int, int], fps: int) -> Path:
    import matplotlib.cbook
    import numpy as np
    from PIL import Image

    from hyperstyle_trt.runtime.video.io import write_clip
    from hyperstyle_trt.runtime.video.synth import make_clip

    with Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)) as im:
        photo = np.asarray(im.convert("RGB"))
    return write_clip(path, make_clip(photo, frames, size=size, seed=0), fps)


def _case(work: Path, frames: int, size: tuple[int, int], fps: int, args: list[str]) -> dict:
    clip = _clip(work / f"clip{frames}.mp4", frames, size, fps)
    out = work / f"out{frames}"
    argv = [str(clip), "--out", str(out), *args]
    row = _hs_invert(argv)
    rec = json.loads((out / "results.json").read_text())["images"][0]
    row.update(command="hs-invert " + shlex.join(argv), frames=frames, size=list(size), fps=fps,
               status=rec["status"], throughput=rec.get("throughput"), metrics=rec.get("metrics"),
               no_face_frames=rec.get("no_face_frames"), tracking=rec.get("tracking"))
    return row


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("mode", type=click.Choice(["memory", "throughput"]))
@click.option("--frames", default=None, help="Clip lengths, comma-separated [memory: 48,192; throughput: 12].")
@click.option("--size", default=None, help="Frame WxH [memory: 640x480; throughput: 1280x720].")
@click.option("--fps", type=int, default=24, show_default=True)
@click.option("--config", default=None, help="Model preset [memory: tiny; throughput: ffhq1024].")
@click.option("--align-size", type=int, default=None, help="[memory: 128; throughput: 1024].")
@click.option("--batch", type=int, default=8, show_default=True)
@click.option("--executor", default=None, help="hs-invert --executor (default: the CPU default).")
@click.option("--edit", "edits", multiple=True, help="hs-invert --edit (repeatable).")
@click.option("--out", default=None, help="JSON [benchmarks/results/video_memory.json / video_<config>.json].")
@interruptible
def cli(mode, frames, size, fps, config, align_size, batch, executor, edits, out):
    """Peak memory vs clip length (memory) or frames/s per stage (throughput) of hs-invert on a synthetic clip."""
    mem = mode == "memory"
    config = config or ("tiny" if mem else "ffhq1024")
    lengths = [int(v) for v in (frames or ("48,192" if mem else "12")).split(",")]
    w, h = (int(v) for v in (size or ("640x480" if mem else "1280x720")).split("x"))
    args = ["--config", config, "--device", "cpu", "--align-size", str(align_size or (128 if mem else 1024)),
            "--batch", str(batch)]
    args += ["--executor", executor] if executor else []
    for e in edits:
        args += ["--edit", e]
    load0 = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="hs_video_bench_") as tmp:
        rows = [_case(Path(tmp), n, (w, h), fps, args) for n in lengths]
    doc = {"benchmark": f"hyperstyle_trt.benchmarks.video {mode}",
           "command": "python -m hyperstyle_trt.benchmarks.video " + shlex.join(sys.argv[1:]),
           "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                       "loadavg_start": [round(v, 2) for v in load0],
                       "loadavg_end": [round(v, 2) for v in os.getloadavg()]},
           "rows": rows}
    if mem:
        lo, hi = rows[0], rows[-1]
        doc["peak_growth_mib"] = round(hi["peak_rss_mib"] - lo["peak_rss_mib"], 1)
        doc["frames_mib"] = round(hi["frames"] * w * h * 3 / 2**20, 1)
    path = Path(out or f"benchmarks/results/video_{'memory' if mem else config}.json")
    from hyperstyle_trt.core.atomic import write_json_atomic

    write_json_atomic(path, doc)
    for r in rows:
        tp = ", ".join(f"{k} {v['frames_per_s']}" for k, v in (r["throughput"] or {}).items())
        print(f"{r['frames']} frames: peak {r['peak_rss_mib']} MiB, wall {r['wall_s']} s; frames/s: {tp}")
    print(f"wrote {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run(cli, argv)


if __name__ == "__main__":
    main()
