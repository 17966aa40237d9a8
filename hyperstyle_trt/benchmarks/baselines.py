"""Optimization-based inversion baselines on models.stylegan2.Generator: the StyleGAN2 projector and PTI.

Both take `target` [B,3,S,S] float32 in [-1,1] (S = the HyperStyle input size: 256 for FFHQ, 64 for tiny) and compare
it with the generator output area-downsampled to min(S, 256) (the projector's 256² rule; the target is resized the
same way when larger). A batch is B independent runs: losses are summed over samples, each sample has its own
latent and noise, and Adam is element-wise, so sample b's trajectory is the one a single-image run would take (up to
the random latent noise draws).

`project` (StyleGAN2-ADA `projector.py` schedule, official defaults): 1000 steps; w_avg / w_std from 10,000 mapped
z samples (seed 123); start at w_avg; Adam(betas 0.9/0.999) on the latent and on per-sample noise maps (randomly
initialised, normalised to zero mean / unit variance after each step); lr = 0.1 · ramp with a 5 % cosine ramp-up and a
25 % cosine ramp-down; latent noise w_std · 0.05 · max(0, 1 - t/0.75)²; loss = LPIPS-VGG16(synth, target) +
1e5 · noise regularisation (squared mean autocorrelation at shifts of one pixel over an avg-pool pyramid down to 8²).
`space="w+"` (the default here, as issue 13 asks) optimises one code per layer [B,n_latent,C]; `space="w"` is the
official projector's single broadcast w [B,1,C].

`pti` (danielroich/PTI defaults): stage 1 = the same projector in W, 450 steps, 600 w samples; PTI's projector builds
Adam with lr 5e-3 (`first_inv_lr`) but overwrites it every step with 0.01 · ramp (its `initial_learning_rate`
default), so 0.01 is what runs and what runs here. Stage 2 = per image, a copy of the generator tuned by
runtime.refine.tune_pivot (the project's one PTI loop, also behind hs-invert --refine-steps): Adam(lr 3e-4) on the
synthesis parameters (the official coach passes all of them; the mapping network gets no gradient at a fixed pivot,
so the updates are the same) for up to 350 steps on L2 (MSE) + LPIPS(AlexNet) at the pivot, stopping as soon as
LPIPS <= 0.06 (checked before the step, as the official coach does); the projector's optimised noise maps are
discarded (the tuned generator keeps its own constant noise). The official coach computes its losses at the
generator's resolution (1024²); here they are computed at the input resolution (256²), which makes PTI cheaper, not
dearer.

`steps` arguments run only the first K steps of the full schedule (t = step / full_steps), so their per-step time
is the basis of a "projected from K measured steps" figure. Every step is timed with a device sync on both sides.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from hyperstyle_trt.core.errors import HsError
from hyperstyle_trt.models.lpips import LPIPS
from hyperstyle_trt.models.stylegan2 import Generator
from hyperstyle_trt.runtime.refine import resize_square, sync_device, tune_pivot

OnStep = Callable[[str, int, float], None]  # (stage, step index, loss)


@dataclass(frozen=True)
class ProjectorConfig:
    num_steps: int = 1000
    w_avg_samples: int = 10000
    initial_learning_rate: float = 0.1
    initial_noise_factor: float = 0.05
    lr_rampdown_length: float = 0.25
    lr_rampup_length: float = 0.05
    noise_ramp_length: float = 0.75
    regularize_noise_weight: float = 1e5
    space: str = "w+"
    lpips_size: int = 256
    seed: int = 123


@dataclass(frozen=True)
class PTIConfig:
    w_steps: int = 450
    w_avg_samples: int = 600
    w_lr: float = 0.01
    tune_steps: int = 350
    tune_lr: float = 3e-4
    l2_lambda: float = 1.0
    lpips_lambda: float = 1.0
    lpips_threshold: float = 0.06

    def projector(self) -> ProjectorConfig:
        return ProjectorConfig(num_steps=self.w_steps, w_avg_samples=self.w_avg_samples,
                               initial_learning_rate=self.w_lr, space="w")


@dataclass
class ProjectResult:
    """codes: W+ [B,n_latent,C] (the last step's latent, without latent noise); images: G(codes) with the optimised
    noise [B,3,size,size]; losses / dists: total loss and LPIPS sum per step; step_s: seconds per step."""

    codes: torch.Tensor
    images: torch.Tensor
    losses: list[float] = field(default_factory=list)
    dists: list[float] = field(default_factory=list)
    step_s: list[float] = field(default_factory=list)
    setup_s: float = 0.0
    steps_run: int = 0
    full_steps: int = 0


@dataclass
class PTIResult:
    """pivot: stage-1 projection; images: tuned generators' outputs at the pivot [B,3,size,size]; per image:
    tune_lpips / tune_l2 histories, steps_run (early stop), step_s; generators: the tuned copies if kept."""

    pivot: ProjectResult
    images: torch.Tensor
    tune_lpips: list[list[float]] = field(default_factory=list)
    tune_l2: list[list[float]] = field(default_factory=list)
    tune_steps_run: list[int] = field(default_factory=list)
    tune_step_s: list[float] = field(default_factory=list)
    early_stopped: list[bool] = field(default_factory=list)
    full_tune_steps: int = 0
    generators: list[Generator] = field(default_factory=list)


def compare_size(target: torch.Tensor, lpips_size: int = 256) -> int:
    return min(int(target.shape[-1]), lpips_size)


def _check_target(g: Generator, target: torch.Tensor) -> None:
    if target.ndim != 4 or target.shape[1] != 3 or target.shape[2] != target.shape[3]:
        raise HsError(f"baseline targets must be [B,3,S,S] in [-1,1], got {tuple(target.shape)}")
    if target.shape[-1] > g.cfg.size or g.cfg.size % target.shape[-1]:
        raise HsError(f"target size {target.shape[-1]} must divide the generator size {g.cfg.size}")


@torch.no_grad()
def w_stats(g: Generator, n: int, seed: int, device: torch.device) -> tuple[torch.Tensor, float]:
    """w_avg [1,C] and the scalar w_std = sqrt(sum((w - w_avg)²) / n) over n mapped z ~ N(0,1) (numpy seed)."""
    z = torch.from_numpy(np.random.RandomState(seed).randn(n, g.cfg.style_dim).astype(np.float32)).to(device)
    w = torch.cat([g.mapping(c) for c in z.split(4096)])
    w_avg = w.mean(0, keepdim=True)
    return w_avg, float(((w - w_avg).pow(2).sum() / n).sqrt())


def noise_regularization(noises: list[torch.Tensor]) -> torch.Tensor:
    """Sum over samples of the projector's noise penalty; each noise map [B,1,r,r]."""
    reg = noises[0].new_zeros(())
    for v in noises:
        x = v
        while True:
            reg = reg + ((x * torch.roll(x, 1, dims=3)).mean((1, 2, 3)) ** 2).sum()
            reg = reg + ((x * torch.roll(x, 1, dims=2)).mean((1, 2, 3)) ** 2).sum()
            if x.shape[2] <= 8:
                break
            x = F.avg_pool2d(x, 2)
    return reg


def _schedule(cfg: ProjectorConfig, step: int, w_std: float) -> tuple[float, float]:
    """(lr, latent-noise scale) at `step` of the full cfg.num_steps schedule."""
    t = step / cfg.num_steps
    noise_scale = w_std * cfg.initial_noise_factor * max(0.0, 1.0 - t / cfg.noise_ramp_length) ** 2
    ramp = min(1.0, (1.0 - t) / cfg.lr_rampdown_length)
    ramp = 0.5 - 0.5 * math.cos(ramp * math.pi)
    ramp = ramp * min(1.0, t / cfg.lr_rampup_length)
    return cfg.initial_learning_rate * ramp, noise_scale


def project(g: Generator, target: torch.Tensor, lpips_vgg: LPIPS, cfg: ProjectorConfig = ProjectorConfig(),
            steps: int | None = None, on_step: OnStep | None = None, stage: str = "projector") -> ProjectResult:
    """Run the first `steps` (default all cfg.num_steps) steps of the projector on `target` [B,3,S,S]."""
    _check_target(g, target)
    if cfg.space not in ("w", "w+"):
        raise HsError(f"projector space must be 'w' or 'w+', got {cfg.space!r}")
    steps = cfg.num_steps if steps is None else steps
    if not 1 <= steps <= cfg.num_steps:
        raise HsError(f"projector steps must be in 1..{cfg.num_steps}, got {steps}")
    dev = target.device
    t0 = time.perf_counter()
    g = copy.deepcopy(g).eval().requires_grad_(False)
    b, n_lat = target.shape[0], g.n_latent
    size = compare_size(target, cfg.lpips_size)
    with torch.no_grad():
        tgt = resize_square(target.float(), size)
    w_avg, w_std = w_stats(g, cfg.w_avg_samples, cfg.seed, dev)
    n_codes = n_lat if cfg.space == "w+" else 1
    w_opt = w_avg[:, None].repeat(b, n_codes, 1).detach().requires_grad_(True)  # [B,L|1,C]
    gen = torch.Generator(device=dev).manual_seed(cfg.seed)
    noises = []
    for i in range(g.cfg.num_noise):
        r = getattr(g.noises, f"noise_{i}").shape[-1]
        nz = torch.randn(b, 1, r, r, device=dev, generator=gen).requires_grad_(True)
        setattr(g.noises, f"noise_{i}", nz)  # per-sample noise [B,1,r,r], broadcast by NoiseInjection
        noises.append(nz)
    opt = torch.optim.Adam([w_opt, *noises], betas=(0.9, 0.999), lr=cfg.initial_learning_rate)
    sync_device(dev)
    res = ProjectResult(codes=w_opt, images=target, setup_s=time.perf_counter() - t0, full_steps=cfg.num_steps)
    for step in range(steps):
        sync_device(dev)
        ts = time.perf_counter()
        lr, noise_scale = _schedule(cfg, step, w_std)
        for grp in opt.param_groups:
            grp["lr"] = lr
        ws = w_opt + torch.randn(w_opt.shape, device=dev, generator=gen) * noise_scale
        synth = resize_square(g(ws.expand(b, n_lat, -1)), size)
        dist = lpips_vgg(synth, tgt).sum()
        loss = dist + noise_regularization(noises) * cfg.regularize_noise_weight
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            for nz in noises:
                nz -= nz.mean((1, 2, 3), keepdim=True)
                nz *= nz.square().mean((1, 2, 3), keepdim=True).rsqrt()
        res.losses.append(float(loss.detach()))  # a host sync: the step time below includes the device work
        res.dists.append(float(dist.detach()))
        sync_device(dev)
        res.step_s.append(time.perf_counter() - ts)
        if on_step is not None:
            on_step(stage, step, res.losses[-1])
    with torch.no_grad():
        codes = w_opt.detach().expand(b, n_lat, -1).contiguous()
        res.codes, res.images, res.steps_run = codes, g(codes), steps
    return res


def pti(g: Generator, target: torch.Tensor, lpips_vgg: LPIPS, lpips_alex: LPIPS, cfg: PTIConfig = PTIConfig(),
        w_steps: int | None = None, tune_steps: int | None = None, on_step: OnStep | None = None,
        keep_generators: bool = False) -> PTIResult:
    """Pivotal tuning of `g` for each image of `target` [B,3,S,S]: the W pivot (stage 1, batched), then one tuned
    generator copy per image (stage 2, sequential). w_steps / tune_steps: run only the first K steps."""
    tune_steps = cfg.tune_steps if tune_steps is None else tune_steps
    if not 1 <= tune_steps <= cfg.tune_steps:
        raise HsError(f"PTI tuning steps must be in 1..{cfg.tune_steps}, got {tune_steps}")
    pivot = project(g, target, lpips_vgg, cfg.projector(), steps=w_steps, on_step=on_step, stage="pti-w")
    size = compare_size(target)
    res = PTIResult(pivot=pivot, images=pivot.images.clone(), full_tune_steps=cfg.tune_steps)
    cb = None if on_step is None else (lambda step, loss: on_step("pti-tune", step, loss))
    for i in range(target.shape[0]):
        r = tune_pivot(copy.deepcopy(g).train(False), pivot.codes[i:i + 1], target[i:i + 1], tune_steps, lpips_alex,
                       lr=cfg.tune_lr, lpips_weight=cfg.lpips_lambda, l2_weight=cfg.l2_lambda, side=size,
                       stop_lpips=cfg.lpips_threshold, on_step=cb)
        res.images[i:i + 1] = r.image
        res.tune_lpips.append(r.lpips)
        res.tune_l2.append(r.l2)
        res.tune_steps_run.append(len(r.step_s))
        res.tune_step_s.append(float(np.mean(r.step_s)))
        res.early_stopped.append(r.stopped)
        if keep_generators:
            res.generators.append(r.generator)
    return res
