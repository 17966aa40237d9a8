"""Pure-PyTorch reference of `HsToRGB` on the op's own I/O contract (plugins/README.md): NHWC in and out.

Built from models.ops, so it equals `models.stylegan2.ToRGB` to float rounding:
rgb = modconv1x1(x; demodulate=False) + bias + upfirdn2d(skip, up=2, pad=(2,1), outer([1,3,3,1])/64*4).

Layout (as plugins/mod_conv/reference.py): the convs take `x.permute(0, 3, 1, 2)` (channels_last strides) per sample
and return channels_last, so the NHWC result needs no layout copy; the skip's upsampling (zero insertion, pad (2,1),
correlation with the flipped kernel) is the equivalent depthwise stride-2 transposed conv with padding 1.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from hyperstyle_trt.core.contract import DeltaMode
from hyperstyle_trt.core.errors import HsError
from hyperstyle_trt.models.ops import make_kernel, modulated_weight


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
    """rosinality Upsample on NHWC: [B,h,w,3] -> [B,2h,2w,3] (upfirdn2d(up=2, pad=(2,1)) with the x4-gain
    [1,3,3,1] kernel, as a depthwise conv_transpose2d(stride=2, padding=1): out[o] = sum_t skip[(o+1-t)/2] k[t])."""
    k = (make_kernel() * 4).to(device=skip.device, dtype=skip.dtype)  # [4,4], gain 4
    c = skip.shape[-1]
    up = F.conv_transpose2d(skip.permute(0, 3, 1, 2), k.expand(c, 1, *k.shape), stride=2, padding=1, groups=c)
    return up.permute(0, 2, 3, 1)  # [B,2h,2w,3]


def to_rgb_ref(x: torch.Tensor, style: torch.Tensor, weight: torch.Tensor, delta: torch.Tensor | None,
               bias: torch.Tensor, skip: torch.Tensor | None = None, delta_mode: int = 0) -> torch.Tensor:
    """rgb = modconv1x1(x) + bias (+ Upsample(skip)), NHWC.

    x: [B,H,W,Cin]; style: [B,Cin]; weight: [3,Cin] raw (scale 1/sqrt(Cin) applied here); delta: [B,3,Cin] or None
    (delta_mode 1 / 0); bias: [3]; skip: [B,H/2,W/2,3] or None. Returns [B,H,W,3] in x.dtype.
    """
    check_inputs(x, style, weight, delta, bias, skip, delta_mode)
    d = None if delta is None else delta[..., None, None]  # [B,3,I] -> [B,3,I,1,1]
    wt = modulated_weight(weight[None, :, :, None, None], style, d, demodulate=False)  # [B,3,I,1,1]
    xn = x.permute(0, 3, 1, 2)  # [B,I,H,W] view, channels_last strides
    outs = [F.conv2d(xn[i:i + 1], wt[i]) for i in range(x.shape[0])]  # [1,3,H,W] channels_last
    out = outs[0] if len(outs) == 1 else torch.cat(outs)
    out = out.permute(0, 2, 3, 1) + bias  # [B,H,W,3]
    if skip is not None:
        out = out + upsample_skip_ref(skip)
    return out.contiguous()


def to_rgb_flops(b: int, h: int, w: int, cin: int) -> int:
    """Useful FLOPs of the 1x1 conv (2 per MAC)."""
    return 2 * b * h * w * 3 * cin
