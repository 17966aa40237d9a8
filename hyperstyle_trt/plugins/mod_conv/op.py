"""`torch.ops.hyperstyle.mod_conv` (CPU: reference, CUDA: the Triton kernels, fused or staged per layer, fake/meta
for torch.compile, export and CUDA graphs), the Python API `mod_conv(..., impl="ref"|"cuda")` and the raw-pointer
launcher that the TensorRT plugin's enqueue calls (`launch_raw`). Importing this module needs neither triton nor a
GPU; kernels compile lazily at first use (Triton's cache, keyed by source and arch).
"""

from __future__ import annotations

from typing import Optional

import torch

from hyperstyle_trt.core.errors import HsError
from hyperstyle_trt.core.precision import precision
from hyperstyle_trt.plugins._triton import launch_on_stream, require_cuda_kernels, tensor_from_ptr
from hyperstyle_trt.plugins.mod_conv.reference import check_inputs, mod_conv_ref
from hyperstyle_trt.plugins.mod_conv.strategy import STRATEGIES, select_strategy, workspace_bytes


@torch.library.custom_op("hyperstyle::mod_conv", mutates_args=(), device_types="cpu")
def _mod_conv_op(x: torch.Tensor, style: torch.Tensor, weight: torch.Tensor, delta: Optional[torch.Tensor],
                 noise: torch.Tensor, bias: torch.Tensor, upsample: int, delta_mode: int,
                 demodulate: int) -> torch.Tensor:
    """CPU implementation: the reference. Shapes and dtypes: plugins/mod_conv/reference.py::mod_conv_ref."""
    return mod_conv_ref(x, style, weight, delta, noise, bias, upsample, delta_mode, demodulate)


@_mod_conv_op.register_kernel("cuda")
def _mod_conv_cuda(x, style, weight, delta, noise, bias, upsample, delta_mode, demodulate):
    require_cuda_kernels("mod_conv", x)
    c = [None if t is None else t.contiguous() for t in (x, style, weight, delta, noise, bias)]
    return run_cuda(*c, upsample=upsample, delta_mode=delta_mode, demodulate=demodulate)


def run_cuda(x, style, weight, delta, noise, bias, upsample: int, delta_mode: int, demodulate: int, out=None,
             workspace=None, strategy: str | None = None) -> torch.Tensor:
    """The GPU path on contiguous tensors: the layer's strategy (plugins.mod_conv.strategy.select_strategy unless
    given) -> the fused kernel or the staged pair (workspace: optional uint8 tensor, allocated when None)."""
    b, h, w, cin = x.shape
    strategy = strategy or select_strategy(b, h, w, cin, weight.shape[0], upsample,
                                           str(x.dtype).removeprefix("torch."))
    a = dict(upsample=upsample, delta_mode=delta_mode, demodulate=demodulate, out=out)
    if strategy == "staged":
        from hyperstyle_trt.plugins.mod_conv.staged import mod_conv_staged

        return mod_conv_staged(x, style, weight, delta, noise, bias, **a, workspace=workspace)
    if strategy != "fused":
        raise HsError(f"mod_conv: strategy must be one of {STRATEGIES}, got {strategy!r}")
    from hyperstyle_trt.plugins.mod_conv.kernel import mod_conv_triton

    return mod_conv_triton(x, style, weight, delta, noise, bias, **a)


@_mod_conv_op.register_fake
def _mod_conv_fake(x, style, weight, delta, noise, bias, upsample, delta_mode, demodulate):
    b, h, w, _ = x.shape
    f = 2 if upsample else 1
    return x.new_empty((b, f * h, f * w, weight.shape[0]))  # [B,Ho,Wo,Cout]


def infer_delta_mode(delta: torch.Tensor | None) -> int:
    """0 without delta, 1 for OHWI [B,Cout,3,3,Cin], 2 for [B,Cout,Cin]."""
    if delta is None:
        return 0
    if delta.ndim not in (3, 5):
        raise HsError(f"mod_conv: delta must be OHWI [B,Cout,3,3,Cin] or [B,Cout,Cin], got {tuple(delta.shape)}")
    return 1 if delta.ndim == 5 else 2


def mod_conv(x: torch.Tensor, style: torch.Tensor, weight: torch.Tensor, delta: torch.Tensor | None,
             noise: torch.Tensor, bias: torch.Tensor, upsample: int = 0, delta_mode: int | None = None,
             demodulate: int = 1, impl: str = "ref") -> torch.Tensor:
    """StyledConv on NHWC: lrelu(modconv(x) + noise + bias, 0.2)*sqrt(2) -> y [B,Ho,Wo,Cout] in x.dtype.

    x [B,H,W,Cin]; style [B,Cin]; weight OHWI [Cout,3,3,Cin] raw (reference.to_ohwi of the official weight);
    delta OHWI [B,Cout,3,3,Cin] / [B,Cout,Cin] / None
    (delta_mode inferred when None); noise [Ho,Wo] pre-multiplied; bias [Cout]. impl="ref": the PyTorch reference
    (any device); impl="cuda": the Triton kernels through torch.ops.hyperstyle.mod_conv (fused or staged, by
    plugins.mod_conv.strategy.select_strategy); raises HsError when triton or CUDA is missing (no silent fallback).
    """
    mode = infer_delta_mode(delta) if delta_mode is None else int(delta_mode)
    check_inputs(x, style, weight, delta, noise, bias, upsample, mode)
    if impl == "ref":
        return mod_conv_ref(x, style, weight, delta, noise, bias, upsample, mode, demodulate)
    if impl != "cuda":
        raise HsError(f"mod_conv: impl must be 'ref' or 'cuda', got {impl!r}")
    require_cuda_kernels("mod_conv", x, style, weight, delta, noise, bias)
    return torch.ops.hyperstyle.mod_conv(x, style, weight, delta, noise, bias, int(upsample), mode, int(demodulate))


def launch_raw(x: int, style: int, weight: int, delta: int, noise: int, bias: int, y: int, B: int, H: int, W: int,
               Cin: int, Cout: int, upsample: int, delta_mode: int, demodulate: int, dtype: str,
               stream: int, workspace: int = 0) -> None:
    """Enqueue the layer's kernels on raw device pointers (TensorRT IPluginV3 enqueue): the fused kernel (one
    launch), or for a staged layer (strategy.select_strategy) the weight kernel + ready-weight conv, using the
    device buffer at `workspace` (>= strategy.workspace_bytes(...) bytes; 0: allocated from torch's caching
    allocator on the stream).

    Pointers address contiguous NHWC / contract-layout buffers of `dtype` ("float16" | "float32"); delta is ignored
    when delta_mode=0; y is [B,Ho,Wo,Cout]; stream is a cudaStream_t as int (0: the legacy default stream).
    The first call per (shape class, attrs, dtype) compiles the kernel: warm up before capturing a CUDA graph.
    """
    require_cuda_kernels("mod_conv")
    dt = precision(dtype).torch_dtype()

    f = 2 if upsample else 1
    dshape = {1: (B, Cout, 3, 3, Cin), 2: (B, Cout, Cin)}.get(int(delta_mode))
    t = dict(x=tensor_from_ptr(x, (B, H, W, Cin), dt), style=tensor_from_ptr(style, (B, Cin), dt),
             weight=tensor_from_ptr(weight, (Cout, 3, 3, Cin), dt),
             delta=tensor_from_ptr(delta, dshape, dt) if dshape else None,
             noise=tensor_from_ptr(noise, (f * H, f * W), dt), bias=tensor_from_ptr(bias, (Cout,), dt))
    out = tensor_from_ptr(y, (B, f * H, f * W, Cout), dt)
    need = workspace_bytes(B, H, W, Cin, Cout, upsample, dtype)
    ws = tensor_from_ptr(workspace, (need,), torch.uint8) if need and workspace else None
    launch_on_stream(stream, lambda: run_cuda(**t, upsample=upsample, delta_mode=delta_mode, demodulate=demodulate,
                                              out=out, workspace=ws))
