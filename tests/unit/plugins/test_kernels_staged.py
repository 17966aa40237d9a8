"""The staged HsModConv path (plugins/mod_conv/staged.py: per-sample weight kernel + ready-weight conv) in Triton's
CPU interpreter (split-K and its finalize launch included), and the strategy that sends every layer there with its
measured tiles and split-K counts (plugins/mod_conv/strategy.py).

Tolerances as in test_kernels_triton.py (max abs error relative to max |fp32 reference|): fp32 1e-5, fp16 3e-3.
Against the fused kernel with the same tiles the staged one must agree to fp16 output rounding (2^-10 relative): it
forms the same fp32 weight, rounds it once to T and accumulates in the same order.
"""

import pytest
import torch

from hyperstyle_trt.core.config import get_config
from hyperstyle_trt.core.errors import HsError
from hyperstyle_trt.plugins._triton import TileConfig
from hyperstyle_trt.plugins.mod_conv.reference import mod_conv_ref
from hyperstyle_trt.plugins.mod_conv.strategy import (FUSED_PICKS, TUNED, bucket, max_workspace_bytes, select_strategy,
                                                      split_k, tuned, workspace_bytes, workspace_layout)
from test_kernels_triton import SMALL, _assert_close, _mod_conv_case, _ref32

STAGED = "hyperstyle_trt.plugins.mod_conv.staged:mod_conv_staged"
FUSED = "hyperstyle_trt.plugins.mod_conv.kernel:mod_conv_triton"


@pytest.mark.parametrize("upsample", [0, 1], ids=["conv", "up"])
@pytest.mark.parametrize("delta_mode", [0, 1, 2], ids=["nodelta", "full", "perchan"])
def test_staged_agrees_with_fused_to_output_rounding(triton_interp, upsample, delta_mode):
    """fp16, same tiles, B=2 with distinct per-sample delta, ragged tiles: the two strategies differ at most by the
    fp16 rounding of the output (each matches the reference: test_kernels_triton.py)."""
    t = _mod_conv_case(2, 5, 6, 24, 20, upsample, delta_mode, torch.float16)
    a = dict(upsample=upsample, delta_mode=delta_mode, demodulate=1)
    staged = triton_interp.call(STAGED, **t, **a, cfg=SMALL).float()
    fused = triton_interp.call(FUSED, **t, **a, cfg=SMALL).float()
    assert (staged - fused).abs().max().item() <= 2 ** -10 * fused.abs().max().item()


@pytest.mark.parametrize("upsample", [0, 1], ids=["conv", "up"])
def test_staged_without_demodulation(triton_interp, upsample):
    t = _mod_conv_case(2, 4, 4, 16, 16, upsample, 1, torch.float32, seed=3)
    a = dict(upsample=upsample, delta_mode=1, demodulate=0)
    _assert_close(triton_interp.call(STAGED, **t, **a, cfg=SMALL), _ref32(mod_conv_ref, t, **a), torch.float32)


def test_staged_per_sample_delta_is_not_shared_across_the_batch(triton_interp):
    """Sample 1's output changes when only sample 0's delta changes? It must not (per-sample weights)."""
    t = _mod_conv_case(2, 4, 4, 16, 16, 1, 1, torch.float32, seed=9)
    a = dict(upsample=1, delta_mode=1, demodulate=1)
    y0 = triton_interp.call(STAGED, **t, **a, cfg=SMALL)
    t["delta"] = t["delta"].clone()
    t["delta"][0] += 0.5
    y1 = triton_interp.call(STAGED, **t, **a, cfg=SMALL)
    assert torch.equal(y0[1], y1[1]) and (y0[0] - y1[0]).abs().max() > 1e-2


def _ffhq_convs():
    """(upsample, input size, Cin, Cout) of every FFHQ-1024 StyledConv."""
    return [(int(s.kind == "up"), s.res // 2 if s.kind == "up" else s.res, s.in_ch, s.out_ch)
            for s in get_config("ffhq1024").layers if s.kind != "rgb"]


def _tuned_ready_variants():
    """Distinct (ready tiles, upsample, split-K) that the FFHQ-1024 layers run in fp16 on sm_90, both batch buckets
    (split-K counts above 3 tested as 3: the test's Cin has 3 K steps' worth of splits)."""
    from hyperstyle_trt.plugins.mod_conv.staged import ready_config

    keys = []
    for up, h, cin, cout in _ffhq_convs():
        for b in (1, 8):
            keys.append((ready_config(h, h, cin, cout, "fp16", 90, up, b), up,
                         min(3, split_k(b, h, h, cin, cout, up, "fp16"))))
    return list(dict.fromkeys(keys))


# What each FFHQ-1024 StyledConv must run in fp16, written out here (not read from strategy.TUNED, so a changed or
# misread table fails): layer -> ((ready tiles M, N, K, warps, stages), split-K) for B <= 2 and for B >= 3, from the
# `hs-bench tune` H200 sweep (benchmarks/results/h200_tune.json).
T16, T64_32, T64, T128W8, T128_4, T256, T256_128, T128_64, T256_32 = (
    (16, 64, 64, 4, 3), (64, 32, 64, 4, 3), (64, 64, 64, 4, 3), (64, 128, 64, 8, 3), (128, 128, 32, 8, 4),
    (128, 256, 64, 8, 3), (256, 128, 64, 8, 3), (128, 64, 32, 8, 3), (256, 32, 32, 4, 4))
EXPECTED_FP16 = {
    "conv1": ((T16, 8), (T16, 8)), "convs.0": ((T16, 8), (T16, 2)), "convs.1": ((T64_32, 4), (T64_32, 4)),
    "convs.2": ((T64, 4), (T128W8, 2)), "convs.3": ((T64, 4), (T256, 4)), "convs.4": ((T128W8, 2), (T256, 1)),
    "convs.5": ((T128_4, 4), (T256, 1)), "convs.6": ((T128_4, 1), (T256, 1)), "convs.7": ((T128_4, 1), (T256, 1)),
    "convs.8": ((T256, 1), (T256, 1)), "convs.9": ((T256, 1), (T256, 1)), "convs.10": ((T256_128, 1), (T256_128, 1)),
    "convs.11": ((T256_128, 1), (T256_128, 1)), "convs.12": ((T128_64, 1), (T128_64, 1)),
    "convs.13": ((T128_64, 1), (T128_64, 1)), "convs.14": ((T64_32, 1), (T64_32, 1)),
    "convs.15": ((T256_32, 1), (T256_32, 1)),
}


def test_every_layer_runs_staged_with_its_measured_entry():
    """Every batch: "staged", except fp16 convs.0 at B >= 3 (the one pair where the fused kernel was faster); fp16
    takes the measured tiles and split-K of its batch bucket (B <= 2, B >= 3: EXPECTED_FP16), fp32 never splits;
    unknown dtypes are refused in one line."""
    layers = [s for s in get_config("ffhq1024").layers if s.kind != "rgb"]
    assert sorted(s.name for s in layers) == sorted(EXPECTED_FP16)
    assert len(TUNED) == len(layers) and FUSED_PICKS == {(1, 4, 4, 512, 512, 8)}
    for s in layers:
        up, h, cin, cout = int(s.kind == "up"), s.res // 2 if s.kind == "up" else s.res, s.in_ch, s.out_ch
        for b in range(1, 9):
            want_tiles, want_split = EXPECTED_FP16[s.name][0 if b <= 2 else 1]
            fused = s.name == "convs.0" and b >= 3
            assert bucket(b) == (1 if b <= 2 else 8)
            for name in ("fp16", "float16"):
                assert select_strategy(b, h, h, cin, cout, up, name) == ("fused" if fused else "staged"), (s.name, b)
            for name in ("fp32", "float32"):
                assert select_strategy(b, h, h, cin, cout, up, name) == "staged"
            assert (workspace_bytes(b, h, h, cin, cout, up) == 0) == fused  # the fused kernel needs none
            assert split_k(b, h, h, cin, cout, up, "fp16") == want_split, (s.name, b)
            assert split_k(b, h, h, cin, cout, up, "float32") == 1
            assert tuned(b, h, h, cin, cout, up) == (want_tiles, want_split), (s.name, b)
    assert tuned(1, 4, 4, 512, 500, 0) is None
    with pytest.raises(ValueError, match="select_strategy: dtype must be one of"):
        select_strategy(1, 64, 64, 16, 16, 0, "bf16")
    with pytest.raises(ValueError, match="split_k: dtype must be one of"):
        split_k(1, 64, 64, 16, 16, 0, "bf16")


def test_split_k_rule_for_untuned_shapes():
    """Few 64x64 output tiles -> split the reduction, in powers of two up to 8, keeping >= 64 channels per split."""
    assert split_k(1, 4, 4, 512, 256, 0) == 8  # 4 tiles
    assert split_k(1, 4, 4, 128, 256, 0) == 2  # 128 channels: 2 splits of 64
    assert split_k(1, 4, 4, 64, 256, 0) == 1
    assert split_k(2, 32, 32, 512, 256, 1) == 1  # 2*4*16*4 = 512 tiles already
    assert split_k(1, 16, 16, 512, 64, 0) == 8 and split_k(16, 16, 16, 512, 64, 0) == 4  # 64 tiles


def test_workspace_bytes_follow_the_split():
    """workspace_bytes = wq + coef (+ the fp32 partial sums when split), and the TensorRT bound over a dynamic batch
    is the largest over 1..B (the split count changes with the batch bucket)."""
    b, h, cin, cout = 1, 4, 512, 512  # conv1: split 8 at B=1
    lay = workspace_layout(b, cin, cout, 0, "fp16", split=8, HW=h * h)
    assert workspace_bytes(b, h, h, cin, cout, 0) == lay.total == lay.part + 8 * h * h * cout * 4
    assert workspace_bytes(1, h, h, cin, cout, 0, "fp32") == workspace_layout(1, cin, cout, 0, "fp32").total
    for up, h, cin, cout in _ffhq_convs():
        per_b = [workspace_bytes(b, h, h, cin, cout, up) for b in range(1, 9)]
        assert max_workspace_bytes(1, 8, h, h, cin, cout, up) == max(per_b) >= per_b[-1]


def test_workspace_layout_sizes_and_alignment():
    off, part, total = workspace_layout(8, 512, 256, 1, "fp16")
    assert off == 8 * 256 * 4 * 9 * 512 * 2 and total == off + 8 * 256 * 4  # 75.5 MB of phase weights + coef
    off, part, total = workspace_layout(3, 24, 20, 0, "fp32")
    assert off % 256 == 0 and off >= 3 * 20 * 9 * 24 * 4 and total == off + 3 * 20 * 4
    off, part, total = workspace_layout(3, 24, 20, 1, "fp16", split=3, HW=35)
    assert part % 256 == 0 and part >= off + 3 * 20 * 4 and total == part + 3 * 4 * 3 * 35 * 20 * 4
    with pytest.raises(ValueError, match="dtype"):
        workspace_layout(1, 8, 8, 0, "bf16")


@pytest.mark.parametrize("cfg, upsample, split", _tuned_ready_variants(), ids=str)
def test_staged_with_every_production_tile(triton_interp, cfg, upsample, split):
    """Each (ready tiles, upsample, split-K) the FFHQ layers run (fp16, sm_90, both batch buckets) on a small ragged
    problem with the layer's tile shape: one partial tile along M and N and, with split-K, `split` splits of K (the
    last one ragged) whose partial sums the finalize launch adds."""
    cin = cfg.block_k * split - 8 if split > 1 else cfg.block_k + 8  # K_PER = BLOCK_K, so exactly `split` splits
    t = _mod_conv_case(2, 3, 5, cin, 24, upsample, 1, torch.float16, seed=17)
    a = dict(upsample=upsample, delta_mode=1, demodulate=1)
    got = triton_interp.call(STAGED, **t, **a, cfg=cfg, split=split)
    _assert_close(got, _ref32(mod_conv_ref, t, **a), torch.float16)


@pytest.mark.parametrize("upsample", [0, 1], ids=["conv", "up"])
@pytest.mark.parametrize("delta_mode", [0, 1, 2], ids=["nodelta", "full", "perchan"])
def test_split_k_matches_the_reference(triton_interp, upsample, delta_mode):
    """fp32, B=2 with distinct per-sample delta, Cin 24 in K steps of 8: 2 splits (16 + 8 channels) and 3 splits
    (8 + 8 + 8) match the reference as the unsplit launch does."""
    t = _mod_conv_case(2, 5, 3, 24, 20, upsample, delta_mode, torch.float32, seed=23)
    a = dict(upsample=upsample, delta_mode=delta_mode, demodulate=1)
    ref = _ref32(mod_conv_ref, t, **a)
    cfg = TileConfig(16, 16, 8, 4, 1)
    for split in (1, 2, 3):
        _assert_close(triton_interp.call(STAGED, **t, **a, cfg=cfg, split=split), ref, torch.float32)


def _fp32_ready_tiles():
    """The distinct (fp32 ready-kernel tiles, upsample) of the FFHQ-1024 StyledConvs (fp32 stages every layer)."""
    from hyperstyle_trt.plugins.mod_conv.staged import ready_config

    keys = [(ready_config(h, h, cin, cout, "fp32", 90), up) for up, h, cin, cout in _ffhq_convs()]
    return list(dict.fromkeys(keys))


@pytest.mark.parametrize("cfg, upsample", _fp32_ready_tiles(), ids=str)
def test_staged_fp32_with_every_production_tile(triton_interp, cfg, upsample):
    """fp32 runs staged on every layer: each of its ready-kernel tiles on a small ragged problem, vs the reference."""
    t = _mod_conv_case(2, 3, 5, cfg.block_k + 8, 24, upsample, 1, torch.float32, seed=19)
    a = dict(upsample=upsample, delta_mode=1, demodulate=1)
    _assert_close(triton_interp.call(STAGED, **t, **a, cfg=cfg), _ref32(mod_conv_ref, t, **a), torch.float32)


def test_staged_writes_every_output_and_uses_the_given_workspace(triton_interp):
    """Every output element is written, and the weights go through the caller's workspace: the per-sample weights
    and coef are found in it afterwards (a launcher that allocated its own buffer would leave it untouched)."""
    t = _mod_conv_case(2, 4, 4, 16, 16, 1, 2, torch.float32, seed=7)
    off, _, total = workspace_layout(2, 16, 16, 1, "fp32")
    out = torch.full((2, 8, 8, 16), float("nan"))
    got, ws = triton_interp.call("tests.unit.plugins._staged_probe:staged_into_own_workspace", total + 64, 255, **t,
                                 upsample=1, delta_mode=2, out=out, cfg=SMALL)
    _assert_close(got, _ref32(mod_conv_ref, t, upsample=1, delta_mode=2), torch.float32)  # no NaN left
    wq = ws[:2 * 16 * 4 * 9 * 16 * 4].view(torch.float32).view(2, 16, 4, 9, 16)  # [B,Cout,P,9,Cin]
    coef = ws[off:total].view(torch.float32).view(2, 16)
    assert torch.isfinite(wq).all() and torch.isfinite(coef).all()  # 0xFF bytes are NaNs: all overwritten
    s = t["style"][:, None, :] * (1 + t["delta"])  # per-channel delta: W'[b,o,tap,i] = W[o,tap,i] * s[b,i](1+d)
    w1 = t["weight"].reshape(16, 9, 16)[None] * s[:, :, None, :]
    want_coef = (1 / 12) * torch.rsqrt((1 / 144) * w1.pow(2).sum((2, 3)) + 1e-8)  # scale = 1/sqrt(9*16)
    torch.testing.assert_close(coef, want_coef, rtol=1e-5, atol=1e-6)
    assert (ws[total:] == 255).all()  # nothing written past the layout
    with pytest.raises(RuntimeError, match=r"workspace has \d+ bytes, this launch needs \d+"):
        triton_interp.call(STAGED, **t, upsample=1, delta_mode=2, cfg=SMALL, workspace=torch.zeros(total - 1,
                                                                                                  dtype=torch.uint8))


def test_run_cuda_rejects_an_unknown_strategy():
    from hyperstyle_trt.plugins.mod_conv.op import run_cuda

    t = _mod_conv_case(1, 4, 4, 8, 8, 0, 0, torch.float32)
    with pytest.raises(HsError, match="strategy must be one of"):
        run_cuda(**t, upsample=0, delta_mode=0, demodulate=1, strategy="cudnn")

