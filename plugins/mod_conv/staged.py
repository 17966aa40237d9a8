"""The staged ("hybrid") path of `HsModConv` for the high-resolution layers: two launches instead of one.

KERNELS.md measured the one-launch fused kernel 0.58-0.97x of the PyTorch route at >= 128^2 (conv only), and the
same Triton GEMM fed *ready* weights 1.23-1.39x faster than the fused one at B=8: at high resolution each weight
tile serves many pixels, so forming it once and letting the tensor cores read it straight from shared memory beats
re-forming it in registers in every program. Hence:

1. `mod_weight_kernel` forms the per-sample weight once, in fp32 exactly as the fused kernel does
   (W*(1+delta)*s, plugins.mod_conv.kernel._mod_w), and writes it in T to a workspace in the GEMM's operand layout
   wq [B, Cout, P, 9, Cin] (Cin contiguous), with coef [B, Cout] fp32 = scale*rsqrt(scale^2*sum W'^2 + 1e-8)
   (demodulation on the unblurred W', as in the official code; just scale without demodulation).
   P = 1 for the 3x3 conv; P = 4 for the upsampling conv, whose weights are stored already blur-composed per output
   phase: Q_{ry,rx} = A_ry @ W' @ A_rx^T (plugins/mod_conv/kernel.py docstring), formed in fp32 then cast, as the
   fused kernel does. The workspace is B*Cout*P*9*Cin elements: for B=8 fp16, 75.5 MB for the 512->256 upsampling
   layer (convs.8), 9.4 MB for 256->256 (convs.9); per sample (the conv grid's slowest axis) at most 9.4 MB, which
   stays in an H100's L2 while that sample's programs read it.
2. `mod_conv_ready_kernel`: implicit-GEMM 3x3 conv (M = pixels, N = Cout, K = 9*Cin) of x with wq, the epilogue
   (coef, noise, bias, lrelu*sqrt(2)) fused as in the fused kernel. For upsampling a program computes one phase
   (grid z = 4*B): output pixels (2qh+ry, 2qw+rx) from the 3x3 low-resolution neighbourhood of q, so the blur is
   folded into the weights and never runs as a pass.

Numerics equal the fused kernel's: the same fp32 W' (and Q) rounded once to T, fp32 accumulation, the same epilogue.
Not for TensorRT's AOT path (one kernel per op, no workspace): there the fused kernel runs on every layer.
Which layers take this path: plugins.mod_conv.strategy.select_strategy.
"""

from __future__ import annotations

import triton
import triton.language as tl

from plugins._triton import TileConfig, cdiv, triton_dtype
from plugins.mod_conv.kernel import (LARGE_SMEM_ARCHS, _coef, _compose, _delta_base, _epilogue, _k_setup, _load_x,
                                     _mod_w, _mod_w9, _precision, _sumsq9, prepare_launch, select_config)
from plugins.mod_conv.strategy import workspace_layout

# mod_weight_kernel (memory-bound: reads W and delta, writes the per-sample weight once): BLOCK_N output channels x
# BLOCK_K input channels per step, narrow in N so that B=1 still spreads over many SMs; upsampling programs write one
# phase each (grid Cout/BLOCK_N x B x 4). convs.8 (512->256 up, 9.4 MB per sample) at B=1: 128 programs; convs.9
# (256->256): 32. Not timed yet (hs-bench kernels times the staged pair as a whole).
WEIGHT_TILES = TileConfig(1, 8, 64, 2, 1)
WEIGHT_TILES_UP = TileConfig(1, 8, 32, 2, 1)  # the 9 fp32 tap tiles and one phase's blur compositions live at once


@triton.jit
def _store_phase(wq_base, off, mask, w00, w01, w02, w10, w11, w12, w20, w21, w22, Cin,
                 RY: tl.constexpr, RX: tl.constexpr):
    """Store Q_{RY,RX}[ty,tx] = (A_RY @ W' @ A_RX^T)[ty,tx] at tap 3*ty+tx of phase 2*RY+RX (kernel._compose, as
    the fused kernel forms it), cast to the workspace type. off: [BLOCK_K, BLOCK_N] offsets of (n, phase 0, tap 0,
    k)."""
    q00, q01, q02, q10, q11, q12, q20, q21, q22 = _compose(w00, w01, w02, w10, w11, w12, w20, w21, w22, RY, RX)
    dt = wq_base.dtype.element_ty
    base = wq_base + off + (2 * RY + RX) * 9 * Cin
    tl.store(base + 0 * Cin, q00.to(dt), mask=mask)
    tl.store(base + 1 * Cin, q01.to(dt), mask=mask)
    tl.store(base + 2 * Cin, q02.to(dt), mask=mask)
    tl.store(base + 3 * Cin, q10.to(dt), mask=mask)
    tl.store(base + 4 * Cin, q11.to(dt), mask=mask)
    tl.store(base + 5 * Cin, q12.to(dt), mask=mask)
    tl.store(base + 6 * Cin, q20.to(dt), mask=mask)
    tl.store(base + 7 * Cin, q21.to(dt), mask=mask)
    tl.store(base + 8 * Cin, q22.to(dt), mask=mask)


@triton.jit(do_not_specialize=["B"])
def mod_weight_kernel(style_ptr, w_ptr, d_ptr, B, Cin, Cout, wq_ptr, coef_ptr,
                      DELTA_MODE: tl.constexpr, DEMOD: tl.constexpr, UP: tl.constexpr,
                      BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
    """wq[b, n, p, t, k] (T) and coef[b, n] (fp32); see the module docstring. Grid (cdiv(Cout, BLOCK_N), B, P):
    program (., b, p) writes phase p (P = 4 when upsampling, else 1); the phase-0 programs write coef."""
    b64 = tl.program_id(1).to(tl.int64)
    ph = tl.program_id(2)
    offs_n = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    n_ok = offs_n < Cout
    style_base = style_ptr + b64 * Cin
    d_base = d_ptr  # constexpr None without a delta input
    if DELTA_MODE != 0:
        d_base = _delta_base(d_ptr, b64, Cin, Cout, DELTA_MODE)
    P: tl.constexpr = 4 if UP else 1
    wq_base = wq_ptr + b64 * Cout * P * 9 * Cin
    sig = tl.zeros([BLOCK_N], dtype=tl.float32)
    for k0 in range(0, Cin, BLOCK_K):
        offs_k, k_ok, s, wk_mask, w_off, sm = _k_setup(style_base, d_base, k0, Cin, offs_n, n_ok, BLOCK_K, DELTA_MODE)
        off = offs_n[None, :] * (P * 9 * Cin) + offs_k[:, None]  # wq[b, n, 0, 0, k] as [BLOCK_K, BLOCK_N]
        if UP:
            w00, w01, w02, w10, w11, w12, w20, w21, w22 = _mod_w9(w_ptr, d_base, w_off, wk_mask, s, sm, Cin,
                                                                 DELTA_MODE)
            if DEMOD:
                sig += _sumsq9(w00, w01, w02, w10, w11, w12, w20, w21, w22)
            if ph == 0:
                _store_phase(wq_base, off, wk_mask, w00, w01, w02, w10, w11, w12, w20, w21, w22, Cin, 0, 0)
            elif ph == 1:
                _store_phase(wq_base, off, wk_mask, w00, w01, w02, w10, w11, w12, w20, w21, w22, Cin, 0, 1)
            elif ph == 2:
                _store_phase(wq_base, off, wk_mask, w00, w01, w02, w10, w11, w12, w20, w21, w22, Cin, 1, 0)
            else:
                _store_phase(wq_base, off, wk_mask, w00, w01, w02, w10, w11, w12, w20, w21, w22, Cin, 1, 1)
        else:
            for t in tl.static_range(9):
                wm = _mod_w(w_ptr, d_base, w_off, wk_mask, s, sm, t, Cin, DELTA_MODE)
                if DEMOD:
                    sig += tl.sum(wm * wm, axis=0)
                tl.store(wq_base + off + t * Cin, wm.to(wq_ptr.dtype.element_ty), mask=wk_mask)
    if ph == 0:
        tl.store(coef_ptr + b64 * Cout + offs_n, _coef(sig, Cin, DEMOD, BLOCK_N), mask=n_ok)


@triton.jit(do_not_specialize=["B"])
def mod_conv_ready_kernel(x_ptr, wq_ptr, coef_ptr, noise_ptr, bias_ptr, B, H, W, Cin, Cout, y_ptr,
                          UP: tl.constexpr, PREC: tl.constexpr,
                          BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
    """y = lrelu(coef * conv3x3(x, wq[b, :, p]) + noise + bias, 0.2)*sqrt(2); x [B,H,W,Cin] -> y [B,Ho,Wo,Cout].
    Grid (cdiv(H*W, BLOCK_M), cdiv(Cout, BLOCK_N), P*B), z = P*b + p (sample-major: its weights stay hot in L2)."""
    P: tl.constexpr = 4 if UP else 1
    pz = tl.program_id(2)
    b64 = (pz // P).to(tl.int64)
    p = pz % P  # phase 2*ry + rx
    HW = H * W
    offs_m = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)  # (low-resolution) position qh*W + qw
    offs_n = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
    m_ok = offs_m < HW
    n_ok = offs_n < Cout
    qh = offs_m // W
    qw = offs_m % W
    x_base = x_ptr + b64 * HW * Cin
    w_base = wq_ptr + b64 * Cout * P * 9 * Cin + p * 9 * Cin
    acc = tl.zeros([BLOCK_M, BLOCK_N], dtype=tl.float32)
    for k0 in range(0, Cin, BLOCK_K):
        offs_k = k0 + tl.arange(0, BLOCK_K)
        k_ok = offs_k < Cin
        wk_mask = k_ok[:, None] & n_ok[None, :]
        w_off = offs_n[None, :] * (P * 9 * Cin) + offs_k[:, None]
        for t in range(9):
            xt = _load_x(x_base, qh, qw, t // 3 - 1, t % 3 - 1, H, W, Cin, offs_k, k_ok, m_ok)
            wt = tl.load(w_base + w_off + t * Cin, mask=wk_mask, other=0.0)
            acc = tl.dot(xt, wt, acc, input_precision=PREC)
    coef = tl.load(coef_ptr + b64 * Cout + offs_n, mask=n_ok, other=0.0)
    bias = tl.load(bias_ptr + offs_n, mask=n_ok, other=0.0).to(tl.float32)
    F: tl.constexpr = 2 if UP else 1
    y_base = y_ptr + b64 * (F * F) * HW * Cout
    _epilogue(acc, coef, bias, noise_ptr, y_base, F * qh + p // 2, F * qw + p % 2, F * W, Cout, offs_n, m_ok, n_ok)


def ready_config(H: int, W: int, Cin: int, Cout: int, dtype: str = "fp16", arch: int = 90) -> TileConfig:
    """Tiles of mod_conv_ready_kernel for the H x W positions of one phase: KERNELS.md's measured winner
    M256xN128xK64/w8/s3 at >= 128 output channels beyond 32^2 on LARGE_SMEM_ARCHS (144 KB of shared memory; no
    register spills for the ready kernel on sm_90, where the fused one spills), else the fused kernel's 3x3 tiles
    (with 8 warps instead of 4 for the 32-channel layers on sm_8x; `hs-bench codegen --arch 89`). fp32 (every layer
    is staged, plugins.mod_conv.strategy) compiles without a spill on sm_90 and sm_89 (`--dtype fp32`)."""
    if dtype == "fp16" and arch in LARGE_SMEM_ARCHS and H * W > 1024 and Cout >= 128:
        return TileConfig(256, 128, 64, 8, 3)
    if dtype != "fp16" and H * W <= 16:  # fp32 at 4^2: 16x64x64/w8 spills 8-24 B (sm_90/89, Triton 3.6/3.9); this none
        return TileConfig(16, 64, 32, 4, 3)
    cfg = select_config(H, W, Cin, Cout, 0, dtype, arch)
    if arch < 90 and cfg == TileConfig(256, 32, 32, 4, 4):  # sm_8x, Triton 3.6: 4 warps spill 120 B, 8 warps none
        return TileConfig(256, 32, 32, 8, 4)
    return cfg


def staged_launch_params(B, H, W, Cin: int, Cout: int, upsample: int, cfg: TileConfig):
    """((weight grid), (conv grid)) for the two launches; blocks (32*num_warps, 1, 1)."""
    wt = WEIGHT_TILES_UP if upsample else WEIGHT_TILES
    p = 4 if upsample else 1
    return (cdiv(Cout, wt.block_n), B, p), (cdiv(H * W, cfg.block_m), cdiv(Cout, cfg.block_n), p * B)


def mod_conv_staged(x, style, weight, delta, noise, bias, upsample: int = 0, delta_mode: int = 0,
                    demodulate: int = 1, out=None, cfg: TileConfig | None = None, workspace=None):
    """Launch both stages on torch tensors (CUDA, or CPU under the Triton interpreter); same contract and result as
    kernel.mod_conv_triton. workspace: optional 1-D uint8 tensor of at least workspace_layout(...)[1] bytes
    (allocated here when None). Returns y."""
    import torch

    dt, b, h, w, cin, cout, out, arch = prepare_launch("mod_conv_staged", x, style, weight, delta, noise, bias,
                                                       upsample, out)
    tname = triton_dtype(dt)
    f = 2 if upsample else 1
    off, total = workspace_layout(b, cin, cout, upsample, tname)
    if workspace is None:
        workspace = torch.empty(total, device=x.device, dtype=torch.uint8)
    assert workspace.dtype == torch.uint8 and workspace.numel() >= total, f"workspace needs {total} bytes"
    wq = workspace[:b * cout * f * f * 9 * cin * dt.itemsize].view(dt)
    coef = workspace[off:total].view(torch.float32)
    if cfg is None:
        cfg = ready_config(h, w, cin, cout, tname, arch)
    g1, g2 = staged_launch_params(b, h, w, cin, cout, upsample, cfg)
    wt = WEIGHT_TILES_UP if upsample else WEIGHT_TILES
    mod_weight_kernel[g1](style, weight, delta if delta_mode else None, b, cin, cout, wq, coef,
                          DELTA_MODE=int(delta_mode), DEMOD=int(demodulate), UP=int(bool(upsample)),
                          BLOCK_N=wt.block_n, BLOCK_K=wt.block_k, num_warps=wt.num_warps,
                          num_stages=wt.num_stages, enable_fp_fusion=True)
    mod_conv_ready_kernel[g2](x, wq, coef, noise, bias, b, h, w, cin, cout, out, UP=int(bool(upsample)),
                              PREC=_precision(tname), num_warps=cfg.num_warps, num_stages=cfg.num_stages,
                              enable_fp_fusion=True, **cfg.constexprs())
    return out


def _divisible(sig: dict[str, str], aligned: bool) -> tuple[str, ...]:
    return tuple(k for k, v in sig.items() if v.startswith("*")) + ("Cin", "Cout") if aligned else ()


def aot_compile_weight(upsample: int, delta_mode: int, demodulate: int, dtype: str, arch: int = 90,
                       aligned: bool = False):
    """mod_weight_kernel compiled for `sm_{arch}` without a GPU (static analysis: hs-bench codegen; not a TensorRT
    AOT path, which allows one kernel per op and no workspace). aligned: as kernel.aot_compile."""
    from plugins._triton import compile_aot

    p = "*" + dtype
    up = int(bool(upsample))
    wt = WEIGHT_TILES_UP if up else WEIGHT_TILES
    sig = {"style_ptr": p, "w_ptr": p, "d_ptr": p if delta_mode else "constexpr", "B": "i32", "Cin": "i32",
           "Cout": "i32", "wq_ptr": p, "coef_ptr": "*fp32", "DELTA_MODE": "constexpr", "DEMOD": "constexpr",
           "UP": "constexpr", "BLOCK_N": "constexpr", "BLOCK_K": "constexpr"}
    const = {"DELTA_MODE": int(delta_mode), "DEMOD": int(demodulate), "UP": up, "BLOCK_N": wt.block_n,
             "BLOCK_K": wt.block_k}
    if not delta_mode:
        const["d_ptr"] = None
    return compile_aot(mod_weight_kernel, sig, const, wt, arch, _divisible(sig, aligned))


def aot_compile_ready(upsample: int, dtype: str, cfg: TileConfig, arch: int = 90, aligned: bool = False):
    """mod_conv_ready_kernel compiled for `sm_{arch}` without a GPU (static analysis, as aot_compile_weight)."""
    from plugins._triton import compile_aot

    p = "*" + dtype
    sig = {"x_ptr": p, "wq_ptr": p, "coef_ptr": "*fp32", "noise_ptr": p, "bias_ptr": p, "B": "i32", "H": "i32",
           "W": "i32", "Cin": "i32", "Cout": "i32", "y_ptr": p, "UP": "constexpr", "PREC": "constexpr",
           "BLOCK_M": "constexpr", "BLOCK_N": "constexpr", "BLOCK_K": "constexpr"}
    const = {"UP": int(bool(upsample)), "PREC": _precision(dtype), **cfg.constexprs()}
    return compile_aot(mod_conv_ready_kernel, sig, const, cfg, arch, _divisible(sig, aligned))
