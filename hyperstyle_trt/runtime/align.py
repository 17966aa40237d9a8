"""FFHQ face alignment (the crop HyperStyle, e4e, pSp and StyleGAN's FFHQ were made with), offline.

Faces are found by dlib's HOG frontal-face detector and located by dlib's 68-point shape predictor (the
`shape_predictor_68_face_landmarks.dat` shipped in the `face-recognition-models` package: the file the official
notebooks ask users to download). From the landmarks (x, y in source pixels):

- eye centres  eL = mean(L[36..41]), eR = mean(L[42..47]); e = (eL + eR) / 2, d = eR - eL;
- mouth        m = (L[48] + L[54]) / 2 (outer corners); v = m - e;
- the oriented square: x = unit(d - rot90(v)) * max(2 |d|, 1.8 |v|), y = rot90(x) with rot90(a, b) = (-b, a),
  centre c = e + 0.1 v; corners c-x-y, c-x+y, c+x+y, c+x-y (top-left, bottom-left, bottom-right, top-right);
  side qsize = 2 |x| source pixels;
- shrink: when floor(qsize / output * 0.5) = s > 1, the image is Lanczos-downscaled by s first (huge faces);
- crop to the quad's bounding box grown by border = max(rint(0.1 qsize), 3);
- pad where the quad leaves the image (by at least rint(0.3 qsize) on a side that needs it): reflected image,
  blurred (Gaussian, sigma 0.02 qsize) and faded towards the per-channel median with the distance from the edge;
- the quad is warped onto the output square (PIL QUAD, bilinear; pixel-centre convention).

Differences from the official `align_face` script, on purpose: the best-scoring detection is used (dlib lists
boxes best first; the script keeps the last one, which on the scikit-image astronaut photo is the mission patch),
or every face with `all_faces`; an image without a face raises a one-line HsError (the script dies on an unbound
variable); grey, palette, RGBA and float inputs become RGB uint8 before anything else (the script's padding
breaks on them); Lanczos is `Image.Resampling.LANCZOS` (the script's `Image.ANTIALIAS` is gone from Pillow 10);
the detector and predictor are built once per `Aligner`; very large photos are searched for faces on a
downscaled copy (`detect_max_side`) and landmarked at full resolution; EXIF orientation is applied on reading.

Needs the `align` extra (dlib-bin, face-recognition-models, scipy). Nothing here downloads anything.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from hyperstyle_trt.core.errors import HsError, one_line

ALIGN_EXTRA_HINT = "pip install 'hyperstyle-trt[align]' (dlib-bin, face-recognition-models, scipy)"
PREDICTOR_FILE = "shape_predictor_68_face_landmarks.dat"


@dataclass(frozen=True)
class Face:
    """One detected face. box: (left, top, right, bottom) source pixels; score: the HOG detector's confidence;
    landmarks: [68,2] float64 (x, y) source pixels in dlib / iBUG 300-W order."""

    box: tuple[int, int, int, int]
    score: float
    landmarks: np.ndarray


@dataclass(frozen=True)
class Alignment:
    """An FFHQ-aligned crop. image: [S,S,3] uint8 RGB; quad: [4,2] float64 source-pixel corners (TL, BL, BR, TR)
    that were mapped onto the output square; qsize: the quad's side in source pixels; padded: whether the quad
    left the image (reflect-padding with blur and fade was used); face: the detection it came from; steps: the
    shrink / crop / pad record (WarpSteps) - runtime.paste.CropTransform.from_alignment builds the photo <-> crop
    map from quad and steps."""

    image: np.ndarray
    quad: np.ndarray
    qsize: float
    padded: bool
    face: Face | None = None
    steps: WarpSteps | None = None


@dataclass(frozen=True)
class WarpSteps:
    """The intermediate steps `warp_ffhq` takes from a photo to its crop (`warp_steps` computes them from the
    geometry alone). photo_hw: the photo's (H, W); shrink: the Lanczos downscale factor (1: none) and shrunk_hw the
    (H, W) after it; crop: (left, top, right, bottom) box cut from the (shrunk) photo ((0, 0, W, H): no cut); pad:
    (left, top, right, bottom) pixels added around the cut (all 0 unless padded). Offsets move the image and the
    quad together, so only the shrink changes the photo -> crop map (runtime.paste.CropTransform)."""

    photo_hw: tuple[int, int]
    shrink: int
    shrunk_hw: tuple[int, int]
    crop: tuple[int, int, int, int]
    pad: tuple[int, int, int, int]
    padded: bool


# ----------------------------------------------------------------------------------------------------- inputs


def to_rgb_uint8(image, name: str = "image") -> np.ndarray:
    """A photo as [H,W,3] uint8 RGB (C-contiguous).

    Accepts a PIL image (any mode: L, P, RGBA, I;16 ... via PIL's conversion; alpha is composited over white) or a
    numpy array [H,W], [H,W,1], [H,W,3], [H,W,4] of uint8, bool or float in [0,1] (RGBA composited over white)."""
    if isinstance(image, Image.Image):
        if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
            rgba = image.convert("RGBA")
            bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            image = Image.alpha_composite(bg, rgba)
        elif image.mode.startswith("I;16") or image.mode in ("I", "F"):
            a = np.asarray(image, dtype=np.float64)
            hi = 65535.0 if image.mode.startswith("I;16") or a.max() > 255 else 255.0
            image = Image.fromarray(np.clip(a / hi * 255 + 0.5, 0, 255).astype(np.uint8))
        return np.ascontiguousarray(np.asarray(image.convert("RGB"), dtype=np.uint8))
    a = np.asarray(image)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)) or min(a.shape[:2]) < 1:
        raise HsError(f"{name}: expected an image array [H,W], [H,W,1], [H,W,3] or [H,W,4], got shape {a.shape}")
    if a.dtype == np.uint8:
        f = None
    elif a.dtype == np.bool_:
        f = a.astype(np.float32)
    elif np.issubdtype(a.dtype, np.floating):
        if not np.isfinite(a).all() or a.min() < 0 or a.max() > 1:
            raise HsError(f"{name}: a float image must hold values in [0, 1] "
                          f"(got {np.nanmin(a):.3g}..{np.nanmax(a):.3g}); pass uint8 for 0..255")
        f = a.astype(np.float32)
    else:
        raise HsError(f"{name}: unsupported image dtype {a.dtype}; expected uint8, or float in [0, 1]")
    if f is not None:
        a = np.clip(np.rint(f * 255), 0, 255).astype(np.uint8)
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    elif a.shape[2] == 4:
        alpha = a[:, :, 3:4].astype(np.float32) / 255
        a = np.clip(np.rint(a[:, :, :3] * alpha + 255 * (1 - alpha)), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(a)


def load_photo(path: str | os.PathLike) -> np.ndarray:
    """Read a photo file as [H,W,3] uint8 RGB, EXIF orientation applied. HsError when missing or not an image."""
    p = Path(path)
    if not p.is_file():
        raise HsError(f"photo not found: {p}")
    try:
        with Image.open(p) as im:
            im.load()
            im = ImageOps.exif_transpose(im)
            return to_rgb_uint8(im, str(p))
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as e:
        raise HsError(f"cannot read {p} as an image ({type(e).__name__}); expected a PNG/JPEG/... photo") from None


# ----------------------------------------------------------------------------------------------- geometry


def _rot90(a: np.ndarray) -> np.ndarray:
    """(a, b) -> (-b, a): (1, 0) -> (0, 1), a quarter turn clockwise on screen (y points down)."""
    return np.array([-a[1], a[0]], dtype=np.float64)


def anchors(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """[68,2] landmarks -> (eye_left [2], eye_right [2], mouth [2]): the means of points 36-41 and 42-47 and the
    midpoint of the outer mouth corners 48 and 54 (x, y source pixels; "left" = image left)."""
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.shape != (68, 2):
        raise HsError(f"expected 68 (x, y) landmarks [68,2], got shape {lm.shape}")
    return lm[36:42].mean(0), lm[42:48].mean(0), (lm[48] + lm[54]) / 2


def ffhq_quad(landmarks: np.ndarray) -> tuple[np.ndarray, float]:
    """[68,2] landmarks -> (quad [4,2] float64 corners TL, BL, BR, TR in source pixels, qsize = its side length)."""
    eye_l, eye_r, mouth = anchors(landmarks)
    eye = (eye_l + eye_r) / 2
    d = eye_r - eye_l
    v = mouth - eye
    x = d - _rot90(v)
    n = np.hypot(*x)
    if not n > 0:
        raise HsError("degenerate landmarks: the eyes and the mouth coincide")
    x = x / n * max(np.hypot(*d) * 2.0, np.hypot(*v) * 1.8)
    y = _rot90(x)
    c = eye + v * 0.1
    quad = np.stack([c - x - y, c - x + y, c + x + y, c + x - y])
    return quad, float(np.hypot(*x) * 2)


def source_to_aligned(points: np.ndarray, quad: np.ndarray, output_size: int) -> np.ndarray:
    """Map [N,2] source-pixel points into the aligned crop's pixels (pixel-centre convention, as the warp).

    The quad is a square (a similarity of the output square), so the map is affine: corner TL goes to
    (-0.5, -0.5), BL to (-0.5, S-0.5), TR to (S-0.5, -0.5) (pixel centres at integers)."""
    q = np.asarray(quad, dtype=np.float64)
    src = np.stack([q[0], q[1], q[3]])  # TL, BL, TR
    s = float(output_size)
    dst = np.array([[-0.5, -0.5], [-0.5, s - 0.5], [s - 0.5, -0.5]])
    a = np.linalg.solve(np.c_[src, np.ones(3)], dst)  # [3,2]: [x y 1] @ a
    p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    return np.c_[p, np.ones(len(p))] @ a


# ------------------------------------------------------------------------------------------------- warping


def _pad_blur_fade(img: np.ndarray, pad: tuple[int, int, int, int], qsize: float) -> np.ndarray:
    """img [H,W,3] uint8, pad (left, top, right, bottom) > 0 somewhere -> padded [H',W',3] uint8: reflected, then
    blurred (weight 1 in the pad, ramping to 0 over pad/3 px inside) and faded to the per-channel median."""
    from scipy.ndimage import gaussian_filter

    pl, pt, pr, pb = pad
    f = np.pad(img.astype(np.float32), ((pt, pb), (pl, pr), (0, 0)), mode="reflect")
    h, w, _ = f.shape
    yy, xx = np.ogrid[:h, :w]
    with np.errstate(divide="ignore", invalid="ignore"):  # a zero pad on a side: that side never ramps
        mx = 1.0 - np.minimum(np.float32(xx) / pl if pl else np.inf, np.float32(w - 1 - xx) / pr if pr else np.inf)
        my = 1.0 - np.minimum(np.float32(yy) / pt if pt else np.inf, np.float32(h - 1 - yy) / pb if pb else np.inf)
    mask = np.maximum(mx, my)[:, :, None].astype(np.float32)  # [h,w,1]: 1 at the outer edge, 0 on the image border
    sigma = qsize * 0.02
    f += (gaussian_filter(f, [sigma, sigma, 0]) - f) * np.clip(mask * 3.0 + 1.0, 0.0, 1.0)
    f += (np.median(f, axis=(0, 1)) - f) * np.clip(mask, 0.0, 1.0)
    return np.clip(np.rint(f), 0, 255).astype(np.uint8)


def warp_steps(photo_hw: tuple[int, int], quad: np.ndarray, qsize: float, output_size: int = 1024,
               enable_padding: bool = True) -> WarpSteps:
    """FFHQ's shrink / crop / pad decisions for a photo of (H, W) = photo_hw and its quad [4,2] (`warp_ffhq`
    applies them; they depend on the geometry only)."""
    h, w = int(photo_hw[0]), int(photo_hw[1])
    quad = np.asarray(quad, dtype=np.float64).copy()
    shrink = int(np.floor(qsize / output_size * 0.5))
    if shrink > 1:
        w, h = int(np.rint(w / shrink)), int(np.rint(h / shrink))
        quad /= shrink
        qsize /= shrink
    else:
        shrink = 1
    shrunk_hw = (h, w)
    border = max(int(np.rint(qsize * 0.1)), 3)
    lo, hi = np.floor(quad.min(0)).astype(int), np.ceil(quad.max(0)).astype(int)
    crop = (max(lo[0] - border, 0), max(lo[1] - border, 0), min(hi[0] + border, w), min(hi[1] + border, h))
    if crop[2] - crop[0] < w or crop[3] - crop[1] < h:
        quad -= crop[0:2]
        w, h = crop[2] - crop[0], crop[3] - crop[1]
    else:
        crop = (0, 0, w, h)
    lo, hi = np.floor(quad.min(0)).astype(int), np.ceil(quad.max(0)).astype(int)
    pad = (max(border - lo[0], 0), max(border - lo[1], 0), max(hi[0] - w + border, 0), max(hi[1] - h + border, 0))
    padded = bool(enable_padding and max(pad) > border - 4)
    if padded:
        least = int(np.rint(qsize * 0.3))
        pad = tuple(max(p, least) for p in pad)  # every side, as FFHQ's recipe (np.maximum over all four)
    else:
        pad = (0, 0, 0, 0)
    return WarpSteps((int(photo_hw[0]), int(photo_hw[1])), shrink, shrunk_hw, tuple(int(v) for v in crop),
                     tuple(int(v) for v in pad), padded)


def warp_ffhq(image: np.ndarray, quad: np.ndarray, qsize: float, output_size: int = 1024,
              transform_size: int | None = None, enable_padding: bool = True) -> tuple[np.ndarray, bool]:
    """Shrink / crop / pad the photo (`warp_steps`) and warp `quad` onto an output_size square.

    image: [H,W,3] uint8 RGB; quad: [4,2] (TL, BL, BR, TR) source pixels. transform_size: warp at this size and
    Lanczos-resize to output_size (FFHQ's dataset script used 4096; HyperStyle's script warps at the output size,
    the default). Returns ([S,S,3] uint8, padded)."""
    if output_size < 8:
        raise HsError(f"align output size must be >= 8, got {output_size}")
    tsize = int(transform_size or output_size)
    rgb = to_rgb_uint8(image)
    st = warp_steps(rgb.shape[:2], quad, qsize, output_size, enable_padding)
    img = Image.fromarray(rgb)
    quad = np.asarray(quad, dtype=np.float64).copy()
    if st.shrink > 1:
        img = img.resize(st.shrunk_hw[::-1], Image.Resampling.LANCZOS)
        quad /= st.shrink
        qsize /= st.shrink
    if st.crop != (0, 0, *st.shrunk_hw[::-1]):
        img = img.crop(st.crop)
        quad -= st.crop[0:2]
    if st.padded:
        img = Image.fromarray(_pad_blur_fade(np.asarray(img), st.pad, qsize))
        quad += st.pad[0:2]

    out = img.transform((tsize, tsize), Image.Transform.QUAD, tuple((quad + 0.5).flatten()),
                        Image.Resampling.BILINEAR)
    if output_size < tsize:
        out = out.resize((output_size, output_size), Image.Resampling.LANCZOS)
    return np.ascontiguousarray(np.asarray(out, dtype=np.uint8)), st.padded


def align_face(image, landmarks: np.ndarray, output_size: int = 1024, transform_size: int | None = None,
               enable_padding: bool = True, face: Face | None = None) -> Alignment:
    """The FFHQ crop of one face given its 68 landmarks. image: any input `to_rgb_uint8` accepts."""
    quad, qsize = ffhq_quad(landmarks)
    rgb = to_rgb_uint8(image)
    out, padded = warp_ffhq(rgb, quad, qsize, output_size, transform_size, enable_padding)
    steps = warp_steps(rgb.shape[:2], quad, qsize, output_size, enable_padding)
    return Alignment(image=out, quad=quad, qsize=qsize, padded=padded, face=face, steps=steps)


# ---------------------------------------------------------------------------------------------- detection


def predictor_path() -> Path:
    """Path of the 68-point landmark model inside the installed face-recognition-models package (found without
    importing it: its __init__ needs pkg_resources, which setuptools >= 81 no longer ships)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise HsError(f"face alignment needs the 68-point landmark model: {ALIGN_EXTRA_HINT}")
    for loc in spec.submodule_search_locations:
        p = Path(loc) / "models" / PREDICTOR_FILE
        if p.is_file():
            return p
    raise HsError(f"face-recognition-models is installed but has no models/{PREDICTOR_FILE}; reinstall it")


class Aligner:
    """Detector + landmark predictor, built once; `align(photo)` -> FFHQ crops.

    output_size: side of the aligned crop (FFHQ: 1024). upsample: HOG detector upsampling passes (official: 1;
    finds faces down to ~40 px). detect_max_side: photos larger than this are searched on a Lanczos-downscaled copy
    (HOG time grows with the pixel count); landmarks always come from the full-resolution photo. predictor: a
    different 68-point .dat file (default: face-recognition-models')."""

    def __init__(self, output_size: int = 1024, upsample: int = 1, detect_max_side: int = 1600,
                 transform_size: int | None = None, enable_padding: bool = True,
                 predictor: str | os.PathLike | None = None):
        try:
            import dlib
        except ImportError:
            raise HsError(f"face alignment needs dlib: {ALIGN_EXTRA_HINT}") from None
        try:
            import scipy.ndimage  # noqa: F401 - the padding blur; fail here, before any photo is processed
        except ImportError:
            raise HsError(f"face alignment needs scipy: {ALIGN_EXTRA_HINT}") from None
        if output_size < 8:
            raise HsError(f"--align-size must be >= 8, got {output_size}")
        if upsample < 0 or detect_max_side < 64:
            raise HsError(f"upsample must be >= 0 and detect_max_side >= 64, got {upsample}, {detect_max_side}")
        path = Path(predictor) if predictor is not None else predictor_path()
        if not path.is_file():
            raise HsError(f"landmark model not found: {path}")
        self.output_size, self.upsample, self.detect_max_side = int(output_size), int(upsample), int(detect_max_side)
        self.transform_size, self.enable_padding = transform_size, enable_padding
        self._detector = dlib.get_frontal_face_detector()
        try:
            self._predictor = dlib.shape_predictor(str(path))
        except RuntimeError as e:
            raise HsError(f"cannot load the landmark model {path}: {one_line(e, 160)}") from None
        self._dlib = dlib

    def detect(self, image, name: str = "image") -> list[Face]:
        """All faces in the photo, best score first, with their 68 landmarks (may be empty)."""
        rgb = to_rgb_uint8(image, name)
        h, w = rgb.shape[:2]
        scale = 1.0
        small = rgb
        if max(h, w) > self.detect_max_side:
            scale = self.detect_max_side / max(h, w)
            size = (max(int(round(w * scale)), 1), max(int(round(h * scale)), 1))
            small = np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.LANCZOS))
        faces = [Face(box=box, score=s, landmarks=self.landmarks(rgb, box))
                 for box, s in ((tuple(int(round(v / scale)) for v in b), s)
                                for b, s in self.boxes(small, self.upsample))]
        faces.sort(key=lambda f: -f.score)
        return faces

    def boxes(self, rgb: np.ndarray, upsample: int | None = None) -> list[tuple[tuple[int, int, int, int], float]]:
        """The bare HOG detector on [H,W,3] uint8: [((left, top, right, bottom) in its pixels, score)], dlib's
        order. upsample: detector upsampling passes (default: this Aligner's)."""
        rects, scores, _ = self._detector.run(rgb, self.upsample if upsample is None else int(upsample), 0.0)
        return [((r.left(), r.top(), r.right(), r.bottom()), float(s)) for r, s in zip(rects, scores)]

    def landmarks(self, rgb: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
        """The 68-point predictor inside box (left, top, right, bottom) of [H,W,3] uint8 -> [68,2] float64 (x, y)."""
        shape = self._predictor(rgb, self._dlib.rectangle(*(int(v) for v in box)))
        return np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)

    def align(self, image, all_faces: bool = False, name: str = "image") -> list[Alignment]:
        """FFHQ crops of the best-scoring face ([one]) or of every face (best first, `all_faces`).
        HsError naming `name` when no face is found."""
        rgb = to_rgb_uint8(image, name)
        faces = self.detect(rgb, name)
        if not faces:
            raise HsError(f"no face found in {name} ({rgb.shape[1]}x{rgb.shape[0]}, dlib HOG detector, upsample "
                          f"{self.upsample}); expected a photo with a frontal face of at least ~40 px (or --no-align "
                          "for crops that are already FFHQ-aligned)")
        return [align_face(rgb, f.landmarks, self.output_size, self.transform_size, self.enable_padding, face=f)
                for f in (faces if all_faces else faces[:1])]
