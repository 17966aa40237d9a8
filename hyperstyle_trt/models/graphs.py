"""The torch modules behind the three exported graphs (core.contract holds their names, shapes and dtypes).

`WEncoderGraph`, `HypernetGraph` and `GeneratorGraph` are what `hs-export` traces and what a runtime's torch executor
runs, so the graph a TensorRT engine was built from and the eager module are the same code. The plugin generator
graph (`plugins.generator.PluginGeneratorGraph`) sits with the plugin ops it runs on.
"""

from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

from hyperstyle_trt.core.config import LayerSpec
from hyperstyle_trt.core.contract import DeltaMode, GraphIO
from hyperstyle_trt.models.hyperstyle import HyperStyle
from hyperstyle_trt.models.hypernet import HyperRefinementBlock, RefinementBlock


class WEncoderGraph(nn.Module):
    """image [B,3,S,S] -> codes [B,n_latent,style_dim] = w_encoder(image) + latent_avg (row-wise)."""

    def __init__(self, model: HyperStyle):
        super().__init__()
        self.w_encoder = model.w_encoder
        self.register_buffer("latent_avg", model.latent_avg.detach().clone())

    def forward(self, image):
        return self.w_encoder(image) + self.latent_avg  # [B,L,D] + [L,D]


class HypernetGraph(nn.Module):
    """(image, recon_pooled [B,3,S,S], acc Δ per tuned layer) -> acc Δ + hypernet(cat[image, recon_pooled]).

    The nine shared-layer codes are stacked into one [B,9,z] operand so the shared hypernet's w2 (134 M weights for
    FFHQ) is read once per call instead of nine times; the math is the official SharedWeightsHypernet's (row r of h
    becomes C_out). Per-channel layers (modes[name] == DeltaMode.PER_CHANNEL) skip the official 3x3 repeat:
    [B,Cout,Cin].

    `ohwi`: full Δ of 3x3 layers as [B,Cout,3,3,Cin] (the HsModConv v2 layout; toRGB and per-channel Δ unchanged).
    Shared layers get it at no runtime cost: the columns of w1/b1 are permuted once here (buffers `w1_ohwi`,
    `b1_ohwi`; the model's parameters are untouched). Full non-shared RefinementBlock layers broadcast their [B,O,I]
    head output over the taps (no copy either); Separable layers pay a runtime transpose (Transpose in the graph).
    """

    def __init__(self, model: HyperStyle, modes: dict[str, int], ohwi: bool = False):
        super().__init__()
        self.hypernet = model.hypernet
        self.specs = model.cfg.tuned
        self.modes = dict(modes)
        self.ohwi = ohwi
        blocks = dict(zip([s.name for s in model.cfg.layers], model.hypernet.refinement_blocks))
        self.blocks = [blocks[s.name] for s in self.specs]
        self.shared = [i for i, b in enumerate(self.blocks) if isinstance(b, HyperRefinementBlock)]
        if ohwi:  # w1 [z, I*f*f] column c = i*f*f + t (official) -> c' = t*I + i (OHWI), t = kh*f + kw; b1 alike
            hn = self.hypernet.shared_weight_hypernet
            i, ff = hn.in_size, hn.f_size * hn.f_size
            w1 = hn.w1.detach().reshape(hn.z_dim, i, ff).transpose(1, 2).reshape(hn.z_dim, ff * i)  # a copy
            b1 = hn.b1.detach().reshape(i, ff).t().reshape(ff * i)
            self.register_buffer("w1_ohwi", w1, persistent=False)
            self.register_buffer("b1_ohwi", b1, persistent=False)

    def _shared_deltas(self, f) -> list[torch.Tensor]:
        hn = self.hypernet.shared_weight_hypernet
        z = torch.stack([self.blocks[i].code(f) for i in self.shared], dim=1)  # [B,n,z]
        b, n, o, i, k = z.shape[0], len(self.shared), hn.out_size, hn.in_size, hn.f_size
        h = (torch.matmul(z, hn.w2) + hn.b2).reshape(b, n, hn.in_size, hn.z_dim)  # [B,n,O,z] (row r of h = C_out)
        if self.ohwi:
            d = torch.matmul(h, self.w1_ohwi) + self.b1_ohwi  # [B,n,O,f*f*I], column t*I + i
            d = d.reshape(b, n, o, k, k, i)  # [B,n,O,f,f,I]
        else:
            d = torch.matmul(h, hn.w1) + hn.b1  # [B,n,O,I*f*f], column i*f*f + t
            d = d.reshape(b, n, o, i, k, k)  # [B,n,O,I,f,f]
        return list(torch.unbind(d, dim=1))

    def _block_delta(self, spec: LayerSpec, blk: nn.Module, f) -> torch.Tensor:
        """A non-shared block's Δ in this graph's form (see the class docstring)."""
        per_channel = self.modes[spec.name] == DeltaMode.PER_CHANNEL
        assert isinstance(blk, RefinementBlock) or not per_channel, spec.name
        if isinstance(blk, RefinementBlock) and (per_channel or (self.ohwi and spec.kernel == 3)):
            d = blk.output(blk.convs(f)).reshape(-1, spec.out_ch, spec.in_ch)  # [B,O,I]
            # per-channel: no 3x3 repeat; full OHWI: the official repeat over the taps as a broadcast [B,O,3,3,I]
            return d if per_channel else d[:, :, None, None, :].expand(-1, -1, 3, 3, -1)
        d = blk(f)  # [B,O,I,k,k]
        if self.ohwi and spec.kernel == 3:
            d = d.permute(0, 1, 3, 4, 2)  # [B,O,3,3,I]: a runtime transpose (Separable blocks)
        return d

    def forward(self, image, recon_pooled, *acc):
        f = self.hypernet.features(torch.cat([image, recon_pooled], dim=1))  # [B,C,S/16,S/16]
        shared = iter(self._shared_deltas(f)) if self.shared else iter(())
        out = []
        for spec, blk, a in zip(self.specs, self.blocks, acc):
            d = next(shared) if isinstance(blk, HyperRefinementBlock) else self._block_delta(spec, blk, f)
            out.append(a + d)
        return tuple(out)


class GeneratorGraph(nn.Module):
    """(codes [B,L,D], full Δ [B,O,I,k,k] (official OIHW) per tuned layer) -> (image [B,3,size,size],
    image_pooled [B,3,S,S]). Standard ONNX ops (grouped conv with groups = B: the batch is fixed in the exported
    graph)."""

    def __init__(self, model: HyperStyle):
        super().__init__()
        self.decoder = model.decoder
        self.names = [s.name for s in model.cfg.tuned]
        self.pool_size = model.cfg.hypernet.input_size

    def forward(self, codes, *deltas):
        img = self.decoder(codes, dict(zip(self.names, deltas)))
        return img, F.adaptive_avg_pool2d(img, (self.pool_size, self.pool_size))


def example_inputs(io: GraphIO, batch: int, seed: int = 0, delta_scale: float = 0.05) -> dict[str, torch.Tensor]:
    """Deterministic inputs for `io` at `batch`: images in [-1,1], codes ~ N(0,1), small Δ (distinct per sample)."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for t in io.inputs:
        shape = t.concrete(batch)
        if t.name in ("image", "recon_pooled"):
            out[t.name] = torch.rand(shape, generator=g) * 2 - 1
        elif t.name == "codes":
            out[t.name] = torch.randn(shape, generator=g)
        else:
            out[t.name] = delta_scale * torch.randn(shape, generator=g)
    return out
