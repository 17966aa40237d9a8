"""Pure-PyTorch reference of `HsToRGB` on the op's own I/O contract (plugins/README.md): NHWC in and out.

Built from models.ops, so it equals `models.stylegan2.ToRGB` to float rounding:
rgb = modconv1x1(x; demodulate=False) + bias + upfirdn2d(skip, up=2, pad=(2,1), outer([1,3,3,1])/64*4).
"""

from __future__ import annotations

import torch

from hyperstyle_trt.core.contract import DeltaMode
from hyperstyle_trt.core.errors import HsError
from hyperstyle_trt.models.ops import make_kernel, modulated_conv2d, upfirdn2d


def check_inputs(x: torch.Tensor, style: torch.Tensor, weight: torch.Tensor, delta: torch.Tensor | None,
                 bias: torch.Tensor, skip: torch.Tensor | None, delta_mode: int) -> None:
    """HsError (one line) unless the shapes follow the HsToRGB contract."""
    if x.ndim != 4:
        raise HsError(f"to_rgb: x must be NHWC [B,H,W,Cin], got {tuple(x.shape)}")
    b, h, w, cin = x.shape
    want = {"style": (style, (b, cin)), "weight": (weight, (3, cin)), "bias": (bias, (3,))}
    if delta_mode not in (DeltaMode.NONE, DeltaMode.FULL):
        raise HsError(f"to_rgb: delta_mode must be 0 (none) or 1 (full), got {delta_mode}")
    if (delta is not None) != bool(delta_mode):
        raise HsError(f"to_rgb: delta {'missing' if delta is None else 'given'} with delta_mode={delta_mode}")
    if delta is not None:
        want["delta"] = (delta, (b, 3, cin))
    if skip is not None:
        if h % 2 or w % 2:
            raise HsError(f"to_rgb: a skip input needs even H, W; got {h}x{w}")
        want["skip"] = (skip, (b, h // 2, w // 2, 3))
    for name, (t, shape) in want.items():
        if tuple(t.shape) != shape:
            raise HsError(f"to_rgb: {name} must be {list(shape)}, got {list(t.shape)}")


def upsample_skip_ref(skip: torch.Tensor) -> torch.Tensor:
    """rosinality Upsample on NHWC: [B,h,w,3] -> [B,2h,2w,3]."""
    k = (make_kernel() * 4).to(device=skip.device, dtype=skip.dtype)  # [4,4], gain 4
    up = upfirdn2d(skip.permute(0, 3, 1, 2), k, up=2, pad=(2, 1))  # [B,3,2h,2w]
    return up.permute(0, 2, 3, 1)


def to_rgb_ref(x: torch.Tensor, style: torch.Tensor, weight: torch.Tensor, delta: torch.Tensor | None,
               bias: torch.Tensor, skip: torch.Tensor | None = None, delta_mode: int = 0) -> torch.Tensor:
    """rgb = modconv1x1(x) + bias (+ Upsample(skip)), NHWC.

    x: [B,H,W,Cin]; style: [B,Cin]; weight: [3,Cin] raw (scale 1/sqrt(Cin) applied here); delta: [B,3,Cin] or None
    (delta_mode 1 / 0); bias: [3]; skip: [B,H/2,W/2,3] or None. Returns [B,H,W,3] in x.dtype.
    """
    check_inputs(x, style, weight, delta, bias, skip, delta_mode)
    d = None if delta is None else delta[..., None, None]  # [B,3,I] -> [B,3,I,1,1]
    out = modulated_conv2d(x.permute(0, 3, 1, 2), weight[None, :, :, None, None], style, d,
                           demodulate=False)  # [B,3,H,W]
    out = out.permute(0, 2, 3, 1) + bias  # [B,H,W,3]
    if skip is not None:
        out = out + upsample_skip_ref(skip)
    return out.contiguous()


def to_rgb_flops(b: int, h: int, w: int, cin: int) -> int:
    """Useful FLOPs of the 1x1 conv (2 per MAC)."""
    return 2 * b * h * w * 3 * cin
