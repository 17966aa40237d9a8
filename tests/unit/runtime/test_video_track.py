"""Face tracking through a clip (runtime.video.track) and the stability it gives with temporal smoothing
(runtime.video.smooth, runtime.video.metrics), on the synthetic clip of runtime.video.synth: scikit-image's
astronaut photo panned, zoomed and rolled smoothly over 48 frames, fresh noise and a JPEG re-encode per frame.
Needs the `align` and `photos` extras (dlib-bin, face-recognition-models, scikit-image); `make setup` installs
them, so a missing one is a failure, not a skip."""

from __future__ import annotations

import numpy as np
import pytest

from hyperstyle_trt.core.errors import HsError
from hyperstyle_trt.runtime.align import Aligner, ffhq_quad, warp_ffhq
from hyperstyle_trt.runtime.video.metrics import JitterMeter
from hyperstyle_trt.runtime.video.smooth import QuadSmoother
from hyperstyle_trt.runtime.video.synth import make_clip, sample_photo
from hyperstyle_trt.runtime.video.track import FaceTracker

FRAME = 288  # frame side, px: the face box is ~100 px, its FFHQ quad ~190-220 px
CROP = 128  # aligned crop side, px


def _photo() -> np.ndarray:
    return sample_photo()  # the astronaut, 260 px around her face


@pytest.fixture(scope="module")
def aligner() -> Aligner:
    return Aligner(output_size=CROP)  # ~3 s: the landmark model, loaded once for the module


@pytest.fixture(scope="module")
def tracked(aligner):
    frames = list(make_clip(_photo(), 48, size=(FRAME, FRAME), seed=0, view=1.0))
    tracker = FaceTracker(aligner)
    faces = [tracker.update(f) for f in frames]
    return frames, faces, tracker


def test_synthetic_clip_is_deterministic_and_covers():
    photo = _photo()
    a = list(make_clip(photo, 3, size=(96, 80), seed=4, cover=[1]))
    b = list(make_clip(photo, 3, size=(96, 80), seed=4, cover=[1]))
    c = list(make_clip(photo, 3, size=(96, 80), seed=5, cover=[1]))
    assert all(f.shape == (80, 96, 3) and f.dtype == np.uint8 for f in a)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[0], c[0])  # fresh noise for another seed
    box = a[1][20:60, 24:72].astype(np.float64)  # the middle 60 % of frame 1: grey 128 under noise + JPEG
    assert abs(box.mean() - 128) < 1.5 and box.std() < 6
    assert a[0][20:60, 24:72].std() > 20  # ... where the other frames show the photo
    with pytest.raises(HsError, match="n_frames"):
        next(make_clip(photo, 0))


def test_tracker_follows_the_face(aligner, tracked):
    frames, faces, tracker = tracked
    assert all(f is not None for f in faces)
    assert (tracker.frames, tracker.detections, tracker.lost, tracker.reacquired) == (48, 1, 0, 0)
    # Against a fresh full-frame detection: the landmarks agree within a few pixels (the two boxes differ a little,
    # and dlib's landmarks are whole pixels). Observed at 288 px frames, box ~100 px, 8 frames x 68 points: max 2 px,
    # median 0 px.
    diffs = []
    for i in range(0, 48, 6):
        (full, *_) = aligner.detect(frames[i])
        diffs.append(np.abs(faces[i].landmarks - full.landmarks).max(axis=1))
    diffs = np.concatenate(diffs)
    print(f"\ntracker vs full detection, landmarks: max {diffs.max():.0f} px, median {np.median(diffs):.0f} px")
    assert diffs.max() <= 4 and np.median(diffs) <= 1, (diffs.max(), np.median(diffs))


def _crop_jitter(frames, quads) -> tuple[float, int]:
    m = JitterMeter()
    for f, q in zip(frames, quads):
        # No padding (it costs ~60 ms a crop here): near the top of the zoom a quad corner leaves the frame by a
        # pixel or two, a black sliver in a crop corner, where the jitter's Hann window is ~0.
        m.add(warp_ffhq(f, q, float(np.hypot(*(q[3] - q[0]))), CROP, enable_padding=False)[0])
    return m.value, m.count


def test_smoothing_steadies_the_aligned_crops(tracked):
    frames, faces, _ = tracked
    quads = [ffhq_quad(f.landmarks)[0] for f in faces]
    results = {}
    for enabled in (False, True):
        sm = QuadSmoother(window=9, enabled=enabled)
        out = [q for x in quads for q in sm.push(x)] + sm.flush()
        assert len(out) == 48
        results[enabled] = _crop_jitter(frames, out)
    (raw, n_raw), (smooth, n_smooth) = results[False], results[True]
    ratio = raw / smooth
    print(f"\ncrop jitter (RMS frame-to-frame shift, {CROP} px crops): --no-smoothing {raw:.3f} px, "
          f"--temporal-window 9 {smooth:.3f} px, ratio {ratio:.1f}")
    assert n_raw == n_smooth == 47
    # Observed: 0.166 px without smoothing (landmark noise), 0.019 px with it, ratio 8.6 (8.5-9.6 over seeds 0-2;
    # with the renormalised Gaussian mean at the ends instead of the local line only 1.6-1.7). The issue asks >= 2.
    assert 0.1 < raw < 0.3, raw
    assert ratio >= 6, (raw, smooth)


def test_covered_face_is_none_then_reacquired(aligner):
    frames = list(make_clip(_photo(), 9, size=(FRAME, FRAME), seed=1, cover=[3, 4]))
    tracker = FaceTracker(aligner)
    faces = [tracker.update(f) for f in frames]
    assert [i for i, f in enumerate(faces) if f is None] == [3, 4]
    # Frame 3: the search region misses, the full detection finds nothing; frame 4: full detection, nothing;
    # frame 5: full detection, found again; then the search region follows it.
    assert (tracker.detections, tracker.lost, tracker.reacquired) == (4, 2, 1)
    (full, *_) = aligner.detect(frames[5])
    assert faces[5].box == full.box and np.array_equal(faces[5].landmarks, full.landmarks)
    tracker.reset()
    assert tracker.update(frames[6]) is not None and tracker.detections == 5


def test_tracker_checks_its_arguments(aligner):
    with pytest.raises(HsError, match="needs a runtime.align.Aligner"):
        FaceTracker(object())
    with pytest.raises(HsError, match="margin"):
        FaceTracker(aligner, margin=0)
