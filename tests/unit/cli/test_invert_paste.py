"""hs-invert --paste-back on the tiny config: a photo with two faces (the astronaut and a mirrored grace_hopper side
by side) and --all-faces; pasted.png / pasted_<edit>_<strength>.png at the photo's size, both faces in one image,
every pixel outside the faces' masks the photo's own; results.json records each face's transform."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hyperstyle_trt.cli.invert import main
from tests.unit._helpers.photos import two_faces

ALIGN = 128


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _png(p: Path) -> np.ndarray:
    with Image.open(p) as im:
        return np.asarray(im.convert("RGB"))



@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("hs_paste")
    photo = two_faces()
    Image.fromarray(photo).save(root / "pair.png")
    out = root / "out"
    rc = main([str(root / "pair.png"), "--out", str(out), "--config", "tiny", "--device", "cpu", "--executor",
               "torch", "--align-size", str(ALIGN), "--iters", "1", "--all-faces", "--paste-back",
               "--edit", "seed:0:2"])
    return rc, photo, out, json.loads((out / "results.json").read_text())


def test_pasted_files_hold_both_faces(run):
    from hyperstyle_trt.runtime.align import Aligner
    from hyperstyle_trt.runtime.paste import CropTransform, face_mask, paste_faces

    rc, photo, out, res = run
    assert rc == 0
    recs = {r["name"]: r for r in res["images"]}
    assert set(recs) == {"pair", "pair_face2"} and res["config"]["paste_back"] is True
    want = ["pair/pasted.png", "pair/pasted_seed0_+2.png"]
    assert all(f in recs["pair"]["outputs"] for f in want)
    assert recs["pair_face2"]["pasted"] == {"files": want, "faces": ["pair", "pair_face2"]}
    assert not list((out / "pair_face2").glob("pasted*"))  # one image per photo, in its first face's folder
    # an independent recomputation: the transforms from results.json, masks from dlib's landmarks on the photo
    faces = Aligner(output_size=ALIGN).detect(photo)
    trs = [CropTransform.from_dict(recs[n]["transform"]) for n in ("pair", "pair_face2")]
    masks = [face_mask(tr.to_crop(f.landmarks), ALIGN) for tr, f in zip(trs, faces)]
    for fn, crop_name in (("pasted.png", "inversion.png"), ("pasted_seed0_+2.png", "edit_seed0_+2.png")):
        got = _png(out / "pair" / fn)
        assert got.shape == photo.shape
        ref = paste_faces(photo, [(_png(out / n / crop_name), tr, m)
                                  for n, tr, m in zip(("pair", "pair_face2"), trs, masks)])
        np.testing.assert_array_equal(got, ref)
        changed = (got != photo).any(-1)
        assert changed[:, :512].sum() > 2000 and changed[:, 552:].sum() > 2000  # both faces replaced
        assert not changed[:, 512:552].any() and not changed[550:, :300].any()  # not the rest
    # edits differ from the inversion inside the faces only
    a, b = _png(out / "pair" / "pasted.png"), _png(out / "pair" / "pasted_seed0_+2.png")
    assert (a != b).any() and np.array_equal(a[:, 512:552], b[:, 512:552])


def test_grid_shows_the_pasted_tile(run):
    _, _, out, _ = run
    # input | aligned | inversion | pasted | edit, 256 px tiles and a caption strip
    for name in ("pair", "pair_face2"):
        assert _png(out / name / "grid.png").shape == (276, 5 * 256, 3)


def test_transform_recorded_without_paste_back(tmp_path):
    import skimage.data

    Image.fromarray(skimage.data.astronaut()).save(tmp_path / "a.png")
    assert main([str(tmp_path / "a.png"), "--out", str(tmp_path / "o"), "--align-only", "--align-size", "64"]) == 0
    rec = json.loads((tmp_path / "o" / "results.json").read_text())["images"][0]
    assert rec["transform"]["size"] == 64 and rec["transform"]["photo_hw"] == [512, 512]
    assert not list((tmp_path / "o" / "a").glob("pasted*"))


@pytest.mark.parametrize("flag", ["--no-align", "--align-only"])
def test_paste_back_needs_an_aligned_inversion(tmp_path, capsys, flag):
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(tmp_path / "x.png")
    assert main([str(tmp_path / "x.png"), "--out", str(tmp_path / "o"), "--paste-back", flag]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --paste-back needs the alignment")
    assert not (tmp_path / "o").exists()
