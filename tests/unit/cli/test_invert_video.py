"""hs-invert on videos, tiny config (embedded default weights, onnxruntime CPU default): a synthetic 24-frame
256x256 clip of grace_hopper (runtime.video.synth.make_clip) with the face covered in one frame. The output videos
keep the input's frame count, rate and size; the covered frame is passed through unchanged (raw pre-encode frames
through VideoWorkflow.frame_hook, and the decoded files within H.264's loss) and listed; results.json carries
per-stage throughput, jitter and flicker. A .gif input with --latent-window and a --frames-dir input work; bad
inputs are one line before any work."""

from __future__ import annotations

import json
from fractions import Fraction

import numpy as np
import pytest
from PIL import Image

from hyperstyle_trt.cli.invert import main

av = pytest.importorskip("av", reason="PyAV (the video extra) is not installed")

N, SIZE, COVER, FPS = 24, 256, 10, Fraction(24)
ARGS = ["--config", "tiny", "--device", "cpu", "--align-size", "64", "--iters", "2"]


def _photo() -> np.ndarray:
    import matplotlib.cbook

    with Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)) as im:
        return np.asarray(im.convert("RGB"))


@pytest.fixture(scope="module")
def clip_run(tmp_path_factory):
    from hyperstyle_trt.runtime.video.io import read_frames, write_clip
    from hyperstyle_trt.runtime.video.synth import make_clip
    from hyperstyle_trt.runtime.video.workflow import VideoWorkflow

    root = tmp_path_factory.mktemp("hs_invert_video")
    clip = write_clip(root / "clip.mp4", make_clip(_photo(), N, size=(SIZE, SIZE), cover=[COVER]), FPS)
    raw: dict[int, np.ndarray] = {}

    def hook(name, idx, frame):
        if name == "pasted.mp4" and idx in (COVER, 2):
            raw[idx] = frame.copy()

    mp = pytest.MonkeyPatch()
    mp.setattr(VideoWorkflow, "frame_hook", staticmethod(hook))
    try:
        rc = main([str(clip), "--out", str(root / "out"), *ARGS, "--batch", "4", "--edit", "seed:0:-2,2"])
    finally:
        mp.undo()
    inputs = list(read_frames(clip))
    return rc, root / "out", json.loads((root / "out" / "results.json").read_text()), inputs, raw


def test_videos_keep_count_rate_and_size(clip_run):
    from hyperstyle_trt.runtime.video.io import probe

    rc, out, res, inputs, _ = clip_run
    assert rc == 0 and res["ok"] == 1 and len(inputs) == N
    rec = res["images"][0]
    want = {"aligned.mp4": 64, "inversion.mp4": 128, "pasted.mp4": SIZE, "pasted_seed0_-2.mp4": SIZE,
            "pasted_seed0_+2.mp4": SIZE}
    assert sorted(rec["outputs"]) == sorted(f"clip/{n}" for n in [*want, "preview.gif"])
    assert {p.name for p in (out / "clip").iterdir()} == {*want, "preview.gif"}  # no temporary files
    for name, side in want.items():
        info = probe(out / "clip" / name)
        assert (info.frames, info.fps, info.width, info.height, info.codec) == (N, FPS, side, side, "h264"), name
    assert rec["frames_written"] == N and rec["video"]["frames"] == N


def test_covered_frame_passes_through_unchanged(clip_run):
    from hyperstyle_trt.runtime.video.io import read_frames

    _, out, res, inputs, raw = clip_run
    rec = res["images"][0]
    assert COVER in rec["no_face_frames"] and len(rec["no_face_frames"]) <= 2  # the tracker finds the others
    assert np.array_equal(raw[COVER], inputs[COVER])  # the very frame that was decoded, before encoding
    assert np.abs(raw[2].astype(np.int16) - inputs[2]).max() > 50  # a face frame got the (untrained) inversion
    pasted = list(read_frames(out / "clip" / "pasted.mp4"))
    err = np.abs(pasted[COVER].astype(np.int16) - inputs[COVER])
    # H.264 (crf 18) re-encoding a noisy frame: observed mean 1.66, max 35 grey levels (a face frame: mean ~11)
    assert err.mean() < 2.5 and err.max() <= 50
    face = np.abs(pasted[2].astype(np.int16) - inputs[2])
    assert face.mean() > 2 * err.mean()


def test_results_report_throughput_and_stability(clip_run):
    _, _, res, _, _ = clip_run
    rec = res["images"][0]
    tp = rec["throughput"]
    for stage in ("decode", "align", "invert", "edit", "paste", "encode", "total"):
        assert tp[stage]["seconds"] > 0 and tp[stage]["frames_per_s"] > 0, stage
    assert tp["total"]["seconds"] >= tp["invert"]["seconds"] + tp["encode"]["seconds"]
    m = rec["metrics"]
    assert 0 <= m["jitter_px"] < 5 and m["jitter_pairs"] >= N - 6
    assert m["flicker"] > 0 and m["flicker_pairs"] >= N - 6
    assert rec["tracking"]["detections"] >= 2  # the first frame, and again after the covered one
    assert res["config"]["temporal_window"] == 9 and res["config"]["smoothing"] is True
    assert sorted(res["files"]) == sorted(rec["outputs"])


@pytest.fixture(scope="module")
def gif_run(tmp_path_factory):
    """An 8-frame .gif through the library API with --latent-window 3 and --no-smoothing, batch 8 (one invert)."""
    from hyperstyle_trt.core.source import ModelSource
    from hyperstyle_trt.runtime.invert import InvertJob
    from hyperstyle_trt.runtime.video.io import write_clip
    from hyperstyle_trt.runtime.video.synth import make_clip
    from hyperstyle_trt.runtime.video.workflow import VideoWorkflow

    root = tmp_path_factory.mktemp("hs_invert_gif")
    gif = write_clip(root / "g.gif", make_clip(_photo(), 8, size=(160, 160), seed=1), 10)
    job = InvertJob(photos=(str(gif),), out=str(root / "out"), source=ModelSource(config="tiny", device="cpu"),
                    align_size=64, iters=2, batch=8, latent_window=3, smoothing=False)
    wf = VideoWorkflow(job)
    calls = []
    wf.load()
    real = wf.base.inv.invert
    wf.base.inv.invert = lambda *a, **k: calls.append(len(a[0])) or real(*a, **k)
    return wf, wf.run(), calls


def test_gif_input_with_latent_window(gif_run):
    from hyperstyle_trt.runtime.video.io import probe

    wf, report, calls = gif_run
    rec = report.records[0]
    assert rec["status"] == "ok" and rec["latent_window"] == 3 and rec["smoothing"]["delay"] == 0
    assert calls == [8 - len(rec["no_face_frames"])]  # one invert call for the batch
    info = probe(report.out / "g" / "pasted.mp4")
    assert (info.frames, info.fps, info.width, info.height) == (8, Fraction(10), 160, 160)


def test_latent_window_is_a_causal_mean(gif_run):
    """_latent_mean: row i's codes and Δ are the mean over rows max(0, i-2)..i; images re-rendered from them."""
    from collections import deque

    import torch

    from hyperstyle_trt.runtime.edit import render

    wf, _, _ = gif_run
    inv = wf.base.inv
    x = np.stack([np.full((64, 64, 3), v, np.uint8) for v in (40, 90, 140, 200)])
    res = inv.invert(x, n_iters=2, copy=True)
    wf._codes = deque(maxlen=3)
    out = wf._latent_mean(res)
    torch.testing.assert_close(out.codes[3], res.codes[1:4].mean(0))
    torch.testing.assert_close(out.codes[1], res.codes[0:2].mean(0))
    for k, v in res.raw_deltas.items():
        torch.testing.assert_close(out.raw_deltas[k][3], v[1:4].mean(0))
    torch.testing.assert_close(out.images, render(inv, out.codes, out.raw_deltas))
    assert not torch.allclose(out.images[3], res.images[3])
    wf._codes, wf._last_idx = deque(maxlen=3), -2
    gap = wf._latent_mean(res, [0, 1, 5, 6])  # frames 2..4 had no face: the window restarts at frame 5
    torch.testing.assert_close(gap.codes[1], res.codes[0:2].mean(0))
    torch.testing.assert_close(gap.codes[2], res.codes[2])
    torch.testing.assert_close(gap.codes[3], res.codes[2:4].mean(0))


def test_frames_dir_align_only(tmp_path):
    from hyperstyle_trt.runtime.video.io import probe
    from hyperstyle_trt.runtime.video.synth import make_clip

    d = tmp_path / "frames"
    d.mkdir()
    for k, f in enumerate(make_clip(_photo(), 6, size=(128, 128), seed=2)):
        Image.fromarray(f).save(d / f"{k:04d}.png")
    rc = main(["--frames-dir", str(d), "--fps", "12", "--out", str(tmp_path / "out"), "--align-only",
               "--align-size", "64"])
    res = json.loads((tmp_path / "out" / "results.json").read_text())
    assert rc == 0 and res["images"][0]["outputs"][0] == "frames/aligned.mp4"
    info = probe(tmp_path / "out" / "frames" / "aligned.mp4")
    assert (info.frames, info.fps, info.width) == (6, Fraction(12), 64)


@pytest.mark.parametrize("extra, msg", [
    (["--temporal-window", "4"], "--temporal-window must be an odd number"),
    (["--latent-window", "0"], "--latent-window >= 1"),
    (["PHOTO"], "give photos and videos in separate hs-invert runs"),
    (["--all-faces"], "--all-faces is for photos"),
    (["--resume"], "--resume is for photos"),
])
def test_bad_options_one_line(tmp_path, capsys, clip_run, extra, msg):
    _, out, _, _, _ = clip_run
    photo = tmp_path / "p.png"
    Image.fromarray(_photo()).save(photo)
    clip = out.parent / "clip.mp4"
    argv = [str(clip), "--out", str(tmp_path / "o"), *ARGS, *[str(photo) if a == "PHOTO" else a for a in extra]]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert msg in err and len(err.splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_bad_video_file_one_line_before_work(tmp_path, capsys):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 200)
    assert main([str(bad), "--out", str(tmp_path / "o"), *ARGS]) == 2
    err = capsys.readouterr().err.strip()
    assert "cannot read video" in err and str(bad) in err and len(err.splitlines()) == 1
    assert not (tmp_path / "o").exists()
