"""A synthetic test clip (issue #22): a still photo filmed by a slowly moving camera.

The camera pans, zooms and rolls smoothly (eased cosine paths over the clip), optionally with a random shake per
frame; each frame gets fresh Gaussian pixel noise and is JPEG re-encoded, so landmarks found on it are noisy the
way they are in real footage, while the true motion is smooth and known. Deterministic for a seed.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator

import numpy as np
from PIL import Image

from hyperstyle_trt.core.errors import HsError
from hyperstyle_trt.runtime.align import to_rgb_uint8


def sample_photo() -> np.ndarray:
    """scikit-image's astronaut photo (Eileen Collins, public domain, shipped in the scikit-image wheel) cut to the
    260 x 260 px around her face ([260,260,3] uint8; face box ~(85, 76, 175, 166)): with `view=1.0` the FFHQ quad
    stays inside the frames through the default pan and zoom. Needs the `photos` extra (scikit-image)."""
    try:
        import skimage.data
    except ImportError:
        raise HsError("the sample photo needs scikit-image: pip install 'hyperstyle-trt[photos]'") from None
    return np.ascontiguousarray(skimage.data.astronaut()[0:260, 90:350])


def camera(t: float, pan: float, zoom: float, rotate: float) -> tuple[float, float, float, float]:
    """The smooth camera path at t in [0, 1]: (dx, dy) as fractions of the view, zoom factor, roll in degrees.
    Pans right then back down-left along a curve, zooms in by `zoom`, rolls from -rotate/2 to +rotate/2."""
    e = (1 - np.cos(np.pi * t)) / 2  # ease in / out, 0 -> 1
    return (pan * np.sin(np.pi * t), pan * (e - 0.5), 1.0 + zoom * e, rotate * (e - 0.5))


def make_clip(photo: np.ndarray, n_frames: int = 48, size: tuple[int, int] | None = None, seed: int = 0,
              noise: float = 3.0, jpeg_quality: int = 85, cover: Iterable[int] = (), *, view: float = 0.8,
              pan: float = 0.06, zoom: float = 0.15, rotate: float = 4.0, shake: float = 0.0,
              cover_box: tuple[float, float, float, float] | None = None) -> Iterator[np.ndarray]:
    """Yield n_frames frames [H,W,3] uint8 of `photo` ([H,W,3] uint8 or anything runtime.align.to_rgb_uint8 takes).

    size: (W, H) of the frames (default: the photo's). The view shows `view` of the photo's shorter side around
    the photo's centre at zoom 1 (keep the face near the centre: crop the photo first), panned by up to `pan` of
    the view, zoomed in by `zoom` (0.15 = 15 %), rolled by `rotate` degrees in all, plus a random shake of
    `shake` px (std, frame pixels) per frame (default 0: a shake is real motion of the face, which per-frame
    landmarks follow and temporal smoothing irons out of the quads, so in the crops' jitter it counts against
    smoothing; 0.3 px made the smoothed crops shake more than the raw ones); then Gaussian noise of std `noise`
    grey levels and a JPEG re-encode at `jpeg_quality`. Frames whose index is in `cover` get a grey box over
    `cover_box` (l, t, r, b photo pixels, moving with the camera; default the middle 60 % of the frame) so no face
    is found there."""
    img = to_rgb_uint8(photo, "photo")
    ph, pw = img.shape[:2]
    w, h = (pw, ph) if size is None else (int(size[0]), int(size[1]))
    if n_frames < 1 or w < 16 or h < 16:
        raise HsError(f"make_clip: expected n_frames >= 1 and a size >= 16x16, got {n_frames} and {w}x{h}")
    if not 0 < view <= 1 or noise < 0 or not 1 <= jpeg_quality <= 100:
        raise HsError(f"make_clip: expected 0 < view <= 1, noise >= 0 and jpeg_quality 1..100, got {view}, {noise}, "
                      f"{jpeg_quality}")
    covered = {int(i) for i in cover}
    rng = np.random.default_rng(seed)
    src = Image.fromarray(img)
    base = view * min(pw, ph) / min(w, h)  # photo pixels per frame pixel at zoom 1
    for i in range(n_frames):
        dx, dy, z, deg = camera(i / max(n_frames - 1, 1), pan, zoom, rotate)
        s = base / z
        th = np.deg2rad(deg)
        c, sn = np.cos(th) * s, np.sin(th) * s
        cx = pw / 2 + dx * view * min(pw, ph) + rng.normal(0, shake) * s
        cy = ph / 2 + dy * view * min(pw, ph) + rng.normal(0, shake) * s
        # frame pixel centre (u, v) -> photo point: centre + R(th) * s * (u - w/2, v - h/2); PIL's AFFINE maps
        # output coordinates (pixel corners) to input coordinates with the same convention on both sides.
        a = (c, -sn, cx - c * w / 2 + sn * h / 2, sn, c, cy - sn * w / 2 - c * h / 2)
        frame = src.transform((w, h), Image.Transform.AFFINE, a, Image.Resampling.BICUBIC)
        f = np.asarray(frame, dtype=np.float32)
        if i in covered:
            f = f.copy()
            if cover_box is None:
                x0, y0, x1, y1 = 0.2 * w, 0.2 * h, 0.8 * w, 0.8 * h
            else:  # the box's corners through the inverse map, then their bounding box
                bl, bt, br, bb = cover_box
                pts = np.array([[bl, bt], [br, bt], [bl, bb], [br, bb]], dtype=np.float64) - (a[2], a[5])
                inv = np.linalg.inv(np.array([[a[0], a[1]], [a[3], a[4]]]))
                uv = pts @ inv.T
                x0, y0 = uv.min(0)
                x1, y1 = uv.max(0)
            y0, y1 = int(max(np.floor(y0), 0)), int(min(np.ceil(y1), h))
            x0, x1 = int(max(np.floor(x0), 0)), int(min(np.ceil(x1), w))
            f[y0:y1, x0:x1] = 128.0
        if noise > 0:
            f = f + rng.normal(0, noise, size=f.shape).astype(np.float32)
        out = Image.fromarray(np.clip(np.rint(f), 0, 255).astype(np.uint8))
        buf = io.BytesIO()
        out.save(buf, format="JPEG", quality=int(jpeg_quality))
        buf.seek(0)
        with Image.open(buf) as im:
            yield np.ascontiguousarray(np.asarray(im.convert("RGB"), dtype=np.uint8))
