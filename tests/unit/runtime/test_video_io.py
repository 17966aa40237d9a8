"""runtime.video.io: PyAV round trips (frame count, rate as a Fraction, size) for every writer, a frames directory,
odd sizes padded to even for yuv420p, atomic writers, H.264's loss on smooth frames, bad files refused in one
line."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from PIL import Image

from hyperstyle_trt.core.errors import HsError
from hyperstyle_trt.runtime.video.io import VideoWriter, probe, read_frames, write_clip

av = pytest.importorskip("av", reason="PyAV (the video extra) is not installed")


def _frames(n: int, w: int, h: int) -> list[np.ndarray]:
    """Smooth moving gradients (what a codec keeps well), different per frame."""
    y, x = np.mgrid[:h, :w].astype(np.float32)
    return [np.clip(np.stack([x * 255 / w + 4 * k, y * 255 / h, 128 + 60 * np.sin((x + y + 3 * k) / 17)], -1), 0,
                    255).astype(np.uint8) for k in range(n)]


@pytest.mark.parametrize("suffix", [".mp4", ".mov", ".webm", ".gif"])
def test_round_trip_keeps_count_rate_and_size(tmp_path, suffix):
    fps = Fraction(30000, 1001)
    src = _frames(9, 96, 64)
    p = write_clip(tmp_path / f"c{suffix}", src, fps)
    info = probe(p)
    got = list(read_frames(p))
    assert (info.frames, info.width, info.height) == (9, 96, 64)
    assert len(got) == 9 and all(f.shape == (64, 96, 3) and f.dtype == np.uint8 for f in got)
    if suffix == ".gif":  # GIF frame delays are in 1/100 s: 1001/30000 s is stored as 3/100 s
        assert info.fps == Fraction(100, 3)
    else:
        assert info.fps == fps and isinstance(info.fps, Fraction)
    assert [p.name for p in tmp_path.iterdir()] == [f"c{suffix}"]  # no temporary file left


def test_h264_loss_on_smooth_frames(tmp_path):
    """crf 18 yuv420p: the observed error on these frames is max 15, mean 1.85 grey levels (chroma subsampling)."""
    src = _frames(5, 128, 96)
    got = list(read_frames(write_clip(tmp_path / "s.mp4", src, 24)))
    err = np.stack([np.abs(a.astype(np.int16) - b) for a, b in zip(src, got)])
    assert err.mean() < 2.5 and err.max() <= 20
    assert not np.array_equal(got[0], got[1])


def test_odd_size_is_padded_to_even(tmp_path):
    src = _frames(3, 95, 63)
    with VideoWriter(tmp_path / "odd.mp4", 25, (95, 63)) as w:
        for f in src:
            w.write(f)
    assert w.padded
    info = probe(tmp_path / "odd.mp4")
    assert (info.width, info.height, info.frames) == (96, 64, 3)
    got = next(iter(read_frames(tmp_path / "odd.mp4")))
    assert np.abs(got[:63, :95].astype(np.int16) - src[0]).mean() < 2.0  # the picture is where it was
    assert np.abs(got[:63, 95].astype(np.int16) - src[0][:, 94]).mean() < 3.0  # last column repeated


def test_frames_directory(tmp_path):
    src = _frames(4, 48, 32)
    for k, f in enumerate(src):
        Image.fromarray(f).save(tmp_path / f"f{k:03d}.png")
    (tmp_path / "notes.txt").write_text("ignored")
    info = probe(tmp_path, fps=12.5)
    assert (info.frames, info.fps, info.width, info.height, info.codec) == (4, Fraction(25, 2), 48, 32, "frames")
    assert probe(tmp_path).fps == 25
    assert all(np.array_equal(a, b) for a, b in zip(src, read_frames(tmp_path)))
    Image.fromarray(src[0][:16]).save(tmp_path / "f999.png")
    with pytest.raises(HsError, match="f999.png is 48x16, the first frame 48x32"):
        list(read_frames(tmp_path))


def test_writer_is_atomic(tmp_path):
    target = tmp_path / "x.mp4"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with VideoWriter(target, 25, (32, 32)) as w:
            w.write(_frames(1, 32, 32)[0])
            raise RuntimeError("interrupted")
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["x.mp4"]
    with pytest.raises(HsError, match=r"expected a uint8 frame \[32,32,3\]"):
        with VideoWriter(tmp_path / "y.mp4", 25, (32, 32)) as w:
            w.write(np.zeros((32, 30, 3), np.uint8))
    assert not (tmp_path / "y.mp4").exists()


def test_bad_files_are_one_line(tmp_path):
    (tmp_path / "junk.mp4").write_bytes(b"not a video at all" * 50)
    Image.fromarray(_frames(1, 32, 32)[0]).save(tmp_path / "still.png")
    for p, msg in ((tmp_path / "junk.mp4", "cannot read video"), (tmp_path / "none.mp4", "no such video")):
        with pytest.raises(HsError, match=msg) as e:
            probe(p)
        assert "\n" not in str(e.value)
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(HsError, match="no image files"):
        probe(tmp_path / "empty_dir")
