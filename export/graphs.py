"""The three exported graphs as PyTorch wrapper modules with fixed, named I/O (the ONNX contract of the runtime).

| graph     | inputs                                                    | outputs                                     |
|-----------|-----------------------------------------------------------|---------------------------------------------|
| w_encoder | image [B,3,S,S]                                           | codes [B,n_latent,style_dim] (+ latent_avg) |
| hypernet  | image [B,3,S,S], recon_pooled [B,3,S,S], delta_<layer>... | acc_<layer>... (= delta_<layer> + H(x, y))  |
| generator | codes [B,n_latent,style_dim], delta_<layer>...            | image [B,3,size,size], image_pooled         |

S = cfg.hypernet.input_size (256 for FFHQ), <layer> = the generator layer with dots as underscores (`convs_8`); the
Δ inputs are named `LayerSpec.input_name` (`delta_convs_8`) in both graphs and the hypernet's outputs `acc_convs_8`, so
the runtime ping-pongs two buffer sets: acc_* of iteration t is bound as delta_* of iteration t+1 and of the generator.
The first iteration feeds zeros (Δ = 0 is the untuned generator).

Δ shape per layer (delta_*, acc_*; without B), per variant:

| layer                                   | plain variant (OIHW)  | plugin variant (OHWI)                      |
|-----------------------------------------|-----------------------|--------------------------------------------|
| 3x3 conv, full (shared, Separable)      | [Cout,Cin,3,3]        | [Cout,3,3,Cin] (HsModConv v2, Cin inner)   |
| 3x3 conv, non-shared RefinementBlock    | [Cout,Cin,3,3]        | [Cout,Cin] per-channel (broadcast on 3x3)  |
| toRGB (k=1)                             | [3,Cin,1,1]           | [3,Cin,1,1] (same memory as OHWI)          |

Per-channel: the official head predicts one value per (o, i) and repeats it over 3x3, so the plugin broadcasts it
instead (9x less memory). OHWI: the HsModConv kernel loads its weight/Δ tiles along Cin (contiguous vector loads);
`delta_shape(..., ohwi=True)` / `graph_io(..., ohwi=True)` / `HypernetGraph(..., ohwi=True)` give that layout.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
import torch.nn.functional as F

from models.config import SHARED_LAYERS, HyperStyleConfig, LayerSpec
from models.hyperstyle import HyperStyle
from models.hypernet import HyperRefinementBlock, RefinementBlock

FULL, PER_CHANNEL = 1, 2  # delta modes, as the HsModConv `delta_mode` attribute


def acc_name(spec: LayerSpec) -> str:
    """Hypernet output name for a layer: `acc_convs_8`."""
    return "acc_" + spec.name.replace(".", "_")


def delta_modes(cfg: HyperStyleConfig, per_channel: bool) -> dict[str, int]:
    """{layer name: FULL | PER_CHANNEL} for the tuned layers. PER_CHANNEL only for non-shared, non-separable
    RefinementBlock convs (k=3), and only when `per_channel`."""
    sep = cfg.hypernet.encoder_type.endswith("Separable")
    return {s.name: PER_CHANNEL if per_channel and not sep and s.idx not in SHARED_LAYERS and s.kind != "rgb"
            else FULL for s in cfg.tuned}


def delta_layout(ohwi: bool) -> str:
    """The sidecar's name of the full-Δ layout: "OHWI" (plugin variant) or "OIHW" (official, plain variant)."""
    return "OHWI" if ohwi else "OIHW"


def delta_shape(spec: LayerSpec, mode: int, ohwi: bool = False) -> tuple[int, ...]:
    """Per-sample Δ shape (without B): full (Cout,Cin,k,k), or (Cout,k,k,Cin) with `ohwi` for k=3 convs (toRGB keeps
    (3,Cin,1,1): the same memory); per-channel (Cout,Cin)."""
    o, i, k, _ = spec.delta_shape
    if mode != FULL:
        return (o, i)
    return (o, k, k, i) if ohwi and k == 3 else (o, i, k, k)


@dataclass(frozen=True)
class TensorIO:
    """A named graph input/output; shape[0] is the batch ("B" when dynamic)."""

    name: str
    shape: tuple[int | str, ...]

    def concrete(self, batch: int) -> tuple[int, ...]:
        return tuple(batch if isinstance(d, str) else d for d in self.shape)


@dataclass(frozen=True)
class GraphIO:
    inputs: tuple[TensorIO, ...]
    outputs: tuple[TensorIO, ...]

    @property
    def input_names(self) -> list[str]:
        return [t.name for t in self.inputs]

    @property
    def output_names(self) -> list[str]:
        return [t.name for t in self.outputs]


def graph_io(cfg: HyperStyleConfig, graph: str, modes: dict[str, int], batch: int | str = "B",
             ohwi: bool = False) -> GraphIO:
    """The I/O contract of `graph` for Δ `modes` (see delta_modes); `batch` is "B" (dynamic) or a fixed int; `ohwi`:
    full 3x3 Δ as [B,Cout,3,3,Cin] (plugin variant) instead of the official [B,Cout,Cin,3,3]."""
    g, s = cfg.generator, cfg.hypernet.input_size
    img = (batch, 3, s, s)
    deltas = tuple(TensorIO(t.input_name, (batch, *delta_shape(t, modes[t.name], ohwi))) for t in cfg.tuned)
    if graph == "w_encoder":
        return GraphIO((TensorIO("image", img),), (TensorIO("codes", (batch, g.n_latent, g.style_dim)),))
    if graph == "hypernet":
        accs = tuple(TensorIO(acc_name(t), (batch, *delta_shape(t, modes[t.name], ohwi))) for t in cfg.tuned)
        return GraphIO((TensorIO("image", img), TensorIO("recon_pooled", img), *deltas), accs)
    if graph == "generator":
        return GraphIO((TensorIO("codes", (batch, g.n_latent, g.style_dim)), *deltas),
                       (TensorIO("image", (batch, 3, g.size, g.size)), TensorIO("image_pooled", img)))
    raise AssertionError(graph)


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
    becomes C_out). Per-channel layers (modes[name] == PER_CHANNEL) skip the official 3x3 repeat: [B,Cout,Cin].

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
        per_channel = self.modes[spec.name] == PER_CHANNEL
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


class PluginGeneratorGraph(nn.Module):
    """(codes, Δ per tuned layer in `modes` form; full 3x3 Δ OHWI [B,O,3,3,I]) -> (image [B,3,size,size],
    image_pooled [B,3,S,S]) on the plugin ops (plugins/generator.py PluginGenerator: NHWC inside, HsModConv/HsToRGB
    nodes once exported with plugins.onnx_export.custom_translation_table). No grouped conv: the batch stays
    dynamic."""

    def __init__(self, model: HyperStyle, plugin_generator_cls, modes: dict[str, int]):
        super().__init__()
        ordered = {s.name: modes[s.name] for s in model.cfg.tuned}  # forward takes Δ in this order
        self.gen = plugin_generator_cls(model.decoder, ordered)
        self.pool_size = model.cfg.hypernet.input_size

    def forward(self, codes, *deltas):
        img = self.gen(codes, *deltas)
        return img, F.adaptive_avg_pool2d(img, (self.pool_size, self.pool_size))
