"""One line, before any work, for bad files and bad values at every edge of hs-invert, hs-export and the C++
example (issue #21 item 4): an --edit file that is not a tensor, a --checkpoint that is text / a Git LFS pointer /
empty / a truncated zip, an unknown --compute-capability, an --align-size below the floor, --interpolate with one
photo, invert_images --help."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
import torch
from PIL import Image

from hyperstyle_trt.cli.invert import main as invert_main

REPO = Path(__file__).resolve().parents[3]
LFS_POINTER = ("version https://git-lfs.github.com/spec/v1\n"
               "oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\nsize 9344\n")


def _err_line(capsys) -> str:
    err = [e for e in capsys.readouterr().err.strip().splitlines() if e.strip()]
    assert len(err) == 1 and err[0].startswith("error: ") and "Traceback" not in err[0], err
    return err[0]


@pytest.fixture()
def photo(tmp_path) -> Path:
    import matplotlib.cbook

    p = tmp_path / "grace_hopper.jpg"
    p.write_bytes(Path(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)).read_bytes())
    return p


@pytest.fixture()
def no_model(monkeypatch):
    """Records any attempt to load a model (the workflow's load, the Inverter, the checkpoint reader)."""
    calls = []
    from hyperstyle_trt.models import checkpoint
    from hyperstyle_trt.runtime import Inverter
    from hyperstyle_trt.runtime.invert.workflow import InvertWorkflow

    def rec(name):
        def f(*a, **k):
            calls.append(name)
            raise AssertionError(f"{name} called")
        return f

    monkeypatch.setattr(InvertWorkflow, "load", rec("InvertWorkflow.load"))
    monkeypatch.setattr(Inverter, "from_source", classmethod(lambda cls, *a, **k: rec("Inverter.from_source")()))
    monkeypatch.setattr(checkpoint, "build_model", rec("build_model"))
    return calls


def test_edit_file_that_is_an_lfs_pointer_fails_fast_without_the_model(tmp_path, photo, capsys, no_model):
    age = tmp_path / "age.pt"
    age.write_text(LFS_POINTER)
    out = tmp_path / "out"
    t = time.perf_counter()
    rc = invert_main([str(photo), "--out", str(out), "--edit", f"{age}:-3,3"])
    seconds = time.perf_counter() - t
    line = _err_line(capsys)
    assert rc == 2 and seconds < 5, (rc, seconds)
    assert f"--edit '{age}:-3,3'" in line and "Git LFS pointer" in line and "git lfs pull" in line, line
    assert no_model == [] and not out.exists()


@pytest.mark.parametrize("content,parts", [
    ("text", ["is not a PyTorch checkpoint: it is a text file"]),
    ("lfs", ["is not a PyTorch checkpoint: it is a Git LFS pointer", "git lfs pull"]),
    ("empty", ["is not a PyTorch checkpoint: it is an empty file"]),
    ("truncated", ["is truncated or not a PyTorch checkpoint: a zip archive cut short"]),
])
def test_checkpoint_that_is_not_one(tmp_path, photo, capsys, content, parts, no_model):
    """--checkpoint X: each kind of wrong file its own line; never 'needs arbitrary code' (the old message for
    notes.txt), never a cut word."""
    ck = tmp_path / ("notes.txt" if content == "text" else "hyperstyle_ffhq.pt")
    if content == "text":
        ck.write_text("the checkpoint is on Google Drive, see README\n")
    elif content == "lfs":
        ck.write_text(LFS_POINTER)
    elif content == "empty":
        ck.write_bytes(b"")
    else:
        torch.save({"state_dict": {"w": torch.zeros(4096)}}, ck)
        ck.write_bytes(ck.read_bytes()[:3000])
    out = tmp_path / "out"
    t = time.perf_counter()
    assert invert_main([str(photo), "--out", str(out), "--checkpoint", str(ck), "--w-encoder", str(ck)]) == 2
    assert time.perf_counter() - t < 5  # checked with the flags, before the landmark model and the inverter load
    line = _err_line(capsys)
    assert str(ck) in line and all(p in line for p in parts) and "arbitrary code" not in line, line
    assert not out.exists() and no_model == []


def test_compute_capability_unknown_to_tensorrt_rtx_refused_before_any_export(tmp_path, capsys, monkeypatch):
    from hyperstyle_trt.cli.export import main as export_main
    from hyperstyle_trt.engines import pipeline
    from hyperstyle_trt.export.config import rtx_compute_capabilities

    calls = []
    monkeypatch.setattr(pipeline, "run_export", lambda *a, **k: calls.append(a))
    out = tmp_path / "exp"
    assert export_main(["--config", "tiny", "--compute-capability", "SM999", "--out", str(out)]) == 2
    line = _err_line(capsys)
    assert "--compute-capability SM999" in line and "SM86" in line, line
    assert calls == [] and not out.exists()
    assert {"SM75", "SM86", "SM89"} <= set(rtx_compute_capabilities())


def test_compute_capability_list_without_tensorrt_rtx(monkeypatch):
    """tensorrt_rtx not importable: the documented static list decides."""
    import sys

    from hyperstyle_trt.core.errors import HsError
    from hyperstyle_trt.export.config import RTX_COMPUTE_CAPABILITIES, ExportConfig, rtx_compute_capabilities

    monkeypatch.setitem(sys.modules, "tensorrt_rtx", None)  # import raises ImportError
    assert rtx_compute_capabilities() == RTX_COMPUTE_CAPABILITIES
    assert ExportConfig(compute_capabilities=("SM89",)).compute_capabilities == ("SM89",)
    with pytest.raises(HsError, match="SM999: TensorRT-RTX builds for SM75"):
        ExportConfig(compute_capabilities=("SM999",))


@pytest.mark.parametrize("size", ["10", "63"])
def test_align_size_below_the_floor(tmp_path, photo, capsys, size):
    out = tmp_path / "out"
    assert invert_main([str(photo), "--out", str(out), "--align-only", "--align-size", size]) == 2
    assert "--align-size must be >= 64" in _err_line(capsys)
    assert not out.exists()


def test_interpolate_with_one_photo(tmp_path, photo, capsys, no_model):
    out = tmp_path / "out"
    assert invert_main([str(photo), "--out", str(out), "--config", "tiny", "--interpolate"]) == 2
    line = _err_line(capsys)
    assert "--interpolate blends consecutive photos: give at least two (got 1" in line and "--all-faces" in line
    assert no_model == [] and not out.exists()
    Image.new("RGB", (8, 8)).save(tmp_path / "b.png")  # two photos, or one with --all-faces: accepted by the check
    from hyperstyle_trt.core.source import ModelSource
    from hyperstyle_trt.runtime.invert import InvertJob, InvertWorkflow

    for photos, all_faces in (((str(photo), str(tmp_path / "b.png")), False), ((str(photo),), True)):
        InvertWorkflow(InvertJob(photos=photos, out=str(out), source=ModelSource(config="tiny"), interpolate=True,
                                 all_faces=all_faces))


def test_invert_images_help(tmp_path):
    """cpp/build/invert_images --help: the usage on stdout, exit 0 (it used to be 'unknown option --help', exit 2).
    Built by `make cpp`; the CTest example_invert_images checks the same."""
    exe = REPO / "cpp" / "build" / "invert_images"
    if not exe.is_file():
        pytest.skip("cpp/build/invert_images not built (make cpp)")
    for flag in ("--help", "-h"):
        p = subprocess.run([str(exe), flag], capture_output=True, text=True, timeout=60)
        assert p.returncode == 0 and p.stdout.startswith("usage: invert_images") and p.stderr == "", p
        assert all(f in p.stdout for f in ("--out DIR", "--config", "--export", "--format")), p.stdout
    p = subprocess.run([str(exe), "--bogus"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and p.stderr.startswith("error: unknown option --bogus\nusage: invert_images")
