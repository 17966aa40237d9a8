"""FFHQ alignment (runtime.align) on real photos shipped inside wheels: scikit-image's astronaut and matplotlib's
grace_hopper sample. Needs the `align` and `photos` extras (dlib-bin, face-recognition-models, scipy, scikit-image,
matplotlib); `make setup` installs them, so a missing one is a failure, not a skip."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from hyperstyle_trt.core.errors import HsError
from tests.unit._helpers.photos import astronaut, grace_hopper
from hyperstyle_trt.runtime.align import (Aligner, align_face, anchors, ffhq_quad, load_photo, source_to_aligned,
                                          to_rgb_uint8, warp_ffhq)



@pytest.fixture(scope="module")
def aligner() -> Aligner:
    return Aligner(output_size=1024)  # ~3 s: the 100 MB landmark model, loaded once


@pytest.fixture(scope="module")
def remeasure() -> Aligner:
    # The aligned crops are 1024 px with faces ~500 px wide: upsampling is not needed to find them again.
    return Aligner(output_size=1024, upsample=0)


def _eyes(face) -> np.ndarray:
    el, er, _ = anchors(face.landmarks)
    return np.stack([el, er])


# Re-running dlib on the aligned crop finds the eye centres within this many pixels (at 1024) of where the warp
# put them. Observed (max over x, y; left / right eye): astronaut 1.8 / 2.3 px, grace_hopper 2.9 / 2.2 px
# (landmark jitter between the two scales).
EYE_TOL_PX = 6.0


@pytest.mark.parametrize("photo", ["astronaut", "grace_hopper"])
def test_eyes_land_where_ffhq_puts_them(aligner, remeasure, photo):
    img = astronaut() if photo == "astronaut" else grace_hopper()
    (al,) = aligner.align(img, name=photo)
    assert al.image.shape == (1024, 1024, 3) and al.image.dtype == np.uint8 and not al.padded
    # Where FFHQ's geometry puts the eyes: the source eye centres through the quad -> square map. For an upright
    # face the eye midpoint sits on the vertical centre line, 0.1 |v| (scaled) above the centre, with the eye
    # distance at most a quarter of the side.
    want = source_to_aligned(_eyes(al.face), al.quad, 1024)
    mid = want.mean(0)
    assert abs(mid[0] - 511.5) < 12, mid
    assert 0.45 * 1024 < mid[1] < 0.50 * 1024, mid
    assert 0.17 * 1024 < np.hypot(*(want[1] - want[0])) <= 0.25 * 1024 + 1e-6
    # ... and where they are in the produced pixels: detect and landmark the aligned crop again.
    faces = remeasure.detect(al.image)
    assert len(faces) >= 1
    got = _eyes(faces[0])
    err = np.abs(got - want).max()
    assert err < EYE_TOL_PX, (photo, got, want)


def test_astronaut_picks_the_face_not_the_patch(aligner):
    faces = aligner.detect(astronaut())
    # dlib finds the face (score ~1.16) and the mission patch (~0.12) at upsample 1; the official script kept the
    # last box (the patch). We keep the best.
    assert len(faces) == 2 and faces[0].score > faces[1].score
    assert faces[0].box == (175, 76, 265, 166)
    (al,) = aligner.align(astronaut())
    assert al.face.box == faces[0].box
    both = aligner.align(astronaut(), all_faces=True)
    assert [a.face.box for a in both] == [f.box for f in faces]


def test_astronaut_quad_matches_hand_checked_geometry(aligner):
    """Figures derived by hand from the formulas for this photo's landmarks (dlib-bin 20.0.1)."""
    (face,) = aligner.detect(astronaut())[:1]
    el, er, m = anchors(face.landmarks)
    np.testing.assert_allclose(el, [203.1667, 101.5], atol=1e-3)
    np.testing.assert_allclose(er, [246.5, 104.1667], atol=1e-3)
    np.testing.assert_allclose(m, [223.5, 140.0], atol=1e-9)
    quad, qsize = ffhq_quad(face.landmarks)
    np.testing.assert_allclose(quad, [[142.29, 15.52], [133.67, 188.96], [307.11, 197.58], [315.73, 24.14]],
                               atol=0.01)
    assert abs(qsize - 173.66) < 0.01


def test_upright_synthetic_geometry():
    """An upright face with eye distance 100 and eye-mouth distance 100: side = 2 max(200, 180) = 400,
    centre 10 px below the eye midpoint, axis-aligned."""
    lm = np.zeros((68, 2))
    lm[36:42] = [200, 300]
    lm[42:48] = [300, 300]
    lm[48], lm[54] = [230, 400], [270, 400]
    quad, qsize = ffhq_quad(lm)
    np.testing.assert_allclose(quad, [[50, 110], [50, 510], [450, 510], [450, 110]], atol=1e-9)
    assert qsize == pytest.approx(400)
    # eyes map to x = (200-50)/400*S - 0.5, y = (300-110)/400*S - 0.5
    np.testing.assert_allclose(source_to_aligned(lm[[36, 42]], quad, 1024),
                               [[383.5, 485.9], [639.5, 485.9]], atol=1e-9)


def test_no_face_gives_a_clear_error(aligner):
    import skimage.data

    with pytest.raises(HsError, match=r"no face found in coffee \(600x400"):
        aligner.align(skimage.data.coffee(), name="coffee")
    assert aligner.detect(skimage.data.coffee()) == []


def test_padding_branch_grey_and_rgba(aligner):
    """Cutting the left of grace_hopper puts the quad outside the image: the reflect/blur/fade padding runs.
    Grey and RGBA versions of that photo go through it (the official script raised there)."""
    cut = grace_hopper()[:, 230:]
    (rgb,) = aligner.align(cut)
    assert rgb.padded
    grey = np.asarray(Image.fromarray(cut).convert("L"))
    (g,) = aligner.align(grey, name="grey")
    assert g.padded and g.image.shape == (1024, 1024, 3)
    assert np.array_equal(g.image[..., 0], g.image[..., 1]) and np.array_equal(g.image[..., 0], g.image[..., 2])
    np.testing.assert_allclose(g.quad, rgb.quad, atol=8.0)  # landmarks on the grey photo: within a few px here
    # With the same landmarks, the grey crop is the grey conversion of the RGB crop (pad, blur, fade and warp are
    # linear per channel; only the rounding differs). Observed max difference 3 levels.
    same = align_face(grey, rgb.face.landmarks)
    ref = np.asarray(Image.fromarray(rgb.image).convert("L"), dtype=np.int16)
    assert np.abs(same.image[..., 0].astype(np.int16) - ref).max() <= 4
    opaque = np.dstack([cut, np.full(cut.shape[:2], 255, np.uint8)])
    (o,) = aligner.align(opaque, name="rgba")
    assert np.array_equal(o.image, rgb.image)  # opaque alpha: exactly the RGB result
    # a PIL RGBA image with a transparent band: composited over white first
    pil = Image.fromarray(opaque)
    a = np.asarray(pil.getchannel("A")).copy()
    a[:, -20:] = 0
    pil.putalpha(Image.fromarray(a))
    arr = to_rgb_uint8(pil)
    assert (arr[:, -20:] == 255).all() and np.array_equal(arr[:, :-20], cut[:, :-20])
    (t,) = aligner.align(pil, name="rgba-transparent")
    assert t.image.shape == (1024, 1024, 3)


def test_padding_blur_and_fade_numbers():
    """A flat grey image padded: the reflected pad of a constant image stays constant (blur and fade are
    identities on it), so the warp of a quad reaching outside returns that constant everywhere."""
    img = np.full((100, 100, 3), 77, np.uint8)
    quad = np.array([[-30.0, -30.0], [-30.0, 130.0], [130.0, 130.0], [130.0, -30.0]])
    out, padded = warp_ffhq(img, quad, 160.0, output_size=64)
    assert padded and (out == 77).all()
    # A two-tone image (left half 0, right half 200) whose quad reaches 50 px past its right edge: inside the
    # image (away from its border) nothing changes; in the right pad the reflected 200s fade towards the
    # per-channel median (0 here: most of the padded image is dark) with the distance from the edge.
    img = np.zeros((100, 100, 3), np.uint8)
    img[:, 50:] = 200
    out, padded = warp_ffhq(img, np.array([[0.0, -40], [0, 110], [150, 110], [150, -40]]), 150.0, output_size=150)
    assert padded
    assert (out[65:115, 5:45] == 0).all() and (out[65:115, 55:95] == 200).all()  # output y = source y + 40
    row = out[90, 100:150, 0].astype(int)  # source x 100..149, the right pad
    assert row[0] > 190 and row[-1] < 60 and (np.diff(row) <= 0).all()


def test_inputs_validated():
    with pytest.raises(HsError, match="float image must hold values in"):
        to_rgb_uint8(np.full((8, 8, 3), 2.0))
    with pytest.raises(HsError, match="unsupported image dtype"):
        to_rgb_uint8(np.zeros((8, 8, 3), np.int32))
    with pytest.raises(HsError, match="expected an image array"):
        to_rgb_uint8(np.zeros((8, 8, 2), np.uint8))
    f = to_rgb_uint8(np.full((4, 4), 0.5, np.float32))
    assert f.shape == (4, 4, 3) and (f == 128).all()
    with pytest.raises(HsError, match="68"):
        ffhq_quad(np.zeros((5, 2)))
    with pytest.raises(HsError, match="degenerate"):
        align_face(np.zeros((8, 8, 3), np.uint8), np.zeros((68, 2)))


def test_load_photo_errors(tmp_path):
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"not an image at all")
    with pytest.raises(HsError, match=r"cannot read .*junk.jpg as an image"):
        load_photo(junk)
    with pytest.raises(HsError, match="photo not found"):
        load_photo(tmp_path / "missing.png")
    # EXIF orientation 6 (rotate 90 clockwise for display) is applied
    p = tmp_path / "rot.jpg"
    im = Image.new("RGB", (40, 20), (10, 200, 30))
    exif = Image.Exif()
    exif[0x0112] = 6
    im.save(p, exif=exif)
    assert load_photo(p).shape == (40, 20, 3)


def test_large_photo_detected_on_a_downscaled_copy(aligner):
    """A 2.5x upscaled astronaut (1280 px) with detect_max_side 640: the face is found on the small copy and
    landmarked at full size; the quad is the small-photo quad scaled by 2.5 within a few pixels."""
    big = np.asarray(Image.fromarray(astronaut()).resize((1280, 1280), Image.Resampling.LANCZOS))
    small_side = Aligner(output_size=256, detect_max_side=640)
    (al,) = small_side.align(big)
    (ref,) = aligner.align(astronaut())
    np.testing.assert_allclose(al.quad, (ref.quad + 0.5) * 2.5 - 0.5, atol=4.0)
