"""Interpolation between two inverted photos: W+ codes and the per-image generator offsets Δ blended together.

Frame k of n (t = k / (n-1)): codes_t = (1-t) codes_a + t codes_b, Δ_t = (1-t) Δ_a + t Δ_b, rendered through the
Inverter's executor (`runtime.edit.render`), so frame 0 is photo a's inversion and frame n-1 photo b's. Blending
Δ as well as the codes keeps both ends exact; the in-between generators are the blended per-image generators.

    frames = interpolate(inv, res, 0, 1, n_frames=8)      # [8,3,size,size]
    write_gif(to_uint8_frames(frames), "a_to_b.gif")
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from hyperstyle_trt.core.atomic import atomic_path
from hyperstyle_trt.core.errors import HsError
from hyperstyle_trt.runtime.result import InverterResult
from hyperstyle_trt.models.images import unit_to_uint8


def blend_weights(n_frames: int) -> torch.Tensor:
    """[n_frames] float32 t values 0 .. 1 (both ends included)."""
    if isinstance(n_frames, bool) or not isinstance(n_frames, int) or n_frames < 2:
        raise HsError(f"interpolation needs at least 2 frames, got {n_frames!r}")
    return torch.linspace(0.0, 1.0, n_frames)


def interpolate(inv, res: InverterResult, a: int, b: int, n_frames: int = 8,
                res_b: InverterResult | None = None) -> torch.Tensor:
    """Frames [n_frames,3,size,size] (Inverter device and dtype) from image `a` of `res` to image `b` of `res_b`
    (default: `res`). Both results must come from `inv`."""
    from hyperstyle_trt.runtime.edit import render

    rb = res if res_b is None else res_b
    for r in (res, rb):
        if not isinstance(r, InverterResult) or set(r.raw_deltas) != {s.name for s in inv.specs}:
            raise HsError("interpolate takes InverterResults produced by this Inverter (Δ layers must match)")
    for name, r, i in (("a", res, a), ("b", rb, b)):
        if isinstance(i, bool) or not isinstance(i, int) or not -len(r) <= i < len(r):
            raise HsError(f"interpolation end {name}={i!r} out of range for a result of {len(r)} image(s)")
    t = blend_weights(n_frames).to(inv.device, res.codes.dtype)
    tc = t.view(-1, 1, 1)
    codes = (1 - tc) * res.codes[a][None] + tc * rb.codes[b][None]  # [N,L,D]
    raw = {}
    for k, va in res.raw_deltas.items():
        da, db = va[a][None], rb.raw_deltas[k][b][None]
        tk = t.view(-1, *([1] * (da.ndim - 1)))
        raw[k] = (1 - tk) * da + tk * db  # [N,...] contract layout (a permutation of the official one: linear)
    return render(inv, codes, raw)


def to_uint8_frames(frames: torch.Tensor) -> np.ndarray:
    """[N,3,H,W] in [-1,1] -> [N,H,W,3] uint8 ((y+1)/2 clamped, x255, rounded)."""
    return unit_to_uint8(frames).cpu().numpy()


def write_gif(frames: np.ndarray, path: str | os.PathLike, fps: float = 8.0, bounce: bool = True) -> Path:
    """Write uint8 frames [N,H,W,3] as a looping GIF, atomically (bounce: a -> b -> a)."""
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or len(frames) < 1:
        raise HsError(f"GIF frames must be uint8 [N,H,W,3], got {frames.dtype} {frames.shape}")
    seq = list(frames) + (list(frames[-2:0:-1]) if bounce and len(frames) > 2 else [])
    ims = [Image.fromarray(f) for f in seq]
    p = Path(path)
    with atomic_path(p) as tmp:
        ims[0].save(tmp, format="GIF", save_all=True, append_images=ims[1:], duration=int(1000 / fps), loop=0)
    return p
