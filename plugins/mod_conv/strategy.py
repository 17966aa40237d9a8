"""Which `HsModConv` implementation a layer runs on a GPU, and the workspace the staged one needs. Pure Python (no
triton, no GPU): TensorRT's build phase calls it for `get_workspace_size` on CPU-only machines.

    "fused":  one launch, the per-sample weight formed in registers (plugins/mod_conv/kernel.py).
    "staged": per-sample weight written once to a workspace, then a ready-weight conv (plugins/mod_conv/staged.py).

The choice depends on the layer's output resolution only, so a whole dynamic batch range takes one path and the
workspace bound is known at build time. Threshold from KERNELS.md (H100, Triton 3.6): the fused kernel wins clearly
at <= 64^2 but trails the PyTorch route at >= 128^2, where the same GEMM fed ready weights was 1.23-1.39x faster
at B=8. Not yet timed for our kernels: `hs-bench kernels` reports fused, staged and route for every layer so the
threshold can be checked on a GPU. TensorRT's AOT path (one kernel, no workspace) always runs "fused".
"""

from __future__ import annotations

STRATEGIES = ("fused", "staged")
STAGED_MIN_OUT_PIXELS = 128 * 128  # output H*W from which a layer runs staged
_ALIGN = 256  # coef's byte offset inside the workspace is a multiple of this
_ITEM = {"fp16": 2, "float16": 2, "fp32": 4, "float32": 4}


def select_strategy(H: int, W: int, upsample: int) -> str:
    """"staged" for layers whose output has >= 128^2 pixels, else "fused" (H, W: input size)."""
    f = 2 if upsample else 1
    return "staged" if f * H * f * W >= STAGED_MIN_OUT_PIXELS else "fused"


def workspace_layout(B: int, Cin: int, Cout: int, upsample: int, dtype: str = "fp16") -> tuple[int, int]:
    """(coef byte offset, total bytes) of the staged workspace: wq [B,Cout,P,9,Cin] in dtype (P = 4 phases for
    upsampling, else 1), then coef [B,Cout] fp32 at a 256-byte aligned offset."""
    if dtype not in _ITEM:
        raise ValueError(f"workspace_layout: dtype must be one of {sorted(_ITEM)}, got {dtype!r}")
    wq = B * Cout * (4 if upsample else 1) * 9 * Cin * _ITEM[dtype]
    off = (wq + _ALIGN - 1) // _ALIGN * _ALIGN
    return off, off + B * Cout * 4


def workspace_bytes(B: int, H: int, W: int, Cin: int, Cout: int, upsample: int, dtype: str = "fp16") -> int:
    """Device workspace one launch needs: 0 for a fused layer, workspace_layout's total for a staged one."""
    if select_strategy(H, W, upsample) != "staged":
        return 0
    return workspace_layout(B, Cin, Cout, upsample, dtype)[1]
