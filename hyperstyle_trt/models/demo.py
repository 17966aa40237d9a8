"""`make demo`: reference inversion (embedded default weights unless a checkpoint is given) of a generated sample.

The sample is made by the generator itself (random z -> mapping -> image, pooled to the input size), so the demo needs
no data download. Saves the input, every iteration and the output as PNG, and prints timings.

    python -m hyperstyle_trt.models.demo --config tiny --iters 2 --out demo_out
    python -m hyperstyle_trt.models.demo --checkpoint hyperstyle_ffhq.pt --w-encoder faces_w_encoder.pt \\
        --images face1.png face2.png      # the paths after --images (IMAGES) are inverted instead of a sample

A click command run through core.entry.run: a user error is one `error: ...` line and exit 2, before any work.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import click
import torch

from hyperstyle_trt.core.config import get_config
from hyperstyle_trt.core.device import is_cuda, parse_device, torch_device
from hyperstyle_trt.core.entry import interruptible
from hyperstyle_trt.core.entry import run as run_command
from hyperstyle_trt.core.errors import HsError
from hyperstyle_trt.models.checkpoint import build_model
from hyperstyle_trt.models.images import read_images, write_png


def pick_device(name: str) -> torch.device:
    """--device value -> torch.device: auto (CUDA when available), cpu, cuda or cuda:N (core.device parses it).
    HsError for anything else or for a CUDA device this machine does not have."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        text = parse_device(name)
    except HsError:
        raise HsError(f"--device {name!r} not understood; expected auto, cpu, cuda or cuda:N") from None
    if is_cuda(text) and not torch.cuda.is_available():
        raise HsError(f"--device {name} requested but CUDA is not available")
    return torch_device(text)  # HsError when the CUDA index is out of range


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


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("paths", nargs=-1, type=click.Path(), metavar="[IMAGES]...")
@click.option("--out", default="demo_out", show_default=True, type=click.Path(path_type=Path),
              help="Output directory.")
@click.option("--config", default=None, help="Model preset (default ffhq1024); not with --checkpoint.")
@click.option("--iters", type=int, default=5, show_default=True, help="HyperStyle iterations T.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the generated sample.")
@click.option("--images", "images_flag", is_flag=True,
              help="Invert the IMAGES given (FFHQ-aligned face crops) instead of a generated sample.")
@click.option("--checkpoint", default=None, help="hyperstyle_ffhq.pt (default: embedded weights).")
@click.option("--w-encoder", "w_encoder", default=None, help="faces_w_encoder.pt (with --checkpoint).")
@interruptible
def cli(paths, out, config, iters, device, seed, images_flag, checkpoint, w_encoder):
    """Reference inversion of a generated sample, or of --images IMAGES..., written as PNGs."""
    run(out, config, iters, device, seed, list(paths) if images_flag or paths else None, checkpoint, w_encoder)
    return 0


def main(argv=None) -> int:
    """`python -m hyperstyle_trt.models.demo`: 0 ok, 2 user error (one line on stderr, before any work), 130 on
    Ctrl-C."""
    return run_command(cli, argv)


if __name__ == "__main__":
    main()
