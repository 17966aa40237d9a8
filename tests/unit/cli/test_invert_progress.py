"""hs-invert tells where the time goes and what each run owns (issue #21 items 7, 8): one line per inversion batch
with images/s, a failed photo reported when it fails (before the batches after it), the several-faces notice once
with the flag's name, and a re-run into the same --out leaves no folder its results.json does not list. Tiny config,
real photos from wheels (skimage astronaut: two detections, matplotlib grace_hopper)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from PIL import Image

from hyperstyle_trt.cli.invert import main

ALIGN = 64
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _on_disk(out: Path) -> set[str]:
    return {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file() and p.name != "results.json"}


@pytest.fixture(scope="module")
def first(tmp_path_factory):
    """Photos, in name order: a_junk.png (unreadable), astronaut.png and astronaut_copy.png (two faces each),
    grace_hopper.jpg; --batch 1, so three inversion batches."""
    import matplotlib.cbook
    import skimage.data

    root = tmp_path_factory.mktemp("progress")
    photos = root / "photos"
    photos.mkdir()
    (photos / "a_junk.png").write_bytes(b"not a PNG")
    Image.fromarray(skimage.data.astronaut()).save(photos / "astronaut.png")
    Image.fromarray(skimage.data.astronaut()).save(photos / "astronaut_copy.png")
    (photos / "grace_hopper.jpg").write_bytes(
        Path(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)).read_bytes())
    out = root / "out"
    return root, photos, out


def test_progress_per_batch_failures_when_they_happen_and_faces_notice(first, capsys):
    _, photos, out = first
    rc = main([str(photos), "--out", str(out), "--config", "tiny", "--device", "cpu", "--align-size", str(ALIGN),
               "--iters", "1", "--batch", "1", "--edit", "seed:0:-3,3"])
    err = capsys.readouterr().err
    assert rc == 1  # a_junk.png failed
    lines = err.splitlines()
    batches = [ln for ln in lines if ln.startswith("batch ")]
    assert len(batches) == 3, err
    for k, (ln, name) in enumerate(zip(batches, ["astronaut", "astronaut_copy", "grace_hopper"]), 1):
        assert re.fullmatch(rf"batch {k}: 1 face\(s\) \({name}\) in \d+\.\d s, \d+\.\d\d images/s", ln), ln
    failed = [i for i, ln in enumerate(lines) if ln.startswith("failed ") and "a_junk.png" in ln]
    assert len(failed) == 1 and failed[0] < lines.index(batches[0]), err  # told when it failed, not at the end
    notices = [ln for ln in lines if "faces found" in ln]
    assert len(notices) == 1 and "--all-faces" in notices[0] and "astronaut.png: 2 faces found" in notices[0], err
    assert "1 failed (a_junk.png)" in lines[-1] and "3 ok" in lines[-1], lines[-1]
    res = json.loads((out / "results.json").read_text())
    by = {r["name"]: r for r in res["images"]}
    assert by["astronaut"]["faces_found"] == 2 and by["grace_hopper"]["faces_found"] == 1
    assert set(res["files"]) == _on_disk(out)  # the manifest is every file written


def test_rerun_into_the_same_out_leaves_no_unlisted_folder(first, capsys):
    """A second run with one photo (and --align-only) into the first run's --out: the first run's files go, a
    file a person put there stays, every photo folder left is in the new results.json."""
    root, photos, out = first
    assert (out / "astronaut_copy" / "inversion.png").is_file()  # from the first run
    (out / "my_notes.txt").write_text("mine")
    (out / "astronaut").joinpath("mine.txt").write_text("mine too")
    before = len(json.loads((out / "results.json").read_text())["files"])
    assert main([str(photos / "grace_hopper.jpg"), "--out", str(out), "--align-only", "--align-size",
                 str(ALIGN)]) == 0
    err = capsys.readouterr().err
    res = json.loads((out / "results.json").read_text())
    assert res["files"] == ["grace_hopper/aligned.png"] and res["previous_run_removed"] == before
    assert f"removed {before} file(s) of the previous run" in err
    folders = {p.name for p in out.iterdir() if p.is_dir()}
    listed = {r["name"] for r in res["images"]}
    assert folders - listed == {"astronaut"}  # kept only for the file a person put there
    assert [p.name for p in (out / "astronaut").iterdir()] == ["mine.txt"]
    assert (out / "my_notes.txt").read_text() == "mine"
    assert _on_disk(out) == {"grace_hopper/aligned.png", "my_notes.txt", "astronaut/mine.txt"}
    assert not (out / "interpolation").exists() and not (out / "astronaut_copy").exists()


def test_interrupted_run_lists_what_it_wrote(tmp_path, monkeypatch):
    """Ctrl-C between alignment and inversion: no photo is finished, so no folder is left (their aligned crops were
    staged, not in OUT), and results.json says so (state interrupted, both photos remaining)."""
    import skimage.data

    from hyperstyle_trt.core.source import ModelSource
    from hyperstyle_trt.runtime.invert import InvertJob, InvertWorkflow

    Image.fromarray(skimage.data.astronaut()).save(tmp_path / "a.png")
    Image.fromarray(skimage.data.astronaut()).save(tmp_path / "b.png")
    wf = InvertWorkflow(InvertJob(photos=(str(tmp_path / "a.png"), str(tmp_path / "b.png")), out=str(tmp_path / "o"),
                                  source=ModelSource(config="tiny", device="cpu"), align_size=ALIGN, batch=2))

    def interrupt(items):
        raise KeyboardInterrupt

    monkeypatch.setattr(wf, "invert", interrupt)
    with pytest.raises(KeyboardInterrupt):
        wf.run()
    res = json.loads((tmp_path / "o" / "results.json").read_text())
    assert res["files"] == [] == sorted(_on_disk(tmp_path / "o"))
    assert res["state"] == "interrupted" and res["done"] == [] and len(res["remaining"]) == 2
    assert [p.name for p in (tmp_path / "o").iterdir()] == ["results.json"]
