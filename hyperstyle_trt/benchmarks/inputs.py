"""What the benchmarks run on: the input images (a directory of face crops, or crops of a bundled sample photo) and
the model an hs-export directory was made from."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from hyperstyle_trt.core.errors import HsError
from hyperstyle_trt.models.images import uint8_to_unit

IMAGE_EXT = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


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
            out.append(uint8_to_unit(torch.from_numpy(np.asarray(c, dtype=np.uint8).copy())))  # [3,size,size]
    return torch.stack(out), f"{b} crops of matplotlib's sample photo {src.name} (not FFHQ-aligned)"


def load_images(images: str | Path | None, batch: int, size: int) -> tuple[torch.Tensor, str]:
    """`batch` images [batch,3,size,size] in [-1,1] from the directory `images` (repeated when it holds fewer),
    or sample-photo crops when None; and a one-line note saying which."""
    if images is None:
        return sample_photo_batch(batch, size)
    from hyperstyle_trt.models.images import read_images

    files = sorted(p for p in Path(images).iterdir() if p.suffix.lower() in IMAGE_EXT and p.is_file())
    if not files:
        raise HsError(f"--images {images} holds no png/jpg images")
    use = [files[i % len(files)] for i in range(batch)]
    note = f"{len(files)} images from {images}" + (f", repeated to fill --batch {batch}"
                                                   if len(files) < batch else "")
    return read_images(use, size), note


def export_model(path: str | Path, device: str | torch.device = "cpu"):
    """The HyperStyle model an hs-export directory was made from (export_summary.json's config: its checkpoint, or
    the embedded default weights of its preset)."""
    import json

    from hyperstyle_trt.models.checkpoint import build_model

    path = Path(path)
    try:
        c = json.loads((path / "export_summary.json").read_text())["config"]
    except (OSError, ValueError, KeyError) as e:
        raise HsError(f"cannot read {path / 'export_summary.json'} ({type(e).__name__}); is {path} an hs-export "
                      "directory?") from None
    return build_model(c.get("config"), checkpoint=c.get("checkpoint"), w_encoder=c.get("w_encoder"),
                       device=device, quiet=True)
