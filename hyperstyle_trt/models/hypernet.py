"""HyperStyle's hypernetwork: SharedWeightsHyperNetResNet and its Separable variant (official key names).

The ResNet-34 body is written with torchvision's BasicBlock names (`conv1, bn1, conv2, bn2, downsample.0/1`) so that no
torchvision import (and no ImageNet download) is needed. Output: {generator layer name: delta [B,Cout,Cin,k,k]} for
the tuned layers, in HyperStyle index order.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from hyperstyle_trt.core.config import SHARED_LAYERS, HyperStyleConfig, LayerSpec
from hyperstyle_trt.models.stylegan2 import EqualLinear


class BasicBlock(nn.Module):
    """torchvision.models.resnet.BasicBlock (eval semantics identical)."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class SharedWeightsHypernet(nn.Module):
    """z [B,z_dim] -> full 3x3 offsets [B,out,in,3,3]. Row r of h becomes C_out (official reshape order)."""

    def __init__(self, z_dim: int, in_size: int, out_size: int, f_size: int = 3):
        super().__init__()
        self.z_dim, self.in_size, self.out_size, self.f_size = z_dim, in_size, out_size, f_size
        self.w1 = nn.Parameter(torch.zeros(z_dim, out_size * f_size * f_size))
        self.b1 = nn.Parameter(torch.zeros(out_size * f_size * f_size))
        self.w2 = nn.Parameter(torch.zeros(z_dim, in_size * z_dim))
        self.b2 = nn.Parameter(torch.zeros(in_size * z_dim))

    def forward(self, z):
        b = z.shape[0]
        h = (torch.matmul(z, self.w2) + self.b2).view(b, self.in_size, self.z_dim)
        k = torch.matmul(h, self.w1) + self.b1  # [B,in,out*f*f]
        return k.view(b, self.out_size, self.in_size, self.f_size, self.f_size)


def _down_convs(cin: int, inner: int, cout: int, n_mid: int, first_stride: int) -> nn.Sequential:
    mods: list[nn.Module] = [nn.Conv2d(cin, inner, 3, first_stride, 1), nn.LeakyReLU()]
    for _ in range(n_mid):
        mods += [nn.Conv2d(inner, inner, 3, 2, 1), nn.LeakyReLU()]
    mods += [nn.Conv2d(inner, cout, 3, 2, 1), nn.LeakyReLU()]
    return nn.Sequential(*mods)


class HyperRefinementBlock(nn.Module):
    """Shared refinement block: convs (s1, then stride 2 down to 1x1) -> EqualLinear -> shared hypernet."""

    def __init__(self, hypernet: SharedWeightsHypernet, n_channels: int, inner_c: int, code_dim: int, spatial: int):
        super().__init__()
        self.code_dim = code_dim
        self.convs = _down_convs(n_channels, inner_c, code_dim, int(math.log2(spatial)) - 1, 1)
        self.linear = EqualLinear(code_dim, code_dim, lr_mul=1)
        self.hypernet = hypernet

    def code(self, features):
        return self.linear(self.convs(features).view(-1, self.code_dim))

    def forward(self, features):
        return self.hypernet(self.code(features))


class RefinementBlock(nn.Module):
    """Non-shared block: per-channel offsets [B,Cout,Cin] repeated over k x k (toRGB: full 1x1, no pooling)."""

    def __init__(self, spec: LayerSpec, n_channels: int, inner_c: int, out_c: int, spatial: int):
        super().__init__()
        self.spec = spec
        num_pools = int(math.log2(spatial)) - 1 - (1 if spec.kernel == 3 else 0)
        self.convs = _down_convs(n_channels, inner_c, out_c, num_pools - 1, 2)
        head = nn.Conv2d(out_c, spec.in_ch * spec.out_ch, 1)
        self.output = nn.Sequential(head) if spec.kind == "rgb" else nn.Sequential(nn.AdaptiveAvgPool2d((1, 1)), head)

    def forward(self, x):
        s = self.spec
        x = self.output(self.convs(x))
        if s.kind == "rgb":
            return x.view(-1, s.out_ch, s.in_ch, s.kernel, s.kernel)
        x = x.view(-1, s.out_ch, s.in_ch)
        return x.unsqueeze(3).repeat(1, 1, 1, 3).unsqueeze(4).repeat(1, 1, 1, 1, 3)


class SeparableBlock(nn.Module):
    def __init__(self, input_size: int, cin: int, cout: int, k: int):
        super().__init__()
        self.input_size, self.k, self.cin, self.cout = input_size, k, cin, cout
        self.make_kernel_in = nn.Linear(input_size, k * k * cin)
        self.make_kernel_out = nn.Linear(input_size, k * k * cout)
        self.kernel_linear_in = nn.Linear(cin, cin)
        self.kernel_linear_out = nn.Linear(cout, cout)

    def forward(self, features):
        f = features.view(-1, self.input_size)
        kin = self.make_kernel_in(f).view(-1, self.k, self.k, 1, self.cin)
        kout = self.make_kernel_out(f).view(-1, self.k, self.k, self.cout, 1)
        kernel = torch.matmul(kout, kin)  # [B,k,k,O,I]
        kernel = self.kernel_linear_in(kernel).permute(0, 1, 2, 4, 3)
        kernel = self.kernel_linear_out(kernel)
        return kernel.permute(0, 4, 3, 1, 2)  # [B,O,I,k,k]


class RefinementBlockSeparable(nn.Module):
    def __init__(self, spec: LayerSpec, n_channels: int, inner_c: int, out_c: int, spatial: int):
        super().__init__()
        self.spec, self.out_c = spec, out_c
        self.convs = _down_convs(n_channels, inner_c, out_c, int(math.log2(spatial)) - 2, 2)
        if spec.kind == "rgb":
            self.output = nn.Sequential(nn.Conv2d(out_c, spec.in_ch * spec.out_ch, 1))
        else:
            self.output = nn.Sequential(SeparableBlock(out_c, spec.in_ch, spec.out_ch, spec.kernel))

    def forward(self, x):
        s = self.spec
        x = self.convs(x)
        if s.kind == "rgb":
            return self.output(x).view(-1, s.out_ch, s.in_ch, s.kernel, s.kernel)
        return self.output(x.view(-1, self.out_c))


class SharedWeightsHyperNetResNet(nn.Module):
    """Input [B,6,S,S] (= cat[x, y_hat]) -> {layer name: delta}. Separable variant via cfg.hypernet.encoder_type."""

    def __init__(self, cfg: HyperStyleConfig):
        super().__init__()
        h = cfg.hypernet
        self.cfg = cfg
        w = h.widths
        self.conv1 = nn.Conv2d(h.input_nc, w[0], 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(w[0])
        self.relu = nn.PReLU(w[0])
        blocks, inplanes = [], w[0]
        for stage, (planes, n) in enumerate(zip(w, h.blocks)):
            for i in range(n):
                blocks.append(BasicBlock(inplanes, planes, 2 if (i == 0 and stage > 0) else 1))
                inplanes = planes
        self.body = nn.Sequential(*blocks)
        self.specs = cfg.layers
        self.layers_to_tune = list(h.layers_to_tune)
        self.shared_layers = list(SHARED_LAYERS)
        c = cfg.shared_ch
        self.shared_weight_hypernet = SharedWeightsHypernet(h.code_dim, c, c)
        separable = h.encoder_type == "SharedWeightsHyperNetResNetSeparable"
        sp = h.feature_size
        self.refinement_blocks = nn.ModuleList()
        for spec in self.specs:
            if spec.idx not in h.layers_to_tune:
                block = None
            elif spec.idx in SHARED_LAYERS:
                block = HyperRefinementBlock(self.shared_weight_hypernet, w[-1], h.shared_inner, h.code_dim, sp)
            elif separable:
                block = RefinementBlockSeparable(spec, w[-1], h.inner, h.code_dim, sp)
            else:
                block = RefinementBlock(spec, w[-1], h.inner, h.code_dim, sp)
            self.refinement_blocks.append(block)

    def features(self, x):
        """[B,6,S,S] -> [B,C,S/16,S/16]."""
        return self.body(self.relu(self.bn1(self.conv1(x))))

    def forward(self, x) -> dict[str, torch.Tensor]:
        f = self.features(x)
        return {s.name: blk(f) for s, blk in zip(self.specs, self.refinement_blocks) if blk is not None}
