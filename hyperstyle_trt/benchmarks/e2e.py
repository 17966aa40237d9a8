"""`hs-bench --batch 8`: end-to-end inversion benchmark, HyperStyle paths against optimization baselines.

Methods (registered by name in METHODS, all on the same images, device and weights):
  projector        StyleGAN2-projector optimisation in W+ (benchmarks.baselines.project, 1000 steps)
  pti              pivotal tuning (benchmarks.baselines.pti: 450 W steps + up to 350 tuning steps per image)
  hyperstyle-ref   models.hyperstyle.HyperStyle.invert, fp32 eager (numerically the official implementation)
  hyperstyle-fast  runtime.Inverter, torch executor (CUDA: fp16 kernels + CUDA graph; CPU: fp32, neither)
  hyperstyle-trt   runtime.Inverter, tensorrt executor over an hs-export directory with engines
  hyperstyle-ort   runtime.Inverter, onnxruntime executor over the plain ONNX graphs
A method that cannot run here is recorded with status "skipped" and its reason; one that raises is "failed" with
the error's first line, and the others still run.

Measurement, feed-forward methods: `warmup` calls; then `repeats` calls with a device sync after each (per-batch
latency p50/p95/p99); then `repeats` calls with one sync after the last (throughput; ms/image = that time / (repeats
* batch)). Optimisation methods run `baseline_steps` steps of their full schedule with a sync around every step;
their full-run time is setup + mean step time x full steps ("projected from K measured steps", labelled in every
output) unless --full-baselines runs them to completion. Peak device memory is torch's allocator peak
(CUDA only; TensorRT / onnxruntime allocate outside it, so their figure also records the device's used-memory
growth). Reconstruction: MSE / PSNR (on [0,1]) of the output pooled to the input size vs the input; fast paths
also: max |Δ| and PSNR of the full-size output vs hyperstyle-ref's.

Outputs in --out: bench.json (every figure, the environment, the command line), ms_per_image.png (log scale) and,
with --sweep, ms_per_image_vs_batch.png; a rich table on the terminal.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from hyperstyle_trt.core.atomic import atomic_path, write_json_atomic
from hyperstyle_trt.core.config import PRESETS
from hyperstyle_trt.core.errors import HsError

OPTIM = ("projector", "pti")
FAST = ("hyperstyle-fast", "hyperstyle-trt", "hyperstyle-ort")
METHOD_NAMES = ("projector", "pti", "hyperstyle-ref", "hyperstyle-fast", "hyperstyle-trt", "hyperstyle-ort")
IMAGE_EXT = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
GPU_DEFAULTS = {"warmup": 3, "repeats": 20, "baseline_steps": 20}
CPU_DEFAULTS = {"warmup": 1, "repeats": 2, "baseline_steps": 2}


@dataclass(frozen=True)
class BenchConfig:
    """What `hs-bench` (no sub-command) resolves its flags into. None = the device's default (GPU_DEFAULTS /
    CPU_DEFAULTS) for warmup / repeats / baseline_steps; config None = the checkpoint's own, else ffhq1024."""

    batch: int = 8
    methods: tuple[str, ...] = METHOD_NAMES
    iters: int = 5
    config: str | None = None
    images: Path | None = None
    checkpoint: str | None = None
    w_encoder: str | None = None
    export_dir: Path | None = None
    repeats: int | None = None
    warmup: int | None = None
    out: Path = Path("bench_out")
    device: str = "auto"
    lpips_weights: Path | None = None
    baseline_steps: int | None = None
    full_baselines: bool = False
    sweep: tuple[int, ...] = ()
    seed: int = 0
    argv: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in ("batch", "iters", "repeats", "baseline_steps"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
                raise HsError(f"--{name.replace('_', '-')} must be an integer >= 1, got {v!r}")
        if self.warmup is not None and self.warmup < 0:
            raise HsError(f"--warmup must be >= 0, got {self.warmup}")
        bad = [m for m in self.methods if m not in METHOD_NAMES]
        if bad or not self.methods:
            raise HsError(f"unknown --methods {bad or '(none)'}; expected a comma list of {', '.join(METHOD_NAMES)}")
        if len(set(self.methods)) != len(self.methods):
            raise HsError(f"--methods lists a method twice: {','.join(self.methods)}")
        if any((not isinstance(b, int)) or b < 1 for b in self.sweep):
            raise HsError(f"--sweep must be batch sizes >= 1, got {list(self.sweep)}")
        if self.config is not None and self.config not in PRESETS:
            raise HsError(f"unknown --config {self.config!r}; expected one of {sorted(PRESETS)}")
        if self.full_baselines and self.baseline_steps is not None:
            raise HsError("--full-baselines runs every step; drop --baseline-steps (or --full-baselines)")
        if self.w_encoder is not None and self.checkpoint is None:
            raise HsError("--w-encoder given without --checkpoint; the W encoder only pairs with a checkpoint")
        if self.checkpoint is not None and self.w_encoder is None:
            raise HsError("--checkpoint needs its W encoder too (faces_w_encoder.pt); pass --w-encoder")
        for name in ("checkpoint", "w_encoder"):
            p = getattr(self, name)
            if p is not None and not Path(p).is_file():
                raise HsError(f"--{name.replace('_', '-')} {p} not found")
        if self.images is not None and not Path(self.images).is_dir():
            raise HsError(f"--images {self.images}: expected a directory of face crops (png/jpg)")
        if self.export_dir is not None and not Path(self.export_dir).is_dir():
            raise HsError(f"--export-dir {self.export_dir} not found; create it with hs-export --out DIR")
        if self.lpips_weights is not None and not Path(self.lpips_weights).is_dir():
            raise HsError(f"--lpips-weights {self.lpips_weights}: expected a directory holding vgg16.ckpt / "
                          "alexnet.ckpt")

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        return {k: (str(v) if isinstance(v, Path) else list(v) if isinstance(v, tuple) else v) for k, v in d.items()}


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

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def lpips(self, net: str):
        if net not in self._lpips:
            from hyperstyle_trt.models.lpips import LPIPS

            try:
                self._lpips[net] = LPIPS(net, self.cfg.lpips_weights).to(self.device)
            except HsError as e:
                raise Unavailable(str(e)) from None
        return self._lpips[net]


# ---- figures ---------------------------------------------------------------------------------------------------------
def percentiles(ms: list[float]) -> dict[str, float]:
    a = np.asarray(ms, dtype=np.float64)
    return {"p50": float(np.percentile(a, 50)), "p95": float(np.percentile(a, 95)), "p99": float(np.percentile(a, 99)),
            "mean": float(a.mean()), "n": int(a.size)}


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


def _mem_start(dev: torch.device) -> int | None:
    if dev.type != "cuda":
        return None
    torch.cuda.synchronize(dev)
    torch.cuda.reset_peak_memory_stats(dev)
    free, total = torch.cuda.mem_get_info(dev)
    return total - free


def _mem_end(dev: torch.device, used0: int | None) -> dict:
    if dev.type != "cuda":
        return {"peak_torch_bytes": None, "device_used_growth_bytes": None, "note": "device memory: CUDA only"}
    torch.cuda.synchronize(dev)
    free, total = torch.cuda.mem_get_info(dev)
    return {"peak_torch_bytes": int(torch.cuda.max_memory_allocated(dev)),
            "device_used_growth_bytes": int(total - free - used0)}


# ---- feed-forward methods --------------------------------------------------------------------------------------------
@dataclass
class Runner:
    """fn(x) runs one inversion of x [b,3,S,S] and returns (images [b,3,size,size], pooled [b,3,S,S])."""

    fn: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
    info: dict = field(default_factory=dict)
    close: Callable[[], None] = lambda: None


def _ref_runner(ctx: Ctx) -> Runner:
    m = ctx.model

    def fn(x):
        with torch.no_grad():
            r = m.invert(x, n_iters=ctx.cfg.iters)
        return r.image, r.image_pooled

    return Runner(fn, {"executor": "hyperstyle_trt.models.hyperstyle (eager)", "precision": "fp32"})


def _inverter_runner(inv, info: dict) -> Runner:
    def fn(x):
        r = inv.invert(x)
        return r.images, r.images_pooled

    return Runner(fn, info | {"inverter": inv.describe()}, inv.close)


def _fast_runner(ctx: Ctx) -> Runner:
    from hyperstyle_trt.runtime import Inverter

    prec = "fp16" if ctx.device.type == "cuda" else "fp32"
    try:
        inv = Inverter.from_model(ctx.model, executor="torch", device=ctx.device, precision=prec,
                                  max_batch=ctx.max_batch, n_iters=ctx.cfg.iters)
    except HsError as e:
        raise Unavailable(str(e)) from None
    note = "fp16 kernels + CUDA graph" if ctx.device.type == "cuda" else "CPU: fp32, no Triton kernels, no CUDA graph"
    return _inverter_runner(inv, {"executor": "torch", "precision": prec, "note": note})


def _export_dir(ctx: Ctx, engines: bool) -> Path:
    """--export-dir, or an export made here into <out>/export_{ort,trt} (ONNX fp32 plain graphs for onnxruntime;
    fp16 graphs + engines through engines.pipeline for TensorRT)."""
    if ctx.cfg.export_dir is not None:
        return Path(ctx.cfg.export_dir)
    from hyperstyle_trt.export.config import ExportConfig

    c = ctx.cfg
    out = Path(c.out) / ("export_trt" if engines else "export_ort")
    ecfg = ExportConfig(config=ctx.model.cfg.name if c.checkpoint is None else None, checkpoint=c.checkpoint,
                        w_encoder=c.w_encoder, precisions=("fp16",) if engines else ("fp32",),
                        variants=("plugin",) if engines else ("plain",), max_batch=ctx.max_batch,
                        plain_batch=c.batch, out=out, build_engines=engines, verify=False, seed=c.seed)
    if ctx.progress is not None:
        ctx.progress.console.print(f"exporting {'engines' if engines else 'ONNX graphs'} into {out} ...")
    if engines:
        from hyperstyle_trt.engines.pipeline import run_export
    else:
        from hyperstyle_trt.export.pipeline import run_export
    rep = run_export(ecfg, model=ctx.model)
    if engines and getattr(rep, "engines_skipped", None):
        raise Unavailable(str(rep.engines_skipped))
    ctx.notes.append(f"exported {'engines' if engines else 'ONNX graphs'} into {out} (no --export-dir given)")
    return out


def _ort_runner(ctx: Ctx) -> Runner:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        raise Unavailable("onnxruntime not installed (pip install 'hyperstyle-trt[export]')") from None
    from hyperstyle_trt.runtime import Inverter

    try:
        d = _export_dir(ctx, engines=False)
        inv = Inverter.from_export(d, executor="onnxruntime", max_batch=ctx.max_batch, n_iters=ctx.cfg.iters)
    except HsError as e:
        raise Unavailable(str(e)) from None
    return _inverter_runner(inv, {"executor": "onnxruntime", "export_dir": str(d)})


def _trt_runner(ctx: Ctx) -> Runner:
    if ctx.device.type != "cuda":
        raise Unavailable("no CUDA GPU (TensorRT engines run on a GPU)")
    from hyperstyle_trt.core import flavor

    try:
        fl = flavor.get_flavor()
    except HsError as e:
        raise Unavailable(f"no TensorRT: {e}") from None
    from hyperstyle_trt.runtime import Inverter

    try:
        d = _export_dir(ctx, engines=True)
        inv = Inverter.from_export(d, executor="tensorrt", max_batch=ctx.max_batch, n_iters=ctx.cfg.iters)
    except HsError as e:
        raise Unavailable(str(e)) from None
    return _inverter_runner(inv, {"executor": "tensorrt", "flavor": f"{fl.name} {fl.version}", "export_dir": str(d)})


def _tile(x: torch.Tensor, b: int) -> torch.Tensor:
    return x[torch.arange(b, device=x.device) % x.shape[0]].contiguous()


def measure_feedforward(ctx: Ctx, name: str, runner: Runner, task=None) -> dict:
    """Warm-up, per-batch latency (sync each call), throughput (one sync after `repeats` calls), quality."""
    x, prog = ctx.x, ctx.progress
    b = x.shape[0]

    def adv():
        if prog is not None and task is not None:
            prog.advance(task)

    for _ in range(ctx.warmup):
        runner.fn(x)
        adv()
    ctx.sync()
    lat = []
    for _ in range(ctx.repeats):
        t0 = time.perf_counter()
        runner.fn(x)
        ctx.sync()
        lat.append((time.perf_counter() - t0) * 1e3)
        adv()
    t0 = time.perf_counter()
    for _ in range(ctx.repeats):
        images, pooled = runner.fn(x)  # the last call's outputs are the ones judged below
        adv()
    ctx.sync()
    total_ms = (time.perf_counter() - t0) * 1e3
    rec = {"latency_ms_per_batch": percentiles(lat),
           "throughput": {"batches": ctx.repeats, "ms_per_batch": total_ms / ctx.repeats,
                          "images_per_s": 1e3 * b * ctx.repeats / total_ms},
           "ms_per_image": total_ms / (ctx.repeats * b),
           "quality": quality(pooled, x)}
    if name == "hyperstyle-ref":
        ctx.ref_images = images.float().clone()
    elif ctx.ref_images is not None:
        rec["vs_ref"] = vs_reference(images, ctx.ref_images)
    return rec


def sweep_feedforward(ctx: Ctx, runner: Runner, batches: tuple[int, ...], task=None) -> list[dict]:
    """ms/image at each batch of the sweep (throughput: one sync after max(2, repeats // 2) calls, 1 warm-up)."""
    out = []
    n = max(2, ctx.repeats // 2)
    for bs in batches:
        xb = _tile(ctx.x, bs)
        runner.fn(xb)
        ctx.sync()
        t0 = time.perf_counter()
        for _ in range(n):
            runner.fn(xb)
        ctx.sync()
        ms = (time.perf_counter() - t0) * 1e3
        out.append({"batch": bs, "ms_per_batch": ms / n, "ms_per_image": ms / (n * bs), "calls": n})
        if ctx.progress is not None and task is not None:
            ctx.progress.advance(task)
    return out


# ---- optimisation methods -------------------------------------------------------------------------------------------
def _steps_label(measured: int, full: int, projected: bool) -> str:
    return f"projected from {measured} measured steps" if projected else f"measured over all {full} steps"


def _optim_record(ctx: Ctx, images: torch.Tensor, step_ms: list[float], total_s: float, projected: bool,
                  steps: dict) -> dict:
    b = ctx.x.shape[0]
    label = steps["label"]
    return {"latency_ms_per_step": percentiles(step_ms),
            "ms_per_batch": total_s * 1e3, "ms_per_image": total_s * 1e3 / b,
            "throughput": {"images_per_s": b / total_s},
            "projected": projected, "steps": steps, "label": label,
            "quality": quality(ctx.model.pool(images.float()), ctx.x) | {
                "note": f"after the {steps['measured_total']} steps run, not the full schedule" if projected else
                "after the full run"}}


def run_projector(ctx: Ctx, task=None) -> dict:
    from hyperstyle_trt.benchmarks.baselines import ProjectorConfig, project

    vgg = ctx.lpips("vgg")
    pc = ProjectorConfig()
    k = None if ctx.baseline_steps is None else min(ctx.baseline_steps, pc.num_steps)
    cb = (lambda *a: ctx.progress.advance(task)) if ctx.progress is not None and task is not None else None
    torch.manual_seed(ctx.cfg.seed)
    t0 = time.perf_counter()
    r = project(ctx.model.decoder, ctx.x, vgg, pc, steps=k, on_step=cb)
    ctx.sync()
    wall = time.perf_counter() - t0
    projected = r.steps_run < r.full_steps
    total = r.setup_s + statistics.fmean(r.step_s) * r.full_steps if projected else wall
    steps = {"measured": r.steps_run, "measured_total": r.steps_run, "full": r.full_steps,
             "label": _steps_label(r.steps_run, r.full_steps, projected), "setup_s": r.setup_s,
             "wall_s": wall, "loss_first": r.losses[0], "loss_last": r.losses[-1]}
    rec = _optim_record(ctx, r.images, [s * 1e3 for s in r.step_s], total, projected, steps)
    rec["settings"] = dataclasses.asdict(pc)
    return rec


def run_pti(ctx: Ctx, task=None) -> dict:
    from hyperstyle_trt.benchmarks.baselines import PTIConfig, pti

    vgg, alex = ctx.lpips("vgg"), ctx.lpips("alex")
    pc = PTIConfig()
    k = ctx.baseline_steps
    kw = {} if k is None else {"w_steps": min(k, pc.w_steps), "tune_steps": min(k, pc.tune_steps)}
    cb = (lambda *a: ctx.progress.advance(task)) if ctx.progress is not None and task is not None else None
    torch.manual_seed(ctx.cfg.seed)
    t0 = time.perf_counter()
    r = pti(ctx.model.decoder, ctx.x, vgg, alex, pc, on_step=cb, **kw)
    ctx.sync()
    wall = time.perf_counter() - t0
    w_proj = r.pivot.steps_run < r.pivot.full_steps
    # an image whose tuning stopped early (LPIPS <= 0.06) is done; one that ran all its K steps would go on
    t_proj = any(n < pc.tune_steps and not stop for n, stop in zip(r.tune_steps_run, r.early_stopped))
    projected = w_proj or t_proj
    tune_s = sum(s * (pc.tune_steps if (n < pc.tune_steps and not stop) else n)
                 for s, n, stop in zip(r.tune_step_s, r.tune_steps_run, r.early_stopped))
    total = r.pivot.setup_s + statistics.fmean(r.pivot.step_s) * r.pivot.full_steps + tune_s if projected else wall
    measured_total = r.pivot.steps_run + sum(r.tune_steps_run)
    label = (f"projected from {r.pivot.steps_run} measured W steps + {max(r.tune_steps_run)} measured tuning "
             f"steps per image" if projected else "measured over the full run")
    steps = {"measured": r.pivot.steps_run, "measured_tune": r.tune_steps_run, "measured_total": measured_total,
             "full": r.pivot.full_steps, "full_tune": pc.tune_steps, "early_stopped": r.early_stopped,
             "label": label, "setup_s": r.pivot.setup_s, "wall_s": wall,
             "tune_lpips_first": [h[0] for h in r.tune_lpips], "tune_lpips_last": [h[-1] for h in r.tune_lpips],
             "projection_note": "images not stopped early are projected to all 350 tuning steps (an upper bound)"}
    step_ms = [s * 1e3 for s in r.pivot.step_s] + [s * 1e3 for s in r.tune_step_s]
    rec = _optim_record(ctx, r.images, step_ms, total, projected, steps)
    rec["settings"] = dataclasses.asdict(pc)
    return rec


@dataclass(frozen=True)
class Method:
    name: str
    kind: str  # "optimization" | "feedforward"
    help: str
    runner: Callable[[Ctx], Runner] | None = None  # feed-forward
    run: Callable[..., dict] | None = None  # optimisation


METHODS: dict[str, Method] = {m.name: m for m in (
    Method("projector", "optimization", "StyleGAN2 projector in W+, 1000 steps, LPIPS-VGG16", run=run_projector),
    Method("pti", "optimization", "PTI: 450 W steps + 350 tuning steps, L2 + LPIPS-AlexNet", run=run_pti),
    Method("hyperstyle-ref", "feedforward", "HyperStyle fp32 eager reference", runner=_ref_runner),
    Method("hyperstyle-fast", "feedforward", "hyperstyle_trt.runtime.Inverter, torch executor", runner=_fast_runner),
    Method("hyperstyle-trt", "feedforward", "Inverter, tensorrt executor", runner=_trt_runner),
    Method("hyperstyle-ort", "feedforward", "Inverter, onnxruntime executor", runner=_ort_runner),
)}


# ---- inputs and environment -----------------------------------------------------------------------------------------
def sample_photo_batch(b: int, size: int) -> tuple[torch.Tensor, str]:
    """b crops of matplotlib's bundled public-domain photo (grace_hopper.jpg, 512x600): shifted, every other one
    mirrored, resized to size x size (bilinear) -> [b,3,size,size] in [-1,1]. Not FFHQ-aligned."""
    try:
        import matplotlib
    except ImportError:
        raise HsError("hs-bench needs matplotlib (pip install 'hyperstyle-trt[bench]')") from None
    from PIL import Image

    src = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    with Image.open(src) as im:
        im = im.convert("RGB")
        out = []
        for i in range(b):
            dx, dy = 40 + 13 * (i % 4), 30 + 11 * ((i // 4) % 4)
            c = im.crop((dx, dy, dx + 420, dy + 420)).resize((size, size), Image.BILINEAR)
            if i % 2:
                c = c.transpose(Image.FLIP_LEFT_RIGHT)
            out.append(torch.from_numpy(np.asarray(c, dtype=np.float32) / 127.5 - 1.0).permute(2, 0, 1))
    return torch.stack(out), f"{b} crops of matplotlib's sample photo {src.name} (not FFHQ-aligned)"


def load_images(cfg: BenchConfig, size: int) -> tuple[torch.Tensor, str]:
    if cfg.images is None:
        return sample_photo_batch(cfg.batch, size)
    from hyperstyle_trt.models.images import read_images

    files = sorted(p for p in Path(cfg.images).iterdir() if p.suffix.lower() in IMAGE_EXT and p.is_file())
    if not files:
        raise HsError(f"--images {cfg.images} holds no png/jpg images")
    use = [files[i % len(files)] for i in range(cfg.batch)]
    note = f"{len(files)} images from {cfg.images}" + (f", repeated to fill --batch {cfg.batch}"
                                                       if len(files) < cfg.batch else "")
    return read_images(use, size), note


def environment(cfg: BenchConfig, device: torch.device, model) -> dict:
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
            env["tensorrt_flavor"], env["tensorrt"] = None, f"none: {e}"
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
                      {"checkpoint": cfg.checkpoint, "w_encoder": cfg.w_encoder})
    env["command_line"] = " ".join(["hs-bench", *cfg.argv])
    return env


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise HsError(f"--device {name}: CUDA is not available on this machine (use --device cpu)")
        return torch.device(name)
    raise HsError(f"--device {name!r}: expected auto, cpu, cuda or cuda:N")


# ---- the run ---------------------------------------------------------------------------------------------------------
def run_bench(cfg: BenchConfig, console=None) -> dict:
    """Run every selected method, write bench.json and the plots into cfg.out, print the table. Returns the record."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    if console is None:
        console = Console(stderr=True)
        if not console.is_terminal:
            console = Console(stderr=True, width=230)  # logs: the whole table on one line per method
    device = pick_device(cfg.device)
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
    if device.type == "cpu":
        notes.append(f"no CUDA GPU: running on CPU with warm-up {warmup}, {repeats} timed batches and "
                     f"{'all' if steps is None else steps} baseline steps; CPU figures, not GPU ones")
        console.print(f"[yellow]{notes[-1]}[/yellow]")

    from hyperstyle_trt.models.checkpoint import build_model

    config = cfg.config
    if device.type == "cpu" and config is None and cfg.checkpoint is None:
        config = "tiny"
        notes.append("no CUDA GPU and no --config: the tiny config runs (FFHQ-1024 on a CPU takes hours with the "
                     "baselines; pass --config ffhq1024 to run it anyway)")
        console.print(f"[yellow]{notes[-1]}[/yellow]")
    model = build_model(config, cfg.checkpoint, cfg.w_encoder, device=device, quiet=True)
    if getattr(model, "is_default", False):
        notes.append("embedded default weights (deterministic, untrained): timing is faithful, images are not")
    x, img_note = load_images(cfg, model.cfg.hypernet.input_size)
    x = x.to(device)
    max_batch = max([cfg.batch, *cfg.sweep])
    ctx = Ctx(cfg, device, model, x, warmup, repeats, steps, max_batch, notes=notes)
    record = {"schema": 1, "kind": "hs-bench e2e", "config": cfg.to_dict(), "environment": environment(cfg, device,
                                                                                                       model),
              "batch": cfg.batch, "iters": cfg.iters, "images": img_note, "warmup": warmup, "repeats": repeats,
              "baseline_steps": steps, "notes": notes, "methods": {}, "sweep": {}}
    # the reference runs first when selected (the fast paths' error columns need its output); otherwise its output
    # is computed once, untimed, for those columns
    order = sorted(cfg.methods, key=lambda m: (m != "hyperstyle-ref", METHOD_NAMES.index(m)))
    with Progress(TextColumn("{task.description:<22}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=False) as prog:
        ctx.progress = prog
        if "hyperstyle-ref" not in cfg.methods and any(m in FAST for m in cfg.methods):
            t = prog.add_task("reference output", total=1)
            ctx.ref_images = _ref_runner(ctx).fn(x)[0].float().clone()
            prog.advance(t)
        for name in order:
            record["methods"][name] = _run_method(ctx, METHODS[name], prog)
        record["methods"] = {m: record["methods"][m] for m in cfg.methods}
    _speedups(record)
    paths = write_outputs(record, out)
    print_table(record, console)
    for p in paths:
        console.print(f"wrote {p}")
    return record


def _run_method(ctx: Ctx, m: Method, prog) -> dict:
    rec: dict = {"name": m.name, "kind": m.kind, "description": m.help}
    used0 = _mem_start(ctx.device)
    t0 = time.perf_counter()
    runner = None
    try:
        if m.kind == "optimization":
            b = ctx.x.shape[0]
            k = ctx.baseline_steps
            total = ((1000 if k is None else min(k, 1000)) if m.name == "projector" else
                     (450 if k is None else min(k, 450)) + b * (350 if k is None else min(k, 350)))
            task = prog.add_task(m.name, total=total)
            rec |= m.run(ctx, task)
        else:
            total = ctx.warmup + 2 * ctx.repeats + (len(ctx.cfg.sweep) if m.name in FAST else 0)
            task = prog.add_task(m.name, total=total)
            runner = m.runner(ctx)
            rec["setup_s"] = time.perf_counter() - t0
            rec["runner"] = runner.info
            rec |= measure_feedforward(ctx, m.name, runner, task)
            if ctx.cfg.sweep and m.name in FAST:
                rec["sweep"] = sweep_feedforward(ctx, runner, ctx.cfg.sweep, task)
        rec["status"] = "ok"
        rec["memory"] = _mem_end(ctx.device, used0)
    except Unavailable as e:
        rec |= {"status": "skipped", "reason": str(e)}
        prog.console.print(f"[yellow]{m.name}: skipped: {e}[/yellow]")
    except HsError as e:
        rec |= {"status": "failed", "reason": str(e)}
        prog.console.print(f"[red]{m.name}: failed: {e}[/red]")
    except Exception as e:  # noqa: BLE001 - one method's failure is recorded; the others still run
        msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
        rec |= {"status": "failed", "reason": f"{type(e).__name__}: {msg[:300]}"}
        prog.console.print(f"[red]{m.name}: failed: {rec['reason']}[/red]")
    finally:
        if runner is not None:
            try:
                runner.close()
            except Exception:  # noqa: BLE001 - closing a backend must not lose the figures
                pass
        if ctx.device.type == "cuda":
            torch.cuda.empty_cache()
    rec["wall_s"] = time.perf_counter() - t0
    return rec


def _speedups(record: dict) -> None:
    ms = {k: v.get("ms_per_image") for k, v in record["methods"].items() if v.get("status") == "ok"}
    for k, v in record["methods"].items():
        if v.get("status") != "ok":
            continue
        v["speedup"] = {f"vs_{b}": (ms[b] / ms[k] if b in ms and ms[k] else None) for b in ("hyperstyle-ref", "pti")}
        if v.get("projected"):
            v["speedup"]["note"] = f"this method's time is {v['label']}"
        elif "pti" in ms and record["methods"]["pti"].get("projected"):
            v["speedup"]["note"] = f"vs_pti uses pti's time {record['methods']['pti']['label']}"
    record["sweep"] = {k: v["sweep"] for k, v in record["methods"].items() if v.get("sweep")}


# ---- outputs ---------------------------------------------------------------------------------------------------------
def _fmt(v, spec: str = ".3g") -> str:
    if v is None:
        return "-"
    if isinstance(v, float) and math.isinf(v):
        return "inf"
    return format(v, spec)


def print_table(record: dict, console) -> None:
    from rich.table import Table

    t = Table(title=f"hs-bench: batch {record['batch']}, T={record['iters']}, {record['environment']['config']} on "
                    f"{record['environment']['device']}", show_lines=False)
    for col in ("method", "status", "ms/image", "x vs ref", "x vs pti", "p50 ms", "p95 ms", "p99 ms", "img/s",
                "peak MB", "MSE", "PSNR dB", "max|Δ| ref", "PSNR ref", "note"):
        t.add_column(col, justify="left" if col in ("method", "status", "note") else "right",
                     overflow="fold", max_width=48 if col == "note" else None)
    for name, m in record["methods"].items():
        if m.get("status") != "ok":
            t.add_row(name, m.get("status", "?"), *["-"] * 12, m.get("reason", ""))
            continue
        lat = m.get("latency_ms_per_batch") or m.get("latency_ms_per_step") or {}
        per = " (per step)" if "latency_ms_per_step" in m else ""
        mem = (m.get("memory") or {}).get("peak_torch_bytes")
        vs = m.get("vs_ref") or {}
        note = m.get("label") or (m.get("runner") or {}).get("note", "")
        if per:
            note = f"{note}; p50-p99 per step"
        sp = m.get("speedup") or {}
        t.add_row(name, "ok", _fmt(m["ms_per_image"], ".4g") + (" *" if m.get("projected") else ""),
                  _fmt(sp.get("vs_hyperstyle-ref")), _fmt(sp.get("vs_pti")), _fmt(lat.get("p50")),
                  _fmt(lat.get("p95")), _fmt(lat.get("p99")), _fmt(m["throughput"]["images_per_s"]),
                  _fmt(None if mem is None else mem / 2**20, ".1f"), _fmt(m["quality"]["mse"]),
                  _fmt(m["quality"]["psnr_db"], ".2f"), _fmt(vs.get("max_abs_err")), _fmt(vs.get("psnr_db"), ".2f"),
                  note)
    console.print(t)
    if any(m.get("projected") for m in record["methods"].values()):
        console.print("* projected: full-run time from the measured steps (see the note column); "
                      "--full-baselines runs them to completion")
    for n in record["notes"]:
        console.print(f"note: {n}")
    for name, rows in record["sweep"].items():
        console.print(f"sweep {name}: " + ", ".join(f"B={r['batch']}: {r['ms_per_image']:.3g} ms/image" for r in rows))


def _save_fig(fig, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    return path


def write_plots(record: dict, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    paths = []
    ok = [(k, v) for k, v in record["methods"].items() if v.get("status") == "ok"]
    fig, ax = plt.subplots(figsize=(8, 0.6 * max(3, len(record["methods"])) + 1))
    names = list(record["methods"])
    vals = [record["methods"][n].get("ms_per_image") if record["methods"][n].get("status") == "ok" else None
            for n in names]
    colors = ["#c44e52" if record["methods"][n].get("projected") else
              "#4c72b0" if n.startswith("hyperstyle") else "#dd8452" for n in names]
    ys = list(range(len(names)))
    ax.set_xlim(1, 1e3)
    ax.set_xscale("log")
    bars = [(y, v, c) for y, v, c in zip(ys, vals, colors) if v]  # a skipped method gets its reason, no bar
    if bars:
        ax.barh([b[0] for b in bars], [b[1] for b in bars], color=[b[2] for b in bars])
    for y, n, v in zip(ys, names, vals):
        m = record["methods"][n]
        txt = (f"{v:.3g} ms" + (" (projected)" if m.get("projected") else "")) if v else \
            f"{m.get('status')}: {str(m.get('reason', ''))[:60]}"
        at = v if v else (min(u for u in vals if u) / 3 if ok else 1.0)
        ax.text(at, y, " " + txt, va="center", fontsize=8)
    from matplotlib.patches import Patch

    ax.legend(handles=[Patch(color="#4c72b0", label="HyperStyle (measured)"),
                       Patch(color="#dd8452", label="optimisation (measured, full run)"),
                       Patch(color="#c44e52", label="optimisation (projected from measured steps)")],
              loc="lower right", fontsize=7)
    ax.set_yticks(ys, names)
    ax.set_ylim(len(names) - 0.5, -0.5)  # first method on top
    ax.set_xlabel("ms per image (log scale)")
    env = record["environment"]
    ax.set_title(f"hs-bench: batch {record['batch']}, T={record['iters']}, {env['config']} on "
                 f"{env.get('gpu') or env['device']}", fontsize=9)
    if ok:
        lo = min(v for v in vals if v)
        hi = max(v for v in vals if v)
        ax.set_xlim(lo / 3, hi * 30)
    paths.append(_save_fig(fig, out / "ms_per_image.png"))
    plt.close(fig)
    if record["sweep"]:
        fig, ax = plt.subplots(figsize=(6, 4))
        for name, rows in record["sweep"].items():
            ax.plot([r["batch"] for r in rows], [r["ms_per_image"] for r in rows], marker="o", label=name)
        ax.set_xscale("log", base=2)
        bs = sorted({r["batch"] for rows in record["sweep"].values() for r in rows})
        ax.set_xticks(bs, [str(b) for b in bs])
        ax.minorticks_off()
        ax.set_yscale("log")
        ax.set_xlabel("batch")
        ax.set_ylabel("ms per image (log scale)")
        ax.set_title(f"ms/image vs batch ({env['config']} on {env.get('gpu') or env['device']})", fontsize=9)
        ax.legend()
        ax.grid(True, which="both", alpha=0.3)
        paths.append(_save_fig(fig, out / "ms_per_image_vs_batch.png"))
        plt.close(fig)
    return paths


def write_outputs(record: dict, out: Path) -> list[Path]:
    record["plots"] = [p.name for p in (out / "ms_per_image.png",
                                        *([out / "ms_per_image_vs_batch.png"] if record["sweep"] else []))]
    j = write_json_atomic(out / "bench.json", _clean(record))
    return [j, *write_plots(record, out)]


def _clean(o):
    """A JSON-safe copy: inf / nan -> "inf" / "nan" strings (strict JSON has neither), numpy scalars -> Python."""
    if isinstance(o, dict):
        return {str(k): _clean(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_clean(v) for v in o]
    if isinstance(o, (np.floating, np.integer)):
        o = o.item()
    if isinstance(o, float) and not math.isfinite(o):
        return str(o)
    return o if isinstance(o, (str, int, float, bool, type(None))) else str(o)
