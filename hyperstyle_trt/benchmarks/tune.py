"""`hs-bench tune`: time candidate tiles of every kernel on every FFHQ-1024 layer shape (GPU), to choose the
production tiles, split-K counts and fused/staged thresholds (plugins.mod_conv.strategy, staged.ready_config,
kernel.select_config, to_rgb.select_config). Not a test: it reports, the choice is written into the code by hand.

Per (layer, batch), fp16, full delta on the tuned StyledConvs:
    weight  mod_weight_kernel alone for each weight tile (time depends on Cin, Cout, upsampling and B only)
    staged  the staged pair (weight kernel on its production tiles + ready conv [+ finalize]) per conv tile and
            split-K count
    fused   the one-launch kernel per tile (3x3 layers up to 64^2; the upsampling fused kernel is not a candidate)
    rgb     the toRGB kernel per tile
Each candidate's output is compared with the fp32 reference (max abs error). Compilation runs first in a pool of
worker processes (Triton's on-disk cache is shared), then the timing runs serially with `hs-bench kernels`'
timer (benchmarks.timing.kernel_us: CUDA graph, median of 5 samples). JSON rows are rewritten after every layer.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from pathlib import Path

import click
import torch

from hyperstyle_trt.benchmarks.options import GreedyCommand
from hyperstyle_trt.benchmarks.timing import kernel_us
from hyperstyle_trt.core.atomic import write_json_atomic
from hyperstyle_trt.core.entry import interruptible, run as run_command
from hyperstyle_trt.core.errors import HsError, one_line
from hyperstyle_trt.plugins._triton import TileConfig

WEIGHT_CANDS = [TileConfig(1, 8, 64, 2, 1), TileConfig(1, 8, 64, 4, 1), TileConfig(1, 16, 64, 4, 1),
                TileConfig(1, 4, 128, 4, 1), TileConfig(1, 8, 128, 4, 1), TileConfig(1, 16, 32, 4, 1),
                TileConfig(1, 32, 32, 4, 1), TileConfig(1, 16, 128, 8, 1), TileConfig(1, 4, 64, 2, 1)]
WEIGHT_UP_CANDS = [TileConfig(1, 8, 32, 2, 1), TileConfig(1, 8, 32, 4, 1), TileConfig(1, 16, 32, 4, 1),
                   TileConfig(1, 8, 64, 4, 1), TileConfig(1, 4, 64, 2, 1), TileConfig(1, 16, 64, 8, 1),
                   TileConfig(1, 4, 32, 1, 1)]
READY_CANDS = [TileConfig(16, 32, 64, 4, 3), TileConfig(16, 64, 64, 4, 3), TileConfig(32, 64, 64, 4, 3),
               TileConfig(64, 32, 64, 4, 3), TileConfig(64, 64, 64, 4, 3), TileConfig(64, 128, 64, 8, 3),
               TileConfig(128, 64, 32, 8, 3), TileConfig(128, 64, 64, 8, 3), TileConfig(128, 128, 64, 8, 3),
               TileConfig(256, 128, 64, 8, 3), TileConfig(128, 32, 32, 4, 3), TileConfig(256, 64, 32, 8, 3),
               TileConfig(256, 32, 32, 4, 4), TileConfig(128, 128, 32, 8, 4), TileConfig(128, 256, 64, 8, 3)]
FUSED_CANDS = [TileConfig(16, 16, 64, 4, 3), TileConfig(16, 32, 64, 4, 3), TileConfig(16, 64, 64, 8, 3),
               TileConfig(32, 32, 64, 4, 3), TileConfig(64, 32, 64, 4, 3), TileConfig(64, 64, 64, 8, 3),
               TileConfig(64, 64, 32, 4, 3), TileConfig(128, 64, 32, 8, 3), TileConfig(128, 32, 64, 4, 3)]
RGB_CANDS = [TileConfig(16, 16, 128, 4, 2), TileConfig(16, 16, 64, 4, 3), TileConfig(32, 16, 64, 4, 3),
             TileConfig(64, 16, 64, 4, 3), TileConfig(64, 16, 128, 4, 3), TileConfig(128, 16, 64, 4, 3),
             TileConfig(128, 16, 32, 4, 2), TileConfig(256, 16, 32, 8, 2), TileConfig(256, 16, 64, 8, 3),
             TileConfig(512, 16, 32, 8, 2), TileConfig(128, 16, 16, 4, 2), TileConfig(64, 16, 32, 2, 2)]
SPLITS = (1, 2, 4, 8)


def tile_str(c: TileConfig) -> str:
    return f"{c.block_m}x{c.block_n}x{c.block_k}/w{c.num_warps}/s{c.num_stages}"


def candidates(layer, batch: int) -> list[tuple[str, TileConfig, int]]:
    """(kind, tiles, split) to time for one layer at one batch size."""
    from hyperstyle_trt.plugins.mod_conv.staged import split_plan

    if layer.kind == "rgb":
        hw = layer.res * layer.res
        return [("rgb", c, 1) for c in RGB_CANDS if c.block_k <= max(16, layer.in_ch) and c.block_m <= max(16, 4 * hw)]
    up = layer.kind == "up"
    h = layer.res // 2 if up else layer.res
    hw, cin, cout = h * h, layer.in_ch, layer.out_ch
    out = [("weight", c, 1) for c in (WEIGHT_UP_CANDS if up else WEIGHT_CANDS) if c.block_n <= cout]
    for c in READY_CANDS:
        if c.block_m > max(16, 2 * hw) or c.block_n > max(32, cout) or c.block_k > cin:
            continue
        tiles = -(-hw // c.block_m) * -(-cout // c.block_n) * batch * (4 if up else 1)
        for s in SPLITS:
            if s > 1 and (tiles * s > 4 * 132 or split_plan(cin, s, c.block_k)[1] != s):
                continue
            out.append(("staged", c, s))
    if not up and hw <= 64 * 64:
        out += [("fused", c, 1) for c in FUSED_CANDS if c.block_m <= max(16, 2 * hw) and c.block_n <= cout]
    return out


def make_call(kind: str, layer, t: dict, cfg: TileConfig, split: int, delta_mode: int):
    """A no-argument callable running one candidate on fp16 tensors t (op contract), output preallocated."""
    from hyperstyle_trt.plugins.mod_conv.kernel import mod_conv_triton
    from hyperstyle_trt.plugins.mod_conv.staged import launch_weight, mod_conv_staged
    from hyperstyle_trt.plugins.mod_conv.strategy import workspace_layout
    from hyperstyle_trt.plugins._triton import triton_dtype

    b = t["x"].shape[0]
    if kind == "rgb":
        from hyperstyle_trt.plugins.to_rgb.kernel import to_rgb_triton

        out = t["x"].new_empty((b, layer.res, layer.res, 3))
        return lambda: to_rgb_triton(t["x"], t["style"], t["weight"], t["delta"], t["bias"], t["skip"], 0, out=out,
                                     cfg=cfg)
    up = int(layer.kind == "up")
    h = t["x"].shape[1]
    out = t["x"].new_empty((b, layer.res, layer.res, layer.out_ch))
    lay = workspace_layout(b, layer.in_ch, layer.out_ch, up, triton_dtype(t["x"].dtype), split=split, HW=h * h)
    ws = torch.empty(lay.total, device=t["x"].device, dtype=torch.uint8)
    if kind == "weight":
        wq = ws[:lay.coef].view(t["x"].dtype)
        coef = ws[lay.coef:lay.coef + b * layer.out_ch * 4].view(torch.float32)
        return lambda: launch_weight(t["style"], t["weight"], t["delta"], wq, coef, up, delta_mode, 1, cfg) or out
    if kind == "staged":
        return lambda: mod_conv_staged(t["x"], t["style"], t["weight"], t["delta"], t["noise"], t["bias"], up,
                                       delta_mode, 1, out=out, cfg=cfg, workspace=ws, split=split)
    return lambda: mod_conv_triton(t["x"], t["style"], t["weight"], t["delta"], t["noise"], t["bias"], up,
                                   delta_mode, 1, out=out, cfg=cfg)


def _compile_job(job) -> str | None:
    """Worker: run one candidate once at B=1 (compiles it into Triton's cache). Returns an error line or None."""
    name, kind, cfg, split, delta_mode = job
    try:
        from hyperstyle_trt.benchmarks.kernels import KernelCase, _inputs, bench_layers

        layer = next(s for s in bench_layers() if s.name == name)
        c = KernelCase(layer, 1, 0 if layer.kind == "rgb" else delta_mode)
        t = {k: None if v is None else v.half() for k, v in _inputs(c, "cuda").items()}
        make_call(kind, layer, t, cfg, split, delta_mode)()
        torch.cuda.synchronize()
        return None
    except Exception as e:  # reported in the timing phase too
        return f"{name} {kind} {tile_str(cfg)} s{split}: {one_line(e)}"


def run(batch_sizes=(1, 8), layers=None, delta_mode: int = 1, workers: int = 12, budget_s: float = 400.0,
        json_path: Path | None = None) -> list[dict]:
    from hyperstyle_trt.benchmarks.kernels import KernelCase, _inputs, bench_layers, fp32_reference

    t0 = time.monotonic()
    specs = [s for s in bench_layers() if layers is None or s.name in layers]
    jobs, seen = [], set()
    for s in specs:
        for kind, cfg, split in candidates(s, max(batch_sizes)) + candidates(s, min(batch_sizes)):
            key = (s.name, kind, cfg, min(split, 2))  # split 2/4/8 share one compile
            if key not in seen:
                seen.add(key)
                jobs.append((s.name, kind, cfg, split, delta_mode))
    print(f"compiling {len(jobs)} candidates in {workers} workers", flush=True)
    errors = []
    if workers > 1:  # a worker that dies breaks the pool (no hang); the timing phase then compiles what is left
        from concurrent.futures import ProcessPoolExecutor

        try:
            with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
                errors = [e for e in pool.map(_compile_job, jobs, chunksize=2) if e]
        except Exception as e:
            print(f"compile pool failed ({type(e).__name__}: {e}); compiling while timing", flush=True)
    print(f"compiled in {time.monotonic() - t0:.0f} s; {len(errors)} failed", flush=True)
    for e in errors[:20]:
        print("  compile error:", e, flush=True)
    rows: list[dict] = []
    for s in specs:
        for b in batch_sizes:
            if time.monotonic() - t0 > budget_s:
                print(f"budget of {budget_s:.0f} s spent: stopping before {s.name} B={b}", flush=True)
                return rows
            c = KernelCase(s, b, 0 if s.kind == "rgb" else delta_mode)
            t32 = _inputs(c, "cuda")
            ref = fp32_reference(c, t32)
            t = {k: None if v is None else v.half() for k, v in t32.items()}
            best: dict[str, tuple[float, str]] = {}
            for kind, cfg, split in candidates(s, b):
                row = dict(layer=s.name, batch=b, kind=kind, tiles=tile_str(cfg), split=split)
                try:
                    fn = make_call(kind, s, t, cfg, split, c.delta_mode)
                    y = fn()
                    if kind != "weight":
                        row["err"] = (y.float() - ref).abs().max().item()
                    row["us"] = round(kernel_us(fn, 2, 5)[0], 2)
                    if kind not in best or row["us"] < best[kind][0]:
                        best[kind] = (row["us"], f"{row['tiles']} s{split}")
                except Exception as e:
                    row["error"] = one_line(e)
                    torch.cuda.synchronize()
                rows.append(row)
            print(f"{s.name} B={b}: " + "; ".join(f"{k} {v[0]:.1f} µs ({v[1]})" for k, v in sorted(best.items())),
                  flush=True)
            if json_path is not None:
                write_json_atomic(json_path, rows)
    return rows


@click.command("tune", cls=GreedyCommand, greedy=("--layers",),
               context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--batch", type=int, multiple=True, help="batch sizes (repeatable; default 1 and 8)")
@click.option("--layers", multiple=True, help="layer names, e.g. --layers conv1 convs.8 (default: every tuned "
                                             "StyledConv and toRGB)")
@click.option("--workers", type=int, default=max(1, min(12, (os.cpu_count() or 2) - 2)), show_default=True,
              help="compile worker processes")
@click.option("--budget-s", type=float, default=400.0, show_default=True,
              help="stop timing new layers after this many seconds")
@click.option("--json", "json_path", type=click.Path(path_type=Path), default=None,
              help="write the rows here (rewritten after every layer)")
@interruptible
def cli(batch, layers, workers, budget_s, json_path) -> int:
    """Time candidate tiles / split-K / fused-vs-staged of every kernel on every FFHQ-1024 layer (CUDA GPU); the
    rows say which is fastest, the choice is written into the code by hand."""
    if not torch.cuda.is_available():
        raise HsError("hs-bench tune needs a CUDA GPU (torch.cuda.is_available() is False)")
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    run(tuple(batch or (1, 8)), list(layers) or None, workers=workers, budget_s=budget_s, json_path=json_path)
    return 0


def main(argv=None) -> int:
    """`hs-bench tune` through core.entry.run: 0, or 2 with one `error:` line, 130 on Ctrl-C."""
    return run_command(cli, argv)


if __name__ == "__main__":
    main()
