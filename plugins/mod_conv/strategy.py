"""Which `HsModConv` implementation a layer runs on a GPU, and the workspace the staged one needs. Pure Python (no
triton, no GPU): TensorRT's build phase calls it for `get_workspace_size` on CPU-only machines.

    "fused":  one launch, the per-sample weight formed in registers (plugins/mod_conv/kernel.py).
    "staged": per-sample weight written once to a workspace, then a ready-weight conv (plugins/mod_conv/staged.py).

The choice depends on the layer's output resolution and the dtype only (never the batch), so a whole dynamic batch
range takes one path and the workspace bound is known at build time.
fp16 (the production path): threshold from KERNELS.md (H100, Triton 3.6): the fused kernel wins clearly at <= 64^2
but trails the PyTorch route at >= 128^2, where the same GEMM fed ready weights was 1.23-1.39x faster at B=8. Not yet
timed for our kernels: `hs-bench kernels` reports fused, staged and route for every layer so the threshold can be
checked on a GPU.
fp32 (tests, `hs-export --fp32` engines; a correctness path): "staged" on every layer. The fp32 fused kernels (IEEE
dots, no tensor cores) spill: 24-1888 bytes at 3x3 and 15-41 KB in the upsampling kernel (ptxas keeps 32-40 registers
and a stack frame of several KB per thread; 12-34 KB over 9 other tiles tried), while all 23 fp32 weight and
ready-weight variants compile without a spill (`hs-bench codegen --dtype fp32`, sm_90 and sm_89, Triton 3.6 and 3.9).
TensorRT's AOT path (one kernel, no workspace) always runs "fused".
"""

from __future__ import annotations

STRATEGIES = ("fused", "staged")
STAGED_MIN_OUT_PIXELS = 128 * 128  # output H*W from which a layer runs staged
_ALIGN = 256  # coef's byte offset inside the workspace is a multiple of this
_ITEM = {"fp16": 2, "float16": 2, "fp32": 4, "float32": 4}


def select_strategy(H: int, W: int, upsample: int, dtype: str = "fp16") -> str:
    """fp16: "staged" for layers whose output has >= 128^2 pixels, else "fused" (H, W: input size). fp32: "staged"."""
    if _item(dtype, "select_strategy") == 4:
        return "staged"
    f = 2 if upsample else 1
    return "staged" if f * H * f * W >= STAGED_MIN_OUT_PIXELS else "fused"


def _item(dtype: str, who: str) -> int:
    if dtype not in _ITEM:
        raise ValueError(f"{who}: dtype must be one of {sorted(_ITEM)}, got {dtype!r}")
    return _ITEM[dtype]


def workspace_layout(B: int, Cin: int, Cout: int, upsample: int, dtype: str = "fp16") -> tuple[int, int]:
    """(coef byte offset, total bytes) of the staged workspace: wq [B,Cout,P,9,Cin] in dtype (P = 4 phases for
    upsampling, else 1), then coef [B,Cout] fp32 at a 256-byte aligned offset."""
    wq = B * Cout * (4 if upsample else 1) * 9 * Cin * _item(dtype, "workspace_layout")
    off = (wq + _ALIGN - 1) // _ALIGN * _ALIGN
    return off, off + B * Cout * 4


def workspace_bytes(B: int, H: int, W: int, Cin: int, Cout: int, upsample: int, dtype: str = "fp16") -> int:
    """Device workspace one launch needs: 0 for a fused layer, workspace_layout's total for a staged one."""
    if select_strategy(H, W, upsample, dtype) != "staged":
        return 0
    return workspace_layout(B, Cin, Cout, upsample, dtype)[1]
