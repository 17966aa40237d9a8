"""Paste-back (runtime.paste) on real photos shipped inside wheels (scikit-image's astronaut, matplotlib's
grace_hopper) and on synthetic textures: the aligned crop pasted into its own photo reproduces the photo inside the
mask and leaves every other pixel untouched; two faces in one photo; transformed copies of a photo; the shrink and
padding branches of the FFHQ warp; the results.json record."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from hyperstyle_trt.core.errors import HsError
from hyperstyle_trt.runtime.align import Aligner, source_to_aligned, warp_ffhq, warp_steps
from tests.unit._helpers.photos import astronaut, grace_hopper, two_faces
from hyperstyle_trt.runtime.paste import (CropTransform, face_mask, paste_back, paste_faces, photo_box,
                                          warp_to_photo)

S = 256  # crop side: about the faces' own size in these photos (astronaut quad 174 px, grace_hopper 327 px)

# The aligned crop pasted back into its photo, PSNR inside the warped mask (mask > 0), observed at S = 256:
# astronaut 35.91 dB, grace_hopper 33.08 dB; at 1024: 35.94 / 34.88 dB (two bilinear resamplings).
MIN_PSNR_DB = 30.0



@pytest.fixture(scope="module")
def aligner() -> Aligner:
    return Aligner(output_size=S)


def _psnr(a: np.ndarray, b: np.ndarray, where: np.ndarray) -> float:
    d = a.astype(np.float64)[where] - b.astype(np.float64)[where]
    return float(10 * np.log10(255.0 ** 2 / np.mean(d ** 2)))


def _photo_mask(tr: CropTransform, mask: np.ndarray) -> np.ndarray:
    """The mask warped into the whole photo [H,W] float32 (0 outside its box)."""
    full = np.zeros(tr.photo_hw, np.float32)
    box = photo_box(tr, mask)
    if box is not None:
        x0, y0, x1, y1 = box
        full[y0:y1, x0:x1] = warp_to_photo(mask, tr, box)
    return full


def _faces(aligner: Aligner, img: np.ndarray, all_faces: bool = False):
    """[(aligned crop, transform, mask)] for the photo's faces."""
    out = []
    for al in aligner.align(img, all_faces=all_faces):
        tr = CropTransform.from_alignment(al, img.shape[:2])
        out.append((al.image, tr, face_mask(tr.to_crop(al.face.landmarks), tr.size)))
    return out


@pytest.mark.parametrize("photo", ["astronaut", "grace_hopper"])
def test_aligned_crop_pastes_back_onto_itself(aligner, photo, capsys):
    img = astronaut() if photo == "astronaut" else grace_hopper()
    ((crop, tr, mask),) = _faces(aligner, img)
    out = paste_back(img, crop, tr, mask)
    inside = _photo_mask(tr, mask) > 0
    assert out.shape == img.shape and out.dtype == np.uint8 and out is not img
    np.testing.assert_array_equal(out[~inside], img[~inside])  # bit-identical outside the mask
    # the mask covers the face: every landmark is well inside it
    lm = np.rint(aligner.detect(img)[0].landmarks).astype(int)
    assert (_photo_mask(tr, mask)[lm[:, 1], lm[:, 0]] > 0.9).all()
    psnr = _psnr(out, img, inside)
    with capsys.disabled():
        print(f"\npaste-back of the aligned crop, {photo}, S={S}: PSNR {psnr:.2f} dB over {inside.sum()} px")
    assert psnr >= MIN_PSNR_DB
    # the same crop pasted one pixel off is visibly worse: the map is where the warp took the crop from
    moved = CropTransform.from_dict({**tr.to_dict(), "quad": (tr.quad + 1.0).tolist()})
    assert _psnr(paste_back(img, crop, moved, mask), img, inside) < psnr - 2


def test_two_faces_in_one_photo(aligner):
    canvas = two_faces()  # the astronaut (512x512) and a mirrored grace_hopper (512x600) side by side
    faces = _faces(aligner, canvas, all_faces=True)
    assert len(faces) == 2
    centres = sorted(tr.to_photo([[S / 2, S / 2]])[0, 0] for _, tr, _ in faces)
    assert centres[0] < 512 < 552 < centres[1]  # one face on each side
    red = np.zeros((S, S, 3), np.uint8)
    red[..., 0] = 255
    out = paste_faces(canvas, [(red, tr, m) for _, tr, m in faces])
    masks = [_photo_mask(tr, m) for _, tr, m in faces]
    changed = (out != canvas).any(-1)
    for m in masks:  # each face region changed: where its mask is 1 the pixel is pure red
        assert (out[m >= 1.0] == [255, 0, 0]).all() and changed[m > 0.5].mean() > 0.99
    anywhere = np.maximum(*masks) > 0
    np.testing.assert_array_equal(out[~anywhere], canvas[~anywhere])
    # the aligned crops themselves: both faces come back
    back = paste_faces(canvas, faces)
    for m in masks:
        assert _psnr(back, canvas, m > 0) >= MIN_PSNR_DB
    np.testing.assert_array_equal(back[~anywhere], canvas[~anywhere])


def _similar(img: np.ndarray, canvas_hw, angle_deg: float, scale: float, offset, mirror: bool):
    """img mirrored (optional), rotated by angle_deg about its centre, scaled, placed at offset on a grey canvas;
    returns (new image, [2,3] affine old px -> new px)."""
    h, w = img.shape[:2]
    src = img[:, ::-1] if mirror else img
    mir = np.array([[-1.0, 0, w - 1], [0, 1, 0]]) if mirror else np.array([[1.0, 0, 0], [0, 1, 0]])
    t = np.deg2rad(angle_deg)
    rot = scale * np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    c = np.array([(w - 1) / 2, (h - 1) / 2])
    fwd = np.c_[rot, np.asarray(offset, float) + c * scale - rot @ c]  # mirrored px -> canvas px
    inv = np.linalg.inv(np.r_[fwd, [[0, 0, 1]]])[:2]
    lin = inv[:, :2]  # PIL works in continuous coordinates (px + 0.5): input = lin @ output + off
    off = inv[:, 2] + 0.5 - lin @ [0.5, 0.5]
    data = (lin[0, 0], lin[0, 1], off[0], lin[1, 0], lin[1, 1], off[1])
    out = Image.fromarray(src).transform(canvas_hw[::-1], Image.Transform.AFFINE, data, Image.Resampling.BICUBIC,
                                         fillcolor=(128, 128, 128))
    full = np.r_[fwd, [[0, 0, 1]]] @ np.r_[mir, [[0, 0, 1]]]
    return np.asarray(out), full[:2]


@pytest.mark.parametrize("how", [dict(angle_deg=25.0, scale=1.4, offset=(150, 60), mirror=True),
                                 dict(angle_deg=-25.0, scale=0.9, offset=(300, 200), mirror=False)],
                         ids=["mirror-rot25-x1.4", "rot-25-x0.9"])  # dlib: landmarks drift ~15 px at 40 deg
def test_transformed_copy_pastes_back_where_its_face_is(aligner, how):
    img = astronaut()
    lm = aligner.detect(img)[0].landmarks
    ((_, tr0, mask0),) = _faces(aligner, img)
    moved, a = _similar(img, (900, 1100), **how)
    ((crop, tr, mask),) = _faces(aligner, moved)
    want = lm @ a[:, :2].T + a[:, 2]  # where the face's landmarks went
    got = aligner.detect(moved)[0].landmarks  # dlib agrees: the face is there (a mirror reorders the points)
    lm_err = np.linalg.norm(got.mean(0) - want.mean(0))
    assert lm_err < 3.0, lm_err  # observed 0.87 / 0.49 px
    # the pasted region is the original's pasted region carried along by the same transform
    pm, pm0 = _photo_mask(tr, mask), _photo_mask(tr0, mask0)
    centre, centre0 = (np.array([(np.nonzero(m)[1] * m[m > 0]).sum(), (np.nonzero(m)[0] * m[m > 0]).sum()])
                       / m.sum() for m in (pm, pm0))
    err = np.linalg.norm(centre - (a[:, :2] @ centre0 + a[:, 2]))
    print(f"\n{how}: landmark centre {lm_err:.2f} px, pasted-region centre {err:.2f} px off (qsize {tr.qsize:.0f})")
    assert err < 3.0, err  # observed 0.60 / 0.84 px (the mask follows dlib's landmarks on the moved photo)
    assert abs(pm.sum() / pm0.sum() - how["scale"] ** 2) < 0.1 * how["scale"] ** 2  # the area scales too
    lmi = np.rint(want[27:]).astype(int)  # nose, eyes, mouth where the transform put them: covered
    assert (pm[lmi[:, 1], lmi[:, 0]] > 0.9).all()
    out = paste_back(moved, crop, tr, mask)
    assert _psnr(out, moved, pm > 0) >= MIN_PSNR_DB
    np.testing.assert_array_equal(out[pm == 0], moved[pm == 0])


def _texture(h: int, w: int, seed: int = 0) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    n = np.random.default_rng(seed).normal(size=(h, w, 3))
    t = gaussian_filter(n, (6, 6, 0))
    t = (t - t.min()) / (t.max() - t.min())
    return np.rint(t * 255).astype(np.uint8)


def _disc(size: int, r: float) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size]
    d = np.hypot(xx - (size - 1) / 2, yy - (size - 1) / 2)
    return np.clip((r - d) / (0.1 * size), 0, 1).astype(np.float32)


def _square_quad(c, side: float, angle_deg: float) -> np.ndarray:
    t = np.deg2rad(angle_deg)
    x = side / 2 * np.array([np.cos(t), np.sin(t)])
    y = np.array([-x[1], x[0]])
    c = np.asarray(c, float)
    return np.stack([c - x - y, c - x + y, c + x + y, c + x - y])


@pytest.mark.parametrize("case", ["shrink", "padded"])
def test_warp_steps_branches(case):
    """The shrink (a quad >= 4x the output side) and pad (a quad leaving the photo) branches: recorded, and the
    crop still pastes back onto its texture."""
    img = _texture(700, 900)
    if case == "shrink":
        quad, size = _square_quad((450, 350), 300.0, 20.0), 48  # shrink = floor(300 / 48 / 2) = 3
    else:
        quad, size = _square_quad((80, 120), 200.0, -10.0), 128  # leaves the photo on the left and top
    crop, padded = warp_ffhq(img, quad, float(np.hypot(*(quad[3] - quad[0]))), size)
    st = warp_steps(img.shape[:2], quad, float(np.hypot(*(quad[3] - quad[0]))), size)
    tr = CropTransform(quad=quad, size=size, photo_hw=img.shape[:2], qsize=float(np.hypot(*(quad[3] - quad[0]))),
                       shrink=st.shrink, shrunk_hw=st.shrunk_hw, crop=st.crop, pad=st.pad, padded=st.padded)
    assert padded == st.padded == (case == "padded")
    assert (st.shrink == 3) == (case == "shrink")
    if case == "shrink":
        assert st.shrunk_hw == (233, 300)  # rint(700 / 3), rint(900 / 3)
        # the exact map includes the resize's pixel map, not the quad alone (differs by a fraction of a pixel)
        naive = source_to_aligned(np.array([[450.0, 350.0]]) / 3, quad / 3, size)[0]
        assert 0 < np.abs(tr.to_crop([[450.0, 350.0]])[0] - naive).max() < 0.5
    else:
        assert min(st.pad) > 0
    mask = _disc(size, 0.45 * size)
    out = paste_back(img, crop, tr, mask)
    pm = _photo_mask(tr, mask)
    np.testing.assert_array_equal(out[pm == 0], img[pm == 0])
    # observed: shrink 37.75 dB (a 48 px crop of a smooth 300 px patch), padded 46.82 dB
    print(f"\n{case}: PSNR {_psnr(out, img, pm > 0):.2f} dB")
    assert _psnr(out, img, pm > 0) >= 35.0


def test_transform_record_and_map():
    quad = _square_quad((300.0, 200.0), 180.0, 15.0)
    tr = CropTransform(quad=quad, size=128, photo_hw=(400, 500), qsize=180.0)
    np.testing.assert_allclose(tr.to_crop(quad[[0, 1, 3]]), [[-0.5, -0.5], [-0.5, 127.5], [127.5, -0.5]],
                               atol=1e-9)
    pts = np.random.default_rng(1).uniform(0, 400, (10, 2))
    np.testing.assert_allclose(tr.to_crop(pts), source_to_aligned(pts, quad, 128), atol=1e-9)
    np.testing.assert_allclose(tr.to_photo(tr.to_crop(pts)), pts, atol=1e-9)
    d = json.loads(json.dumps(tr.to_dict()))  # JSON-safe
    back = CropTransform.from_dict(d)
    np.testing.assert_array_equal(back.matrix, tr.matrix)
    assert back.to_dict() == d and d["crop"] == [0, 0, 500, 400] and d["shrink"] == 1
    with pytest.raises(HsError, match="CropTransform record"):
        CropTransform.from_dict({"size": 128})
    with pytest.raises(HsError, match="made for a 500x400"):
        paste_back(np.zeros((10, 10, 3), np.uint8), np.zeros((8, 8, 3), np.uint8), tr, np.ones((8, 8), np.float32))


def test_face_mask_shape_and_any_crop_side(aligner):
    img = astronaut()
    ((crop, tr, mask),) = _faces(aligner, img)
    assert mask.shape == (S, S) and mask.dtype == np.float32 and mask.min() == 0 and mask.max() == 1
    lm = np.rint(tr.to_crop(aligner.detect(img)[0].landmarks)).astype(int)
    assert (mask[lm[:, 1], lm[:, 0]] > 0.9).all()  # the jaw / brow hull: observed >= 0.97
    assert (mask[lm[27:, 1], lm[27:, 0]] == 1).all()  # nose, eyes, mouth: fully replaced
    assert mask[:2].max() == 0 and mask[:, -2:].max() == 0  # nothing from the crop's edge
    # a crop of another side (the generator's output size) is read as covering the same square
    small = np.asarray(Image.fromarray(crop).resize((S // 2, S // 2), Image.Resampling.LANCZOS))
    big = np.asarray(Image.fromarray(crop).resize((S * 4, S * 4), Image.Resampling.LANCZOS))
    inside = _photo_mask(tr, mask) > 0
    ps, pb = _psnr(paste_back(img, small, tr, mask), img, inside), _psnr(paste_back(img, big, tr, mask), img, inside)
    print(f"\ncrop side {S // 2}: {ps:.2f} dB, {S * 4}: {pb:.2f} dB")
    assert ps >= MIN_PSNR_DB - 3 and pb >= MIN_PSNR_DB
