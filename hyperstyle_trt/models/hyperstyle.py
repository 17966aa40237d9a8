"""HyperStyle: W encoder + hypernetwork + generator, and the reference inversion loop (official `run_inversion`)."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn
import torch.nn.functional as F

from hyperstyle_trt.core.config import HyperStyleConfig
from hyperstyle_trt.core.errors import HsError
from hyperstyle_trt.models.hypernet import SharedWeightsHyperNetResNet
from hyperstyle_trt.models.stylegan2 import Generator
from hyperstyle_trt.models.w_encoder import WEncoder


@dataclass
class InversionResult:
    """Outputs of `HyperStyle.invert` (all on the input's device, fp32).

    image: final generator output [B,3,size,size]; image_pooled: the same pooled to the hypernet input size;
    codes: W+ [B,n_latent,style_dim] (w_encoder(x) + latent_avg; fixed over iterations);
    deltas: accumulated offsets {layer name: [B,Cout,Cin,k,k]}; iterations: each iteration's full-size image
    (y_0 .. y_T) when requested, else empty; iteration_deltas: the accumulated offsets after each iteration
    (t = 1..T) when requested, else empty.
    """

    image: torch.Tensor
    image_pooled: torch.Tensor
    codes: torch.Tensor
    deltas: dict[str, torch.Tensor]
    iterations: list[torch.Tensor] = field(default_factory=list)
    iteration_deltas: list[dict[str, torch.Tensor]] = field(default_factory=list)


class HyperStyle(nn.Module):
    def __init__(self, cfg: HyperStyleConfig):
        super().__init__()
        self.cfg = cfg
        self.hypernet = SharedWeightsHyperNetResNet(cfg)
        self.decoder = Generator(cfg.generator)
        # Not part of the HyperStyle checkpoint (Coach drops `w_encoder*` keys); loaded from faces_w_encoder.pt.
        self.w_encoder = WEncoder(cfg)
        self.register_buffer("latent_avg", torch.zeros(cfg.generator.n_latent, cfg.generator.style_dim))

    def pool(self, img: torch.Tensor) -> torch.Tensor:
        """face_pool: AdaptiveAvgPool2d to the hypernet input size (for 1024 -> 256 exactly a 4x4 mean)."""
        s = self.cfg.hypernet.input_size
        return F.adaptive_avg_pool2d(img, (s, s))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """x [B,3,S,S] -> codes = w_encoder(x) + latent_avg (row-wise), [B,n_latent,style_dim]."""
        return self.w_encoder(x) + self.latent_avg.repeat(x.shape[0], 1, 1)

    def check_input(self, x: torch.Tensor) -> None:
        s = self.cfg.hypernet.input_size
        if x.ndim != 4 or tuple(x.shape[1:]) != (3, s, s):
            raise HsError(f"input images must be [B,3,{s},{s}] in [-1,1], got {tuple(x.shape)}")

    @torch.no_grad()
    def invert(self, x: torch.Tensor, n_iters: int = 5, return_iterations: bool = False,
               return_iteration_deltas: bool = False) -> InversionResult:
        """Official inference: codes, y0 = G(codes); for t in 1..T: delta += H(cat[x, pool(y)]), y = G(codes, delta)."""
        self.check_input(x)
        if n_iters < 1:
            raise HsError(f"n_iters must be >= 1, got {n_iters}")
        codes = self.encode(x)
        y = self.decoder(codes)
        iterations = [y] if return_iterations else []
        acc: dict[str, torch.Tensor] = {}
        acc_history = []
        for _ in range(n_iters):
            y_pool = self.pool(y)
            step = self.hypernet(torch.cat([x, y_pool], dim=1))
            acc = {k: acc[k] + d if k in acc else d for k, d in step.items()}
            y = self.decoder(codes, acc)
            if return_iterations:
                iterations.append(y)
            if return_iteration_deltas:
                acc_history.append(acc)
        return InversionResult(image=y, image_pooled=self.pool(y), codes=codes, deltas=acc, iterations=iterations,
                               iteration_deltas=acc_history)
