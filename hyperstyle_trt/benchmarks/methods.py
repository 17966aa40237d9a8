"""`hs-bench`'s methods, registered by name in METHODS (all on the same images, device and weights):

  projector        StyleGAN2-projector optimisation in W+ (benchmarks.baselines.project, 1000 steps)
  pti              pivotal tuning (benchmarks.baselines.pti: 450 W steps + up to 350 tuning steps per image)
  hyperstyle-ref   models.hyperstyle.HyperStyle.invert, fp32 eager (numerically the official implementation)
  hyperstyle-fast  runtime.Inverter, torch executor (CUDA: fp16 kernels + CUDA graph; CPU: fp32, neither)
  hyperstyle-trt   runtime.Inverter, tensorrt executor over an hs-export directory with engines
  hyperstyle-ort   runtime.Inverter, onnxruntime executor over the plain ONNX graphs

A feed-forward method gives a Runner (measure.measure_feedforward times it); an optimisation method runs
`baseline_steps` steps of its full schedule (each step timed with a device sync on both sides) and its full-run time
is setup + mean step time x full steps ("projected from K measured steps") unless --full-baselines runs it to the end.
A method that cannot run here raises measure.Unavailable with the reason.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from hyperstyle_trt.benchmarks.measure import Ctx, Runner, Unavailable, quality, spread_record
from hyperstyle_trt.benchmarks.spread import timing_stats
from hyperstyle_trt.core.errors import HsError


# ---- feed-forward methods --------------------------------------------------------------------------------------------
def ref_runner(ctx: Ctx) -> Runner:
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
    if ctx.cfg.source.export_dir is not None:
        return Path(ctx.cfg.source.export_dir)
    from hyperstyle_trt.export.config import ExportConfig

    c, src = ctx.cfg, ctx.cfg.source
    out = Path(c.out) / ("export_trt" if engines else "export_ort")
    ecfg = ExportConfig(config=ctx.model.cfg.name if src.checkpoint is None else None, checkpoint=src.checkpoint,
                        w_encoder=src.w_encoder, precisions=("fp16",) if engines else ("fp32",),
                        variants=("plugin",) if engines else ("plain",), max_batch=ctx.max_batch,
                        plain_batch=c.batch, out=out, build_engines=engines, verify=False, seed=c.seed)
    if ctx.progress is not None:
        ctx.progress.console.print(f"exporting {'engines' if engines else 'ONNX graphs'} into {out} ...")
    if engines:  # ONNX graphs + engines, as hs-export
        from hyperstyle_trt.engines.pipeline import run_export as export_fn
    else:  # the ONNX graphs only
        from hyperstyle_trt.export.pipeline import run_onnx_export as export_fn
    rep = export_fn(ecfg, model=ctx.model)
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



# ---- optimisation methods -------------------------------------------------------------------------------------------
def _steps_label(measured: int, full: int, projected: bool) -> str:
    return f"projected from {measured} measured steps" if projected else f"measured over all {full} steps"


def _n_steps(n: int) -> str:
    return f"{n} step" if n == 1 else f"{n} steps"


def _optim_record(ctx: Ctx, images: torch.Tensor, step_ms: list[float], total_s: float, projected: bool,
                  steps: dict, after: str, spread_ms: list[float], spread_unit: str) -> dict:
    """An optimisation method's record. after: the steps its images came from ("1 step", "1 W + 1 tuning steps"),
    written beside its quality (`final` False when projected: not the full method's quality); spread_ms: the step
    times whose spread judges the run (one kind of step, in `spread_unit`)."""
    b = ctx.x.shape[0]
    label = steps["label"]
    return {"latency_ms_per_step": timing_stats(step_ms),
            "spread": spread_record(timing_stats(spread_ms), spread_unit),
            "ms_per_batch": total_s * 1e3, "ms_per_image": total_s * 1e3 / b,
            "throughput": {"images_per_s": b / total_s},
            "projected": projected, "steps": steps, "label": label,
            "short_label": f"projected from {after}" if projected else "full run",
            "quality": quality(ctx.model.pool(images.float()), ctx.x) | {
                "note": f"after the {steps['measured_total']} steps run, not the full schedule" if projected else
                "after the full run", "final": not projected, "after": after if projected else "the full run"}}


def run_projector(ctx: Ctx, task=None) -> dict:
    from hyperstyle_trt.benchmarks.baselines import ProjectorConfig, project

    vgg = ctx.lpips("vgg")
    pc = ProjectorConfig()
    k = None if ctx.baseline_steps is None else min(ctx.baseline_steps, pc.num_steps)
    cb = (lambda *a: ctx.advance(task)) if ctx.progress is not None and task is not None else None
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
    step_ms = [s * 1e3 for s in r.step_s]
    rec = _optim_record(ctx, r.images, step_ms, total, projected, steps, _n_steps(r.steps_run), step_ms, "ms per step")
    rec["settings"] = dataclasses.asdict(pc)
    return rec


def run_pti(ctx: Ctx, task=None) -> dict:
    from hyperstyle_trt.benchmarks.baselines import PTIConfig, pti

    vgg, alex = ctx.lpips("vgg"), ctx.lpips("alex")
    pc = PTIConfig()
    k = ctx.baseline_steps
    kw = {} if k is None else {"w_steps": min(k, pc.w_steps), "tune_steps": min(k, pc.tune_steps)}
    cb = (lambda *a: ctx.advance(task)) if ctx.progress is not None and task is not None else None
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
    w_ms = [s * 1e3 for s in r.pivot.step_s]
    step_ms = w_ms + [s * 1e3 for s in r.tune_step_s]
    after = f"{r.pivot.steps_run} W + {max(r.tune_steps_run)} tuning steps"
    rec = _optim_record(ctx, r.images, step_ms, total, projected, steps, after, w_ms, "ms per W step")
    rec["settings"] = dataclasses.asdict(pc)
    return rec


@dataclass(frozen=True)
class Method:
    """One benchmark method: `runner(ctx)` gives a feed-forward Runner, `run(ctx, task)` runs an optimisation and
    returns its record."""

    name: str
    kind: str  # "optimization" | "feedforward"
    help: str
    runner: Callable[[Ctx], Runner] | None = None  # feed-forward
    run: Callable[..., dict] | None = None  # optimisation


def optim_steps_total(name: str, batch: int, k: int | None) -> int:
    """Steps an optimisation method runs (its progress bar's length): the projector's 1000, or PTI's 450 W steps +
    350 tuning steps per image, each capped at k measured steps (None: all)."""
    if name == "projector":
        return 1000 if k is None else min(k, 1000)
    return (450 if k is None else min(k, 450)) + batch * (350 if k is None else min(k, 350))


METHODS: dict[str, Method] = {m.name: m for m in (
    Method("projector", "optimization", "StyleGAN2 projector in W+, 1000 steps, LPIPS-VGG16", run=run_projector),
    Method("pti", "optimization", "PTI: 450 W steps + 350 tuning steps, L2 + LPIPS-AlexNet", run=run_pti),
    Method("hyperstyle-ref", "feedforward", "HyperStyle fp32 eager reference", runner=ref_runner),
    Method("hyperstyle-fast", "feedforward", "hyperstyle_trt.runtime.Inverter, torch executor", runner=_fast_runner),
    Method("hyperstyle-trt", "feedforward", "Inverter, tensorrt executor", runner=_trt_runner),
    Method("hyperstyle-ort", "feedforward", "Inverter, onnxruntime executor", runner=_ort_runner),
)}


