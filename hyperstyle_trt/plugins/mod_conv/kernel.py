"""Triton kernels for `HsModConv`: fused modulated 3x3 conv (+ folded stride-2 transposed conv and 4x4 blur),
demodulation, noise, bias and lrelu(0.2)*sqrt(2). NHWC, T in {fp16, fp32}, fp32 accumulation.

Implicit GEMM per sample b: M = output pixels, N = Cout, K = 9*Cin (outer loop over Cin blocks, inner (runtime) loop
over the 9 taps). W and full delta come OHWI ([Cout,3,3,Cin], Cin contiguous), so their [BLOCK_K, BLOCK_N] tiles
are contiguous along K: 16-byte cp.async loads that Triton pipelines through shared memory, like the x tiles. (With
the official OIHW layout they were scalar 2-byte gathers at a 9-element stride: 26-98 LDG.E.U16 per K step in the
sm_90 SASS and register spills at M256xN128xK64 tiles.) Each K step loads tiles of x (masked
3x3 halo), W and delta, forms W*(1+delta)*s in fp32 registers (never written to memory), adds its square to the
per-(b,o) demodulation sum and runs the tensor-core dot (operands in T, fp32 accumulator). The epilogue applies
scale*rsqrt(scale^2*sum + 1e-8) (or scale without demodulation), + noise[Ho,Wo] + bias[Cout], lrelu*sqrt(2).

Upsampling (conv_transpose stride 2 then blur 4x4 = outer(f1, f1), f1 = [1,3,3,1]/4, pad (1,1)): the composition is
one 6x6 kernel per (o, i); output pixel (2q+r) only meets 3 of its taps per axis, so
    y[2qy+ry, 2qx+rx] = sum_{ty,tx} x[qy+ty-1, qx+tx-1] . Q_{ry,rx}[ty,tx],   Q_{ry,rx} = A_ry @ W' @ A_rx^T
with A_0 = [[0,1/4,3/4],[3/4,3/4,1/4],[1/4,0,0]], A_1 = [[0,0,1/4],[1/4,3/4,3/4],[3/4,1/4,0]] (derived from
models.ops.upfirdn2d; checked against it by the tests). One program owns BLOCK_M low-resolution positions and all 4
phases (4 accumulators), so the 9 x tiles and the 9 modulated W' tiles of a K step serve 36 dots. Demodulation uses
the *unblurred* W' as in the official code.

Launch ABI (docs/tensorrt_plugins.md §3): x, style, weight, [delta], noise, bias, B, H, W, Cin, Cout (int32), y,
then Triton's 2
hidden scratch pointers (NULL). Grid / block / shared memory: `launch_params`, `aot_compile`.
"""

from __future__ import annotations

import triton
import triton.language as tl

from hyperstyle_trt.core.errors import HsError
from hyperstyle_trt.plugins._triton import AotKernel, TileConfig, cdiv, check_dtype, compile_aot, triton_dtype

SQRT2 = tl.constexpr(1.4142135623730951)


@triton.jit
def _mod_w(w_ptr, d_base, w_off, wk_mask, s, sm, TAP, Cin, DELTA_MODE: tl.constexpr):
    """W'[k, n] = W[n, TAP, k] * (1 + delta) * s[k] in fp32 (OHWI: Cin contiguous); tiles [BLOCK_K, BLOCK_N]."""
    wt = tl.load(w_ptr + TAP * Cin + w_off, mask=wk_mask, other=0.0).to(tl.float32)
    if DELTA_MODE == 1:
        dt = tl.load(d_base + TAP * Cin + w_off, mask=wk_mask, other=0.0).to(tl.float32)
        wm = wt * (1.0 + dt) * s[:, None]
    elif DELTA_MODE == 2:
        wm = wt * sm  # sm = (1 + delta[b, n, k]) * s[k], hoisted out of the tap loop
    else:
        wm = wt * s[:, None]
    return wm


@triton.jit
def _load_x(x_base, qh, qw, DY, DX, H, W, Cin, offs_k, k_ok, m_ok):
    """x[b, qh+DY, qw+DX, offs_k] with zero padding: tile [BLOCK_M, BLOCK_K] in T."""
    hh = qh + DY
    ww = qw + DX
    ok = m_ok & (hh >= 0) & (hh < H) & (ww >= 0) & (ww < W)
    ptrs = x_base + (hh * W + ww)[:, None] * Cin + offs_k[None, :]
    return tl.load(ptrs, mask=ok[:, None] & k_ok[None, :], other=0.0)


@triton.jit
def _epilogue(acc, coef, bias, noise_ptr, y_base, oh, ow, Wo, Cout, offs_n, m_ok, n_ok):
    """y[oh, ow, n] = lrelu(acc*coef + noise[oh, ow] + bias, 0.2)*sqrt(2); acc [BLOCK_M, BLOCK_N] fp32."""
    pix = oh * Wo + ow  # [BLOCK_M] output pixel index
    nz = tl.load(noise_ptr + pix, mask=m_ok, other=0.0).to(tl.float32)
    v = acc * coef[None, :] + nz[:, None] + bias[None, :]
    v = tl.where(v >= 0.0, v, v * 0.2) * SQRT2
    ptrs = y_base + pix[:, None] * Cout + offs_n[None, :]
    tl.store(ptrs, v.to(y_base.dtype.element_ty), mask=m_ok[:, None] & n_ok[None, :])


@triton.jit
def _k_setup(style_base, d_base, k0, Cin, offs_n, n_ok, BLOCK_K: tl.constexpr, DELTA_MODE: tl.constexpr):
    """Per-K-step operands: channel offsets, masks, style s [BLOCK_K], W/delta tile offsets [BLOCK_K, BLOCK_N] (int32,
    relative to the per-sample base pointers) and, for per-channel delta, (1 + delta) * s [BLOCK_K, BLOCK_N]."""
    offs_k = k0 + tl.arange(0, BLOCK_K)
    k_ok = offs_k < Cin
    s = tl.load(style_base + offs_k, mask=k_ok, other=0.0).to(tl.float32)
    wk_mask = k_ok[:, None] & n_ok[None, :]
    w_off = offs_n[None, :] * (9 * Cin) + offs_k[:, None]  # W[n, 0, k] of OHWI [Cout, 3, 3, Cin]; delta[b] alike
    if DELTA_MODE == 2:  # delta[b] is [Cout, Cin]
        d2 = tl.load(d_base + offs_n[None, :] * Cin + offs_k[:, None], mask=wk_mask, other=0.0).to(tl.float32)
        sm = (1.0 + d2) * s[:, None]
    else:
        sm = s[:, None]
    return offs_k, k_ok, s, wk_mask, w_off, sm


@triton.jit
def _coef(sig, Cin, DEMOD: tl.constexpr, BLOCK_N: tl.constexpr):
    """coef = scale*rsqrt(scale^2*sig + 1e-8) (scale = 1/sqrt(9 Cin); just scale without demodulation), fp32
    [BLOCK_N]; sig = sum of W'^2 per output channel."""
    scale = 1.0 / tl.sqrt(Cin * 9.0)
    if DEMOD:
        coef = scale * tl.rsqrt(scale * scale * sig + 1e-8)
    else:
        coef = tl.zeros([BLOCK_N], dtype=tl.float32) + scale
    return coef


@triton.jit
def _coef_bias(sig, Cin, bias_ptr, offs_n, n_ok, DEMOD: tl.constexpr, BLOCK_N: tl.constexpr):
    """Per-output-channel epilogue operands: _coef and the bias, both fp32 [BLOCK_N]."""
    return _coef(sig, Cin, DEMOD, BLOCK_N), tl.load(bias_ptr + offs_n, mask=n_ok, other=0.0).to(tl.float32)


@triton.jit
def _program_tile(x_ptr, style_ptr, H, W, Cin, Cout, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    """This program's sample (int64), pixel and channel offsets with their masks, pixel row/column and the
    per-sample base pointers of x and style (tile offsets from them stay int32). Grid (M tiles, N tiles, B)."""
    b64 = tl.program_id(2).to(tl.int64)
    HW = H * W
    offs_m = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
    return (b64, HW, offs_m, offs_n, offs_m < HW, offs_n < Cout, offs_m // W, offs_m % W,
            x_ptr + b64 * HW * Cin, style_ptr + b64 * Cin)


@triton.jit
def _delta_base(d_ptr, b64, Cin, Cout, DELTA_MODE: tl.constexpr):
    """Pointer to delta[b]. Only called when DELTA_MODE != 0: with no delta input d_ptr is a constexpr None, and
    Triton < 3.7 cannot return None from a jit function ("cannot convert None ... to tensor")."""
    if DELTA_MODE == 1:
        return d_ptr + b64 * Cout * Cin * 9
    else:
        return d_ptr + b64 * Cout * Cin


@triton.jit(do_not_specialize=["B"])
def mod_conv_kernel(x_ptr, style_ptr, w_ptr, d_ptr, noise_ptr, bias_ptr, B, H, W, Cin, Cout, y_ptr,
                    DELTA_MODE: tl.constexpr, DEMOD: tl.constexpr, PREC: tl.constexpr,
                    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
    """3x3 modulated conv, stride 1, pad 1. Grid (cdiv(H*W, BLOCK_M), cdiv(Cout, BLOCK_N), B)."""
    b64, HW, offs_m, offs_n, m_ok, n_ok, ph, pw, x_base, style_base = _program_tile(
        x_ptr, style_ptr, H, W, Cin, Cout, BLOCK_M, BLOCK_N)  # offs_m: output pixel h*W + w
    d_base = d_ptr  # constexpr None without a delta input
    if DELTA_MODE != 0:
        d_base = _delta_base(d_ptr, b64, Cin, Cout, DELTA_MODE)
    acc = tl.zeros([BLOCK_M, BLOCK_N], dtype=tl.float32)
    sig = tl.zeros([BLOCK_N], dtype=tl.float32)
    for k0 in range(0, Cin, BLOCK_K):
        offs_k, k_ok, s, wk_mask, w_off, sm = _k_setup(style_base, d_base, k0, Cin, offs_n, n_ok, BLOCK_K, DELTA_MODE)
        for t in range(9):
            xt = _load_x(x_base, ph, pw, t // 3 - 1, t % 3 - 1, H, W, Cin, offs_k, k_ok, m_ok)
            wm = _mod_w(w_ptr, d_base, w_off, wk_mask, s, sm, t, Cin, DELTA_MODE)
            if DEMOD:
                sig += tl.sum(wm * wm, axis=0)
            acc = tl.dot(xt, wm.to(xt.dtype), acc, input_precision=PREC)
    coef, bias = _coef_bias(sig, Cin, bias_ptr, offs_n, n_ok, DEMOD, BLOCK_N)
    _epilogue(acc, coef, bias, noise_ptr, y_ptr + b64 * HW * Cout, ph, pw, W, Cout, offs_n, m_ok, n_ok)


@triton.jit
def _blur3(a0, a1, a2, R: tl.constexpr):
    """(A_R @ [a0, a1, a2]) along one axis; A_R is the phase-R polyphase matrix (module docstring)."""
    if R == 0:
        return 0.25 * a1 + 0.75 * a2, 0.75 * (a0 + a1) + 0.25 * a2, 0.25 * a0
    else:
        return 0.25 * a2, 0.25 * a0 + 0.75 * (a1 + a2), 0.75 * a0 + 0.25 * a1


@triton.jit
def _compose(w00, w01, w02, w10, w11, w12, w20, w21, w22, RY: tl.constexpr, RX: tl.constexpr):
    """Q = A_RY @ W' @ A_RX^T per tap, fp32 (w_{kh kw}: the W' taps): returns q_{ty tx} in tap order 3*ty + tx."""
    r00, r01, r02 = _blur3(w00, w01, w02, RX)  # r[kh][tx] = sum_kw A_RX[tx, kw] W'[kh, kw]
    r10, r11, r12 = _blur3(w10, w11, w12, RX)
    r20, r21, r22 = _blur3(w20, w21, w22, RX)
    q00, q10, q20 = _blur3(r00, r10, r20, RY)  # q[ty][tx] = sum_kh A_RY[ty, kh] r[kh][tx]
    q01, q11, q21 = _blur3(r01, r11, r21, RY)
    q02, q12, q22 = _blur3(r02, r12, r22, RY)
    return q00, q01, q02, q10, q11, q12, q20, q21, q22


@triton.jit
def _mod_w9(w_ptr, d_base, w_off, wk_mask, s, sm, Cin, DELTA_MODE: tl.constexpr):
    """The 9 modulated taps W'(kh, kw) (tap 3*kh + kw, unblurred), fp32 [BLOCK_K, BLOCK_N] each."""
    return (_mod_w(w_ptr, d_base, w_off, wk_mask, s, sm, 0, Cin, DELTA_MODE),
            _mod_w(w_ptr, d_base, w_off, wk_mask, s, sm, 1, Cin, DELTA_MODE),
            _mod_w(w_ptr, d_base, w_off, wk_mask, s, sm, 2, Cin, DELTA_MODE),
            _mod_w(w_ptr, d_base, w_off, wk_mask, s, sm, 3, Cin, DELTA_MODE),
            _mod_w(w_ptr, d_base, w_off, wk_mask, s, sm, 4, Cin, DELTA_MODE),
            _mod_w(w_ptr, d_base, w_off, wk_mask, s, sm, 5, Cin, DELTA_MODE),
            _mod_w(w_ptr, d_base, w_off, wk_mask, s, sm, 6, Cin, DELTA_MODE),
            _mod_w(w_ptr, d_base, w_off, wk_mask, s, sm, 7, Cin, DELTA_MODE),
            _mod_w(w_ptr, d_base, w_off, wk_mask, s, sm, 8, Cin, DELTA_MODE))


@triton.jit
def _sumsq9(w00, w01, w02, w10, w11, w12, w20, w21, w22):
    """sum over taps and K of W'^2: [BLOCK_N] fp32 (the demodulation sum of one K step)."""
    sq = w00 * w00 + w01 * w01 + w02 * w02 + w10 * w10 + w11 * w11 + w12 * w12 + w20 * w20 + w21 * w21
    return tl.sum(sq + w22 * w22, axis=0)


@triton.jit
def _phase(acc, x00, x01, x02, x10, x11, x12, x20, x21, x22, w00, w01, w02, w10, w11, w12, w20, w21, w22,
           RY: tl.constexpr, RX: tl.constexpr, PREC: tl.constexpr):
    """acc += sum_{ty,tx} x_{ty tx} @ Q[ty,tx], Q = A_RY @ W' @ A_RX^T formed in fp32 (w_{kh kw}: W' taps)."""
    q00, q01, q02, q10, q11, q12, q20, q21, q22 = _compose(w00, w01, w02, w10, w11, w12, w20, w21, w22, RY, RX)
    dt = x00.dtype
    acc = tl.dot(x00, q00.to(dt), acc, input_precision=PREC)
    acc = tl.dot(x01, q01.to(dt), acc, input_precision=PREC)
    acc = tl.dot(x02, q02.to(dt), acc, input_precision=PREC)
    acc = tl.dot(x10, q10.to(dt), acc, input_precision=PREC)
    acc = tl.dot(x11, q11.to(dt), acc, input_precision=PREC)
    acc = tl.dot(x12, q12.to(dt), acc, input_precision=PREC)
    acc = tl.dot(x20, q20.to(dt), acc, input_precision=PREC)
    acc = tl.dot(x21, q21.to(dt), acc, input_precision=PREC)
    acc = tl.dot(x22, q22.to(dt), acc, input_precision=PREC)
    return acc


@triton.jit(do_not_specialize=["B"])
def mod_conv_up_kernel(x_ptr, style_ptr, w_ptr, d_ptr, noise_ptr, bias_ptr, B, H, W, Cin, Cout, y_ptr,
                       DELTA_MODE: tl.constexpr, DEMOD: tl.constexpr, PREC: tl.constexpr,
                       BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
    """Upsampling modulated conv (transposed conv stride 2 + blur folded), x [B,H,W,Cin] -> y [B,2H,2W,Cout].
    Grid (cdiv(H*W, BLOCK_M), cdiv(Cout, BLOCK_N), B); a program writes 4*BLOCK_M output pixels."""
    b64, HW, offs_m, offs_n, m_ok, n_ok, qh, qw, x_base, style_base = _program_tile(
        x_ptr, style_ptr, H, W, Cin, Cout, BLOCK_M, BLOCK_N)  # offs_m: low-res position q = qh*W + qw
    d_base = d_ptr  # constexpr None without a delta input
    if DELTA_MODE != 0:
        d_base = _delta_base(d_ptr, b64, Cin, Cout, DELTA_MODE)
    acc00 = tl.zeros([BLOCK_M, BLOCK_N], dtype=tl.float32)  # phase (ry, rx) = (0, 0)
    acc01 = tl.zeros([BLOCK_M, BLOCK_N], dtype=tl.float32)
    acc10 = tl.zeros([BLOCK_M, BLOCK_N], dtype=tl.float32)
    acc11 = tl.zeros([BLOCK_M, BLOCK_N], dtype=tl.float32)
    sig = tl.zeros([BLOCK_N], dtype=tl.float32)
    for k0 in range(0, Cin, BLOCK_K):
        offs_k, k_ok, s, wk_mask, w_off, sm = _k_setup(style_base, d_base, k0, Cin, offs_n, n_ok, BLOCK_K, DELTA_MODE)
        x00 = _load_x(x_base, qh, qw, -1, -1, H, W, Cin, offs_k, k_ok, m_ok)  # x_{ty tx} at offset (ty-1, tx-1)
        x01 = _load_x(x_base, qh, qw, -1, 0, H, W, Cin, offs_k, k_ok, m_ok)
        x02 = _load_x(x_base, qh, qw, -1, 1, H, W, Cin, offs_k, k_ok, m_ok)
        x10 = _load_x(x_base, qh, qw, 0, -1, H, W, Cin, offs_k, k_ok, m_ok)
        x11 = _load_x(x_base, qh, qw, 0, 0, H, W, Cin, offs_k, k_ok, m_ok)
        x12 = _load_x(x_base, qh, qw, 0, 1, H, W, Cin, offs_k, k_ok, m_ok)
        x20 = _load_x(x_base, qh, qw, 1, -1, H, W, Cin, offs_k, k_ok, m_ok)
        x21 = _load_x(x_base, qh, qw, 1, 0, H, W, Cin, offs_k, k_ok, m_ok)
        x22 = _load_x(x_base, qh, qw, 1, 1, H, W, Cin, offs_k, k_ok, m_ok)
        w00, w01, w02, w10, w11, w12, w20, w21, w22 = _mod_w9(w_ptr, d_base, w_off, wk_mask, s, sm, Cin, DELTA_MODE)
        if DEMOD:
            sig += _sumsq9(w00, w01, w02, w10, w11, w12, w20, w21, w22)
        acc00 = _phase(acc00, x00, x01, x02, x10, x11, x12, x20, x21, x22,
                       w00, w01, w02, w10, w11, w12, w20, w21, w22, 0, 0, PREC)
        acc01 = _phase(acc01, x00, x01, x02, x10, x11, x12, x20, x21, x22,
                       w00, w01, w02, w10, w11, w12, w20, w21, w22, 0, 1, PREC)
        acc10 = _phase(acc10, x00, x01, x02, x10, x11, x12, x20, x21, x22,
                       w00, w01, w02, w10, w11, w12, w20, w21, w22, 1, 0, PREC)
        acc11 = _phase(acc11, x00, x01, x02, x10, x11, x12, x20, x21, x22,
                       w00, w01, w02, w10, w11, w12, w20, w21, w22, 1, 1, PREC)
    coef, bias = _coef_bias(sig, Cin, bias_ptr, offs_n, n_ok, DEMOD, BLOCK_N)
    Wo = 2 * W
    y_base = y_ptr + b64 * 4 * HW * Cout
    _epilogue(acc00, coef, bias, noise_ptr, y_base, 2 * qh, 2 * qw, Wo, Cout, offs_n, m_ok, n_ok)
    _epilogue(acc01, coef, bias, noise_ptr, y_base, 2 * qh, 2 * qw + 1, Wo, Cout, offs_n, m_ok, n_ok)
    _epilogue(acc10, coef, bias, noise_ptr, y_base, 2 * qh + 1, 2 * qw, Wo, Cout, offs_n, m_ok, n_ok)
    _epilogue(acc11, coef, bias, noise_ptr, y_base, 2 * qh + 1, 2 * qw + 1, Wo, Cout, offs_n, m_ok, n_ok)


# SMs with >= 160 KB of shared memory per block (A100: 163 KB; H100 / B200: 227 KB); the consumer parts that
# TensorRT-RTX targets (sm_86 / 89 / 120) have 99-101 KB.
LARGE_SMEM_ARCHS = frozenset({80, 90, 100, 103})


def select_config(H: int, W: int, Cin: int, Cout: int, upsample: int, dtype: str = "fp16",
                  arch: int = 90) -> TileConfig:
    """Deterministic tiles from the layer shape (input H, W), dtype and target SM, independent of the batch
    (TensorRT's B is dynamic). Upsampling: BLOCK_M counts low-res positions; each program writes 4*BLOCK_M output
    pixels (4 phases).

    fp16 (the production path), from tiles measured on an H100 for a kernel of this design (docs/kernels.md; OHWI
    W/delta,
    weight formed in fp32 registers), one step smaller where theirs spills here: `hs-bench codegen` (sm_90, Triton
    3.9, aligned like a JIT launch) reports no register spills for any FFHQ-1024 layer and delta mode with these.
    <= 32^2 keeps the smaller tiles so B=1 still fills the GPU (few-tile problems are what limit there).
    M256xN128xK64 (the H100 measurement's tile) spills 32-360 bytes here; M128xN128xK64 does not. Not yet timed by us.
    M128xN128xK64 stages 96-128 KB of shared memory: only on LARGE_SMEM_ARCHS; elsewhere every fp16 tile stays
    under 80 KB (`hs-bench codegen --arch 89`).
    fp32 (tests, fp32 engines): the smaller tiles (up to 144 KB of shared memory and 1.2-30 KB of register spills
    at 512 channels: a correctness path, not a fast one).
    """
    hw = H * W
    if upsample:
        if hw <= 16:
            return TileConfig(16, 64, 16, 8, 2)
        # sm_90 (wgmma): (32, 64, 16) spills 8-12 bytes, this tile none; sm_8x (mma.sync): this tile spills 1-3 KB
        return TileConfig(64, 32, 16, 8, 2) if arch >= 90 else TileConfig(32, 64, 16, 8, 2)
    if hw <= 16:  # fp16: `hs-bench tune` on an H200, B=1 / B=8: 49.5 / 53.0 us vs 88.5 / 90.6 for 16x64x64/w8
        return TileConfig(16, 32, 64, 4, 3) if dtype == "fp16" else TileConfig(16, 64, 64, 8, 3)
    if hw <= 256:  # fp16, H200: 42.0 / 45.8 us at 8^2 and 39.4 / 81.5 at 16^2 vs 51.0 / 54.3 and 53.8 / 78.1
        return TileConfig(64, 32, 64, 4, 3) if dtype == "fp16" else TileConfig(64, 64, 64, 8, 3)
    if hw <= 1024 or dtype != "fp16":
        return TileConfig(128, 64, 32, 8, 3) if Cout >= 64 else TileConfig(256, 32, 32, 8, 3)
    if Cout >= 128 and arch not in LARGE_SMEM_ARCHS:
        return TileConfig(128, 64, 32, 8, 3)
    if Cout >= 128:
        return TileConfig(128, 128, 64, 8, 3)
    if Cout >= 64:
        return TileConfig(256, 64, 32, 8, 3)
    return TileConfig(256, 32, 32, 4, 4)


def launch_params(B, H, W, Cin: int, Cout: int, upsample: int, cfg: TileConfig | None = None, cdiv_fn=cdiv,
                  dtype: str = "fp16", arch: int = 90):
    """(grid, cfg) for one launch; block = (32*cfg.num_warps, 1, 1).

    B / H / W may be symbolic (anything with + - // or a custom cdiv_fn, e.g. trtp.cdiv on ShapeExprs); the tile
    choice needs concrete H, W, Cin, Cout (fixed per generator layer) unless cfg is given.
    """
    cfg = cfg or select_config(H, W, Cin, Cout, upsample, dtype, arch)
    return (cdiv_fn(H * W, cfg.block_m), cdiv_fn(Cout, cfg.block_n), B), cfg


def _precision(dtype_name: str) -> str:
    return "ieee" if dtype_name == "fp32" else "tf32"  # fp16 operands ignore it


def check_contiguous(name: str, **tensors) -> None:
    """HsError naming the first non-contiguous tensor (None entries are absent inputs): the kernels index raw
    pointers with dense strides, so a strided view would be read and written out of bounds. A real check, not an
    assert (python -O removes asserts)."""
    for k, t in tensors.items():
        if t is not None and not t.is_contiguous():
            raise HsError(f"{name}: {k} must be contiguous (got strides {tuple(t.stride())} for shape "
                          f"{tuple(t.shape)}); pass .contiguous()")


def check_out(name: str, out, shape: tuple, dtype) -> None:
    """HsError unless the preallocated output has exactly `shape` and `dtype` (the kernel writes that many
    elements through out's pointer)."""
    if tuple(out.shape) != tuple(shape) or out.dtype != dtype:
        raise HsError(f"{name}: out must be {list(shape)} {dtype}, got {list(out.shape)} {out.dtype}")


def prepare_launch(name: str, x, style, weight, delta, noise, bias, upsample: int, out):
    """Checks shared by the torch-tensor launchers: one dtype T, contiguous tensors; allocates y when out is None.
    Returns (T, B, H, W, Cin, Cout, y, arch), arch = 10*major+minor of x's GPU (90 for the CPU interpreter)."""
    import torch

    dt = check_dtype("mod_conv", x, style, weight, delta, noise, bias)
    b, h, w, cin = x.shape
    cout = weight.shape[0]
    f = 2 if upsample else 1
    if out is None:
        out = torch.empty((b, f * h, f * w, cout), device=x.device, dtype=dt)
    check_out(name, out, (b, f * h, f * w, cout), dt)
    check_contiguous(name, x=x, style=style, weight=weight, delta=delta, noise=noise, bias=bias, out=out)
    major, minor = torch.cuda.get_device_capability(x.device) if x.is_cuda else (9, 0)
    return dt, b, h, w, cin, cout, out, 10 * major + minor


def mod_conv_triton(x, style, weight, delta, noise, bias, upsample: int = 0, delta_mode: int = 0,
                    demodulate: int = 1, out=None, cfg: TileConfig | None = None):
    """Launch on torch tensors (CUDA, or CPU under the Triton interpreter). Shapes as in reference.mod_conv_ref;
    all contiguous, one dtype T in {fp16, fp32}; out: optional preallocated y [B,Ho,Wo,Cout]. Returns y."""
    dt, b, h, w, cin, cout, out, arch = prepare_launch("mod_conv_triton", x, style, weight, delta, noise, bias,
                                                       upsample, out)
    if cfg is None:
        cfg = select_config(h, w, cin, cout, upsample, triton_dtype(dt), arch)
    grid, cfg = launch_params(b, h, w, cin, cout, upsample, cfg)
    kern = mod_conv_up_kernel if upsample else mod_conv_kernel
    kern[grid](x, style, weight, delta if delta_mode else None, noise, bias, b, h, w, cin, cout, out,
               DELTA_MODE=int(delta_mode), DEMOD=int(demodulate), PREC=_precision(triton_dtype(dt)),
               num_warps=cfg.num_warps, num_stages=cfg.num_stages, enable_fp_fusion=True, **cfg.constexprs())
    return out


def aot_compile(upsample: int, delta_mode: int, demodulate: int, dtype: str, cfg: TileConfig, arch: int = 90,
                aligned: bool = False) -> AotKernel:
    """Compile for TensorRT's AOT path (no GPU needed). dtype: "fp16" | "fp32". Entry params: x, style, weight,
    [delta if delta_mode], noise, bias, B, H, W, Cin, Cout (i32), y, + 2 hidden NULL pointers. Launch with grid from
    `launch_params(..., cfg=cfg)`, block kernel.block, dynamic shared memory kernel.shared_mem.
    aligned=True promises 16-byte aligned pointers and Cin, Cout multiples of 16 (all FFHQ layers; vectorized
    loads); the default assumes nothing, like a JIT launch on unaligned data would."""
    p = "*" + dtype
    sig = {"x_ptr": p, "style_ptr": p, "w_ptr": p, "d_ptr": p if delta_mode else "constexpr", "noise_ptr": p,
           "bias_ptr": p, "B": "i32", "H": "i32", "W": "i32", "Cin": "i32", "Cout": "i32", "y_ptr": p,
           "DELTA_MODE": "constexpr", "DEMOD": "constexpr", "PREC": "constexpr",
           "BLOCK_M": "constexpr", "BLOCK_N": "constexpr", "BLOCK_K": "constexpr"}
    const = {"DELTA_MODE": int(delta_mode), "DEMOD": int(demodulate), "PREC": _precision(dtype), **cfg.constexprs()}
    if not delta_mode:
        const["d_ptr"] = None
    div = tuple(k for k, v in sig.items() if v.startswith("*")) + ("Cin", "Cout") if aligned else ()
    return compile_aot(mod_conv_up_kernel if upsample else mod_conv_kernel, sig, const, cfg, arch, div)
