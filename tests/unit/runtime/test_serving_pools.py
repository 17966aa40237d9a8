"""Triton memory pools sized from a repository (runtime.serving.pools) and the flags `hs-serve start` passes.

The FFHQ-1024 figure is recomputed here by hand from core.contract's graph I/O shapes, term by term, so that a
change in the contract or in the sizing rule shows up as a changed number. No server and no GPU are needed.
"""

from __future__ import annotations

import json
import math

import pytest

from hyperstyle_trt.core.config import get_config
from hyperstyle_trt.core.contract import GRAPHS, delta_modes, graph_io
from hyperstyle_trt.core.errors import HsError
from hyperstyle_trt.core.source import ModelSource
from hyperstyle_trt.runtime.serving.pbtxt import ModelShapes, served_io
from hyperstyle_trt.runtime.serving.pools import (HEADROOM, MIB, SIDECAR, TRITON_CUDA_POOL_DEFAULT,
                                                  TRITON_PINNED_POOL_DEFAULT, ngc_device_terms, pool_sizes,
                                                  repository_pools, served_bytes, transfer_record, visible_gpus)
from hyperstyle_trt.runtime.serving.repository import RepoSpec, write_repository


def _items(t) -> int:
    return math.prod(int(d) for d in t.shape[1:])


def test_ffhq1024_ngc_fp16_pool_checked_by_hand():
    """Plugin engines, fp16, max batch 8, T = 5, 2 instances per GPU, 2 GPUs."""
    cfg = get_config("ffhq1024")
    ios = {g: graph_io(cfg, g, delta_modes(cfg, per_channel=True), "B", True, "fp16") for g in GRAPHS}
    B, T, FP16 = 8, 5, 2
    # per item, from the contract: Δ is the hypernet's acc_* outputs (and its delta_* inputs, same shapes)
    delta = sum(_items(t) for t in ios["hypernet"].outputs) * FP16
    img_in = 3 * 256 * 256 * FP16
    assert [_items(t) for t in ios["hypernet"].inputs[:2]] == [3 * 256 * 256] * 2
    codes = 18 * 512 * FP16
    gen_out = (3 * 1024 * 1024 + 3 * 256 * 256) * FP16  # image + image_pooled
    assert 40e6 < delta < 50e6  # the "about 47 MB of Δ per image" (plugin: per-channel heads are smaller)
    held = B * (codes + (T + 1) * gen_out + T * delta)  # every response the BLS model holds until it returns
    call_inputs = B * (2 * img_in + delta)  # the largest call: hypernet(image, recon_pooled, Δ)
    per_instance = held + call_inputs
    terms = ngc_device_terms(ios, {}, B, T)
    assert terms == {"call_inputs": call_inputs, "w_encoder_outputs": B * codes, "generator_outputs":
                     B * (T + 1) * gen_out, "hypernet_outputs": B * T * delta}
    served = 256 * 256 * 3 + 1024 * 1024 * 3 + 18 * 512 * 4  # uint8 image in, uint8 inversion + fp32 codes out
    assert served_bytes(served_io(ModelShapes.of(cfg))) == served
    rec = transfer_record("ngc", "KIND_GPU", 2, B, T, served, terms)
    assert rec["device_bytes"] == per_instance and rec["host_bytes"] == B * served
    sizes = pool_sizes([rec], gpus=(0, 1))
    expect = math.ceil(HEADROOM * 2 * per_instance / MIB) * MIB
    assert expect == 5977931776  # 2 x 2390802432 B x 1.25, rounded up to MiB (5701 MiB)
    assert sizes.cuda == ((0, expect), (1, expect))
    assert sizes.pinned == TRITON_PINNED_POOL_DEFAULT  # 1.25 x 2 x 2 x 27 MB is below Triton's 256 MiB
    assert sizes.flags() == [f"--cuda-memory-pool-byte-size=0:{expect}", f"--cuda-memory-pool-byte-size=1:{expect}",
                             f"--pinned-memory-pool-byte-size={TRITON_PINNED_POOL_DEFAULT}"]
    assert "5701 MiB" in sizes.describe() and "headroom 1.25" in sizes.describe()


def test_fixed_batch_generator_pads_every_call():
    cfg = get_config("tiny")
    ios = {g: graph_io(cfg, g, delta_modes(cfg, per_channel=False), "B", False, "fp32") for g in GRAPHS}
    gen = sum(_items(t) for t in ios["generator"].outputs) * 4
    # batch 5 through a generator fixed at batch 2: three calls of 2 per step, each response held
    assert ngc_device_terms(ios, {"generator": 2}, 5, 3)["generator_outputs"] == 4 * 6 * gen
    assert ngc_device_terms(ios, {}, 5, 3)["generator_outputs"] == 4 * 5 * gen


def test_cpu_models_get_no_flags_and_small_gpu_models_get_the_defaults():
    tiny = served_bytes(served_io(ModelShapes.of(get_config("tiny"))))
    cpu = transfer_record("inverter", "KIND_CPU", 4, 8, 5, tiny)
    assert pool_sizes([cpu]).flags() == [] and pool_sizes([]).flags() == []
    assert "default pools" in pool_sizes([cpu]).describe()
    gpu = transfer_record("inverter", "KIND_GPU", 1, 8, 5, tiny)
    assert pool_sizes([gpu], gpus=()).flags() == []
    small = pool_sizes([gpu, cpu], gpus=(0,))
    assert small.cuda == ((0, TRITON_CUDA_POOL_DEFAULT),) and small.pinned == TRITON_PINNED_POOL_DEFAULT
    big = transfer_record("inverter", "KIND_GPU", 4, 64, 5,
                          served_bytes(served_io(ModelShapes.of(get_config("ffhq1024")))))
    assert pool_sizes([big]).cuda[0][1] == math.ceil(1.25 * 4 * 64 * 3379200 / MIB) * MIB
    with pytest.raises(HsError, match="layout must be"):
        transfer_record("split", "KIND_GPU", 1, 8, 5, tiny)


def test_visible_gpus(tmp_path):
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "3,1"}) == (0, 1)
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "0,-1,2"}) == (0,)
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": ""}) == ()
    for bus in ("0000:01:00.0", "0000:41:00.0"):
        (tmp_path / bus).mkdir()
    assert visible_gpus({}, tmp_path) == (0, 1)
    assert visible_gpus({}, tmp_path / "none") == ()


def test_sidecar_and_start_dry_run_print_the_flags(tmp_path, capsys, monkeypatch):
    from hyperstyle_trt.cli.serve import main

    fake = tmp_path / "tritonserver"
    fake.write_text("#!/bin/sh\nexit 3\n")
    fake.chmod(0o755)
    monkeypatch.setenv("TRITONSERVER", str(fake))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    d = write_repository(tmp_path / "gpu", RepoSpec(ModelSource(config="tiny", device="cuda", precision=None),
                                                    max_batch=4, instances=2))
    rec = json.loads((d / SIDECAR).read_text())["pools"]
    assert (rec["layout"], rec["kind"], rec["instances"], rec["max_batch"]) == ("inverter", "KIND_GPU", 2, 4)
    assert rec["device_bytes"] == rec["host_bytes"] == 4 * (64 * 64 * 3 + 128 * 128 * 3 + 12 * 32 * 4)
    assert repository_pools(tmp_path / "gpu") == pool_sizes([rec], (0, 1))
    assert main(["start", str(tmp_path / "gpu"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"--cuda-memory-pool-byte-size=0:{64 * MIB} --cuda-memory-pool-byte-size=1:{64 * MIB} " \
           f"--pinned-memory-pool-byte-size={256 * MIB}" in out and str(fake) in out
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    no_gpu = repository_pools(tmp_path / "gpu", gpus=None) if not visible_gpus() else None
    if no_gpu is not None:
        assert no_gpu.cuda == ((0, 64 * MIB),) and "no GPU visible here" in no_gpu.describe()
    write_repository(tmp_path / "cpu", RepoSpec(ModelSource(config="tiny", device="cpu", precision=None)))
    assert main(["start", str(tmp_path / "cpu"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "memory-pool" not in out and "default pools" in out
    (d / SIDECAR).write_text("{not json")
    assert main(["start", str(tmp_path / "gpu"), "--dry-run"]) == 2
    assert "hs_serving.json is unreadable" in capsys.readouterr().err
