"""Temporal stability of a video inversion (issue #22).

- jitter: the RMS frame-to-frame shift, in pixels, of the aligned crops: for each pair of consecutive crops the
  translation between them by sub-pixel phase correlation (scikit-image's `phase_cross_correlation`, upsampled
  100x: 0.01 px steps) on the grey crops times a Hann window (so the crop borders do not dominate the spectrum),
  with the cross-power spectrum left unnormalised (`normalization=None`): on crops shifted by known sub-pixel
  amounts that recovered them to ~0.02 px RMS, the whitened (`"phase"`) variant to ~0.1 px (it amplifies the
  high-frequency noise).
  A still face in a stable alignment gives ~0; landmark noise that shakes the crop shows up directly.
- flicker: the mean absolute frame-to-frame change of the pasted output inside the face mask, divided by the same
  for the input video: 1.0 = the output changes exactly as much as the input, > 1 = the edit adds flicker, 0 = a
  frozen face. Summed over the whole clip before dividing (a ratio of totals, stable on near-still frames).

Frames without a face (None) break the chain: no shift / change is measured across them.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from hyperstyle_trt.core.errors import HsError

UPSAMPLE = 100  # phase correlation precision: 1 / UPSAMPLE pixels


def _grey(image: np.ndarray, name: str) -> np.ndarray:
    a = np.asarray(image)
    if a.ndim == 3 and a.shape[2] in (1, 3, 4):
        a = a[:, :, :3].astype(np.float64).mean(axis=2)
    elif a.ndim != 2:
        raise HsError(f"{name}: expected an image [H,W] or [H,W,3], got shape {a.shape}")
    return a.astype(np.float64)


class JitterMeter:
    """Streaming jitter: `add(crop [S,S,3] or [S,S] | None)` per frame; `value` = RMS shift in pixels over the
    measured pairs (nan before any), `count` = the number of frame-to-frame shifts measured, `shifts` = the
    (dy, dx) of each, in order."""

    def __init__(self):
        self._prev: np.ndarray | None = None
        self._window: np.ndarray | None = None
        self.shifts: list[tuple[float, float]] = []

    def add(self, crop: np.ndarray | None) -> None:
        from skimage.registration import phase_cross_correlation

        if crop is None:
            self._prev = None
            return
        g = _grey(crop, "jitter crop")
        if self._window is None or self._window.shape != g.shape:  # separable Hann window [H,W]
            self._window = np.outer(np.hanning(g.shape[0]), np.hanning(g.shape[1]))
        g = (g - g.mean()) * self._window
        if self._prev is not None:
            if self._prev.shape != g.shape:
                raise HsError(f"jitter: crops of different sizes {self._prev.shape} and {g.shape}")
            shift, _, _ = phase_cross_correlation(self._prev, g, upsample_factor=UPSAMPLE,
                                                  normalization=None)
            self.shifts.append((float(shift[0]), float(shift[1])))
        self._prev = g

    @property
    def count(self) -> int:
        return len(self.shifts)

    @property
    def value(self) -> float:
        if not self.shifts:
            return float("nan")
        s = np.asarray(self.shifts)
        return float(np.sqrt((s ** 2).sum(axis=1).mean()))


def jitter(crops: Iterable[np.ndarray | None]) -> float:
    """RMS frame-to-frame shift (pixels) of a sequence of aligned crops [S,S,3] uint8 (None: no face); nan for
    fewer than two consecutive crops."""
    m = JitterMeter()
    for c in crops:
        m.add(c)
    return m.value


class FlickerMeter:
    """Streaming flicker: `add(input [H,W,3], output [H,W,3], mask [H,W] in [0,1] | None)` per frame (mask None: no
    face in that frame). Between consecutive frames both changes are weighted by the mean of the two masks;
    `value` = sum(w |out_t - out_t-1|) / sum(w |in_t - in_t-1|) (nan before any pair or for a still input),
    `count` = the pairs measured."""

    def __init__(self):
        self._prev: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._out = 0.0
        self._in = 0.0
        self.count = 0

    def add(self, inp: np.ndarray, out: np.ndarray, mask: np.ndarray | None) -> None:
        if mask is None:
            self._prev = None
            return
        inp, out = np.asarray(inp), np.asarray(out)
        m = np.asarray(mask, dtype=np.float32)
        if m.ndim == 3 and m.shape[2] == 1:
            m = m[:, :, 0]
        if inp.shape != out.shape or inp.ndim != 3 or m.shape != inp.shape[:2]:
            raise HsError(f"flicker: expected input and output [H,W,3] and a mask [H,W] of the same H, W; got "
                          f"{inp.shape}, {out.shape}, {m.shape}")
        if self._prev is not None:
            pi, po, pm = self._prev
            if pi.shape != inp.shape:
                raise HsError(f"flicker: frames of different sizes {pi.shape} and {inp.shape}")
            w = (pm + m) / 2
            ys, xs = np.nonzero(w > 0)
            if len(ys):  # only the mask's bounding box (a face is a small part of a frame)
                sl = (slice(ys.min(), ys.max() + 1), slice(xs.min(), xs.max() + 1))
                wb = w[sl][:, :, None]
                self._out += float((wb * np.abs(out[sl].astype(np.float32) - po[sl].astype(np.float32))).sum())
                self._in += float((wb * np.abs(inp[sl].astype(np.float32) - pi[sl].astype(np.float32))).sum())
            self.count += 1
        self._prev = (inp, out, m)

    @property
    def value(self) -> float:
        return self._out / self._in if self._in > 0 else float("nan")


def flicker(inputs: Iterable[np.ndarray], outputs: Iterable[np.ndarray], masks: Iterable[np.ndarray | None]) -> float:
    """Flicker ratio of a clip: the pasted output frames against the input frames, inside the face masks (see
    `FlickerMeter`); the three sequences in frame order."""
    m = FlickerMeter()
    for i, o, k in zip(inputs, outputs, masks, strict=True):
        m.add(i, o, k)
    return m.value
