"""Stability metrics (runtime.video.metrics): jitter recovers known sub-pixel shifts, flicker's fixed points."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import shift as nd_shift

from hyperstyle_trt.core.errors import HsError
from hyperstyle_trt.runtime.video.metrics import FlickerMeter, JitterMeter, flicker, jitter


def _shifted_crops(offsets: np.ndarray, size: int = 96) -> list[np.ndarray]:
    """Crops [size,size,3] uint8 of the astronaut's face region moved by offsets [N,2] (dy, dx) px (cubic)."""
    import skimage.data

    img = skimage.data.astronaut()[72:200, 162:290].astype(np.float64)  # 128 px around the face
    m = (img.shape[0] - size) // 2
    return [np.clip(np.rint(nd_shift(img, (dy, dx, 0), order=3, mode="reflect")[m:m + size, m:m + size]), 0, 255)
            .astype(np.uint8) for dy, dx in offsets]


def test_jitter_recovers_known_subpixel_shifts():
    rng = np.random.default_rng(0)
    offsets = np.cumsum(rng.normal(0, 0.6, (8, 2)), axis=0)
    m = JitterMeter()
    for c in _shifted_crops(offsets):
        m.add(c)
    assert m.count == 7
    # The shift that registers crop t onto crop t-1 is minus the motion between them.
    want = -np.diff(offsets, axis=0)
    err = np.abs(np.asarray(m.shifts) - want).max()
    assert err < 0.07, err  # observed 0.035 px (96 px crops, cubic resampling)
    rms = np.sqrt((want ** 2).sum(1).mean())
    assert m.value == pytest.approx(rms, rel=0.05)


def test_jitter_of_a_still_clip_is_zero_and_gaps_break_pairs():
    c = _shifted_crops(np.zeros((1, 2)))[0]
    assert jitter([c, c, c]) == 0.0
    moved = _shifted_crops(np.array([[0.0, 2.0]]))[0]
    m = JitterMeter()
    for x in (c, None, moved, None, c):  # no pair spans a gap
        m.add(x)
    assert m.count == 0 and np.isnan(m.value)
    assert jitter([c, moved]) == pytest.approx(2.0, abs=0.05)
    with pytest.raises(HsError, match="different sizes"):
        jitter([c, c[:64, :64]])


def _frames(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (40, 50, 3), dtype=np.uint8) for _ in range(n)]


def test_flicker_fixed_points():
    frames = _frames(6)
    mask = np.zeros((40, 50), np.float32)
    mask[10:30, 15:35] = 1.0
    masks = [mask] * 6
    assert flicker(frames, frames, masks) == 1.0
    const = [np.full_like(frames[0], 77)] * 6
    assert flicker(frames, const, masks) == 0.0
    # Only the change inside the mask counts: outside it the output may do anything.
    wild = [f.copy() for f in frames]
    for i, f in enumerate(wild):
        f[:, :10] = 255 * (i % 2)
    assert flicker(frames, wild, masks) == 1.0
    # Twice the input's change inside the mask (around a mid grey, no clipping) -> 2.
    base = [np.full((40, 50, 3), 128, np.uint8) + (f // 8) for f in frames]
    doubled = [(128 + 2 * (b.astype(np.int16) - 128)).astype(np.uint8) for b in base]
    assert flicker(base, doubled, masks) == pytest.approx(2.0)


def test_flicker_meter_gaps_and_shapes():
    frames = _frames(4, seed=1)
    mask = np.ones((40, 50), np.float32)
    m = FlickerMeter()
    m.add(frames[0], frames[0], mask)
    m.add(frames[1], frames[1], None)  # no face: no pair with its neighbours
    m.add(frames[2], frames[2] // 2, mask)
    assert m.count == 0 and np.isnan(m.value)
    m.add(frames[3], frames[3] // 2, mask)
    assert m.count == 1 and 0.3 < m.value < 0.7  # half the amplitude, up to uint8 rounding of each value
    with pytest.raises(HsError, match="mask"):
        m.add(frames[0], frames[0], mask[:10])
