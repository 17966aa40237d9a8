"""`python -m models.demo` bad input: one `error: ...` line, exit 2 (130 on Ctrl-C), and no work done first (the
model builder is replaced by one that fails the test if it is reached); write_png errors are HsError."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

import hyperstyle_trt.models.demo as demo
from hyperstyle_trt.core.errors import HsError
from hyperstyle_trt.models.images import write_png

ROOT = Path(__file__).resolve().parents[3]


def _err_line(capsys) -> str:
    err = [e for e in capsys.readouterr().err.strip().splitlines() if e]
    assert len(err) == 1 and err[0].startswith("error: ") and "Traceback" not in err[0], err
    return err[0]


@pytest.fixture
def no_build(monkeypatch):
    """build_model that fails the test when reached: the error must come before any work."""
    def boom(*a, **k):
        raise AssertionError("the model was built before the argument error")
    monkeypatch.setattr(demo, "build_model", boom)


def test_device_gpu_is_a_one_line_error_in_a_child_process(tmp_path):
    r = subprocess.run([sys.executable, "-m", "hyperstyle_trt.models.demo", "--device", "gpu", "--config", "tiny",
                        "--out",
                        str(tmp_path / "o")], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip() == "error: --device 'gpu' not understood; expected auto, cpu, cuda or cuda:N"
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("args,match", [
    (["--device", "gpu"], "--device 'gpu' not understood"),
    (["--device", "cuda:x"], "--device 'cuda:x' not understood"),
    (["--device", "meta"], "--device 'meta' not understood"),
    (["--iters", "0"], "--iters must be >= 1, got 0"),
    (["--iters", "-3"], "--iters must be >= 1, got -3"),
    (["--images"], "--images needs at least one image path"),
    (["--images", "/no/such/face.png"], "input image not found: /no/such/face.png"),
    (["--checkpoint", "/x.pt", "--w-encoder", "/y.pt"], "--config and --checkpoint are exclusive"),
    (["--config", "nope"], "unknown config 'nope'"),
])
def test_bad_arguments_fail_before_work(args, match, tmp_path, capsys, no_build):
    argv = (["--config", "tiny"] if "--config" not in args else []) + args + ["--out", str(tmp_path / "o")]
    assert demo.main(argv) == 2
    assert match in _err_line(capsys)
    assert not (tmp_path / "o").exists()  # nothing written either


def test_cuda_without_cuda(tmp_path, capsys, no_build, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert demo.main(["--config", "tiny", "--device", "cuda", "--out", str(tmp_path / "o")]) == 2
    assert "CUDA is not available" in _err_line(capsys)


def test_out_naming_a_file_fails_before_the_inversion(tmp_path, capsys, no_build):
    f = tmp_path / "taken"
    f.write_text("keep me")
    assert demo.main(["--config", "tiny", "--out", str(f)]) == 2
    assert f"--out {f} exists and is not a directory" in _err_line(capsys)
    assert f.read_text() == "keep me"
    assert demo.main(["--config", "tiny", "--out", str(f / "sub")]) == 2  # parent is a file
    assert "--out" in _err_line(capsys)


def test_unreadable_image_fails_before_the_model_is_built(tmp_path, capsys, no_build):
    bad = tmp_path / "x.png"
    bad.write_text("not an image")
    assert demo.main(["--config", "tiny", "--images", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "cannot read" in _err_line(capsys)


def test_ctrl_c_is_one_line_and_exit_130(tmp_path, capsys, monkeypatch):
    def interrupted(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(demo, "build_model", interrupted)
    assert demo.main(["--config", "tiny", "--out", str(tmp_path / "o")]) == 130
    assert _err_line(capsys) == "error: interrupted"


def test_write_png_errors_are_hs_errors(tmp_path, monkeypatch):
    img = torch.zeros(3, 8, 8)
    (tmp_path / "file").write_text("x")
    with pytest.raises(HsError, match="cannot write .*file/a.png"):  # parent is a file
        write_png(img, tmp_path / "file" / "a.png")
    (tmp_path / "d.png").mkdir()
    with pytest.raises(HsError, match="d.png: it is a directory"):
        write_png(img, tmp_path / "d.png")

    def full(self, fp, *a, **k):  # PIL's encoder hitting a full disk
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(Image.Image, "save", full)
    with pytest.raises(HsError, match="cannot write .*b.png: No space left on device"):
        write_png(img, tmp_path / "b.png")
    assert not (tmp_path / "b.png").exists() and not list(tmp_path.glob(".*tmp"))  # nothing half-written left
