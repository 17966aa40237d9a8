"""Per-image generators from a HyperStyle inversion: Δ folded into the weights, applied to another generator
(domain adaptation), and refined by PTI (pivotal tuning) starting from the HyperStyle weights.

HyperStyle's offsets act multiplicatively on the (unscaled) modulated-conv weights: W_eff = W * (1 + Δ), per image.
Folding one image's Δ gives a plain StyleGAN2 generator (rosinality state_dict names, no Δ inputs) that renders that
image's inversion from its W+ codes:

    sd = fold_deltas(base_state_dict, {layer: Δ[i]})      # Δ[i]: [Cout,Cin,k,k]; sd: state_dict, same keys
    g = generator_from_state_dict(cfg.generator, sd); g(codes[i:i+1])  # == G(codes, Δ) up to fp rounding

Domain adaptation (HyperStyle §5): the Δ predicted with the FFHQ generator applied to another generator of the
same architecture (e.g. a toonified FFHQ generator given as a rosinality g_ema file): `adapt_generator`.

HyperStyle -> PTI (the official repository's issue #24): a few HyperStyle iterations give a good starting generator;
`refine_pti` then tunes the synthesis weights (codes fixed, the pivot) on LPIPS + L2 against the target photo, as
PTI does, for a handful of steps instead of PTI's 350 from the unmodified generator. `tune_pivot` is that tuning loop,
the only one: benchmarks.baselines.pti (the PTI baseline) runs it too, and `resize_square` is the one resize of
renders and targets both use.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Callable, Mapping

import torch
import torch.nn.functional as F

from hyperstyle_trt.core.config import GeneratorConfig
from hyperstyle_trt.core.errors import HsError, one_line
from hyperstyle_trt.models.checkpoint import check_keys, expected_shapes, load_g_ema
from hyperstyle_trt.models.stylegan2 import Generator

LpipsFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # ([B,3,H,W], [B,3,H,W]) in [-1,1] -> [B]


def weight_key(layer: str) -> str:
    """Generator layer name (e.g. 'convs.8', 'to_rgb1') -> its modulated-conv weight key in the state_dict."""
    return f"{layer}.conv.weight"


def fold_deltas(state_dict: Mapping[str, torch.Tensor], deltas: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A generator state_dict with one image's offsets folded in: weight [1,Cout,Cin,k,k] -> weight * (1 + Δ).

    deltas: {layer name: [Cout,Cin,k,k] or [1,Cout,Cin,k,k]} (one image; per-channel offsets already broadcast over
    the taps). Returns a new dict (fp32 for the folded tensors, the others shared with `state_dict`)."""
    out = dict(state_dict)
    for layer, d in deltas.items():
        k = weight_key(layer)
        if k not in out:
            raise HsError(f"Δ for layer {layer!r} has no weight {k} in the generator")
        w = out[k]
        d = d.detach()
        if d.ndim == w.ndim - 1:
            d = d.unsqueeze(0)
        if tuple(d.shape) != tuple(w.shape):
            raise HsError(f"Δ for {layer} is {tuple(d.shape)}, the generator weight {k} is {tuple(w.shape)}; "
                          "expected one image's offsets for a generator of the same architecture")
        out[k] = w.detach().float() * (1 + d.to(w.device, torch.float32))
    return out


def generator_from_state_dict(cfg: GeneratorConfig, state_dict: Mapping[str, torch.Tensor],
                              device: str | torch.device = "cpu") -> Generator:
    """A Generator (eval mode) holding `state_dict` strictly (same keys and shapes as rosinality's g_ema)."""
    with torch.device("meta"):
        shapes = expected_shapes(Generator(cfg))
    check_keys(shapes, state_dict, "generator weights")
    g = Generator(cfg)
    g.load_state_dict({k: v.float() for k, v in state_dict.items()}, strict=True)
    return g.eval().to(device)


def load_generator_weights(path: str | os.PathLike, cfg: GeneratorConfig,
                           device: str | torch.device = "cpu") -> Generator:
    """Read a generator written by `hs-invert --save-weights` (safetensors, rosinality names) or a rosinality
    g_ema checkpoint (.pt) into a Generator for `cfg`."""
    p = str(path)
    if p.endswith(".safetensors"):
        try:
            from safetensors.torch import load_file
        except ImportError:
            raise HsError("reading .safetensors needs safetensors: pip install 'hyperstyle-trt[invert]'") from None
        if not os.path.isfile(p):
            raise HsError(f"generator weights not found: {p}")
        try:
            sd = load_file(p)
        except Exception as e:  # noqa: BLE001 - safetensors raises its own error types for foreign bytes
            raise HsError(f"{p} is not a safetensors file ({one_line(e, 160)})") from None
        return generator_from_state_dict(cfg, sd, device)
    return load_g_ema(p, cfg).eval().to(device)


def adapt_generator(target: Generator | Mapping[str, torch.Tensor], deltas: Mapping[str, torch.Tensor],
                    cfg: GeneratorConfig, device: str | torch.device = "cpu") -> Generator:
    """Domain adaptation: one image's Δ (predicted with the source generator) folded into `target`, a generator of
    the same architecture (Generator or state_dict). Render with the image's codes."""
    sd = target.state_dict() if isinstance(target, torch.nn.Module) else target
    return generator_from_state_dict(cfg, fold_deltas(sd, deltas), device)


def load_target_generator(path: str | os.PathLike, cfg: GeneratorConfig) -> Generator:
    """`--target-generator FILE`: a rosinality {'g_ema': ...} checkpoint of the same architecture as the model."""
    return load_g_ema(path, cfg).eval()


@dataclass
class RefineResult:
    """A PTI tuning run (`tune_pivot`, `refine_pti`). generator: the tuned Generator (eval, no gradients); image: its
    render at the pivot [1,3,size,size]; per step run: losses (total, before that step's update), lpips / l2 (its
    parts), step_s (seconds, device-synced on both sides); stopped: the LPIPS threshold ended it early (that last step
    made no update); seconds: wall time."""

    generator: Generator
    image: torch.Tensor
    losses: list[float] = field(default_factory=list)
    lpips: list[float] = field(default_factory=list)
    l2: list[float] = field(default_factory=list)
    step_s: list[float] = field(default_factory=list)
    stopped: bool = False
    seconds: float = 0.0


def sync_device(device: torch.device) -> None:
    """Wait for `device`'s queued work (CUDA); nothing on the CPU."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def tune_pivot(g: Generator, codes: torch.Tensor, target: torch.Tensor, steps: int, lpips: LpipsFn,
               lr: float = 3e-4, lpips_weight: float = 1.0, l2_weight: float = 1.0, side: int | None = None,
               stop_lpips: float | None = None,
               on_step: Callable[[int, float], None] | None = None) -> RefineResult:
    """The one PTI tuning loop (PTI's stage 2; the PTI baseline and hs-invert --refine-steps both run it): Adam(lr) on
    `g`'s synthesis weights, tuned IN PLACE (the mapping network `style.*` is not trained, the noise buffers stay
    fixed), for `steps` steps at the pivot `codes` [1,n_latent,style_dim] (fixed) against `target` [1,3,H,W] in
    [-1,1]. Loss = lpips_weight * mean LPIPS + l2_weight * MSE, both on the render and the target resized to
    `side` x `side` (resize_square; None: the generator's size). stop_lpips: before each update, stop when that
    step's LPIPS is <= it (PTI's early stop: 0.06). on_step(step, loss) after each update."""
    t0 = time.perf_counter()
    dev = next(g.parameters()).device
    codes = codes.detach().to(dev, torch.float32)
    side = g.cfg.size if side is None else side
    tgt = resize_square(target.detach().to(dev, torch.float32), side)
    params = []
    for n, p in g.named_parameters():
        p.requires_grad_(not n.startswith("style."))
        if p.requires_grad:
            params.append(p)
    opt = torch.optim.Adam(params, lr=lr)
    res = RefineResult(generator=g, image=None)  # type: ignore[arg-type]
    with torch.enable_grad():
        for step in range(steps):
            sync_device(dev)
            ts = time.perf_counter()
            y = resize_square(g(codes), side)
            lp = lpips(y, tgt).mean()
            l2 = F.mse_loss(y, tgt)
            loss = lpips_weight * lp + l2_weight * l2
            res.lpips.append(float(lp.detach()))
            res.l2.append(float(l2.detach()))
            res.losses.append(float(loss.detach()))
            opt.zero_grad(set_to_none=True)
            if stop_lpips is not None and res.lpips[-1] <= stop_lpips:
                res.stopped = True
                sync_device(dev)
                res.step_s.append(time.perf_counter() - ts)
                break
            loss.backward()
            opt.step()
            sync_device(dev)
            res.step_s.append(time.perf_counter() - ts)
            if on_step is not None:
                on_step(step, res.losses[-1])
    g.requires_grad_(False)
    with torch.no_grad():
        res.image = g(codes)
    res.seconds = time.perf_counter() - t0
    return res


def refine_pti(generator: Generator, codes: torch.Tensor, target: torch.Tensor, steps: int, lpips: LpipsFn,
               lr: float = 3e-4, lpips_weight: float = 1.0, l2_weight: float = 1.0,
               loss_size: int | None = 256) -> RefineResult:
    """Pivotal tuning from a given generator (typically HyperStyle's folded per-image weights): `tune_pivot` on a
    copy (the argument is left unchanged).

    codes: the pivot [1,n_latent,style_dim] (fixed); target: the photo [1,3,H,W] in [-1,1] at the generator's size
    or any size (resized); steps: Adam steps (PTI: lr 3e-4, LPIPS weight 1, L2 weight 1); loss_size: the losses are
    taken on the render and target resized to this side (HyperStyle computes its training losses on 256 px poolings;
    None = full size). Only the synthesis weights are trained (the mapping network and the noise buffers are not
    used / fixed)."""
    if steps < 0:
        raise HsError(f"--refine-steps must be >= 0, got {steps}")
    if codes.ndim != 3 or codes.shape[0] != 1 or target.ndim != 4 or target.shape[:2] != (1, 3):
        raise HsError(f"refine_pti takes one image: codes [1,n,d] and target [1,3,H,W], got {tuple(codes.shape)} "
                      f"and {tuple(target.shape)}")
    t0 = time.perf_counter()
    g = generator_from_state_dict(generator.cfg, {k: v.detach().clone() for k, v in generator.state_dict().items()},
                                  next(generator.parameters()).device)
    size = g.cfg.size
    res = tune_pivot(g, codes, target, steps, lpips, lr=lr, lpips_weight=lpips_weight, l2_weight=l2_weight,
                     side=min(loss_size or size, size))
    res.seconds = time.perf_counter() - t0
    return res


def resize_square(x: torch.Tensor, side: int) -> torch.Tensor:
    """[B,3,H,W] -> [B,3,side,side]: area pooling when shrinking by an integer factor, else bilinear (antialiased)."""
    if x.shape[-1] == side and x.shape[-2] == side:
        return x
    if x.shape[-1] % side == 0 and x.shape[-2] % side == 0:
        return F.adaptive_avg_pool2d(x, (side, side))
    return F.interpolate(x, size=(side, side), mode="bilinear", align_corners=False, antialias=True)


def render(generator: Generator, codes: torch.Tensor, deltas: Mapping[str, torch.Tensor] | None = None,
           batch: int = 8) -> torch.Tensor:
    """G(codes, Δ) in chunks of `batch` without gradients: codes [N,n_latent,style_dim], Δ {layer: [N,...]}
    -> [N,3,size,size] fp32 on the generator's device."""
    dev = next(generator.parameters()).device
    outs = []
    with torch.no_grad():
        for s in range(0, codes.shape[0], batch):
            d = None if deltas is None else {k: v[s:s + batch].to(dev, torch.float32) for k, v in deltas.items()}
            outs.append(generator(codes[s:s + batch].to(dev, torch.float32), d))
    return torch.cat(outs)
