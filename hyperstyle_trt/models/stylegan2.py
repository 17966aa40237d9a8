"""rosinality StyleGAN2 generator with HyperStyle's weight offsets, native PyTorch ops only.

Module and buffer names are rosinality's, so `g_ema` / `decoder.*` state_dicts load strictly. Noise is always the fixed
`noises.noise_i` buffers (official inference uses `randomize_noise=False`).
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import torch
from torch import nn
import torch.nn.functional as F

from hyperstyle_trt.core.config import GeneratorConfig, LayerSpec, layer_specs
from hyperstyle_trt.core.errors import HsError
from hyperstyle_trt.models.ops import blur_pad, fused_leaky_relu, make_kernel, modulated_conv2d, upfirdn2d


class PixelNorm(nn.Module):
    def forward(self, x):
        return x * torch.rsqrt(torch.mean(x**2, dim=1, keepdim=True) + 1e-8)


class EqualLinear(nn.Module):
    """Equalized-lr linear: y = x (W * lr_mul/sqrt(in))^T + b * lr_mul, optionally fused lrelu."""

    def __init__(self, in_dim, out_dim, bias=True, bias_init=0.0, lr_mul=1.0, activation=None):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim).div_(lr_mul))
        self.bias = nn.Parameter(torch.zeros(out_dim).fill_(bias_init)) if bias else None
        self.activation = activation
        self.scale = (1 / math.sqrt(in_dim)) * lr_mul
        self.lr_mul = lr_mul

    def forward(self, x):
        if self.activation:
            return fused_leaky_relu(F.linear(x, self.weight * self.scale), self.bias * self.lr_mul)
        return F.linear(x, self.weight * self.scale, bias=self.bias * self.lr_mul if self.bias is not None else None)


class Blur(nn.Module):
    def __init__(self, pad, upsample_factor=1):
        super().__init__()
        self.register_buffer("kernel", make_kernel() * upsample_factor**2)
        self.pad = pad

    def forward(self, x):
        return upfirdn2d(x, self.kernel, pad=self.pad)


class Upsample(nn.Module):
    def __init__(self, factor=2):
        super().__init__()
        self.register_buffer("kernel", make_kernel() * factor**2)
        self.factor = factor
        p = 4 - factor
        self.pad = ((p + 1) // 2 + factor - 1, p // 2)

    def forward(self, x):
        return upfirdn2d(x, self.kernel, up=self.factor, pad=self.pad)


class ModulatedConv2d(nn.Module):
    def __init__(self, in_channel, out_channel, kernel_size, style_dim, demodulate=True, upsample=False):
        super().__init__()
        self.in_channel, self.out_channel, self.kernel_size = in_channel, out_channel, kernel_size
        self.demodulate, self.upsample = demodulate, upsample
        if upsample:
            self.blur = Blur(pad=blur_pad(kernel_size), upsample_factor=2)
        self.weight = nn.Parameter(torch.randn(1, out_channel, in_channel, kernel_size, kernel_size))
        self.modulation = EqualLinear(style_dim, in_channel, bias_init=1)

    def forward(self, x, w, delta=None):
        """x: [B,Cin,H,W]; w: [B,style_dim]; delta: None or [B,Cout,Cin,k,k]."""
        s = self.modulation(w)
        return modulated_conv2d(x, self.weight, s, delta, self.demodulate, self.upsample,
                                self.blur.kernel if self.upsample else None)


class NoiseInjection(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, image, noise):
        return image + self.weight * noise


class FusedLeakyReLU(nn.Module):
    def __init__(self, channel):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channel))

    def forward(self, x):
        return fused_leaky_relu(x, self.bias)


class StyledConv(nn.Module):
    def __init__(self, in_channel, out_channel, kernel_size, style_dim, upsample=False):
        super().__init__()
        self.conv = ModulatedConv2d(in_channel, out_channel, kernel_size, style_dim, upsample=upsample)
        self.noise = NoiseInjection()
        self.activate = FusedLeakyReLU(out_channel)

    def forward(self, x, w, noise, delta=None):
        return self.activate(self.noise(self.conv(x, w, delta), noise))


class ToRGB(nn.Module):
    def __init__(self, in_channel, style_dim, upsample=True):
        super().__init__()
        if upsample:
            self.upsample = Upsample()
        self.conv = ModulatedConv2d(in_channel, 3, 1, style_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))

    def forward(self, x, w, skip=None, delta=None):
        out = self.conv(x, w, delta) + self.bias
        if skip is not None:
            out = out + self.upsample(skip)
        return out


class ConstantInput(nn.Module):
    def __init__(self, channel, size=4):
        super().__init__()
        self.input = nn.Parameter(torch.randn(1, channel, size, size))

    def forward(self, batch: int):
        return self.input.repeat(batch, 1, 1, 1)


Deltas = Mapping[str, torch.Tensor] | Sequence[torch.Tensor | None] | None


class Generator(nn.Module):
    """StyleGAN2 synthesis (+ mapping, used only for z -> w). forward(codes, deltas) -> image [B,3,size,size]."""

    def __init__(self, cfg: GeneratorConfig):
        super().__init__()
        self.cfg = cfg
        sd = cfg.style_dim
        self.style = nn.Sequential(PixelNorm(), *[EqualLinear(sd, sd, lr_mul=0.01, activation="fused_lrelu")
                                                  for _ in range(cfg.n_mlp)])
        self.specs: tuple[LayerSpec, ...] = layer_specs(cfg)
        c4 = cfg.ch(4)
        self.input = ConstantInput(c4)
        self.conv1 = StyledConv(c4, c4, 3, sd)
        self.to_rgb1 = ToRGB(c4, sd, upsample=False)
        self.convs = nn.ModuleList()
        self.upsamples = nn.ModuleList()
        self.to_rgbs = nn.ModuleList()
        self.noises = nn.Module()
        for i in range(cfg.num_noise):
            res = 2 ** ((i + 5) // 2)
            self.noises.register_buffer(f"noise_{i}", torch.randn(1, 1, res, res))
        for s in self.specs[2:]:
            if s.kind == "up":
                self.convs.append(StyledConv(s.in_ch, s.out_ch, 3, sd, upsample=True))
            elif s.kind == "conv":
                self.convs.append(StyledConv(s.in_ch, s.out_ch, 3, sd))
            else:
                self.to_rgbs.append(ToRGB(s.in_ch, sd))
        self.n_latent = cfg.n_latent

    def mapping(self, z: torch.Tensor) -> torch.Tensor:
        """z [B,style_dim] -> w [B,style_dim]."""
        return self.style(z)

    def delta_list(self, deltas: Deltas) -> list[torch.Tensor | None]:
        """Normalize deltas to HyperStyle's list with one slot per layer index (None = untuned)."""
        n = len(self.specs)
        if deltas is None:
            return [None] * n
        if isinstance(deltas, Mapping):
            names = {s.name: s.idx for s in self.specs}
            unknown = sorted(set(deltas) - set(names))
            if unknown:
                raise HsError(f"unknown delta layer names {unknown}; expected generator layers such as 'convs.8'")
            out: list[torch.Tensor | None] = [None] * n
            for name, d in deltas.items():
                out[names[name]] = d
            return out
        deltas = list(deltas)
        if len(deltas) != n:
            raise HsError(f"expected {n} delta slots (one per layer index), got {len(deltas)}")
        return deltas

    def forward(self, codes: torch.Tensor, deltas: Deltas = None) -> torch.Tensor:
        """codes: W+ [B,n_latent,style_dim]; deltas: {layer name: [B,Cout,Cin,k,k]} or a 26-slot list."""
        if codes.ndim != 3 or codes.shape[1:] != (self.n_latent, self.cfg.style_dim):
            raise HsError(f"codes must be [B,{self.n_latent},{self.cfg.style_dim}], got {tuple(codes.shape)}")
        d = self.delta_list(deltas)
        noise = [getattr(self.noises, f"noise_{i}") for i in range(self.cfg.num_noise)]
        out = self.input(codes.shape[0])
        out = self.conv1(out, codes[:, 0], noise[0], d[0])
        skip = self.to_rgb1(out, codes[:, 1], delta=d[1])
        i, j = 1, 2
        for conv1, conv2, n1, n2, to_rgb in zip(self.convs[::2], self.convs[1::2], noise[1::2], noise[2::2],
                                                self.to_rgbs):
            out = conv1(out, codes[:, i], n1, d[j])
            out = conv2(out, codes[:, i + 1], n2, d[j + 1])
            skip = to_rgb(out, codes[:, i + 2], skip, d[j + 2])
            i += 2
            j += 3
        return skip
