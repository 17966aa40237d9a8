"""`make demo`: reference inversion (embedded default weights unless a checkpoint is given) of a generated sample.

The sample is made by the generator itself (random z -> mapping -> image, pooled to the input size), so the demo needs
no data download. Saves the input, every iteration and the output as PNG, and prints timings.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch

from hyperstyle_trt.core.config import get_config
from hyperstyle_trt.core.errors import HsError
from hyperstyle_trt.models.checkpoint import build_model
from hyperstyle_trt.models.images import read_images, write_png


def pick_device(name: str) -> torch.device:
    """--device value -> torch.device: auto (CUDA when available), cpu, cuda or cuda:N. HsError for anything else or
    for a CUDA device this machine does not have."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except (RuntimeError, ValueError):
        dev = None
    if dev is None or dev.type not in ("cpu", "cuda"):
        raise HsError(f"--device {name!r} not understood; expected auto, cpu, cuda or cuda:N")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise HsError(f"--device {name} requested but CUDA is not available")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise HsError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return dev


def check_args(out: Path, iters: int, images, config: str | None, checkpoint: str | None) -> None:
    """Every check that needs no model, done before any work: HsError with a one-line message."""
    if iters < 1:
        raise HsError(f"--iters must be >= 1, got {iters}")
    if checkpoint is not None and config is not None:
        raise HsError("--config and --checkpoint are exclusive: a checkpoint carries its own config")
    if images is not None:
        if not images:
            raise HsError("--images needs at least one image path (omit --images to invert a generated sample)")
        for p in images:
            if not Path(p).is_file():
                raise HsError(f"input image not found: {p}")
    if out.exists() and not out.is_dir():
        raise HsError(f"--out {out} exists and is not a directory")


def prepare_out(out: Path) -> None:
    """Create the output directory (HsError when it cannot be created or written), before the model is built."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise HsError(f"cannot create --out {out}: {e.strerror or e}") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise HsError(f"--out {out} is not writable")


@torch.no_grad()
def sample_image(model, seed: int, device) -> torch.Tensor:
    """A generated face-sized sample [1,3,S,S] in the generator's range (no truncation)."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(1, model.cfg.generator.style_dim, generator=g).to(device)
    w = model.decoder.mapping(z)
    codes = w[:, None].repeat(1, model.cfg.generator.n_latent, 1)
    return model.pool(model.decoder(codes)).clamp(-1, 1)


def run(out: Path, config: str | None, iters: int, device: str, seed: int, images=None, checkpoint=None,
        w_encoder=None):
    """Invert `images` (paths; None: a generated sample) with `iters` iterations and write PNGs to `out`. config:
    preset name (None: ffhq1024, or the checkpoint's own). All argument checks run before the model is built."""
    check_args(out, iters, images, config, checkpoint)
    dev = pick_device(device)
    x = None
    if checkpoint is None:
        cfg = get_config(config or "ffhq1024")  # an unknown name fails here, before anything is built
        if images is not None:  # unreadable images fail before the model is built
            x = read_images(images, cfg.hypernet.input_size)
    prepare_out(out)
    t0 = time.perf_counter()
    model = build_model(config or ("ffhq1024" if checkpoint is None else None), checkpoint, w_encoder, device=dev)
    t_build = time.perf_counter() - t0
    if images is None:
        x = sample_image(model, seed, dev)
    elif x is None:  # a checkpoint's config gives the input size
        x = read_images(images, model.cfg.hypernet.input_size)
    x = x.to(dev)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    sync()
    t0 = time.perf_counter()
    res = model.invert(x, n_iters=iters, return_iterations=True)
    sync()
    t_inv = time.perf_counter() - t0
    for b in range(x.shape[0]):
        write_png(x[b], out / f"{b:02d}_input.png")
        for t, y in enumerate(res.iterations):
            write_png(y[b], out / f"{b:02d}_iter{t}.png")
        write_png(res.image[b], out / f"{b:02d}_output.png")
    err = (res.image_pooled - x).abs().mean().item()
    print(f"model: {model.cfg.name} ({'embedded default' if model.is_default else 'checkpoint'}) on {dev}, "
          f"built in {t_build:.1f} s")
    print(f"inversion: batch {x.shape[0]}, T={iters}: {t_inv:.2f} s "
          f"({t_inv / x.shape[0]:.2f} s/image; 1 W-encoder + {iters + 1} generator + {iters} hypernet passes)")
    print(f"mean |pool(y_T) - x| = {err:.4f}   images written to {out}/")
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m models.demo", description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="demo_out", type=Path)
    ap.add_argument("--config", default=None, help="model preset (default ffhq1024); not with --checkpoint")
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--images", nargs="*", help="FFHQ-aligned face crops to invert instead of a generated sample")
    ap.add_argument("--checkpoint")
    ap.add_argument("--w-encoder")
    a = ap.parse_args(argv)
    try:
        run(a.out, a.config, a.iters, a.device, a.seed, a.images, a.checkpoint, a.w_encoder)
    except HsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
