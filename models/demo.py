"""`make demo`: reference inversion (embedded default weights unless a checkpoint is given) of a generated sample.

The sample is made by the generator itself (random z -> mapping -> image, pooled to the input size), so the demo needs
no data download. Saves the input, every iteration and the output as PNG, and prints timings.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from models.checkpoint import build_model
from core.errors import HsError
from models.images import read_images, write_png


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise HsError(f"--device {name} requested but CUDA is not available")
    return torch.device(name)


@torch.no_grad()
def sample_image(model, seed: int, device) -> torch.Tensor:
    """A generated face-sized sample [1,3,S,S] in the generator's range (no truncation)."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(1, model.cfg.generator.style_dim, generator=g).to(device)
    w = model.decoder.mapping(z)
    codes = w[:, None].repeat(1, model.cfg.generator.n_latent, 1)
    return model.pool(model.decoder(codes)).clamp(-1, 1)


def run(out: Path, config: str, iters: int, device: str, seed: int, images=None, checkpoint=None, w_encoder=None):
    dev = pick_device(device)
    t0 = time.perf_counter()
    model = build_model(config if checkpoint is None else None, checkpoint, w_encoder, device=dev)
    t_build = time.perf_counter() - t0
    x = read_images(images, model.cfg.hypernet.input_size).to(dev) if images else sample_image(model, seed, dev)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    sync()
    t0 = time.perf_counter()
    res = model.invert(x, n_iters=iters, return_iterations=True)
    sync()
    t_inv = time.perf_counter() - t0
    out.mkdir(parents=True, exist_ok=True)
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
    ap.add_argument("--config", default="ffhq1024")
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
