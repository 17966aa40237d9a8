"""Pure-PyTorch reference of `HsModConv` on the op's own I/O contract (plugins/README.md): NHWC in and out, weight and
full delta OHWI ([Cout,3,3,Cin], Cin contiguous: the kernels' W/delta tiles are then contiguous vector loads).

It is built from models.ops (the numerical source of truth: `modulated_weight`, `fused_leaky_relu`, `blur_pad`), so it
equals `models.stylegan2.StyledConv` to float rounding: conv (the per-sample modulated 3x3 conv, or stride-2
transposed conv + blur) -> + noise -> lrelu(. + bias, 0.2) * sqrt(2).
Runs on any device and dtype that F.conv2d supports (fp32 on CPU; fp16 on CUDA).

Layout. The NHWC input is used as it is: `x.permute(0, 3, 1, 2)` is an NCHW view with channels_last strides, and
each sample's slice of it goes to F.conv2d / F.conv_transpose2d, which then compute in channels_last and return
channels_last; the blur is a depthwise conv (groups = Cout, the same 4x4 taps per channel), also channels_last; so the
final NCHW -> NHWC permute is a view and no activation is copied between layouts. (models.ops.modulated_conv2d
reshapes x to [1, B*Cin, H, W], which drops the channels_last strides and makes the conv copy x to NCHW, and its
upfirdn2d blur works on an NCHW [B*C, 1, H, W] view: both cost a full copy of a layer's activation each.) B > 1
runs the samples one by one (one conv each, as the grouped conv with groups = B does) and concatenates them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from hyperstyle_trt.core.contract import DeltaMode
from hyperstyle_trt.core.errors import HsError
from hyperstyle_trt.models.delta import from_ohwi, to_official, to_ohwi  # noqa: F401  (to_ohwi: re-exported for the op's callers)
from hyperstyle_trt.models.ops import blur_pad, fused_leaky_relu, make_kernel, modulated_weight

DELTA_MODES = tuple(int(m) for m in DeltaMode)  # the `delta_mode` attribute: NONE, FULL, PER_CHANNEL


def expand_delta(delta: torch.Tensor | None, delta_mode: int) -> torch.Tensor | None:
    """The op's delta -> models' [B,Cout,Cin,3,3] (models.delta.to_official of an OHWI 3x3 layer; None for NONE)."""
    return None if delta_mode == DeltaMode.NONE else to_official(delta, delta_mode, ohwi=True, kernel=3)


def check_inputs(x: torch.Tensor, style: torch.Tensor, weight: torch.Tensor, delta: torch.Tensor | None,
                 noise: torch.Tensor, bias: torch.Tensor, upsample: int, delta_mode: int) -> None:
    """HsError (one line) unless the shapes follow the HsModConv contract."""
    if x.ndim != 4:
        raise HsError(f"mod_conv: x must be NHWC [B,H,W,Cin], got {tuple(x.shape)}")
    b, h, w, cin = x.shape
    if weight.ndim != 4 or weight.shape[1:] != (3, 3, cin):
        raise HsError(f"mod_conv: weight must be OHWI [Cout,3,3,{cin}], got {tuple(weight.shape)}")
    cout = weight.shape[0]
    f = 2 if upsample else 1
    want = {"style": (style, (b, cin)), "noise": (noise, (f * h, f * w)), "bias": (bias, (cout,))}
    if delta_mode not in DELTA_MODES:
        raise HsError(f"mod_conv: delta_mode must be one of {DELTA_MODES}, got {delta_mode}")
    if delta_mode == DeltaMode.NONE and delta is not None:
        raise HsError("mod_conv: delta given but delta_mode=0")
    if delta_mode:
        if delta is None:
            raise HsError(f"mod_conv: delta_mode={delta_mode} needs a delta tensor")
        want["delta"] = (delta, (b, cout, 3, 3, cin) if delta_mode == DeltaMode.FULL else (b, cout, cin))
    for name, (t, shape) in want.items():
        if tuple(t.shape) != shape:
            raise HsError(f"mod_conv: {name} must be {list(shape)}, got {list(t.shape)}")


def mod_conv_ref(x: torch.Tensor, style: torch.Tensor, weight: torch.Tensor, delta: torch.Tensor | None,
                 noise: torch.Tensor, bias: torch.Tensor, upsample: int = 0, delta_mode: int = 0,
                 demodulate: int = 1) -> torch.Tensor:
    """y = lrelu(modconv(x) + noise + bias, 0.2) * sqrt(2), NHWC.

    x: [B,H,W,Cin]; style: [B,Cin] (modulation output s); weight: OHWI [Cout,3,3,Cin] raw (scale 1/sqrt(9 Cin)
    applied here; `to_ohwi` of the official [Cout,Cin,3,3]); delta: OHWI [B,Cout,3,3,Cin] (delta_mode=1),
    [B,Cout,Cin] (delta_mode=2) or None (0); noise: [Ho,Wo] already
    multiplied by the noise strength; bias: [Cout]. Returns [B,Ho,Wo,Cout] in x.dtype, Ho = 2H if upsample else H.
    """
    check_inputs(x, style, weight, delta, noise, bias, upsample, delta_mode)
    xn = x.permute(0, 3, 1, 2)  # NHWC -> NCHW view [B,I,H,W], channels_last strides
    wt = modulated_weight(from_ohwi(weight)[None], style, expand_delta(delta, delta_mode), bool(demodulate))
    outs = [_conv(xn[i:i + 1], wt[i], bool(upsample)) for i in range(x.shape[0])]  # [1,O,Ho,Wo] channels_last
    out = outs[0] if len(outs) == 1 else torch.cat(outs)  # [B,O,Ho,Wo] channels_last
    out = out + noise[None, None]  # [Ho,Wo] broadcast over B and C
    out = fused_leaky_relu(out, bias)
    return out.permute(0, 2, 3, 1).contiguous()  # NCHW (channels_last) -> NHWC [B,Ho,Wo,O]: a view, no copy


def _conv(x: torch.Tensor, wt: torch.Tensor, upsample: bool) -> torch.Tensor:
    """One sample's modulated conv: x [1,I,H,W] (channels_last strides), wt [O,I,k,k] -> [1,O,Ho,Wo] channels_last.
    Plain: conv2d with padding k//2. Upsample: the stride-2 transposed conv ([1,O,2H+k-2,2W+k-2]) then the blur
    (upfirdn2d with pad `blur_pad(k)`: pad, then correlate with the flipped x4-gain [1,3,3,1] kernel) as a depthwise
    conv2d."""
    k = wt.shape[-1]
    if not upsample:
        return F.conv2d(x, wt, padding=k // 2)
    out = F.conv_transpose2d(x, wt.transpose(0, 1), stride=2)  # weight [I,O,k,k]
    cout = out.shape[1]
    blur = torch.flip(make_kernel() * 4, [0, 1]).to(device=x.device, dtype=x.dtype)  # [4,4], gain 4
    p0, p1 = blur_pad(k)
    if p0 != p1:
        out, p0 = F.pad(out, [p0, p1, p0, p1]), 0
    return F.conv2d(out, blur.expand(cout, 1, *blur.shape), padding=p0, groups=cout)


def mod_conv_flops(b: int, h: int, w: int, cin: int, cout: int, upsample: int) -> int:
    """FLOPs of the official conv (2 per MAC) for input [b,h,w,cin]: a 3x3 conv, or for upsampling the stride-2
    transposed conv at the input resolution (blur not counted). The folded upsampling kernel executes 4x that on
    its tensor cores (9 taps per *output* pixel)."""
    return 2 * b * h * w * cout * cin * 9
