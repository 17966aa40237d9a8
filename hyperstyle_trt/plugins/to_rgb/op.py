"""`torch.ops.hyperstyle.to_rgb` (CPU: reference, CUDA: Triton kernel, fake/meta), the Python API
`to_rgb(..., impl="ref"|"cuda")` and the raw-pointer launcher for the TensorRT plugin's enqueue (`launch_raw`).
Importing this module needs neither triton nor a GPU.
"""

from __future__ import annotations

from typing import Optional

import torch

from hyperstyle_trt.core.errors import HsError
from hyperstyle_trt.core.precision import precision
from hyperstyle_trt.plugins._triton import launch_on_stream, require_cuda_kernels, tensor_from_ptr
from hyperstyle_trt.plugins.to_rgb.reference import check_inputs, to_rgb_ref


@torch.library.custom_op("hyperstyle::to_rgb", mutates_args=(), device_types="cpu")
def _to_rgb_op(x: torch.Tensor, style: torch.Tensor, weight: torch.Tensor, delta: Optional[torch.Tensor],
               bias: torch.Tensor, skip: Optional[torch.Tensor], delta_mode: int) -> torch.Tensor:
    """CPU implementation: the reference. Shapes and dtypes: plugins/to_rgb/reference.py::to_rgb_ref."""
    return to_rgb_ref(x, style, weight, delta, bias, skip, delta_mode)


@_to_rgb_op.register_kernel("cuda")
def _to_rgb_cuda(x, style, weight, delta, bias, skip, delta_mode):
    require_cuda_kernels("to_rgb", x)
    from hyperstyle_trt.plugins.to_rgb.kernel import to_rgb_triton

    c = [None if t is None else t.contiguous() for t in (x, style, weight, delta, bias, skip)]
    return to_rgb_triton(*c, delta_mode=delta_mode)


@_to_rgb_op.register_fake
def _to_rgb_fake(x, style, weight, delta, bias, skip, delta_mode):
    b, h, w, _ = x.shape
    return x.new_empty((b, h, w, 3))  # [B,H,W,3]


def to_rgb(x: torch.Tensor, style: torch.Tensor, weight: torch.Tensor, delta: torch.Tensor | None,
           bias: torch.Tensor, skip: torch.Tensor | None = None, delta_mode: int | None = None,
           impl: str = "ref") -> torch.Tensor:
    """ToRGB on NHWC: modconv1x1(x) + bias (+ Upsample(skip)) -> rgb [B,H,W,3] in x.dtype.

    x [B,H,W,Cin]; style [B,Cin]; weight [3,Cin] raw; delta [B,3,Cin] or None (delta_mode inferred when None);
    bias [3]; skip [B,H/2,W/2,3] or None. impl="ref": PyTorch reference (any device); impl="cuda": the Triton kernel
    via torch.ops.hyperstyle.to_rgb; raises HsError when triton or CUDA is missing (no silent fallback).
    """
    mode = int(delta is not None) if delta_mode is None else int(delta_mode)
    check_inputs(x, style, weight, delta, bias, skip, mode)
    if impl == "ref":
        return to_rgb_ref(x, style, weight, delta, bias, skip, mode)
    if impl != "cuda":
        raise HsError(f"to_rgb: impl must be 'ref' or 'cuda', got {impl!r}")
    require_cuda_kernels("to_rgb", x, style, weight, delta, bias, skip)
    return torch.ops.hyperstyle.to_rgb(x, style, weight, delta, bias, skip, mode)


def launch_raw(x: int, style: int, weight: int, delta: int, bias: int, skip: int, y: int, B: int, H: int, W: int,
               Cin: int, has_skip: int, delta_mode: int, dtype: str, stream: int) -> None:
    """Enqueue the kernel on raw device pointers (TensorRT IPluginV3 enqueue; one launch, no allocation).

    delta / skip are ignored when delta_mode / has_skip is 0; y is rgb [B,H,W,3]; dtype "float16" | "float32";
    stream is a cudaStream_t as int (0: the legacy default stream). The first call compiles the kernel.
    """
    require_cuda_kernels("to_rgb")
    dt = precision(dtype).torch_dtype()
    from hyperstyle_trt.plugins.to_rgb.kernel import to_rgb_triton

    t = dict(x=tensor_from_ptr(x, (B, H, W, Cin), dt), style=tensor_from_ptr(style, (B, Cin), dt),
             weight=tensor_from_ptr(weight, (3, Cin), dt),
             delta=tensor_from_ptr(delta, (B, 3, Cin), dt) if delta_mode else None,
             bias=tensor_from_ptr(bias, (3,), dt),
             skip=tensor_from_ptr(skip, (B, H // 2, W // 2, 3), dt) if has_skip else None)
    out = tensor_from_ptr(y, (B, H, W, 3), dt)
    launch_on_stream(stream, lambda: to_rgb_triton(**t, delta_mode=delta_mode, out=out))
