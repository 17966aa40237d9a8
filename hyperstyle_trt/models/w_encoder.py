"""HyperStyle's W encoder: WEncoder(50, 'ir_se') from pSp/e4e, official key names (`encoder.*` in the checkpoint)."""

from __future__ import annotations

from torch import nn

from hyperstyle_trt.core.config import HyperStyleConfig
from hyperstyle_trt.models.stylegan2 import EqualLinear


class SEModule(nn.Module):
    def __init__(self, channels: int, reduction: int):
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, channels // reduction, 1, padding=0, bias=False)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(channels // reduction, channels, 1, padding=0, bias=False)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x):
        return x * self.sigmoid(self.fc2(self.relu(self.fc1(self.avg_pool(x)))))


class BottleneckIRSE(nn.Module):
    """BN -> conv3x3 -> PReLU -> conv3x3(stride) -> BN -> SE, plus shortcut (subsample or conv1x1+BN); no final act."""

    def __init__(self, in_channel: int, depth: int, stride: int, reduction: int):
        super().__init__()
        if in_channel == depth:
            self.shortcut_layer = nn.MaxPool2d(1, stride)
        else:
            self.shortcut_layer = nn.Sequential(nn.Conv2d(in_channel, depth, 1, stride, bias=False),
                                                nn.BatchNorm2d(depth))
        self.res_layer = nn.Sequential(
            nn.BatchNorm2d(in_channel), nn.Conv2d(in_channel, depth, 3, 1, 1, bias=False), nn.PReLU(depth),
            nn.Conv2d(depth, depth, 3, stride, 1, bias=False), nn.BatchNorm2d(depth), SEModule(depth, reduction))

    def forward(self, x):
        return self.res_layer(x) + self.shortcut_layer(x)


class WEncoder(nn.Module):
    """Image [B,3,S,S] in [-1,1] -> raw codes [B,n_latent,style_dim] (one w repeated; latent_avg NOT added)."""

    def __init__(self, cfg: HyperStyleConfig):
        super().__init__()
        e = cfg.w_encoder
        w = e.widths
        self.input_layer = nn.Sequential(nn.Conv2d(e.input_nc, w[0], 3, 1, 1, bias=False), nn.BatchNorm2d(w[0]),
                                         nn.PReLU(w[0]))
        units, cin = [], w[0]
        for depth, n in zip(w, e.units):
            for i in range(n):
                units.append(BottleneckIRSE(cin, depth, 2 if i == 0 else 1, e.se_reduction))
                cin = depth
        self.body = nn.Sequential(*units)
        self.output_pool = nn.AdaptiveAvgPool2d((1, 1))
        self.out_dim = w[-1]
        self.linear = EqualLinear(w[-1], cfg.generator.style_dim, lr_mul=1)
        self.style_count = cfg.generator.n_latent

    def pooled(self, x):
        return self.output_pool(self.body(self.input_layer(x))).view(-1, self.out_dim)

    def forward(self, x):
        w = self.linear(self.pooled(x))
        return w.unsqueeze(1).repeat(1, self.style_count, 1)
