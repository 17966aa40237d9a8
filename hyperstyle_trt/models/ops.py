"""Native PyTorch versions of rosinality's ops (no JIT-compiled CUDA), and the offset-injected modulated conv.

These are the reference math every fast path (plugins/, exported graphs) is compared with. They follow the
official operation order so that fp32 results match the official code to float rounding.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

SQRT2 = math.sqrt(2.0)


def make_kernel(k=(1, 3, 3, 1)) -> torch.Tensor:
    """Separable FIR taps -> normalized 2-D kernel (sum 1)."""
    k = torch.tensor(k, dtype=torch.float32)
    k = k[None, :] * k[:, None]
    return k / k.sum()


def upfirdn2d(x: torch.Tensor, kernel: torch.Tensor, up: int = 1, down: int = 1, pad=(0, 0)) -> torch.Tensor:
    """rosinality `upfirdn2d_native` (same up/down/pad on both axes): zero-insert, pad, correlate with flipped kernel.

    x: [B,C,H,W]; kernel: [kh,kw]. Output [B,C,(H*up+p0+p1-kh)//down+1, ...].
    """
    p0, p1 = pad
    b, c, h, w = x.shape
    kh, kw = kernel.shape
    out = x.reshape(b * c, h, 1, w, 1)
    if up > 1:  # zero insertion
        out = F.pad(out, [0, up - 1, 0, 0, 0, up - 1])
    out = out.reshape(b * c, 1, h * up, w * up)
    out = F.pad(out, [max(p0, 0), max(p1, 0), max(p0, 0), max(p1, 0)])
    out = out[:, :, max(-p0, 0):out.shape[2] - max(-p1, 0), max(-p0, 0):out.shape[3] - max(-p1, 0)]
    wk = torch.flip(kernel, [0, 1]).view(1, 1, kh, kw).to(out.dtype)
    out = F.conv2d(out, wk)
    out = out[:, :, ::down, ::down]
    return out.reshape(b, c, out.shape[2], out.shape[3])


def fused_leaky_relu(x: torch.Tensor, bias: torch.Tensor, negative_slope: float = 0.2, scale: float = SQRT2):
    """lrelu(x + bias[C], 0.2) * sqrt(2) (rosinality's CPU path)."""
    rest = [1] * (x.ndim - 2)
    return F.leaky_relu(x + bias.view(1, bias.shape[0], *rest), negative_slope=negative_slope) * scale


def blur_pad(kernel_size: int, factor: int = 2, taps: int = 4) -> tuple[int, int]:
    """Pad of the Blur that follows a stride-`factor` transposed conv (rosinality ModulatedConv2d)."""
    p = (taps - factor) - (kernel_size - 1)
    return ((p + 1) // 2 + factor - 1, p // 2 + 1)


def modulated_weight(weight: torch.Tensor, style: torch.Tensor, delta: torch.Tensor | None = None,
                     demodulate: bool = True) -> torch.Tensor:
    """The per-sample weight of ModulatedConv2d: scale * W * (1 + delta) * s, demodulated -> [B,Cout,Cin,k,k].

    weight: [1,Cout,Cin,k,k] (unscaled); style: [B,Cin]; delta: None or [B,Cout,Cin,k,k]; scale = 1/sqrt(Cin k k).
    """
    b, cin = style.shape
    _, cout, _, k, _ = weight.shape
    scale = 1 / math.sqrt(cin * k * k)
    s = style.view(b, 1, cin, 1, 1)
    if delta is None:
        wt = scale * weight * s  # [B,O,I,k,k]
    else:
        wt = scale * (weight * (1 + delta) * s)
    if demodulate:
        demod = torch.rsqrt(wt.pow(2).sum([2, 3, 4]) + 1e-8)
        wt = wt * demod.view(b, cout, 1, 1, 1)
    return wt


def modulated_conv2d(x: torch.Tensor, weight: torch.Tensor, style: torch.Tensor, delta: torch.Tensor | None = None,
                     demodulate: bool = True, upsample: bool = False, blur_kernel: torch.Tensor | None = None
                     ) -> torch.Tensor:
    """HyperStyle's ModulatedConv2d forward (official "fused" path, grouped conv with groups=B).

    x: [B,Cin,H,W]; weight: [1,Cout,Cin,k,k] (unscaled, equalized lr); style: [B,Cin] (the modulation output s);
    delta: None or [B,Cout,Cin,k,k] (offsets, W_eff = W*(1+delta)); upsample: stride-2 transposed conv + 4x4 blur
    (blur_kernel is the x4-gain kernel). Returns [B,Cout,H',W'] with H' = 2H if upsample else H.
    """
    b, cin, h, w = x.shape
    _, cout, _, k, _ = weight.shape
    wt = modulated_weight(weight, style, delta, demodulate)  # [B,O,I,k,k]
    if upsample:
        assert blur_kernel is not None
        xg = x.reshape(1, b * cin, h, w)
        wt = wt.transpose(1, 2).reshape(b * cin, cout, k, k)  # [B*I,O,k,k]
        out = F.conv_transpose2d(xg, wt, padding=0, stride=2, groups=b)
        out = out.view(b, cout, out.shape[2], out.shape[3])
        return upfirdn2d(out, blur_kernel, pad=blur_pad(k))
    xg = x.reshape(1, b * cin, h, w)
    out = F.conv2d(xg, wt.reshape(b * cout, cin, k, k), padding=k // 2, groups=b)
    return out.view(b, cout, h, w)
