"""hs-invert batch jobs lose nothing (issue #23 item 4): a run over a folder killed with SIGTERM after its first
photo leaves only finished photo folders and a results.json that says what finished; --resume (same options, else
one error line) does the rest, and the outputs equal an uninterrupted run's; an output directory that becomes
unwritable mid-run stops the run with one line and no half-written file. Tiny config, --no-align, 64 px crops of
scikit-image's astronaut, --batch 1."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import hyperstyle_trt
from hyperstyle_trt.cli.invert import main

N = 5
ARGS = ["--config", "tiny", "--device", "cpu", "--executor", "torch", "--no-align", "--align-size", "64", "--iters",
        "1", "--batch", "1"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    import skimage.data

    a = skimage.data.astronaut()
    d = tmp_path_factory.mktemp("resume") / "photos"
    d.mkdir()
    for k in range(N):
        Image.fromarray(a[20 * k:20 * k + 256, 30 * k:30 * k + 256]).save(d / f"p{k}.png")
    return d


def _tree(out: Path) -> dict[str, bytes]:
    """Every file under out except results.json, relative path -> decoded pixels / array bytes."""
    got = {}
    for p in sorted(out.rglob("*")):
        if p.is_file() and p.name != "results.json":
            rel = str(p.relative_to(out))
            if p.suffix == ".png":
                with Image.open(p) as im:
                    got[rel] = np.asarray(im).tobytes()
            elif p.suffix == ".npz":
                z = np.load(p)
                got[rel] = b"".join(z[k].tobytes() for k in sorted(z.files))
            else:
                got[rel] = p.read_bytes()
    return got


def _check_complete_or_absent(out: Path, res: dict) -> None:
    """Every folder in OUT is a finished face's, holding exactly the files its record lists; nothing staged or
    temporary is left."""
    recs = {r["name"]: r for r in res["images"]}
    assert not list(out.rglob("*.tmp")) and not [p for p in (out / ".hs-invert-partial").rglob("*") if p.is_file()]
    for d in out.iterdir():
        if d.is_dir() and not d.name.startswith("."):
            assert d.name in recs and recs[d.name]["input"] in res["done"], d
            assert sorted(f"{d.name}/{p.name}" for p in d.iterdir()) == sorted(recs[d.name]["outputs"])
    assert sorted(res["files"]) == sorted(f for r in res["images"] for f in r.get("outputs", ()))


def _interrupt(photos: Path, out: Path, sig: int, *extra: str) -> tuple[int, str]:
    """hs-invert in a subprocess, sent `sig` as soon as a photo folder appears in OUT that was not there before."""
    before = {p.name for p in out.iterdir()} if out.is_dir() else set()
    env = dict(os.environ, PYTHONPATH=str(Path(hyperstyle_trt.__file__).parent.parent), OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-m", "hyperstyle_trt.cli.invert", str(photos), "--out", str(out),
                             *ARGS, *extra], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    t = time.monotonic()
    while proc.poll() is None and time.monotonic() - t < 120:
        if out.is_dir() and any(p.is_dir() and not p.name.startswith(".") and p.name not in before
                                for p in out.iterdir()):
            break
        time.sleep(0.02)
    proc.send_signal(sig)  # a photo is finished: the run is in the middle
    err = proc.communicate(timeout=60)[1]
    return proc.returncode, err


def test_sigterm_then_resume_equals_one_run(photos, tmp_path, capsys):
    """SIGTERM after the first photo, then --resume interrupted by SIGINT (Ctrl-C) after its first photo, then
    --resume to the end: the outputs are an uninterrupted run's."""
    out = tmp_path / "out"
    rc, err = _interrupt(photos, out, signal.SIGTERM)
    assert rc == 143, err
    assert err.strip().splitlines()[-1] == "error: interrupted (SIGTERM)"
    res = json.loads((out / "results.json").read_text())
    names = [str(photos / f"p{k}.png") for k in range(N)]
    assert res["state"] == "interrupted" and 1 <= len(res["done"]) < N - 1, res["done"]
    assert res["done"] == names[:len(res["done"])] and res["remaining"] == names[len(res["done"]):]
    assert all(r["status"] == "ok" for r in res["images"]) and len(res["images"]) == len(res["done"])
    _check_complete_or_absent(out, res)
    first = _tree(out)

    rc, err = _interrupt(photos, out, signal.SIGINT, "--resume")
    assert rc == 130 and err.strip().splitlines()[-1] == "error: interrupted", err
    res1 = json.loads((out / "results.json").read_text())
    assert res1["state"] == "interrupted" and len(res["done"]) < len(res1["done"]) < N, res1["done"]
    assert res1["done"] == names[:len(res1["done"])] and res1["resumed"] == len(res["done"])
    _check_complete_or_absent(out, res1)
    assert all(_tree(out)[k] == v for k, v in first.items())  # the finished photos were kept, not redone
    first, res = _tree(out), res1

    # other options: refused, one line, before any work; nothing changed
    assert main([str(photos), "--out", str(out), *ARGS, "--iters", "2", "--resume"]) == 2
    line = capsys.readouterr().err.strip()
    assert "\n" not in line and line.startswith("error: --resume:") and "iters: 1 there, 2 now" in line
    assert _tree(out) == first

    assert main([str(photos), "--out", str(out), *ARGS, "--resume"]) == 0
    assert f"({len(res['done'])} photo(s) from the run resumed)" in capsys.readouterr().err
    res2 = json.loads((out / "results.json").read_text())
    assert res2["state"] == "complete" and res2["done"] == names and res2["remaining"] == []
    assert res2["resumed"] == len(res["done"]) and res2["previous_run_removed"] == 0
    _check_complete_or_absent(out, res2)
    resumed = _tree(out)
    assert all(resumed[k] == v for k, v in first.items())  # the finished photos were kept, not redone

    ref = tmp_path / "ref"
    assert main([str(photos), "--out", str(ref), *ARGS]) == 0
    want = _tree(ref)
    assert sorted(resumed) == sorted(want) and len(want) == N * 4  # aligned, inversion, codes, grid per photo
    assert [k for k in want if resumed[k] != want[k]] == []
    strip = [{k: v for k, v in r.items() if k != "timings"} for r in json.loads((ref / "results.json").read_text())
             ["images"]]
    assert [{k: v for k, v in r.items() if k != "timings"} for r in res2["images"]] == strip


@pytest.mark.parametrize("how", ["file-in-the-way", "read-only"])
def test_unwritable_output_stops_with_one_line(photos, tmp_path, capsys, monkeypatch, how):
    """After the first photo is finished the output breaks: read-only (chmod 555; root ignores permission bits, so
    that case is skipped as root) or a file where the next photo's folder must go (works as root too)."""
    if how == "read-only" and os.geteuid() == 0:
        pytest.skip("root ignores permission bits: chmod cannot make a directory unwritable (file-in-the-way runs)")
    from hyperstyle_trt.runtime.invert.workflow import InvertWorkflow

    out = tmp_path / "out"
    photo = InvertWorkflow.photo

    def breaking(self, path):
        if path.name == "p1.png":  # p0 is finished and in OUT
            if how == "read-only":
                out.chmod(0o555)
            else:
                (out / "p1").write_text("in the way")
        return photo(self, path)

    monkeypatch.setattr(InvertWorkflow, "photo", breaking)
    sub = photos.parent / f"three_{how}"
    sub.mkdir()
    for k in range(3):
        (sub / f"p{k}.png").write_bytes((photos / f"p{k}.png").read_bytes())
    try:
        rc = main([str(sub), "--out", str(out), *ARGS])
    finally:
        out.chmod(0o755)
    errs = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("error")]
    assert rc == 2 and len(errs) == 1, errs
    assert errs[0].startswith(f"error: cannot write {out / 'p1'}") and "the run stopped" in errs[0], errs[0]
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == ["p0", "p1", "results.json"] \
        if how == "file-in-the-way" else ["p0", "results.json"]
    res = json.loads((out / "results.json").read_text())
    if how == "file-in-the-way":
        assert res["state"] == "stopped" and res["done"] == [str(sub / "p0.png")]
        assert "p0.png" in errs[0] or "1 photo(s) finished" in errs[0]
        assert (out / "p1").read_text() == "in the way"
    else:  # results.json could not be rewritten: the one written after p0 stands
        assert res["state"] == "running" and res["done"] == [str(sub / "p0.png")]
        assert "results.json could not be written either" in errs[0]
    _check_complete_or_absent(out, {**res, "images": res["images"]})
