"""Image I/O and the demo entry point."""

import numpy as np
import pytest
import torch
from PIL import Image

from hyperstyle_trt.models.demo import main as demo_main
from hyperstyle_trt.core.errors import HsError
from hyperstyle_trt.models.images import read_image, to_uint8, write_png


def test_png_round_trip(tmp_path):
    img = torch.rand(3, 64, 64) * 2 - 1
    p = write_png(img, tmp_path / "a.png")
    back = read_image(p, size=64)
    assert back.shape == (3, 64, 64)
    assert (back - img).abs().max() <= 1 / 255 + 1e-6
    assert not list(tmp_path.glob(".*tmp"))


def test_read_resizes_and_normalizes(tmp_path):
    a = np.zeros((100, 80, 3), np.uint8)
    a[..., 0] = 255
    Image.fromarray(a).save(tmp_path / "r.jpg")
    x = read_image(tmp_path / "r.jpg")
    assert x.shape == (3, 256, 256)
    assert x[0].min() > 0.95 and x[1].max() < -0.95


def test_bad_image_files(tmp_path):
    (tmp_path / "x.png").write_text("not an image")
    with pytest.raises(HsError, match="cannot read .*x.png as an image"):
        read_image(tmp_path / "x.png")
    with pytest.raises(HsError, match="not found"):
        read_image(tmp_path / "missing.png")
    with pytest.raises(HsError, match=r"\[3,H,W\]"):
        to_uint8(torch.zeros(1, 3, 4, 4))


def test_demo_tiny(tmp_path, capsys):
    assert demo_main(["--config", "tiny", "--iters", "2", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr()
    assert "inversion: batch 1, T=2" in out.out and "UNTRAINED" in out.err
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["00_input.png", "00_iter0.png", "00_iter1.png", "00_iter2.png", "00_output.png"]
    assert Image.open(tmp_path / "00_output.png").size == (128, 128)


def test_demo_bad_config(tmp_path, capsys):
    assert demo_main(["--config", "nope", "--out", str(tmp_path)]) == 2
    assert "unknown config 'nope'" in capsys.readouterr().err


def test_demo_inverts_given_images(tmp_path, capsys):
    faces = [write_png(torch.rand(3, 80, 80) * 2 - 1, tmp_path / f"face{i}.png") for i in range(2)]
    out = tmp_path / "out"
    assert demo_main(["--config", "tiny", "--iters", "1", "--out", str(out), "--images", *map(str, faces)]) == 0
    assert "inversion: batch 2, T=1" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir() if p.name.startswith("01_")) == [
        "01_input.png", "01_iter0.png", "01_iter1.png", "01_output.png"]
    assert Image.open(out / "01_input.png").size == (64, 64)  # resized to the tiny hypernet input
