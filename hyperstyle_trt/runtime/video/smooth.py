"""Temporal smoothing of the FFHQ alignment quads of a video (issue #22).

Per-frame landmarks are noisy (sensor noise, compression), so the FFHQ quads computed from them jitter and the
aligned crops shake. As STIT (Tzaban et al. 2022, "Stitch it in Time") does with its Gaussian-smoothed crops, the
quads are low-pass filtered over time: each quad [4,2] becomes four parameters (centre x, centre y, log side,
rotation angle, unwrapped over time), those are averaged with Gaussian weights over a window of frames centred on
the frame, and turned back into a square quad. A symmetric kernel passes uniform motion (constant pan, zoom,
rotation speed) unchanged and removes the frame-to-frame noise.

Streaming: `QuadSmoother.push` holds back `window // 2` frames (the look-ahead the centred window needs) and
returns the frames that became final, so a video is smoothed without holding the whole clip. Frames without a
face (None) stay None and split the clip into segments that are smoothed separately: near a gap, at the ends and
after a cut (a jump of the face between two frames) only the neighbours in the same segment are used, with the
Gaussian weights renormalised over them. The value is the intercept of the Gaussian-weighted least-squares line
through those neighbours (local-linear smoothing): on a full, symmetric window that is exactly the Gaussian
weighted mean; on a one-sided window (ends, gaps) it does not lag behind a moving face as the mean does. On the
48-frame synthetic pan / zoom clip (tests/unit/runtime/test_video_track.py) the renormalised mean only reduced the
crop jitter 1.3-1.8x (its lag at the two ends dominated), the local line 6-9x.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from hyperstyle_trt.core.errors import HsError

# Canonical square corners as complex numbers (x right, y down): TL, BL, BR, TR = c - x - y, c - x + y, c + x + y,
# c + x - y with x = (1, 0), y = rot90(x) = (0, 1), the corner order and orientation of runtime.align.ffhq_quad.
_UNIT = np.array([-1 - 1j, -1 + 1j, 1 + 1j, 1 - 1j])


def quad_params(quad: np.ndarray) -> np.ndarray:
    """quad [4,2] (TL, BL, BR, TR, x/y pixels) -> [4] float64 (centre x, centre y, log side, rotation in radians).

    The least-squares similarity fit of the unit square (exact for the square quads of runtime.align): the rotation
    is the angle of the TL -> TR edge, wrapped to (-pi, pi]."""
    q = np.asarray(quad, dtype=np.float64)
    if q.shape != (4, 2) or not np.isfinite(q).all():
        raise HsError(f"expected a finite quad [4,2] (TL, BL, BR, TR corners), got shape {q.shape}")
    z = q[:, 0] + 1j * q[:, 1]
    c = z.mean()
    a = np.vdot(_UNIT, z - c) / np.vdot(_UNIT, _UNIT).real  # half the TL -> TR edge, as a complex number
    if not abs(a) > 0:
        raise HsError("degenerate quad: all four corners coincide")
    return np.array([c.real, c.imag, np.log(2 * abs(a)), np.angle(a)])


def params_quad(p: np.ndarray) -> np.ndarray:
    """[4] (centre x, centre y, log side, rotation) -> the square quad [4,2] float64 (TL, BL, BR, TR)."""
    cx, cy, log_side, theta = np.asarray(p, dtype=np.float64)
    z = complex(cx, cy) + np.exp(log_side) / 2 * np.exp(1j * theta) * _UNIT
    return np.stack([z.real, z.imag], axis=1)


def _local_fit(k: np.ndarray, p: np.ndarray, w: np.ndarray, linear: bool) -> np.ndarray:
    """The smoothed value at offset 0 from neighbours at offsets k [n] with params p [n,4] and weights w [n]:
    the weighted mean, or (linear) the intercept of the weighted least-squares line through them. With weights
    symmetric about 0 both are the same; on a one-sided window (clip ends, gaps) the line does not lag behind
    uniform motion as the mean does."""
    s0, s1, s2 = w.sum(), (w * k).sum(), (w * k * k).sum()
    m0, m1 = w @ p, (w * k) @ p
    det = s0 * s2 - s1 * s1
    if not linear or det <= 1e-9 * s0 * s0:
        return m0 / s0
    return (s2 * m0 - s1 * m1) / det


def _is_cut(prev: np.ndarray, cur: np.ndarray, cut: float) -> bool:
    """Whether the face jumped between two frames: centre moved by more than `cut` sides, or the side changed by
    more than a factor exp(cut), or it turned by more than `cut` radians (~29 degrees at 0.5)."""
    side = np.exp(min(prev[2], cur[2]))
    return bool(np.hypot(cur[0] - prev[0], cur[1] - prev[1]) > cut * side
                or abs(cur[2] - prev[2]) > cut or abs(cur[3] - prev[3]) > cut)


class QuadSmoother:
    """Streaming Gaussian smoothing of alignment quads over a window of frames.

    window: frames in the centred window (odd, >= 1; 1 = no smoothing). sigma: the Gaussian's standard deviation
    in frames; None (default) = window / 4.5, i.e. 2.0 at the default window 9: the window then reaches 2 to 2.25
    sigma either side (2 at 9; the truncated tails hold ~5 % of the Gaussian), so `--temporal-window` alone sets
    the strength (a fixed sigma would make a large window pointless and a small one a box filter). linear: the
    local-line fit at one-sided windows (False: the renormalised weighted mean everywhere). enabled: False
    (--no-smoothing) returns every quad at once, unchanged. cut: a jump between consecutive quads (see `_is_cut`)
    larger than this starts a new segment (a scene cut or a different face); None disables the check.

    push(quad [4,2] | None) -> the quads that became final (zero or more, in input order, each [4,2] float64 or
    None for a frame without a face); flush() -> the rest at the end of the clip. `delay` frames are held back."""

    def __init__(self, window: int = 9, sigma: float | None = None, enabled: bool = True, cut: float | None = 0.5,
                 linear: bool = True):
        if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < 1 or window % 2 == 0:
            raise HsError(f"--temporal-window must be an odd number of frames >= 1, got {window!r}")
        if sigma is None:
            sigma = window / 4.5
        if not (np.isfinite(sigma) and sigma > 0):
            raise HsError(f"temporal smoothing sigma must be a positive number of frames, got {sigma!r}")
        if cut is not None and not cut > 0:
            raise HsError(f"cut threshold must be > 0 (or None), got {cut!r}")
        self.window, self.sigma, self.enabled, self.cut = int(window), float(sigma), bool(enabled), cut
        self.linear = bool(linear)
        self.half = self.window // 2 if self.enabled else 0
        self._weights = np.exp(-0.5 * (np.arange(-self.half, self.half + 1) / self.sigma) ** 2)
        self.reset()

    @property
    def delay(self) -> int:
        """Frames held back by push (window // 2 when enabled, else 0)."""
        return self.half

    def reset(self) -> None:
        """Forget every frame (start of a new clip)."""
        # Each entry: (params [4] or None, segment id). Holds the `half` frames already returned (the left side of
        # the window) followed by the frames not returned yet.
        self._buf: deque[tuple[np.ndarray | None, int]] = deque()
        self._pending = 0  # frames at the end of _buf not returned yet
        self._segment = 0
        self._last: np.ndarray | None = None  # params of the previous frame (None after a gap)

    def push(self, quad: np.ndarray | None) -> list[np.ndarray | None]:
        """Add the next frame's quad (None: no face); returns the frames that are now final."""
        if not self.enabled:
            return [None if quad is None else np.asarray(quad, dtype=np.float64).reshape(4, 2).copy()]
        if quad is None:
            p = None
            self._last = None
        else:
            p = quad_params(quad)
            if self._last is not None:  # unwrap the angle against the previous frame
                p[3] = self._last[3] + np.angle(np.exp(1j * (p[3] - self._last[3])))
            if self._last is None or (self.cut is not None and _is_cut(self._last, p, self.cut)):
                self._segment += 1
            self._last = p
        self._buf.append((p, self._segment))
        self._pending += 1
        out = []
        while self._pending > self.half:  # the oldest pending frame has its full look-ahead
            out.append(self._emit(len(self._buf) - self._pending))
        return out

    def flush(self) -> list[np.ndarray | None]:
        """The frames still held back (with the neighbours that exist), then reset for a new clip."""
        out = []
        while self._pending:
            out.append(self._emit(len(self._buf) - self._pending))
        self.reset()
        return out

    def _emit(self, i: int) -> np.ndarray | None:
        p, seg = self._buf[i]
        self._pending -= 1
        result = None
        if p is not None:
            ks, ps = [], []
            for k in range(-self.half, self.half + 1):
                j = i + k
                if 0 <= j < len(self._buf):
                    q, s = self._buf[j]
                    if q is not None and s == seg:
                        ks.append(k)
                        ps.append(q)
            result = params_quad(_local_fit(np.array(ks, dtype=np.float64), np.array(ps),
                                            self._weights[np.array(ks) + self.half], self.linear))
        while len(self._buf) - self._pending > self.half:  # keep only `half` returned frames for the left side
            self._buf.popleft()
        return result


def smooth_quads(quads, window: int = 9, sigma: float | None = None, enabled: bool = True,
                 cut: float | None = 0.5, linear: bool = True) -> list[np.ndarray | None]:
    """Smooth a whole sequence of quads (each [4,2] or None) at once: `QuadSmoother`'s push over all, then flush."""
    sm = QuadSmoother(window, sigma, enabled, cut, linear)
    out = []
    for q in quads:
        out.extend(sm.push(q))
    out.extend(sm.flush())
    return out
