"""Face tracking through a video (issue #22): detect once, then follow.

The first frame (and any frame after the face was lost) runs the full-frame detection of runtime.align.Aligner
(dlib's HOG detector, its upsampling and downscaling rules). After that, each frame:

1. the HOG detector runs again on a region of interest around the previous box (`margin` box sides on every side),
   resized so the previous face is ~`roi_face` px (HOG cost is proportional to the pixels searched: ~0.1 Mpx
   instead of the whole frame, whatever the video's resolution); the detection overlapping the previous box best
   (IoU >= `min_iou`) is the face in this frame;
2. no such detection (face covered, turned away, out of the region): the full-frame detection runs; a face found
   there (the one overlapping the previous box, else the best-scoring) is taken up, none -> the frame has no
   face (`update` returns None, `lost` counts it) and the next frame starts with a full detection again;
3. the 68 landmarks come from dlib's shape predictor on the full-resolution frame inside that box.

The detector and predictor are the Aligner's own (built once, shared).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from hyperstyle_trt.core.errors import HsError
from hyperstyle_trt.runtime.align import Aligner, Face, to_rgb_uint8


def iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    """Intersection over union of two (left, top, right, bottom) boxes."""
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    area = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / area) if area > 0 else 0.0


class FaceTracker:
    """Follows one face through the frames of a video.

    aligner: the runtime.align.Aligner whose detector and landmark predictor are used. margin: the search region
    around the previous box, in box sides on each side (0.5: a region twice the box). roi_face: the previous box's
    side in the resized search region, px (dlib's HOG window is 80 px: faces from ~0.8x to ~2x the previous size
    are found at 100). min_iou: a detection in the region must overlap the previous box this much to be the same
    face.

    update(frame [H,W,3] uint8) -> Face (box, detector score, [68,2] landmarks in frame pixels) or None (no face).
    Counters: `frames` (updates), `detections` (full-frame detector runs), `lost` (frames that returned None),
    `reacquired` (full detections that found a face after the search region lost the tracked one or after frames
    without a face). `reset()` forgets the face, not the counters."""

    def __init__(self, aligner: Aligner, margin: float = 0.5, roi_face: int = 100, min_iou: float = 0.3):
        if not isinstance(aligner, Aligner):
            raise HsError(f"FaceTracker needs a runtime.align.Aligner, got {type(aligner).__name__}")
        # The Aligner's bare detector and predictor (Aligner.boxes / Aligner.landmarks): its detect() runs the
        # full-frame search; the search region needs the detector on a crop and the predictor on a box of our own.
        if not margin > 0 or roi_face < 80 or not 0 < min_iou < 1:
            raise HsError(f"FaceTracker: expected margin > 0, roi_face >= 80 px and 0 < min_iou < 1, got {margin}, "
                          f"{roi_face}, {min_iou}")
        self.aligner, self.margin, self.roi_face, self.min_iou = aligner, float(margin), int(roi_face), float(min_iou)
        self.frames = self.detections = self.lost = self.reacquired = 0
        self._box: tuple[int, int, int, int] | None = None
        self._missed = False  # the tracked face was lost since the last face found (a full detection re-acquires)

    def reset(self) -> None:
        """Forget the tracked face (a new clip or a scene cut): the next update runs a full detection."""
        self._box = None
        self._missed = False

    def _search_roi(self, rgb: np.ndarray) -> tuple[tuple[int, int, int, int], float] | None:
        """The HOG detector on the region around the previous box: (box in frame px, score) or None."""
        h, w = rgb.shape[:2]
        bl, bt, br, bb = self._box
        side = max(br - bl, bb - bt, 1)
        m = self.margin * side
        x0, y0 = int(max(np.floor(bl - m), 0)), int(max(np.floor(bt - m), 0))
        x1, y1 = int(min(np.ceil(br + m), w)), int(min(np.ceil(bb + m), h))
        if x1 - x0 < 8 or y1 - y0 < 8:
            return None
        s = self.roi_face / side
        roi = rgb[y0:y1, x0:x1]
        size = (max(int(round((x1 - x0) * s)), 1), max(int(round((y1 - y0) * s)), 1))
        if size != (x1 - x0, y1 - y0):
            roi = np.asarray(Image.fromarray(roi).resize(size, Image.Resampling.BILINEAR))
        best = None
        for (rl, rt, rr, rb), sc in self.aligner.boxes(roi, upsample=0):
            sx, sy = (x1 - x0) / size[0], (y1 - y0) / size[1]
            box = (int(round(x0 + rl * sx)), int(round(y0 + rt * sy)),
                   int(round(x0 + rr * sx)), int(round(y0 + rb * sy)))
            o = iou(box, self._box)
            if o >= self.min_iou and (best is None or o > best[0]):
                best = (o, box, float(sc))
        return None if best is None else (best[1], best[2])

    def update(self, frame: np.ndarray) -> Face | None:
        """The tracked face in this frame, or None when there is none (see the module docstring)."""
        rgb = to_rgb_uint8(frame, "frame")
        self.frames += 1
        found = self._search_roi(rgb) if self._box is not None else None
        if found is not None:
            box, score = found
            face = Face(box=box, score=score, landmarks=self.aligner.landmarks(rgb, box))
        else:
            self._missed = self._missed or self._box is not None  # the search region lost the tracked face
            self.detections += 1
            faces = self.aligner.detect(rgb, "frame")
            if not faces:
                self._box = None
                self._missed = True
                self.lost += 1
                return None
            face = faces[0]
            if self._box is not None:  # prefer the face that overlaps the one the search region lost
                near = max(faces, key=lambda f: iou(f.box, self._box))
                if iou(near.box, self._box) > 0:
                    face = near
            if self._missed:
                self.reacquired += 1
        self._box = face.box
        self._missed = False
        return face
