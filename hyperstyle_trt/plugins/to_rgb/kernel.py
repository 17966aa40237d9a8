"""Triton kernel for `HsToRGB`: 1x1 modulated conv (no demodulation) + bias + 2x-upsampled skip, NHWC, T in
{fp16, fp32}, fp32 accumulation.

GEMM per sample b: M = H*W pixels, N = 3 (padded to a 16-wide tile for the tensor-core dot), K = Cin. The per-sample
weight W*(1+delta)*s*scale is formed in registers. The skip upsample (upfirdn2d up=2, pad=(2,1), kernel
outer(f1, f1), f1 = [1,3,3,1]/4) is fused in the epilogue: output row 2q+r reads skip rows q-1+r and q+r with
weights (1/4 + r/2, 3/4 - r/2), likewise for columns (zero outside the skip image).

Launch ABI (docs/tensorrt_plugins.md §3): x, style, weight, [delta], bias, [skip], B, H, W, Cin (int32), rgb,
then Triton's 2
hidden scratch pointers (NULL). Grid / block / shared memory: `launch_params`, `aot_compile`.
"""

from __future__ import annotations

import triton
import triton.language as tl

from hyperstyle_trt.plugins._triton import AotKernel, TileConfig, cdiv, check_dtype, compile_aot, triton_dtype
from hyperstyle_trt.plugins.mod_conv.kernel import check_contiguous, check_out

NPAD = tl.constexpr(16)  # N tile: 3 output channels padded to the minimum dot width


@triton.jit
def _skip_tap(skip_base, sy, sx, wy, wx, Hs, Ws, offs_c, m_ok):
    """wy*wx * skip[sy, sx, c] (zero outside the skip image): [BLOCK_M, NPAD] fp32."""
    ok = m_ok & (sy >= 0) & (sy < Hs) & (sx >= 0) & (sx < Ws)
    ptrs = skip_base + (sy * Ws + sx)[:, None] * 3 + offs_c[None, :]
    v = tl.load(ptrs, mask=ok[:, None] & (offs_c[None, :] < 3), other=0.0).to(tl.float32)
    return v * (wy * wx)[:, None]


@triton.jit(do_not_specialize=["B"])
def to_rgb_kernel(x_ptr, style_ptr, w_ptr, d_ptr, bias_ptr, skip_ptr, B, H, W, Cin, y_ptr,
                  DELTA_MODE: tl.constexpr, HAS_SKIP: tl.constexpr, PREC: tl.constexpr,
                  BLOCK_M: tl.constexpr, BLOCK_K: tl.constexpr):
    """Grid (cdiv(H*W, BLOCK_M), 1, B)."""
    pid_m = tl.program_id(0)
    b64 = tl.program_id(2).to(tl.int64)
    HW = H * W
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)  # pixel = h*W + w
    offs_c = tl.arange(0, NPAD)  # output channel (3 valid)
    m_ok = offs_m < HW
    c_ok = offs_c < 3
    x_base = x_ptr + b64 * HW * Cin
    acc = tl.zeros([BLOCK_M, NPAD], dtype=tl.float32)
    for k0 in range(0, Cin, BLOCK_K):
        offs_k = k0 + tl.arange(0, BLOCK_K)
        k_ok = offs_k < Cin
        xt = tl.load(x_base + offs_m[:, None] * Cin + offs_k[None, :], mask=m_ok[:, None] & k_ok[None, :],
                     other=0.0)  # [BLOCK_M, BLOCK_K]
        s = tl.load(style_ptr + b64 * Cin + offs_k, mask=k_ok, other=0.0).to(tl.float32)
        wk_mask = k_ok[:, None] & c_ok[None, :]
        w_off = offs_c[None, :] * Cin + offs_k[:, None]  # W[c, k] of [3, Cin]; delta[b] alike
        wt = tl.load(w_ptr + w_off, mask=wk_mask, other=0.0).to(tl.float32)  # [BLOCK_K, NPAD]
        if DELTA_MODE == 1:
            dt = tl.load(d_ptr + b64 * 3 * Cin + w_off, mask=wk_mask, other=0.0).to(tl.float32)
            wm = wt * (1.0 + dt) * s[:, None]
        else:
            wm = wt * s[:, None]
        acc = tl.dot(xt, wm.to(xt.dtype), acc, input_precision=PREC)
    scale = 1.0 / tl.sqrt(Cin * 1.0)
    bias = tl.load(bias_ptr + offs_c, mask=c_ok, other=0.0).to(tl.float32)
    v = acc * scale + bias[None, :]
    ph = offs_m // W
    pw = offs_m % W
    if HAS_SKIP:
        Hs = H // 2
        Ws = W // 2
        skip_base = skip_ptr + b64 * Hs * Ws * 3
        ry = ph % 2
        rx = pw % 2
        y0 = ph // 2 - 1 + ry  # the two skip rows that reach output row ph, and their weights
        x0 = pw // 2 - 1 + rx
        wy0 = 0.25 + 0.5 * ry.to(tl.float32)
        wx0 = 0.25 + 0.5 * rx.to(tl.float32)
        v += _skip_tap(skip_base, y0, x0, wy0, wx0, Hs, Ws, offs_c, m_ok)
        v += _skip_tap(skip_base, y0, x0 + 1, wy0, 1.0 - wx0, Hs, Ws, offs_c, m_ok)
        v += _skip_tap(skip_base, y0 + 1, x0, 1.0 - wy0, wx0, Hs, Ws, offs_c, m_ok)
        v += _skip_tap(skip_base, y0 + 1, x0 + 1, 1.0 - wy0, 1.0 - wx0, Hs, Ws, offs_c, m_ok)
    ptrs = y_ptr + b64 * HW * 3 + offs_m[:, None] * 3 + offs_c[None, :]
    tl.store(ptrs, v.to(y_ptr.dtype.element_ty), mask=m_ok[:, None] & c_ok[None, :])


def select_config(H: int, W: int, Cin: int) -> TileConfig:
    """Deterministic tiles from the layer shape (batch-independent). block_n is the padded N (16). The fastest of
    `hs-bench tune`'s candidates over B=1 and B=8 on an H200 (fp16): 32x16x64/w4/s3 up to 32^2 (3.6-5.7 us),
    64x16x64/w4/s3 at 64^2-128^2, 128x16x64/w4/s3 at 256^2 (59.5 us at B=8), and for the 32- and 64-channel layers
    (512^2, 1024^2) 128x16x16/w4/s2: 138 / 379 us at B=8 where 128x16x{32,64} took 199-201 / 727 us."""
    hw = H * W
    if Cin <= 64:
        return TileConfig(128, 16, 16, 4, 2)
    if hw <= 32 * 32:
        return TileConfig(32, 16, 64, 4, 3)
    if hw <= 128 * 128:
        return TileConfig(64, 16, 64, 4, 3)
    return TileConfig(128, 16, 64, 4, 3)


def launch_params(B, H, W, Cin: int, has_skip: int = 0, cfg: TileConfig | None = None, cdiv_fn=cdiv):
    """(grid, cfg); block = (32*cfg.num_warps, 1, 1). B may be symbolic (anything with + - //, or pass cdiv_fn);
    H, W, Cin must be concrete unless cfg is given. has_skip does not change the launch (kept for symmetry)."""
    cfg = cfg or select_config(H, W, Cin)
    return (cdiv_fn(H * W, cfg.block_m), 1, B), cfg


def _precision(dtype_name: str) -> str:
    return "ieee" if dtype_name == "fp32" else "tf32"  # fp16 operands ignore it


def to_rgb_triton(x, style, weight, delta, bias, skip=None, delta_mode: int = 0, out=None,
                  cfg: TileConfig | None = None):
    """Launch on torch tensors (CUDA, or CPU under the Triton interpreter). Shapes as in reference.to_rgb_ref;
    all contiguous, one dtype T in {fp16, fp32}; out: optional preallocated rgb [B,H,W,3]. Returns rgb."""
    import torch

    dt = check_dtype("to_rgb", x, style, weight, delta, bias, skip)
    b, h, w, cin = x.shape
    if out is None:
        out = torch.empty((b, h, w, 3), device=x.device, dtype=dt)
    check_out("to_rgb_triton", out, (b, h, w, 3), dt)
    check_contiguous("to_rgb_triton", x=x, style=style, weight=weight, delta=delta, bias=bias, skip=skip, out=out)
    grid, cfg = launch_params(b, h, w, cin, int(skip is not None), cfg)
    to_rgb_kernel[grid](x, style, weight, delta if delta_mode else None, bias, skip, b, h, w, cin, out,
                        DELTA_MODE=int(delta_mode), HAS_SKIP=int(skip is not None), PREC=_precision(triton_dtype(dt)),
                        BLOCK_M=cfg.block_m, BLOCK_K=cfg.block_k, num_warps=cfg.num_warps, num_stages=cfg.num_stages,
                        enable_fp_fusion=True)
    return out


def aot_compile(has_skip: int, delta_mode: int, dtype: str, cfg: TileConfig, arch: int = 90,
                aligned: bool = False) -> AotKernel:
    """Compile for TensorRT's AOT path (no GPU needed). Entry params: x, style, weight, [delta], bias, [skip],
    B, H, W, Cin (i32), rgb, + 2 hidden NULL pointers. aligned=True promises 16-byte aligned pointers and Cin a
    multiple of 16 (see mod_conv.kernel.aot_compile)."""
    p = "*" + dtype
    sig = {"x_ptr": p, "style_ptr": p, "w_ptr": p, "d_ptr": p if delta_mode else "constexpr", "bias_ptr": p,
           "skip_ptr": p if has_skip else "constexpr", "B": "i32", "H": "i32", "W": "i32", "Cin": "i32", "y_ptr": p,
           "DELTA_MODE": "constexpr", "HAS_SKIP": "constexpr", "PREC": "constexpr", "BLOCK_M": "constexpr",
           "BLOCK_K": "constexpr"}
    const = {"DELTA_MODE": int(delta_mode), "HAS_SKIP": int(has_skip), "PREC": _precision(dtype),
             "BLOCK_M": cfg.block_m, "BLOCK_K": cfg.block_k}
    if not delta_mode:
        const["d_ptr"] = None
    if not has_skip:
        const["skip_ptr"] = None
    div = tuple(k for k, v in sig.items() if v.startswith("*")) + ("Cin",) if aligned else ()
    return compile_aot(to_rgb_kernel, sig, const, cfg, arch, div)
