"""hs-invert on a CUDA device (tiny config, torch executor, --no-align so no dlib is needed on the GPU image):
the PNGs it writes equal the CPU run's within the quantisation of a few ulp-level differences.

Gate: <= 2 grey levels per value (fp32 on both; TF32 off in tests/gpu/conftest.py; cuDNN and the CPU reference
convolutions round differently). Never run yet (written on a CPU-only machine): the worst difference is recorded
(tests/gpu/conftest.py's `gate`, collected into gpu_summary.json by make gpu-check); tighten to ~2-3x the first
observed figure. Run: make gpu-check (or python -m pytest -q tests/gpu/cli).
"""

import json

import numpy as np
import pytest
from PIL import Image

from hyperstyle_trt.cli.invert import main

pytestmark = pytest.mark.gpu


def _png(p) -> np.ndarray:
    with Image.open(p) as im:
        return np.asarray(im.convert("RGB")).astype(np.int16)


def test_cuda_matches_cpu(tmp_path, gate):
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:128, 0:128] / 127.0
    img = np.clip(np.stack([xx, yy, (xx + yy) / 2], -1) * 255 + rng.normal(0, 15, (128, 128, 3)), 0, 255)
    Image.fromarray(img.astype(np.uint8)).save(tmp_path / "face.png")
    Image.fromarray(np.flip(img, 1).astype(np.uint8)).save(tmp_path / "other.png")
    outs = {}
    for dev in ("cpu", "cuda"):
        out = tmp_path / dev
        rc = main([str(tmp_path / "face.png"), str(tmp_path / "other.png"), "--out", str(out), "--config", "tiny",
                   "--device", dev, "--no-align", "--align-size", "128", "--iters", "3", "--edit", "seed:1:-2,2",
                   "--interpolate", "--frames", "3"])
        assert rc == 0
        outs[dev] = out
        rec = json.loads((out / "results.json").read_text())
        assert rec["model"]["runtime"]["device"].startswith(dev)
    diffs = {(name, f): int(np.abs(_png(outs["cpu"] / name / f) - _png(outs["cuda"] / name / f)).max())
             for name in ("face", "other")
             for f in ("inversion.png", "edit_seed1_-2.png", "edit_seed1_+2.png", "grid.png")}
    frames = {k: int(np.abs(_png(outs["cpu"] / p) - _png(outs["cuda"] / p)).max())
              for k, p in ((k, f"interpolation/face__other/frame_{k:03d}.png") for k in range(3))}
    worst = max(diffs.values())
    gate("worst_png_levels", worst, "<=", 2)
    gate("worst_interpolation_frame_levels", max(frames.values()), "<=", 2)
    for (name, f), d in diffs.items():
        assert d <= 2, (name, f, d)
    for k in range(3):
        assert frames[k] <= 2
    print(f"hs-invert cuda vs cpu: worst PNG difference {worst} levels")
