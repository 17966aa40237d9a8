"""Every Triton kernel, run in Triton's CPU interpreter (one worker process, see conftest.py), matches its PyTorch
reference on tiny shapes: B=2 with distinct per-sample delta, delta full / per-channel / absent, upsample and not,
ToRGB with and without skip. Shapes are chosen so every program has ragged M, N and K tiles (masks exercised).

Tolerances (max abs error relative to max |reference|; reference in fp32 on the same, already-rounded inputs):
  fp32: 1e-5   (fp32 dot in the interpreter; only summation order differs)
  fp16: 3e-3   (operands and the per-sample weight rounded to fp16, fp32 accumulation, fp16 output)
"""

import pytest
import torch

from hyperstyle_trt.plugins._triton import TileConfig
from hyperstyle_trt.plugins.mod_conv.reference import mod_conv_ref
from hyperstyle_trt.plugins.to_rgb.reference import to_rgb_ref

REL_TOL = {torch.float32: 1e-5, torch.float16: 3e-3}
SMALL = TileConfig(16, 16, 16, 4, 1)  # small tiles: several programs along M, N and K even on tiny shapes


def _assert_close(got, want, dtype):
    assert got.dtype == dtype and got.shape == want.shape
    err = (got.float() - want).abs().max().item()
    scale = want.abs().max().item()
    assert scale > 0.1 and err <= REL_TOL[dtype] * scale, f"max abs err {err:.3g} vs max |ref| {scale:.3g}"


def _mod_conv_case(b, h, w, cin, cout, upsample, delta_mode, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    f = 2 if upsample else 1
    r = lambda *s: torch.randn(*s, generator=g)  # noqa: E731
    t = dict(x=r(b, h, w, cin), style=r(b, cin), weight=r(cout, 3, 3, cin),  # OHWI
             delta={0: None, 1: 0.5 * r(b, cout, 3, 3, cin), 2: 0.5 * r(b, cout, cin)}[delta_mode],
             noise=0.3 * r(f * h, f * w), bias=0.2 * r(cout))
    return {k: None if v is None else v.to(dtype) for k, v in t.items()}


def _ref32(fn, t, **attrs):
    return fn(**{k: None if v is None else v.float() for k, v in t.items()}, **attrs)


LAUNCHERS = {"fused": "hyperstyle_trt.plugins.mod_conv.kernel:mod_conv_triton",
             "staged": "hyperstyle_trt.plugins.mod_conv.staged:mod_conv_staged"}
TO_RGB = "hyperstyle_trt.plugins.to_rgb.kernel:to_rgb_triton"


@pytest.mark.parametrize("strategy", ["fused", "staged"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16], ids=["fp32", "fp16"])
@pytest.mark.parametrize("upsample", [0, 1], ids=["conv", "up"])
@pytest.mark.parametrize("delta_mode", [0, 1, 2], ids=["nodelta", "full", "perchan"])
def test_mod_conv_kernel_matches_reference(triton_interp, upsample, delta_mode, dtype, strategy):
    """Both GPU strategies (one fused launch; staged weight kernel + ready-weight conv, test_kernels_staged.py)."""
    t = _mod_conv_case(2, 5, 6, 24, 20, upsample, delta_mode, dtype)
    a = dict(upsample=upsample, delta_mode=delta_mode, demodulate=1)
    got = triton_interp.call(LAUNCHERS[strategy], **t, **a, cfg=SMALL)
    _assert_close(got, _ref32(mod_conv_ref, t, **a), dtype)


@pytest.mark.parametrize("upsample", [0, 1], ids=["conv", "up"])
def test_mod_conv_kernel_without_demodulation(triton_interp, upsample):
    t = _mod_conv_case(2, 4, 4, 16, 16, upsample, 1, torch.float32, seed=3)
    a = dict(upsample=upsample, delta_mode=1, demodulate=0)
    got = triton_interp.call("hyperstyle_trt.plugins.mod_conv.kernel:mod_conv_triton", **t, **a, cfg=SMALL)
    _assert_close(got, _ref32(mod_conv_ref, t, **a), torch.float32)


@pytest.mark.parametrize("upsample", [0, 1], ids=["conv", "up"])
def test_mod_conv_kernel_with_the_deterministic_tile_choice(triton_interp, upsample):
    """The tiles select_config picks for a 4x4 input (the ones a GPU launch uses), fp16, full delta."""
    t = _mod_conv_case(2, 4, 4, 32, 32, upsample, 1, torch.float16, seed=5)
    a = dict(upsample=upsample, delta_mode=1, demodulate=1)
    got = triton_interp.call("hyperstyle_trt.plugins.mod_conv.kernel:mod_conv_triton", **t, **a)
    _assert_close(got, _ref32(mod_conv_ref, t, **a), torch.float16)


def _production_tiles():
    """Every distinct (upsample, TileConfig) that select_config gives an FFHQ-1024 layer: fp16 and fp32, for an
    H100 (sm_90) and a consumer GPU (sm_89)."""
    from hyperstyle_trt.core.config import get_config
    from hyperstyle_trt.plugins.mod_conv.kernel import select_config

    out = set()
    for s in get_config("ffhq1024").layers:
        if s.kind != "rgb":
            up = int(s.kind == "up")
            h = s.res // 2 if up else s.res
            out |= {(up, select_config(h, h, s.in_ch, s.out_ch, up, dt, arch))
                    for dt in ("fp16", "fp32") for arch in (90, 89)}
    return sorted(out, key=str)


@pytest.mark.parametrize("upsample, cfg", _production_tiles(), ids=str)
def test_mod_conv_kernel_with_every_production_tile(triton_interp, upsample, cfg):
    """The large tiles of the high-resolution layers (which the 4x4 case above never selects) run in the
    interpreter on a small ragged problem: one partial tile along M, N and K."""
    t = _mod_conv_case(2, 3, 5, cfg.block_k + 8, 24, upsample, 1, torch.float16, seed=17)
    a = dict(upsample=upsample, delta_mode=1, demodulate=1)
    got = triton_interp.call("hyperstyle_trt.plugins.mod_conv.kernel:mod_conv_triton", **t, **a, cfg=cfg)
    _assert_close(got, _ref32(mod_conv_ref, t, **a), torch.float16)


def test_mod_conv_kernel_writes_into_preallocated_output(triton_interp):
    t = _mod_conv_case(2, 4, 4, 16, 16, 0, 2, torch.float32, seed=7)
    out = torch.full((2, 4, 4, 16), float("nan"))
    got = triton_interp.call(LAUNCHERS["fused"], **t, delta_mode=2, out=out, cfg=SMALL)
    _assert_close(got, _ref32(mod_conv_ref, t, delta_mode=2), torch.float32)  # no NaN left: every element written


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16], ids=["fp32", "fp16"])
@pytest.mark.parametrize("skip", [False, True], ids=["noskip", "skip"])
@pytest.mark.parametrize("delta_mode", [0, 1], ids=["nodelta", "delta"])
def test_to_rgb_kernel_matches_reference(triton_interp, skip, delta_mode, dtype):
    g = torch.Generator().manual_seed(11)
    b, h, w, cin = 2, 6, 10, 24
    t = dict(x=torch.randn(b, h, w, cin, generator=g), style=torch.randn(b, cin, generator=g),
             weight=torch.randn(3, cin, generator=g),
             delta=0.5 * torch.randn(b, 3, cin, generator=g) if delta_mode else None,
             bias=torch.randn(3, generator=g), skip=torch.randn(b, h // 2, w // 2, 3, generator=g) if skip else None)
    t = {k: None if v is None else v.to(dtype) for k, v in t.items()}
    got = triton_interp.call(TO_RGB, **t, delta_mode=delta_mode, cfg=SMALL)
    _assert_close(got, _ref32(to_rgb_ref, t, delta_mode=delta_mode), dtype)


def test_interpreter_errors_surface_with_the_child_traceback(triton_interp):
    with pytest.raises(RuntimeError, match="failed in the Triton interpreter"):
        triton_interp.call("hyperstyle_trt.plugins.mod_conv.kernel:mod_conv_triton", torch.randn(1, 2, 2, 4))


def test_to_rgb_kernel_with_the_deterministic_tile_choice(triton_interp):
    """select_config's tiles (BLOCK_M 64, padded N 16, BLOCK_K 32), fp16, delta and skip."""
    g = torch.Generator().manual_seed(13)
    b, h, w, cin = 2, 8, 8, 32
    t = dict(x=torch.randn(b, h, w, cin, generator=g), style=torch.randn(b, cin, generator=g),
             weight=torch.randn(3, cin, generator=g), delta=0.5 * torch.randn(b, 3, cin, generator=g),
             bias=torch.randn(3, generator=g), skip=torch.randn(b, h // 2, w // 2, 3, generator=g))
    t = {k: v.half() for k, v in t.items()}
    got = triton_interp.call("hyperstyle_trt.plugins.to_rgb.kernel:to_rgb_triton", **t, delta_mode=1)
    _assert_close(got, _ref32(to_rgb_ref, t, delta_mode=1), torch.float16)
