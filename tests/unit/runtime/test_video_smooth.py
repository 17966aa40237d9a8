"""Temporal smoothing of alignment quads (runtime.video.smooth): parameters, streaming, gaps, cuts, validation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter1d

from hyperstyle_trt.core.errors import HsError
from hyperstyle_trt.runtime.align import ffhq_quad
from hyperstyle_trt.runtime.video.smooth import QuadSmoother, params_quad, quad_params, smooth_quads


def _params(n: int, seed: int = 0) -> np.ndarray:
    """[n,4] a face drifting with noise: centre ~(200, 150), side ~120 px, rotation ~0.1 rad."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    base = np.c_[200 + 1.5 * t, 150 - 0.5 * t, np.log(120) + 0.004 * t, 0.1 + 0.003 * t]
    return base + rng.normal(0, 1, (n, 4)) * [1.0, 1.0, 0.01, 0.01]


def _stream(sm: QuadSmoother, quads) -> tuple[list, list[int]]:
    """Push every quad, then flush; returns (outputs, how many came back per push)."""
    out, counts = [], []
    for q in quads:
        got = sm.push(q)
        counts.append(len(got))
        out.extend(got)
    out.extend(sm.flush())
    return out, counts


def test_params_round_trip_ffhq_quads():
    rng = np.random.default_rng(1)
    for _ in range(5):
        quad, qsize = ffhq_quad(rng.normal(0, 25, (68, 2)) + [300, 200])
        p = quad_params(quad)
        np.testing.assert_allclose(params_quad(p), quad, atol=1e-9)
        assert p[2] == pytest.approx(np.log(qsize))
        edge = quad[3] - quad[0]  # TL -> TR
        assert p[3] == pytest.approx(np.arctan2(edge[1], edge[0]))
        np.testing.assert_allclose(p[:2], quad.mean(0))
    with pytest.raises(HsError, match=r"quad \[4,2\]"):
        quad_params(np.zeros((3, 2)))


def test_streaming_equals_offline_gaussian_with_delay():
    p = _params(30)
    quads = [params_quad(x) for x in p]
    sm = QuadSmoother(window=9, sigma=2.0)
    assert sm.delay == 4
    out, counts = _stream(sm, quads)
    assert counts == [0] * 4 + [1] * 26  # held back window // 2 frames, then one frame per push
    got = np.array([quad_params(q) for q in out])
    # Offline: scipy's Gaussian, truncated at the window's half (4 frames) and renormalised; the interior frames
    # (a full window) must match it.
    want = gaussian_filter1d(p, 2.0, axis=0, truncate=4 / 2.0, mode="nearest")
    np.testing.assert_allclose(got[4:-4], want[4:-4], rtol=0, atol=1e-9)
    # The ends: the weighted least-squares line through the neighbours that exist (np.polyfit weights the
    # residuals, so it takes the square roots of the Gaussian weights).
    for i in (0, 1, 2, 3, 26, 27, 28, 29):
        j = np.arange(max(i - 4, 0), min(i + 5, 30))
        w = np.exp(-0.5 * ((j - i) / 2.0) ** 2)
        ref = [np.polyval(np.polyfit(j - i, p[j, c], 1, w=np.sqrt(w)), 0) for c in range(4)]
        np.testing.assert_allclose(got[i], ref, rtol=0, atol=1e-9)


def test_mean_at_the_ends_when_not_linear_and_default_sigma():
    p = _params(12)
    got = np.array([quad_params(q) for q in smooth_quads([params_quad(x) for x in p], 5, linear=False)])
    sigma = 5 / 4.5  # the default
    for i in range(12):
        j = np.arange(max(i - 2, 0), min(i + 3, 12))
        w = np.exp(-0.5 * ((j - i) / sigma) ** 2)
        np.testing.assert_allclose(got[i], w @ p[j] / w.sum(), rtol=0, atol=1e-9)


def test_uniform_motion_passes_unchanged_and_noise_shrinks():
    t = np.arange(40)
    line = np.c_[100 + 2.0 * t, 80 + 0.7 * t, np.log(90) + 0.01 * t, -0.2 + 0.005 * t]
    out = smooth_quads([params_quad(x) for x in line], 9)
    np.testing.assert_allclose([quad_params(q) for q in out], line, atol=1e-9)  # ends included: no lag
    noisy = _params(200, seed=3)
    sm = np.array([quad_params(q) for q in smooth_quads([params_quad(x) for x in noisy], 9)])
    # RMS frame-to-frame change of the centre beyond the drift (what shakes the crop): white noise of std 1 gives
    # sqrt(2) raw; a Gaussian of sigma 2 leaves ~0.1 inside, the local lines at the two ends more (observed over
    # the whole clip: 1.41 -> 0.18).
    drift = np.array([1.5, -0.5])
    raw_step = np.sqrt(((np.diff(noisy[:, :2], axis=0) - drift) ** 2).mean())
    sm_step = np.sqrt(((np.diff(sm[:, :2], axis=0) - drift) ** 2).mean())
    assert 1.2 < raw_step < 1.6 and sm_step < raw_step / 6, (raw_step, sm_step)


def test_disabled_and_window_one_are_identity():
    p = _params(10)
    quads = [params_quad(x) for x in p]
    quads[4] = None
    sm = QuadSmoother(window=9, enabled=False)
    assert sm.delay == 0
    out, counts = _stream(sm, quads)
    assert counts == [1] * 10
    for a, b in zip(out, quads):
        assert (a is None and b is None) or np.array_equal(a, b)
    out1 = smooth_quads(quads, 1)
    for a, b in zip(out1, quads):
        assert (a is None and b is None) or np.allclose(a, b, atol=1e-9)


def test_gaps_stay_none_and_split_the_clip():
    p = _params(25, seed=5)
    quads = [params_quad(x) for x in p]
    for i in (8, 9, 17):
        quads[i] = None
    out, counts = _stream(QuadSmoother(window=7), quads)
    assert len(out) == 25 and sum(counts) == 25 - 3
    assert [i for i, q in enumerate(out) if q is None] == [8, 9, 17]
    # Each run of frames between gaps is smoothed on its own.
    for lo, hi in ((0, 8), (10, 17), (18, 25)):
        alone = smooth_quads(quads[lo:hi], 7)
        for a, b in zip(out[lo:hi], alone):
            np.testing.assert_allclose(a, b, atol=1e-9)


def test_a_jump_is_a_cut_and_rotation_is_unwrapped():
    p = _params(20, seed=7)
    p[10:, 0] += 500  # the face jumps 500 px (~4 sides): a scene cut
    quads = [params_quad(x) for x in p]
    out = smooth_quads(quads, 9)
    for lo, hi in ((0, 10), (10, 20)):
        for a, b in zip(out[lo:hi], smooth_quads(quads[lo:hi], 9)):
            np.testing.assert_allclose(a, b, atol=1e-9)
    # Rotation around +-pi (an upside-down face): the angles wrap between frames but must not average to ~0.
    rng = np.random.default_rng(2)
    ang = np.pi + rng.normal(0, 0.02, 15)
    quads = [params_quad([100, 100, np.log(80), a]) for a in ang]
    got = np.array([quad_params(q)[3] for q in smooth_quads(quads, 9)])
    assert np.all(np.abs(np.angle(np.exp(1j * (got - np.pi)))) < 0.03), got


@pytest.mark.parametrize("window", [0, 2, 8, -3, 2.5, True, "9"])
def test_window_must_be_odd_and_positive(window):
    with pytest.raises(HsError, match="--temporal-window must be an odd number of frames >= 1"):
        QuadSmoother(window=window)


def test_sigma_and_cut_are_checked():
    with pytest.raises(HsError, match="sigma"):
        QuadSmoother(window=9, sigma=0)
    with pytest.raises(HsError, match="cut"):
        QuadSmoother(window=9, cut=-1)
