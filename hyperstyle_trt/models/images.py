"""Images: the one uint8 <-> [-1,1] conversion pair, and image files <-> tensors.

Conversions (every layer uses these; nothing else maps pixel values):
    uint8_to_unit(u)   uint8 [...,H,W,3] (HWC, 0..255)  -> float32 [...,3,H,W] in [-1,1]: v/127.5 - 1
    unit_to_uint8(x)   float [...,3,H,W] in [-1,1]      -> uint8 [...,H,W,3]: official tensor2im, (y+1)/2 clamped to
                                                           [0,1], x255, rounded half to even; stays on x's device
read: PIL -> RGB -> resize (bilinear, PIL's antialiasing, as the official EncodeTransforms) -> [-1,1] float32.
write: unit_to_uint8 -> PNG, written to a temp name and renamed.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from hyperstyle_trt.core.atomic import atomic_path
from hyperstyle_trt.core.errors import HsError


def uint8_to_unit(u: torch.Tensor) -> torch.Tensor:
    """uint8 [...,H,W,3] (HWC, 0..255) -> float32 [...,3,H,W] in [-1,1] (v/127.5 - 1), on u's device."""
    return u.movedim(-1, -3).float() / 127.5 - 1


def unit_to_uint8(x: torch.Tensor) -> torch.Tensor:
    """float [...,3,H,W] in [-1,1] -> uint8 [...,H,W,3] (official tensor2im: (y+1)/2 clamped, x255, rounded half to
    even), on x's device."""
    y = ((x.detach().float() + 1) / 2).clamp(0, 1) * 255
    return y.round().to(torch.uint8).movedim(-3, -1)


def read_image(path: str | os.PathLike, size: int = 256) -> torch.Tensor:
    """Image file -> [3,size,size] float32 in [-1,1]."""
    p = Path(path)
    try:
        with Image.open(p) as im:
            im = im.convert("RGB").resize((size, size), Image.BILINEAR)
            a = np.asarray(im, dtype=np.float32) / 255.0
    except FileNotFoundError:
        raise HsError(f"input image not found: {p}") from None
    except (UnidentifiedImageError, OSError) as e:
        raise HsError(f"cannot read {p} as an image ({type(e).__name__}); expected a PNG/JPEG face crop") from None
    return torch.from_numpy((a - 0.5) / 0.5).permute(2, 0, 1).contiguous()


def read_images(paths, size: int = 256) -> torch.Tensor:
    """Several files -> [B,3,size,size]."""
    return torch.stack([read_image(p, size) for p in paths])


def to_uint8(img: torch.Tensor) -> np.ndarray:
    """[3,H,W] in [-1,1] -> [H,W,3] uint8 (official tensor2im: (y+1)/2, clamp, x255)."""
    if img.ndim != 3 or img.shape[0] != 3:
        raise HsError(f"expected an image tensor [3,H,W], got {tuple(img.shape)}")
    return unit_to_uint8(img.cpu()).numpy()


def write_png(img: torch.Tensor, path: str | os.PathLike) -> Path:
    """Write [3,H,W] in [-1,1] as PNG atomically."""
    p = Path(path)
    arr = to_uint8(img)
    with atomic_path(p) as tmp:
        Image.fromarray(arr).save(tmp, format="PNG")
    return p
