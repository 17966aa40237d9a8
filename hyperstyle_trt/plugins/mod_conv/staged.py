"""The staged path of `HsModConv`, which every layer runs on a GPU (plugins.mod_conv.strategy; the fused one-launch
kernel remains for TensorRT's AOT path and convs.0 at B >= 3): two or three launches.

An H100 measurement of a kernel of this design (docs/kernels.md) found the one-launch fused kernel 0.58-0.97x of
the PyTorch route at >= 128^2 (conv only), and the
same Triton GEMM fed *ready* weights 1.23-1.39x faster than the fused one at B=8: each weight tile serves many
pixels, so forming it once and letting the tensor cores read it straight from shared memory beats re-forming it in
registers in every program. On an H200 (benchmarks/results/) this path with split-K beat the fused kernel on 33 of
the 34 FFHQ (layer, batch) pairs, the small layers at B=1 included. The launches:

1. `mod_weight_kernel` forms the per-sample weight once, in fp32 exactly as the fused kernel does
   (W*(1+delta)*s, plugins.mod_conv.kernel._mod_w), and writes it in T to a workspace in the GEMM's operand layout
   wq [B, Cout, P, 9, Cin] (Cin contiguous), with coef [B, Cout] fp32 = scale*rsqrt(scale^2*sum W'^2 + 1e-8)
   (demodulation on the unblurred W', as in the official code; just scale without demodulation).
   P = 1 for the 3x3 conv; P = 4 for the upsampling conv, whose weights are stored already blur-composed per output
   phase: Q_{ry,rx} = A_ry @ W' @ A_rx^T (plugins/mod_conv/kernel.py docstring), formed in fp32 then cast, as the
   fused kernel does. The workspace is B*Cout*P*9*Cin elements: for B=8 fp16, 75.5 MB for the 512->256 upsampling
   layer (convs.8), 9.4 MB for 256->256 (convs.9); per sample (the conv grid's slowest axis) at most 9.4 MB, which
   stays in an H100's L2 while that sample's programs read it. Memory-bound: 5.2 us for 512->512 at B=1 (H200).
2. `mod_conv_ready_kernel`: implicit-GEMM 3x3 conv (M = pixels, N = Cout, K = 9*Cin) of x with wq, the epilogue
   (coef, noise, bias, lrelu*sqrt(2)) fused as in the fused kernel. For upsampling a program computes one phase
   (grid z = 4*B): output pixels (2qh+ry, 2qw+rx) from the 3x3 low-resolution neighbourhood of q, so the blur is
   folded into the weights and never runs as a pass.
3. Split-K (problems of few output tiles: the 512-channel layers at small batch, strategy.split_k): the ready conv
   runs S programs per tile, each over Cin/S input channels, storing fp32 partial sums to the workspace
   (part [B*P*S, H*W, Cout]); `mod_conv_finalize_kernel` adds them in a fixed order (deterministic) and applies
   the epilogue. conv1 at B=1: 12.7 us for the three launches, vs 49.5 us for the fused kernel (H200).

Numerics equal the fused kernel's: the same fp32 W' (and Q) rounded once to T, fp32 accumulation, the same epilogue
(split-K only changes the fp32 summation order).
Not for TensorRT's AOT path (one kernel per op, no workspace): there the fused kernel runs on every layer.
"""

from __future__ import annotations

import triton
import triton.language as tl

from hyperstyle_trt.core.errors import HsError
from hyperstyle_trt.plugins._triton import TileConfig, cdiv, triton_dtype
from hyperstyle_trt.plugins.mod_conv.kernel import (LARGE_SMEM_ARCHS, _coef, _compose, _delta_base, _epilogue, _k_setup,
                                                    _load_x, _mod_w9, _precision, _sumsq9, prepare_launch,
                                                    select_config)
from hyperstyle_trt.plugins.mod_conv.strategy import split_k, tuned, workspace_layout

# mod_weight_kernel (memory-bound: reads W and delta, writes the per-sample weight once): BLOCK_N output channels x
# BLOCK_K input channels per step, narrow in N so that B=1 still spreads over many SMs. The fastest of `hs-bench tune`'s
# candidates on an H200: 4x128/w4 for 3x3 layers of >= 128 input channels (5.2 us for 512->512 at B=1, 23.5 us at
# B=8), 8x64/w4 below that and for the upsampling layers (one phase per program: 10 us at B=1 and 102 us at B=8 for
# 512->512, which writes 4 phases = 75 MB at B=8).
WEIGHT_TILES = TileConfig(1, 4, 128, 4, 1)
WEIGHT_TILES_SMALL = TileConfig(1, 8, 64, 4, 1)  # 3x3 layers with Cin < 128
WEIGHT_TILES_UP = TileConfig(1, 8, 64, 4, 1)


def weight_tiles(Cin: int, upsample: int) -> TileConfig:
    """mod_weight_kernel's tiles for a layer (any dtype: the weight is formed in fp32 either way)."""
    if upsample:
        return WEIGHT_TILES_UP
    return WEIGHT_TILES if Cin >= 128 else WEIGHT_TILES_SMALL


@triton.jit
def _store9(base, mask, q00, q01, q02, q10, q11, q12, q20, q21, q22, Cin):
    """Store 9 fp32 tap tiles at base + t*Cin (tap t = 3*ty + tx), cast to the workspace type."""
    dt = base.dtype.element_ty
    tl.store(base + 0 * Cin, q00.to(dt), mask=mask)
    tl.store(base + 1 * Cin, q01.to(dt), mask=mask)
    tl.store(base + 2 * Cin, q02.to(dt), mask=mask)
    tl.store(base + 3 * Cin, q10.to(dt), mask=mask)
    tl.store(base + 4 * Cin, q11.to(dt), mask=mask)
    tl.store(base + 5 * Cin, q12.to(dt), mask=mask)
    tl.store(base + 6 * Cin, q20.to(dt), mask=mask)
    tl.store(base + 7 * Cin, q21.to(dt), mask=mask)
    tl.store(base + 8 * Cin, q22.to(dt), mask=mask)


@triton.jit
def _store_phase(wq_base, off, mask, w00, w01, w02, w10, w11, w12, w20, w21, w22, Cin,
                 RY: tl.constexpr, RX: tl.constexpr):
    """Store Q_{RY,RX}[ty,tx] = (A_RY @ W' @ A_RX^T)[ty,tx] at tap 3*ty+tx of phase 2*RY+RX (kernel._compose, as
    the fused kernel forms it), cast to the workspace type. off: [BLOCK_K, BLOCK_N] offsets of (n, phase 0, tap 0,
    k)."""
    q00, q01, q02, q10, q11, q12, q20, q21, q22 = _compose(w00, w01, w02, w10, w11, w12, w20, w21, w22, RY, RX)
    _store9(wq_base + off + (2 * RY + RX) * 9 * Cin, mask, q00, q01, q02, q10, q11, q12, q20, q21, q22, Cin)


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
        # all 9 taps are loaded before any store: a store may alias the next loads as far as the compiler knows,
        # so interleaving them would serialise one DRAM round trip per tap
        w00, w01, w02, w10, w11, w12, w20, w21, w22 = _mod_w9(w_ptr, d_base, w_off, wk_mask, s, sm, Cin, DELTA_MODE)
        if DEMOD:
            sig += _sumsq9(w00, w01, w02, w10, w11, w12, w20, w21, w22)
        if UP:
            if ph == 0:
                _store_phase(wq_base, off, wk_mask, w00, w01, w02, w10, w11, w12, w20, w21, w22, Cin, 0, 0)
            elif ph == 1:
                _store_phase(wq_base, off, wk_mask, w00, w01, w02, w10, w11, w12, w20, w21, w22, Cin, 0, 1)
            elif ph == 2:
                _store_phase(wq_base, off, wk_mask, w00, w01, w02, w10, w11, w12, w20, w21, w22, Cin, 1, 0)
            else:
                _store_phase(wq_base, off, wk_mask, w00, w01, w02, w10, w11, w12, w20, w21, w22, Cin, 1, 1)
        else:
            _store9(wq_base + off, wk_mask, w00, w01, w02, w10, w11, w12, w20, w21, w22, Cin)
    if ph == 0:
        tl.store(coef_ptr + b64 * Cout + offs_n, _coef(sig, Cin, DEMOD, BLOCK_N), mask=n_ok)


@triton.jit(do_not_specialize=["B", "K_PER"])
def mod_conv_ready_kernel(x_ptr, wq_ptr, coef_ptr, noise_ptr, bias_ptr, B, H, W, Cin, Cout, K_PER, y_ptr, part_ptr,
                          UP: tl.constexpr, PREC: tl.constexpr, SPLIT: tl.constexpr,
                          BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
    """y = lrelu(coef * conv3x3(x, wq[b, :, p]) + noise + bias, 0.2)*sqrt(2); x [B,H,W,Cin] -> y [B,Ho,Wo,Cout].
    Grid (cdiv(H*W, BLOCK_M), cdiv(Cout, BLOCK_N), P*B*S), z = (P*b + p)*S + s (sample-major: its weights stay hot
    in L2). SPLIT (split-K, for problems of few tiles): program s sums input channels [s*K_PER, (s+1)*K_PER) and
    stores its fp32 partial at part[(P*b + p)*S + s, m, n] ([*, H*W, Cout]); mod_conv_finalize_kernel adds the S
    partials and applies the epilogue. Without SPLIT, K_PER = Cin, S = 1 and the epilogue runs here."""
    P: tl.constexpr = 4 if UP else 1
    S = tl.cdiv(Cin, K_PER)
    z = tl.program_id(2)
    pz = z // S
    b64 = (pz // P).to(tl.int64)
    p = pz % P  # phase 2*ry + rx
    KB = K_PER // BLOCK_K  # K steps per split (K_PER is a multiple of BLOCK_K)
    kb_lo = (z % S) * KB
    kb_hi = tl.minimum(kb_lo + KB, tl.cdiv(Cin, BLOCK_K))
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
    for kb in range(kb_lo, kb_hi):
        # kb * BLOCK_K: Triton knows the offset is a multiple of BLOCK_K, so the loads stay 16-byte vectorized (a
        # loop over channels starting at a runtime k_lo hid that: staged convs ran 4-5x slower at 128^2+, H200)
        offs_k = kb * BLOCK_K + tl.arange(0, BLOCK_K)
        k_ok = offs_k < Cin  # exact: a split's blocks end at its own end or run past Cin
        wk_mask = k_ok[:, None] & n_ok[None, :]
        w_off = offs_n[None, :] * (P * 9 * Cin) + offs_k[:, None]
        for t in range(9):
            xt = _load_x(x_base, qh, qw, t // 3 - 1, t % 3 - 1, H, W, Cin, offs_k, k_ok, m_ok)
            wt = tl.load(w_base + w_off + t * Cin, mask=wk_mask, other=0.0)
            acc = tl.dot(xt, wt, acc, input_precision=PREC)
    if SPLIT:
        ptrs = part_ptr + z.to(tl.int64) * HW * Cout + offs_m[:, None] * Cout + offs_n[None, :]
        tl.store(ptrs, acc, mask=m_ok[:, None] & n_ok[None, :])
    else:
        coef = tl.load(coef_ptr + b64 * Cout + offs_n, mask=n_ok, other=0.0)
        bias = tl.load(bias_ptr + offs_n, mask=n_ok, other=0.0).to(tl.float32)
        F: tl.constexpr = 2 if UP else 1
        y_base = y_ptr + b64 * (F * F) * HW * Cout
        _epilogue(acc, coef, bias, noise_ptr, y_base, F * qh + p // 2, F * qw + p % 2, F * W, Cout, offs_n, m_ok,
                  n_ok)


@triton.jit(do_not_specialize=["B", "S"])
def mod_conv_finalize_kernel(part_ptr, coef_ptr, noise_ptr, bias_ptr, B, H, W, Cout, S, y_ptr,
                             UP: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    """Split-K epilogue: y = lrelu(coef * sum_s part[(P*b + p)*S + s] + noise + bias, 0.2)*sqrt(2), the partials
    added in s order (deterministic). Grid (cdiv(H*W, BLOCK_M), cdiv(Cout, BLOCK_N), P*B)."""
    P: tl.constexpr = 4 if UP else 1
    pz = tl.program_id(2)
    b64 = (pz // P).to(tl.int64)
    p = pz % P
    HW = H * W
    offs_m = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
    m_ok = offs_m < HW
    n_ok = offs_n < Cout
    mask = m_ok[:, None] & n_ok[None, :]
    ptrs = part_ptr + pz.to(tl.int64) * S * HW * Cout + offs_m[:, None] * Cout + offs_n[None, :]
    acc = tl.zeros([BLOCK_M, BLOCK_N], dtype=tl.float32)
    for s in range(S):
        acc += tl.load(ptrs + s * HW * Cout, mask=mask, other=0.0)
    coef = tl.load(coef_ptr + b64 * Cout + offs_n, mask=n_ok, other=0.0)
    bias = tl.load(bias_ptr + offs_n, mask=n_ok, other=0.0).to(tl.float32)
    F: tl.constexpr = 2 if UP else 1
    _epilogue(acc, coef, bias, noise_ptr, y_ptr + b64 * (F * F) * HW * Cout, F * (offs_m // W) + p // 2,
              F * (offs_m % W) + p % 2, F * W, Cout, offs_n, m_ok, n_ok)


def ready_config(H: int, W: int, Cin: int, Cout: int, dtype: str = "fp16", arch: int = 90, upsample: int = 0,
                 B: int = 8) -> TileConfig:
    """Tiles of mod_conv_ready_kernel for the H x W positions of one phase. fp16 on LARGE_SMEM_ARCHS for the FFHQ
    layer shapes: strategy.TUNED's measured winner for B's bucket (up to 144 KB of shared memory). Otherwise:
    M256xN128xK64/w8/s3 at >= 128 output channels beyond 32^2 on LARGE_SMEM_ARCHS, else the fused kernel's 3x3
    tiles (with 8 warps instead of 4 for the 32-channel layers on sm_8x; `hs-bench codegen --arch 89`). fp32 (every
    layer is staged, plugins.mod_conv.strategy) compiles without a spill on sm_90 and sm_89 (`--dtype fp32`)."""
    t = tuned(B, H, W, Cin, Cout, upsample) if dtype == "fp16" and arch in LARGE_SMEM_ARCHS else None
    if t is not None:
        return TileConfig(*t[0])
    if dtype == "fp16" and arch in LARGE_SMEM_ARCHS and H * W > 1024 and Cout >= 128:
        return TileConfig(256, 128, 64, 8, 3)
    if dtype != "fp16" and H * W <= 16:  # fp32 at 4^2: 16x64x64/w8 spills 8-24 B (sm_90/89, Triton 3.6/3.9); this none
        return TileConfig(16, 64, 32, 4, 3)
    cfg = select_config(H, W, Cin, Cout, 0, dtype, arch)
    if arch < 90 and cfg == TileConfig(256, 32, 32, 4, 4):  # sm_8x, Triton 3.6: 4 warps spill 120 B, 8 warps none
        return TileConfig(256, 32, 32, 8, 4)
    return cfg


FINALIZE_TILES = TileConfig(64, 64, 1, 4, 1)  # mod_conv_finalize_kernel (elementwise over [H*W, Cout] per phase)


def split_plan(Cin: int, split: int, block_k: int) -> tuple[int, int]:
    """(K_PER, S): input channels per split-K program, rounded up to whole K steps, and the resulting number of
    splits (<= split)."""
    k_per = cdiv(cdiv(Cin, max(1, split)), block_k) * block_k
    return k_per, cdiv(Cin, k_per)


def launch_weight(style, weight, delta, wq, coef, upsample: int, delta_mode: int, demodulate: int,
                  wcfg: TileConfig | None = None) -> None:
    """Stage 1 on torch tensors: wq [B*Cout*P*9*Cin] (T) and coef [B*Cout] (fp32) views of the workspace."""
    b, cin = style.shape
    cout = weight.shape[0]
    wt = wcfg or weight_tiles(cin, upsample)
    mod_weight_kernel[(cdiv(cout, wt.block_n), b, 4 if upsample else 1)](
        style, weight, delta if delta_mode else None, b, cin, cout, wq, coef,
        DELTA_MODE=int(delta_mode), DEMOD=int(demodulate), UP=int(bool(upsample)),
        BLOCK_N=wt.block_n, BLOCK_K=wt.block_k, num_warps=wt.num_warps, num_stages=wt.num_stages,
        enable_fp_fusion=True)


def launch_conv(x, wq, coef, noise, bias, out, part, upsample: int, cfg: TileConfig, split: int = 1) -> None:
    """Stage 2 (and, with split-K, the finalize launch) on torch tensors; part: fp32 view of the workspace's
    partial-sum buffer (None when split == 1)."""
    b, h, w, cin = x.shape
    cout = out.shape[-1]
    up = int(bool(upsample))
    k_per, s = split_plan(cin, split, cfg.block_k)
    grid = (cdiv(h * w, cfg.block_m), cdiv(cout, cfg.block_n), (4 if up else 1) * b * s)
    mod_conv_ready_kernel[grid](x, wq, coef, noise, bias, b, h, w, cin, cout, k_per, out, part if s > 1 else out,
                                UP=up, PREC=_precision(triton_dtype(x.dtype)), SPLIT=int(s > 1),
                                num_warps=cfg.num_warps, num_stages=cfg.num_stages, enable_fp_fusion=True,
                                **cfg.constexprs())
    if s > 1:
        ft = FINALIZE_TILES
        mod_conv_finalize_kernel[(cdiv(h * w, ft.block_m), cdiv(cout, ft.block_n), (4 if up else 1) * b)](
            part, coef, noise, bias, b, h, w, cout, s, out, UP=up, BLOCK_M=ft.block_m, BLOCK_N=ft.block_n,
            num_warps=ft.num_warps)


def check_workspace(workspace, total: int, device) -> None:
    """HsError unless `workspace` is a contiguous 1-D uint8 tensor of at least `total` bytes on `device`: the stages
    write that many bytes through its pointer. A real check, not an assert (python -O removes asserts)."""
    import torch

    if workspace.dtype != torch.uint8 or workspace.dim() != 1 or not workspace.is_contiguous():
        raise HsError(f"mod_conv_staged: workspace must be a contiguous 1-D uint8 tensor, got {workspace.dtype} "
                      f"{list(workspace.shape)}")
    if workspace.numel() < total:
        raise HsError(f"mod_conv_staged: workspace has {workspace.numel()} bytes, this launch needs {total}")
    if workspace.device != device:
        raise HsError(f"mod_conv_staged: workspace is on {workspace.device}, the inputs on {device}")


def mod_conv_staged(x, style, weight, delta, noise, bias, upsample: int = 0, delta_mode: int = 0,
                    demodulate: int = 1, out=None, cfg: TileConfig | None = None, workspace=None,
                    split: int | None = None, wcfg: TileConfig | None = None):
    """Launch the stages on torch tensors (CUDA, or CPU under the Triton interpreter); same contract and result as
    kernel.mod_conv_triton. workspace: optional 1-D uint8 tensor of at least workspace_layout(...).total bytes
    (allocated here when None). cfg / split / wcfg override the production conv tiles, split-K count and weight
    tiles (tile sweeps, tests). Returns y."""
    import torch

    dt, b, h, w, cin, cout, out, arch = prepare_launch("mod_conv_staged", x, style, weight, delta, noise, bias,
                                                       upsample, out)
    tname = triton_dtype(dt)
    if split is None:
        split = split_k(b, h, w, cin, cout, upsample, tname)
    lay = workspace_layout(b, cin, cout, upsample, tname, split=split, HW=h * w)
    if workspace is None:
        workspace = torch.empty(lay.total, device=x.device, dtype=torch.uint8)
    check_workspace(workspace, lay.total, x.device)
    f = 2 if upsample else 1
    wq = workspace[:b * cout * f * f * 9 * cin * dt.itemsize].view(dt)
    coef = workspace[lay.coef:lay.coef + b * cout * 4].view(torch.float32)
    part = workspace[lay.part:lay.total].view(torch.float32) if lay.total > lay.part else None
    if cfg is None:
        cfg = ready_config(h, w, cin, cout, tname, arch, upsample, b)
    launch_weight(style, weight, delta, wq, coef, upsample, delta_mode, demodulate, wcfg)
    launch_conv(x, wq, coef, noise, bias, out, part, upsample, cfg, split)
    return out


def _divisible(sig: dict[str, str], aligned: bool) -> tuple[str, ...]:
    return tuple(k for k, v in sig.items() if v.startswith("*")) + ("Cin", "Cout") if aligned else ()


def aot_compile_weight(upsample: int, delta_mode: int, demodulate: int, dtype: str, arch: int = 90,
                       aligned: bool = False, wcfg: TileConfig | None = None):
    """mod_weight_kernel compiled for `sm_{arch}` without a GPU (static analysis: hs-bench codegen; not a TensorRT
    AOT path, which allows one kernel per op and no workspace). aligned: as kernel.aot_compile. wcfg: default
    weight_tiles(512, upsample)."""
    from hyperstyle_trt.plugins._triton import compile_aot

    p = "*" + dtype
    up = int(bool(upsample))
    wt = wcfg or weight_tiles(512, up)
    sig = {"style_ptr": p, "w_ptr": p, "d_ptr": p if delta_mode else "constexpr", "B": "i32", "Cin": "i32",
           "Cout": "i32", "wq_ptr": p, "coef_ptr": "*fp32", "DELTA_MODE": "constexpr", "DEMOD": "constexpr",
           "UP": "constexpr", "BLOCK_N": "constexpr", "BLOCK_K": "constexpr"}
    const = {"DELTA_MODE": int(delta_mode), "DEMOD": int(demodulate), "UP": up, "BLOCK_N": wt.block_n,
             "BLOCK_K": wt.block_k}
    if not delta_mode:
        const["d_ptr"] = None
    return compile_aot(mod_weight_kernel, sig, const, wt, arch, _divisible(sig, aligned))


def aot_compile_ready(upsample: int, dtype: str, cfg: TileConfig, arch: int = 90, aligned: bool = False,
                      split: bool = False):
    """mod_conv_ready_kernel compiled for `sm_{arch}` without a GPU (static analysis, as aot_compile_weight);
    split: the split-K variant (fp32 partial sums out)."""
    from hyperstyle_trt.plugins._triton import compile_aot

    p = "*" + dtype
    sig = {"x_ptr": p, "wq_ptr": p, "coef_ptr": "*fp32", "noise_ptr": p, "bias_ptr": p, "B": "i32", "H": "i32",
           "W": "i32", "Cin": "i32", "Cout": "i32", "K_PER": "i32", "y_ptr": p, "part_ptr": "*fp32" if split else p,
           "UP": "constexpr", "PREC": "constexpr", "SPLIT": "constexpr",
           "BLOCK_M": "constexpr", "BLOCK_N": "constexpr", "BLOCK_K": "constexpr"}
    const = {"UP": int(bool(upsample)), "PREC": _precision(dtype), "SPLIT": int(bool(split)), **cfg.constexprs()}
    return compile_aot(mod_conv_ready_kernel, sig, const, cfg, arch, _divisible(sig, aligned))
