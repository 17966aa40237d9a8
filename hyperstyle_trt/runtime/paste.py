"""Paste-back: put a crop-sized image (the aligned crop, an inversion, an edit) back into the photo it was cut from.

    tr = CropTransform.from_alignment(al, photo.shape[:2])     # runtime.align.Alignment -> photo <-> crop map
    mask = face_mask(tr.to_crop(al.face.landmarks), tr.size)   # [S,S] float32: face hull incl. brows, soft edge
    out = paste_back(photo, inversion, tr, mask)               # [H,W,3] uint8, the photo's own resolution
    out = paste_faces(photo, [(inv1, tr1, m1), (inv2, tr2, m2)])   # several faces, one image

The map. FFHQ alignment (runtime.align.warp_ffhq) may shrink the photo (Lanczos, huge faces only), cut a box from
it and pad it, then warps the quad onto the S x S square. The cut and the pad move the image and the quad together,
so they cancel; the photo -> crop map is the similarity that takes the quad's corners to the square's (pixel-centre
convention, runtime.align.source_to_aligned) preceded, when the photo was shrunk, by the resize's own pixel map
p -> (p + 0.5) * shrunk / full - 0.5 (the quad divided by the shrink factor is not exactly that: the resized side is
rounded). `CropTransform` keeps the quad, the output size, the photo's size and every intermediate step (shrink,
crop box, pad) so that results.json holds the whole record (`to_dict` / `from_dict`).

Pasting warps the crop and the mask back with the inverse map (PIL's bilinear affine warp), over the bounding box of
the mask's support in the photo only, and blends there: out = photo + (crop - photo) * mask. Wherever the warped
mask is 0 the output is the photo's pixel, bit for bit. A crop much denser than the photo's face (a 1024 crop of a
200 px face) is first Lanczos-resized to the face's size in the photo (no aliasing from the bilinear warp).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from hyperstyle_trt.core.errors import HsError
from hyperstyle_trt.runtime.align import source_to_aligned, warp_steps

if TYPE_CHECKING:
    from hyperstyle_trt.runtime.align import Alignment

MASK_DILATE = 0.04  # face-hull dilation, fraction of the crop side (41 px at 1024)
MASK_FEATHER = 0.02  # Gaussian feather radius, fraction of the crop side (20 px at 1024; support ~3 radii)


def _box4(v, what: str) -> tuple[int, int, int, int]:
    t = tuple(int(x) for x in v)
    if len(t) != 4:
        raise HsError(f"CropTransform {what}: expected 4 integers (left, top, right, bottom), got {v!r}")
    return t  # type: ignore[return-value]


@dataclass(frozen=True, eq=False)
class CropTransform:
    """The exact photo <-> crop map of one aligned face.

    quad: [4,2] float64 photo-pixel corners (TL, BL, BR, TR) mapped onto the crop; size: the crop side S; photo_hw:
    (H, W) of the photo; qsize: the quad's side (photo px); and warp_ffhq's intermediate steps: shrink (Lanczos
    factor, 1: none), shrunk_hw ((H, W) after the shrink), crop ((left, top, right, bottom) cut from the shrunk
    photo), pad ((left, top, right, bottom) added after the cut), padded."""

    quad: np.ndarray
    size: int
    photo_hw: tuple[int, int]
    qsize: float
    shrink: int = 1
    shrunk_hw: tuple[int, int] | None = None
    crop: tuple[int, int, int, int] | None = None
    pad: tuple[int, int, int, int] = (0, 0, 0, 0)
    padded: bool = False

    def __post_init__(self) -> None:
        q = np.asarray(self.quad, dtype=np.float64)
        if q.shape != (4, 2) or not np.isfinite(q).all():
            raise HsError(f"CropTransform quad: expected [4,2] finite photo-pixel corners, got shape {q.shape}")
        hw = tuple(int(v) for v in self.photo_hw)
        if len(hw) != 2 or min(hw) < 1 or int(self.size) < 1 or int(self.shrink) < 1:
            raise HsError(f"CropTransform: expected photo_hw (H, W) >= 1, size >= 1 and shrink >= 1, got "
                          f"{self.photo_hw}, {self.size}, {self.shrink}")
        object.__setattr__(self, "quad", q)
        object.__setattr__(self, "photo_hw", hw)
        object.__setattr__(self, "size", int(self.size))
        object.__setattr__(self, "shrink", int(self.shrink))
        object.__setattr__(self, "qsize", float(self.qsize))
        sh = hw if self.shrunk_hw is None else tuple(int(v) for v in self.shrunk_hw)
        object.__setattr__(self, "shrunk_hw", sh)
        object.__setattr__(self, "crop", (0, 0, sh[1], sh[0]) if self.crop is None else _box4(self.crop, "crop"))
        object.__setattr__(self, "pad", _box4(self.pad, "pad"))
        object.__setattr__(self, "padded", bool(self.padded))

    # ---- construction -----------------------------------------------------------------------------------------
    @classmethod
    def from_alignment(cls, al: Alignment, photo_hw: tuple[int, int]) -> CropTransform:
        """The map of an Alignment of a photo of (H, W) = photo_hw (its recorded WarpSteps, or recomputed)."""
        hw = (int(photo_hw[0]), int(photo_hw[1]))
        size = int(al.image.shape[0])
        st = al.steps or warp_steps(hw, al.quad, al.qsize, size)
        if tuple(st.photo_hw) != hw:
            raise HsError(f"CropTransform.from_alignment: the alignment was made on a {st.photo_hw[1]}x"
                          f"{st.photo_hw[0]} photo, not {hw[1]}x{hw[0]}")
        return cls(quad=al.quad, size=size, photo_hw=hw, qsize=al.qsize, shrink=st.shrink, shrunk_hw=st.shrunk_hw,
                   crop=st.crop, pad=st.pad, padded=st.padded)

    def to_dict(self) -> dict:
        """JSON-safe record (results.json): every field, plus `matrix` (derived; photo px -> crop px)."""
        return {"quad": self.quad.tolist(), "size": self.size, "photo_hw": list(self.photo_hw),
                "qsize": self.qsize, "shrink": self.shrink, "shrunk_hw": list(self.shrunk_hw),
                "crop": list(self.crop), "pad": list(self.pad), "padded": self.padded,
                "matrix": self.matrix.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> CropTransform:
        """Inverse of `to_dict` (`matrix` is recomputed, not read). HsError on a missing or malformed field."""
        try:
            return cls(quad=np.asarray(d["quad"], dtype=np.float64), size=d["size"], photo_hw=tuple(d["photo_hw"]),
                       qsize=d["qsize"], shrink=d.get("shrink", 1), shrunk_hw=d.get("shrunk_hw"),
                       crop=d.get("crop"), pad=d.get("pad", (0, 0, 0, 0)), padded=d.get("padded", False))
        except (KeyError, TypeError, ValueError) as e:
            raise HsError(f"not a CropTransform record ({type(e).__name__}: {e}); expected quad, size, photo_hw, "
                          "qsize") from None

    # ---- the map ------------------------------------------------------------------------------------------------
    @property
    def matrix(self) -> np.ndarray:
        """[2,3] float64 affine: crop px = matrix @ [x, y, 1] for photo px (x, y), pixel centres at integers."""
        s = self.shrink
        q = self.quad / s if s > 1 else self.quad
        pts = source_to_aligned(np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]), q, self.size)  # [3,2]
        a = np.c_[pts[1] - pts[0], pts[2] - pts[0], pts[0]]  # shrunk px -> crop px
        if s > 1:  # PIL's resize: (p + 0.5) * shrunk / full - 0.5 per axis
            r = np.array([self.shrunk_hw[1] / self.photo_hw[1], self.shrunk_hw[0] / self.photo_hw[0]])
            pre = np.c_[np.diag(r), 0.5 * r - 0.5]
            a = a[:, :2] @ pre + np.c_[np.zeros((2, 2)), a[:, 2]]
        return a

    def to_crop(self, points: np.ndarray) -> np.ndarray:
        """[N,2] photo px -> [N,2] crop px."""
        p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        m = self.matrix
        return p @ m[:, :2].T + m[:, 2]

    def to_photo(self, points: np.ndarray) -> np.ndarray:
        """[N,2] crop px -> [N,2] photo px (the inverse map)."""
        p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        m = self.matrix
        return np.linalg.solve(m[:, :2], (p - m[:, 2]).T).T

    @property
    def scale(self) -> float:
        """Crop pixels per photo pixel (the similarity's scale)."""
        return float(np.sqrt(abs(np.linalg.det(self.matrix[:, :2]))))


# ---------------------------------------------------------------------------------------------------- the mask


def face_mask(landmarks_crop: np.ndarray, size: int, dilate: float = MASK_DILATE,
              feather: float = MASK_FEATHER) -> np.ndarray:
    """[68,2] landmarks in crop px -> [size,size] float32 in [0,1]: the convex hull of all 68 points (jaw, brows,
    eyes, nose, mouth), dilated by dilate*size px, Gaussian-feathered with radius feather*size px; 0 on the crop's
    outer 2-px ring (nothing is taken from beyond the crop)."""
    from scipy.spatial import ConvexHull

    lm = np.asarray(landmarks_crop, dtype=np.float64)
    if lm.shape != (68, 2) or not np.isfinite(lm).all():
        raise HsError(f"face_mask: expected 68 finite (x, y) landmarks [68,2], got shape {lm.shape}")
    size = int(size)
    if size < 8:
        raise HsError(f"face_mask: size must be >= 8, got {size}")
    poly = [tuple(p) for p in lm[ConvexHull(lm).vertices]]
    im = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(im)
    draw.polygon(poly, fill=255)
    width = int(round(2 * dilate * size))
    if width > 0:
        draw.line(poly + poly[:1], fill=255, width=width, joint="curve")
    if feather > 0:
        im = im.filter(ImageFilter.GaussianBlur(feather * size))
    m = np.asarray(im, dtype=np.float32) / 255.0
    m[:2], m[-2:], m[:, :2], m[:, -2:] = 0, 0, 0, 0
    return m


# --------------------------------------------------------------------------------------------------- warping


def photo_box(transform: CropTransform, mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1): the photo pixels the mask's support (mask > 0) can reach, clipped to the photo (exclusive
    ends); None when it is empty or falls outside the photo."""
    m = np.asarray(mask)
    rows, cols = np.flatnonzero(m.any(1)), np.flatnonzero(m.any(0))
    if not len(rows):
        return None
    r = m.shape[0] / transform.size  # mask px per crop px
    c0, c1 = (cols[0] - 1) / r, (cols[-1] + 1) / r
    r0, r1 = (rows[0] - 1) / r, (rows[-1] + 1) / r
    p = transform.to_photo(np.array([[c0, r0], [c0, r1], [c1, r0], [c1, r1]]))
    h, w = transform.photo_hw
    x0, y0 = max(int(np.floor(p[:, 0].min())) - 1, 0), max(int(np.floor(p[:, 1].min())) - 1, 0)
    x1, y1 = min(int(np.ceil(p[:, 0].max())) + 2, w), min(int(np.ceil(p[:, 1].max())) + 2, h)
    return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None


def warp_to_photo(image: np.ndarray, transform: CropTransform, box: tuple[int, int, int, int]) -> np.ndarray:
    """A crop-sized image ([s,s,3] uint8 or [s,s] float32, any side s, read as covering the S x S crop) warped into
    the photo box (x0, y0, x1, y1) -> [y1-y0, x1-x0(,3)] (bilinear; 0 where the crop does not reach). A crop denser
    than the photo's face is first Lanczos-resized to the face's size."""
    a = np.asarray(image)
    if a.ndim not in (2, 3) or a.shape[0] != a.shape[1] or (a.ndim == 3 and a.shape[2] != 3):
        raise HsError(f"paste-back: expected a square crop [s,s,3] or mask [s,s], got shape {a.shape}")
    im = Image.fromarray(a.astype(np.float32) if a.ndim == 2 else a.astype(np.uint8, copy=False))
    s = a.shape[0]
    face = int(np.ceil(transform.size / transform.scale))  # the crop's side in photo px
    if s > face + 1 and a.ndim == 3:
        s = max(face, 8)
        im = im.resize((s, s), Image.Resampling.LANCZOS)
    x0, y0, x1, y1 = box
    m = transform.matrix * (s / transform.size)  # photo px -> this image's px (pixel centres: +0.5 below)
    lin = m[:, :2]
    # PIL: input continuous = lin @ (output continuous) + off, continuous = px + 0.5, output px + (x0, y0) = photo px
    # crop px q (side S) -> this image's continuous coordinate (q + 0.5) * s / S
    off = lin @ np.array([x0 - 0.5, y0 - 0.5]) + m[:, 2] + 0.5 * (s / transform.size)
    data = (lin[0, 0], lin[0, 1], off[0], lin[1, 0], lin[1, 1], off[1])
    out = im.transform((x1 - x0, y1 - y0), Image.Transform.AFFINE, data, Image.Resampling.BILINEAR)
    return np.asarray(out)


def paste_back(photo: np.ndarray, crop: np.ndarray, transform: CropTransform, mask: np.ndarray) -> np.ndarray:
    """photo [H,W,3] uint8, crop [s,s,3] uint8 (any side s, read as covering the transform's S x S crop), mask
    [S',S'] float32 in [0,1] (face_mask; any side S') -> a new [H,W,3] uint8: photo + (warped crop - photo) *
    warped mask, rounded, inside the mask's box (photo_box); every pixel where the warped mask is 0 is the photo's."""
    p = np.asarray(photo)
    if p.ndim != 3 or p.shape[2] != 3 or p.dtype != np.uint8:
        raise HsError(f"paste-back: expected a photo [H,W,3] uint8, got {p.dtype} {p.shape}")
    if tuple(p.shape[:2]) != transform.photo_hw:
        raise HsError(f"paste-back: the photo is {p.shape[1]}x{p.shape[0]} but the transform was made for a "
                      f"{transform.photo_hw[1]}x{transform.photo_hw[0]} one")
    out = p.copy()
    _paste_into(out, crop, transform, mask)
    return out


def _paste_into(out: np.ndarray, crop: np.ndarray, transform: CropTransform, mask: np.ndarray) -> None:
    mk = np.asarray(mask, dtype=np.float32)
    if mk.ndim != 2 or mk.shape[0] != mk.shape[1]:
        raise HsError(f"paste-back: expected a square mask [S,S], got shape {mk.shape}")
    box = photo_box(transform, mk)
    if box is None:
        return
    x0, y0, x1, y1 = box
    w = warp_to_photo(mk, transform, box)[:, :, None]
    img = warp_to_photo(crop, transform, box).astype(np.float32)
    region = out[y0:y1, x0:x1]
    f = region.astype(np.float32)
    blended = np.clip(np.rint(f + (img - f) * np.clip(w, 0.0, 1.0)), 0, 255).astype(np.uint8)
    out[y0:y1, x0:x1] = np.where(w > 0, blended, region)


def paste_faces(photo: np.ndarray,
                faces: Sequence[tuple[np.ndarray, CropTransform, np.ndarray]]) -> np.ndarray:
    """Several faces (crop, transform, mask) pasted into one copy of `photo`, in order (a later face over an earlier
    one where their masks overlap) -> [H,W,3] uint8."""
    out = np.array(photo, copy=True)
    for crop, tr, mk in faces:
        if tuple(out.shape[:2]) != tr.photo_hw:
            raise HsError(f"paste-back: the photo is {out.shape[1]}x{out.shape[0]} but a transform was made for a "
                          f"{tr.photo_hw[1]}x{tr.photo_hw[0]} one")
        _paste_into(out, crop, tr, mk)
    return out
