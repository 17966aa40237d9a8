"""`hs-bench kernels`: our Triton modulated-conv kernels vs the PyTorch route on every FFHQ-1024 modulated conv
(the 17 tuned StyledConvs and the 9 toRGBs) at B=1 and B=8, fp16, with the max abs error vs the fp32 reference
beside each time (error beside speed, as every benchmark here). Needs a CUDA GPU; elsewhere it stops with a
one-line HsError.

Each StyledConv is timed both ways, fused (one launch) and staged (weight kernel + ready-weight conv), and the row's
`pick` is what the op runs for that layer (plugins.mod_conv.strategy.select_strategy): the goals are judged on the
pick, and a `strategy` line says where the other path was faster (the figures that would move the threshold).

Timing: benchmarks.timing.kernel_us (the one harness): each callable is warmed up on a side stream, then run once
under torch's sync-debug "error" mode (one that synchronizes the host could not be captured and is timed eagerly),
then captured in a CUDA graph of `calls` back-to-back calls (enough for >= 50 µs of GPU work, so Python's replay cost
stays hidden for small kernels); each sample times `reps` replays between two CUDA events (>= 200 µs), and the median
over the samples, per call, is the figure (µs). Column `timing` says graph or eager; the goal lines say when any row
was eager or a route layout failed. L2 is not flushed between calls
(the weights of one layer stay cached on both sides).
The PyTorch route is what a port runs in the fastest layout cuDNN offers for a grouped conv: modulate + demodulate
the weight, grouped conv (transposed conv for upsampling), 4x4 blur, then noise + bias + lrelu*sqrt(2), timed in two
activation layouts that need no conversion from layer to layer (cuDNN's heuristic algorithm choice unless
--cudnn-benchmark), and the faster one is reported (`route layout`):
"nchw" (rosinality's native ops, models.ops: the grouped conv's [1,B*C,H,W] input is a view) and "cl" (activations
stored [H,W,B,C], so that [1,B*C,H,W] is a channels_last view; depthwise channels_last blur). Each layout's output is
checked against the fp32 reference. TFLOPS count the official algorithm's FLOPs
(plugins.mod_conv.reference.mod_conv_flops: transposed conv at the input resolution for upsampling layers, blur
excluded), the same for both columns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

import click
import torch
import torch.nn.functional as F

from hyperstyle_trt.benchmarks.kernels_report import goals, print_table
from hyperstyle_trt.benchmarks.options import GreedyCommand
from hyperstyle_trt.benchmarks.timing import kernel_us
from hyperstyle_trt.core.atomic import write_json_atomic
from hyperstyle_trt.core.config import LayerSpec, get_config
from hyperstyle_trt.core.device import parse_device
from hyperstyle_trt.core.entry import interruptible, run
from hyperstyle_trt.core.errors import HsError, one_line
from hyperstyle_trt.plugins._triton import TileConfig
from hyperstyle_trt.plugins.mod_conv.reference import mod_conv_flops, mod_conv_ref
from hyperstyle_trt.plugins.to_rgb.reference import to_rgb_flops, to_rgb_ref


@dataclass(frozen=True)
class KernelCase:
    """One benchmark row: a generator layer at a batch size. h = input resolution; delta_mode as the op takes it."""

    layer: LayerSpec
    batch: int
    delta_mode: int

    @property
    def h(self) -> int:
        return self.layer.res // 2 if self.layer.kind == "up" else self.layer.res

    @property
    def flops(self) -> int:
        s = self.layer
        if s.kind == "rgb":
            return to_rgb_flops(self.batch, s.res, s.res, s.in_ch)
        return mod_conv_flops(self.batch, self.h, self.h, s.in_ch, s.out_ch, int(s.kind == "up"))


def bench_layers(config: str = "ffhq1024") -> tuple[LayerSpec, ...]:
    """The tuned modulated convs (not toRGB) plus every toRGB, in layer-index order."""
    cfg = get_config(config)
    tuned = {s.idx for s in cfg.tuned}
    return tuple(s for s in cfg.layers if s.kind == "rgb" or (s.idx in tuned))


def bench_cases(batch_sizes: Iterable[int] = (1, 8), layers: Iterable[str] | None = None,
                delta_mode: int = 1, config: str = "ffhq1024") -> list[KernelCase]:
    """Cases for the named layers (default: all of bench_layers) x batch sizes. toRGBs run without delta (untuned)."""
    specs = bench_layers(config)
    if layers is not None:
        names = list(layers)
        known = {s.name for s in specs}
        bad = [n for n in names if n not in known]
        if bad:
            raise HsError(f"unknown kernel-bench layers {bad}; expected some of {sorted(known)}")
        specs = tuple(s for s in specs if s.name in names)
    return [KernelCase(s, b, 0 if s.kind == "rgb" else delta_mode) for s in specs for b in batch_sizes]


def _inputs(c: KernelCase, dev: str) -> dict[str, torch.Tensor | None]:
    """fp32 inputs on dev in the op contract; rounded through fp16 so the fp32 reference sees the same values."""
    g = torch.Generator(device=dev).manual_seed(c.layer.idx)
    s, b, h = c.layer, c.batch, c.h
    r = lambda *shape: torch.randn(*shape, device=dev, generator=g)  # noqa: E731
    if s.kind == "rgb":
        t = dict(x=r(b, h, h, s.in_ch), style=1 + 0.2 * r(b, s.in_ch), weight=r(3, s.in_ch), delta=None,
                 bias=0.1 * r(3), skip=r(b, h // 2, h // 2, 3) if s.idx > 1 else None)
    else:
        f = 2 if s.kind == "up" else 1
        d = {0: None, 1: 0.1 * r(b, s.out_ch, 3, 3, s.in_ch), 2: 0.1 * r(b, s.out_ch, s.in_ch)}[c.delta_mode]
        t = dict(x=r(b, h, h, s.in_ch), style=1 + 0.2 * r(b, s.in_ch),
                 weight=r(s.out_ch, 3, 3, s.in_ch), delta=d,  # OHWI
                 noise=0.1 * r(f * h, f * h), bias=0.1 * r(s.out_ch))
    return {k: None if v is None else v.half().float() for k, v in t.items()}


ROUTE_LAYOUTS = ("nchw", "cl")


def route_input(x: torch.Tensor, layout: str) -> torch.Tensor:
    """NHWC x [B,H,W,C] -> the route's input as it keeps activations: "nchw" [B,C,H,W] contiguous (the grouped
    conv's [1,B*C,H,W] is a view of it); "cl" [1,B*C,H,W] channels_last (memory [H,W,B,C]; its batch stride is the
    standard one, else torch would not see it as channels_last and would copy it to NCHW)."""
    if layout == "nchw":
        return x.permute(0, 3, 1, 2).contiguous()
    if layout == "cl":
        b, h, w, c = x.shape
        hwbc = x.permute(1, 2, 0, 3).contiguous()
        return torch.as_strided(hwbc, (1, b * c, h, w), (b * c * h * w, 1, w * b * c, b * c))
    raise HsError(f"route layout must be one of {ROUTE_LAYOUTS}, got {layout!r}")


def torch_route(c: KernelCase, t: dict, layout: str = "nchw") -> Callable[[], torch.Tensor]:
    """The PyTorch route on t (its dtype) with activations stored in `layout` (ROUTE_LAYOUTS; the input conversion
    happens here, once, not in the call). Returns a no-argument callable giving [B,C,Ho,Wo] (for "cl" a view of the
    [1,B*C,Ho,Wo] channels_last result). Nothing in the call copies from the host (the blur taps go to the device
    here), so it can be captured in a CUDA graph."""
    from hyperstyle_trt.models.ops import (blur_pad, fused_leaky_relu, make_kernel, modulated_conv2d, modulated_weight,
                                           upfirdn2d)
    from hyperstyle_trt.plugins.mod_conv.reference import expand_delta, from_ohwi

    x = route_input(t["x"], layout)
    b, (h, w) = c.batch, x.shape[2:]
    blur = (make_kernel() * 4).to(device=x.device, dtype=x.dtype)  # [4,4], gain 4
    if c.layer.kind == "rgb":
        w5 = t["weight"][None, :, :, None, None]
        d5 = None if t["delta"] is None else t["delta"][..., None, None]
        bias = t["bias"].view(1, 3, 1, 1)
        skip = None if t["skip"] is None else t["skip"].permute(0, 3, 1, 2).contiguous()

        def rgb() -> torch.Tensor:
            if layout == "nchw":
                out = modulated_conv2d(x, w5, t["style"], d5, demodulate=False)
            else:
                wt = modulated_weight(w5, t["style"], d5, demodulate=False).reshape(b * 3, -1, 1, 1)
                out = F.conv2d(x, wt, groups=b).view(b, 3, h, w)
            out = out + bias
            return out if skip is None else out + upfirdn2d(skip, blur, up=2, pad=(2, 1))
        return rgb
    up = c.layer.kind == "up"
    w5, d5 = from_ohwi(t["weight"])[None], expand_delta(t["delta"], c.delta_mode)
    noise, bias = t["noise"][None, None], t["bias"]
    if layout == "nchw":  # OIHW-contiguous weight and delta: a channels_last weight would make cuDNN run NHWC
        w5, d5 = w5.contiguous(), None if d5 is None else d5.contiguous()
        return lambda: fused_leaky_relu(modulated_conv2d(x, w5, t["style"], d5, True, up, blur) + noise, bias)
    cin, cout = x.shape[1] // b, w5.shape[1]
    p0, p1 = blur_pad(3)
    assert p0 == p1  # symmetric: the blur is one depthwise conv with padding
    dw = torch.flip(blur, [0, 1]).expand(b * cout, 1, 4, 4).contiguous()

    def cl() -> torch.Tensor:
        wt = modulated_weight(w5, t["style"], d5)
        if up:
            out = F.conv_transpose2d(x, wt.transpose(1, 2).reshape(b * cin, cout, 3, 3), stride=2, groups=b)
            out = F.conv2d(out, dw, padding=p0, groups=b * cout)
        else:
            out = F.conv2d(x, wt.reshape(b * cout, cin, 3, 3), padding=1, groups=b)
        return fused_leaky_relu(out.view(b, cout, out.shape[2], out.shape[3]) + noise, bias)
    return cl


def fp32_reference(c: KernelCase, t32: dict) -> torch.Tensor:
    """The reference of truth (plugins' references, NHWC): fp32 with TF32 disabled for cuDNN convolutions (it is on
    by default)."""
    prev = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    try:
        if c.layer.kind == "rgb":
            return to_rgb_ref(t32["x"], t32["style"], t32["weight"], t32["delta"], t32["bias"], t32["skip"],
                              c.delta_mode)
        return mod_conv_ref(t32["x"], t32["style"], t32["weight"], t32["delta"], t32["noise"], t32["bias"],
                            int(c.layer.kind == "up"), c.delta_mode)
    finally:
        torch.backends.cudnn.allow_tf32 = prev


def parse_tiles(text: str) -> TileConfig:
    """"128x64x32/w8/s3" -> TileConfig(128, 64, 32, 8, 3) (BLOCK_M x BLOCK_N x BLOCK_K / warps / stages)."""
    import re

    m = re.fullmatch(r"(\d+)x(\d+)x(\d+)/w(\d+)/s(\d+)", text.strip())
    if not m:
        raise HsError(f"--tiles must look like 128x64x32/w8/s3 (BLOCK_MxBLOCK_NxBLOCK_K/warps/stages), got {text!r}")
    return TileConfig(*map(int, m.groups()))


def fused_kernel(c: KernelCase, t: dict, cfg: TileConfig | None = None,
                 strategy: str = "fused") -> Callable[[], torch.Tensor]:
    """Our kernel(s) on t (fp16), writing into one preallocated output. StyledConvs: strategy "fused" (one launch)
    or "staged" (weight kernel + ready-weight conv, into a preallocated workspace); cfg overrides the production
    tiles of the fused kernel or of the staged conv (tile sweeps)."""
    if c.layer.kind == "rgb":
        from hyperstyle_trt.plugins.to_rgb.kernel import to_rgb_triton

        out = t["x"].new_empty((c.batch, c.h, c.h, 3))
        return lambda: to_rgb_triton(t["x"], t["style"], t["weight"], t["delta"], t["bias"], t["skip"],
                                     c.delta_mode, out=out)
    from hyperstyle_trt.plugins.mod_conv.kernel import mod_conv_triton

    up = int(c.layer.kind == "up")
    out = t["x"].new_empty((c.batch, c.layer.res, c.layer.res, c.layer.out_ch))
    if strategy == "staged":
        from hyperstyle_trt.plugins.mod_conv.staged import mod_conv_staged
        from hyperstyle_trt.plugins.mod_conv.strategy import split_k, workspace_layout

        h = c.layer.res // (2 if up else 1)
        split = split_k(c.batch, h, h, c.layer.in_ch, c.layer.out_ch, up, "fp16")
        ws = torch.empty(workspace_layout(c.batch, c.layer.in_ch, c.layer.out_ch, up, "fp16", split, h * h).total,
                         device=t["x"].device, dtype=torch.uint8)
        return lambda: mod_conv_staged(t["x"], t["style"], t["weight"], t["delta"], t["noise"], t["bias"], up,
                                       c.delta_mode, 1, out=out, cfg=cfg, workspace=ws)
    return lambda: mod_conv_triton(t["x"], t["style"], t["weight"], t["delta"], t["noise"], t["bias"], up,
                                   c.delta_mode, 1, out=out, cfg=cfg)


def _require_gpu() -> None:
    if not torch.cuda.is_available():
        raise HsError("hs-bench kernels needs a CUDA GPU (torch.cuda.is_available() is False)")
    try:
        import triton  # noqa: F401
    except ImportError:
        raise HsError("hs-bench kernels needs triton (pip install 'hyperstyle-trt[kernels]')") from None


def _run_checked(fn: Callable[[], torch.Tensor], ref: torch.Tensor, tiles, name: str, what: str) -> float:
    """Max abs error of fn() vs ref; a --tiles override that cannot run on a layer becomes a one-line HsError."""
    try:
        return (fn().float() - ref).abs().max().item()
    except Exception as e:  # e.g. triton OutOfResources: the --tiles override does not fit this layer
        if tiles is None:
            raise
        raise HsError(f"--{what} {tiles} does not run on {name}: {one_line(e)}") from None


def run_kernel_bench(batch_sizes: Iterable[int] = (1, 8), layers: Iterable[str] | None = None, warmup: int = 10,
                     iters: int = 50, delta_mode: int = 1, tiles: TileConfig | None = None,
                     config: str = "ffhq1024", device: str = "cuda",
                     staged_tiles: TileConfig | None = None,
                     on_row: Callable[[list[dict]], None] | None = None, cudnn_benchmark: bool = False) -> list[dict]:
    """One dict per (layer, batch): µs, TFLOPS and max abs error vs the fp32 reference for our kernels (fused and,
    for StyledConvs, staged; `pick`: the one the op runs) and the PyTorch route (all fp16), plus the route / pick
    ratio. Raises HsError without a CUDA GPU or triton. on_row(rows so far) is called after each row (progress,
    partial JSON).
    device="cpu" is the harness's own dry run (in a TRITON_INTERPRET=1 process, tiny config): same inputs, route,
    reference and error columns, perf_counter "timings" that mean nothing about kernels.
    cudnn_benchmark: let cuDNN time its algorithms for each conv shape first (torch.backends.cudnn.benchmark; the
    route's best case, at some seconds per shape) instead of its heuristic choice."""
    if device == "cuda":
        _require_gpu()
    prev = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = bool(cudnn_benchmark)
    try:
        return _run_rows(batch_sizes, layers, warmup, iters, delta_mode, tiles, config, device, staged_tiles, on_row)
    finally:
        torch.backends.cudnn.benchmark = prev


def _run_rows(batch_sizes, layers, warmup, iters, delta_mode, tiles, config, device, staged_tiles, on_row):
    def timer(fn, warmup, iters):
        return kernel_us(fn, warmup, iters, device)

    from hyperstyle_trt.plugins.mod_conv.strategy import select_strategy

    rows = []
    for c in bench_cases(batch_sizes, layers, delta_mode, config):
        t32 = _inputs(c, device)
        t16 = {k: None if v is None else v.half() for k, v in t32.items()}
        ref = fp32_reference(c, t32)
        s = c.layer
        conv = s.kind != "rgb"
        fused = fused_kernel(c, t16, tiles)
        err_f = _run_checked(fused, ref, tiles, s.name, "tiles")
        us_f, how_f = timer(fused, warmup, iters)
        routes = {}  # layout -> (µs, timing, max abs err)
        for layout in ROUTE_LAYOUTS:
            try:
                route = torch_route(c, t16, layout)
                err = (route().permute(0, 2, 3, 1).float() - ref).abs().max().item()  # [B,C,Ho,Wo] -> NHWC
                routes[layout] = (*timer(route, warmup, iters), err)
            except RuntimeError as e:  # e.g. cuDNN without an engine for this layout: the other layout stands
                routes[layout] = (float("inf"), f"failed: {one_line(e)}", float("nan"))
            route = None
        layout_r = min(routes, key=lambda k: routes[k][0])
        us_r, how_r, err_r = routes[layout_r]
        if us_r == float("inf"):
            raise HsError(f"the PyTorch route failed on {s.name} B={c.batch} in every layout: "
                          f"{'; '.join(f'{k}: {v[1]}' for k, v in routes.items())}")
        staged = us_s = err_s = None
        pick, hows = "fused", [how_f, how_r]
        if conv:
            staged = fused_kernel(c, t16, staged_tiles, "staged")
            err_s = _run_checked(staged, ref, staged_tiles, s.name, "staged-tiles")
            us_s, how_s = timer(staged, warmup, iters)
            hows.insert(1, how_s)
            pick = select_strategy(c.batch, c.h, c.h, s.in_ch, s.out_ch, int(s.kind == "up"))
        us_k, err_k = (us_s, err_s) if pick == "staged" else (us_f, err_f)
        rows.append(dict(layer=s.name, idx=s.idx, kind=s.kind, res=s.res, cin=s.in_ch, cout=s.out_ch, batch=c.batch,
                         delta_mode=c.delta_mode, fused_us=us_f, staged_us=us_s, route_us=us_r, pick=pick,
                         kernel_us=us_k, speedup=us_r / us_k, kernel_tflops=c.flops / us_k / 1e6,
                         route_tflops=c.flops / us_r / 1e6, fused_err=err_f, staged_err=err_s, kernel_err=err_k,
                         route_err=err_r, route_layout=layout_r,
                         route_us_by_layout={k: v[0] for k, v in routes.items()},
                         route_timing_by_layout={k: v[1] for k, v in routes.items()},
                         route_err_by_layout={k: v[2] for k, v in routes.items()}, ref_max=ref.abs().max().item(),
                         timing=hows[0] if len(set(hows)) == 1 else "/".join(hows),  # fused[/staged]/route
                         gpu=torch.cuda.get_device_name() if device == "cuda" else "cpu (interpreter dry run)"))
        del t32, t16, ref, fused, staged
        if on_row is not None:
            on_row(rows)
    return rows


@click.command("kernels", cls=GreedyCommand, greedy=("--layers",),
               context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--batch", type=int, multiple=True, help="batch size (repeatable; default 1 and 8)")
@click.option("--layers", multiple=True, help="generator layer names, e.g. --layers convs.8 to_rgbs.3 (default: all)")
@click.option("--warmup", type=int, default=10, show_default=True)
@click.option("--iters", type=int, default=50, show_default=True)
@click.option("--delta-mode", type=click.IntRange(0, 2), default=1, show_default=True,
              help="delta for the StyledConvs (0, 1 or 2)")
@click.option("--tiles", default=None, help="override the fused StyledConv tiles, e.g. 128x64x32/w8/s3 (tile sweeps)")
@click.option("--staged-tiles", default=None, help="override the staged path's conv tiles, e.g. 256x128x64/w8/s3")
@click.option("--cudnn-benchmark", is_flag=True,
              help="let cuDNN autotune each route conv shape first (torch.backends.cudnn.benchmark)")
@click.option("--json", "json_path", default=None,
              help="also write the rows as JSON here (rewritten after every row; complete: true at the end)")
@click.option("--config", default="ffhq1024", hidden=True)  # tests: the tiny config
@click.option("--device", default="cuda", show_default=True,
              help="cuda, or cpu: the harness's own dry run (needs TRITON_INTERPRET=1; its timings mean nothing)")
@interruptible
def cli(batch, layers, warmup, iters, delta_mode, tiles, staged_tiles, cudnn_benchmark, json_path, config,
        device) -> int:
    """Fused modulated-conv kernels vs the PyTorch route on every FFHQ-1024 layer, max error beside µs (CUDA GPU;
    --device cpu: the harness's own dry run in the Triton interpreter)."""
    device = parse_device(device)
    if device not in ("cpu", "cuda"):
        raise HsError(f"hs-bench kernels --device must be 'cuda' or 'cpu', got {device!r} (pick the GPU with "
                      "CUDA_VISIBLE_DEVICES)")
    batches, layers = tuple(batch or (1, 8)), (list(layers) or None)
    tile_cfg = parse_tiles(tiles) if tiles else None
    staged_cfg = parse_tiles(staged_tiles) if staged_tiles else None
    n = len(bench_cases(batches, layers, config=config))

    def write_json(rows: list[dict], done: bool) -> None:
        if json_path:
            write_json_atomic(json_path, {"rows": rows, "goals": goals(rows, n), "complete": done,
                                          "torch": torch.__version__, "tiles": tiles, "staged_tiles": staged_tiles})

    def progress(rows: list[dict]) -> None:
        r = rows[-1]
        other = "" if r["staged_us"] is None else f" staged {r['staged_us']:.1f}"
        print(f"[{len(rows)}/{n}] {r['layer']} B={r['batch']}: fused {r['fused_us']:.1f}{other} route "
              f"{r['route_us']:.1f} ({r['route_layout']}) µs [{r['timing']}]", flush=True)
        write_json(rows, False)  # a time limit that stops the run keeps every finished row

    rows = run_kernel_bench(batches, layers, warmup, iters, delta_mode, tile_cfg, config, device,
                            staged_tiles=staged_cfg, on_row=progress, cudnn_benchmark=cudnn_benchmark)
    print_table(rows)
    for line in goals(rows, n):
        print(line)
    write_json(rows, True)
    return 0


def main(argv: list[str] | None = None) -> int:
    """`hs-bench kernels [--batch N ...] [--layers NAME ...] [--warmup N] [--iters N] [--delta-mode M] [--json PATH]`
    through core.entry.run: 0, or 2 with one `error:` line (no GPU, unknown layer), 130 on Ctrl-C."""
    return run(cli, argv)


if __name__ == "__main__":
    main()
