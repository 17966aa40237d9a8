"""`PluginGenerator`: the StyleGAN2 synthesis network of `models.stylegan2.Generator` on the plugin ops.

Same parameters and buffers (it holds the Generator as `decoder`), NHWC activations throughout, one
`torch.ops.hyperstyle.mod_conv` per StyledConv and one `torch.ops.hyperstyle.to_rgb` per ToRGB (ops registered by
plugins/<op>/op.py). The modulation EqualLinear stays a plain linear (a MatMul in the graph); the noise is the fixed
buffer times its strength (constant-folded on export). The final 3-channel image is transposed to NCHW once.

    pg = PluginGenerator(gen, modes={"conv1": 1, "convs.8": 2, "to_rgbs.0": 1})
    img = pg(codes, delta_conv1, delta_convs_8, delta_to_rgbs_0)   # [B,3,size,size]

Δ inputs come in `modes` order, named `LayerSpec.input_name` (`delta_convs_8`). Shapes per mode: conv layers
1 = full OHWI [B,Cout,3,3,Cin] (HsModConv v2; `plugins.mod_conv.reference.to_ohwi` of the official
[B,Cout,Cin,3,3]), 2 = per-channel [B,Cout,Cin]; toRGB layers 1 = [B,3,Cin] (or [B,3,Cin,1,1]). The decoder's
3x3 weights are converted to OHWI in forward (a transpose of a constant: folded away on export); in eager inference
the converted copies are cached per layer, so a GPU forward does not pay 17 weight transposes per pass. A copy is
rebuilt when its weight gets new storage, dtype, device or shape, or is updated in place (its version counter:
`load_state_dict`, optimizers, `with torch.no_grad(): w.add_(...)`); writes through `weight.data` bypass the
version counter and are not seen: call `clear_weight_cache()` after them.
Untuned layers get no Δ input (delta_mode=0).
"""

from __future__ import annotations

from typing import Mapping

import torch
from torch import nn
import torch.nn.functional as F

from hyperstyle_trt.core.config import LayerSpec
from hyperstyle_trt.core.errors import HsError
from hyperstyle_trt.models.stylegan2 import Generator
from hyperstyle_trt.plugins.mod_conv.reference import to_ohwi


def load_torch_ops() -> None:
    """Import the modules that register torch.ops.hyperstyle.mod_conv / to_rgb (plugins/<op>/op.py)."""
    try:
        import hyperstyle_trt.plugins.mod_conv.op  # noqa: F401  (registers torch.ops.hyperstyle.mod_conv)
        import hyperstyle_trt.plugins.to_rgb.op  # noqa: F401  (registers torch.ops.hyperstyle.to_rgb)
    except ImportError as e:
        raise HsError(f"the hyperstyle torch custom ops are not available ({e})") from None


def call_op(key: str, tensors: Mapping[str, torch.Tensor | None], attrs: Mapping[str, int]) -> torch.Tensor:
    """Call torch.ops.hyperstyle.<key> binding the contract names (plugins/README.md) to the op schema by name.
    Names the schema does not declare are dropped (e.g. `has_skip`, implied by `skip`)."""
    overload = getattr(torch.ops.hyperstyle, key).default
    names = {a.name for a in overload._schema.arguments}
    return overload(**{k: v for k, v in {**tensors, **attrs}.items() if k in names})


def _tracing() -> bool:
    """True under torch.compile / torch.export (incl. the dynamo ONNX exporter) / torch.jit tracing."""
    c = torch.compiler
    return bool(c.is_compiling() or getattr(c, "is_exporting", lambda: False)() or torch.jit.is_tracing())


class PluginGenerator(nn.Module):
    """Generator forward on the plugin ops: (codes [B,n_latent,style_dim], Δ per tuned layer) -> image [B,3,S,S]."""

    def __init__(self, decoder: Generator, modes: Mapping[str, int] | None = None):
        super().__init__()
        load_torch_ops()
        self.decoder = decoder
        self.specs: tuple[LayerSpec, ...] = decoder.specs
        self._ohwi_cache: dict[str, tuple] = {}  # layer -> (weight identity, OHWI copy, the weight)
        by_name = {s.name: s for s in self.specs}
        self.modes = dict(modes or {})
        for name, mode in self.modes.items():
            if name not in by_name:
                raise HsError(f"unknown generator layer {name!r}; expected one of {sorted(by_name)}")
            allowed = (1,) if by_name[name].kind == "rgb" else (1, 2)
            if mode not in allowed:
                raise HsError(f"layer {name}: delta mode {mode} not in {list(allowed)}")

    @property
    def delta_names(self) -> list[str]:
        """Graph input names of the Δ tensors, in forward order (`delta_convs_8`, ...)."""
        by_name = {s.name: s for s in self.specs}
        return [by_name[n].input_name for n in self.modes]

    def _module(self, spec: LayerSpec) -> nn.Module:
        g = self.decoder
        if spec.name in ("conv1", "to_rgb1"):
            return getattr(g, spec.name)
        coll, i = spec.name.split(".")
        return getattr(g, coll)[int(i)]

    def _ohwi_weight(self, spec: LayerSpec, w: torch.Tensor) -> torch.Tensor:
        """to_ohwi(w), cached in eager inference; traced (torch.compile / export / jit) or differentiated, always
        recomputed so graphs keep the transpose of the parameter and gradients flow."""
        if _tracing() or (torch.is_grad_enabled() and w.requires_grad):
            return to_ohwi(w)
        key = (w.data_ptr(), w._version, w.dtype, w.device, tuple(w.shape))
        hit = self._ohwi_cache.get(spec.name)
        if hit is None or hit[0] != key:
            # the entry holds w itself: its storage cannot be freed and its address reused by another tensor
            hit = (key, to_ohwi(w).contiguous(), w)
            self._ohwi_cache[spec.name] = hit
        return hit[1]

    def fill_weight_cache(self) -> None:
        """Compute every 3x3 layer's cached OHWI weight now, eagerly (e.g. before a CUDA-graph capture: a first forward
        inside a capture would record the transpose without running it, and the cache would hold garbage until the
        first replay). The keys are the ones forward uses, so forward then hits the cache."""
        with torch.no_grad():
            for spec in self.specs:
                if spec.kind != "rgb":
                    self._ohwi_weight(spec, self._module(spec).conv.weight[0])

    def clear_weight_cache(self) -> None:
        """Drop the cached OHWI weights (needed only after writes through `weight.data`, which the cache cannot
        see; in-place updates of the parameters themselves are detected)."""
        self._ohwi_cache.clear()

    def _styled_conv(self, spec: LayerSpec, x: torch.Tensor, codes: torch.Tensor, delta) -> torch.Tensor:
        m = self._module(spec)
        noise = m.noise.weight * getattr(self.decoder.noises, f"noise_{spec.noise}")[0, 0]  # [Ho,Wo]
        mode = self.modes.get(spec.name, 0)
        tensors = dict(x=x, style=m.conv.modulation(codes[:, spec.latent]),  # s [B,Cin]
                       weight=self._ohwi_weight(spec, m.conv.weight[0]), delta=delta, noise=noise,
                       bias=m.activate.bias)  # W OHWI [Cout,3,3,Cin]
        return call_op("mod_conv", tensors, dict(upsample=int(spec.kind == "up"), delta_mode=mode, demodulate=1))

    def _to_rgb(self, spec: LayerSpec, x: torch.Tensor, codes: torch.Tensor, skip, delta) -> torch.Tensor:
        m = self._module(spec)
        if delta is not None and delta.ndim == 5:
            delta = delta.flatten(2)  # [B,3,Cin,1,1] -> [B,3,Cin]
        tensors = dict(x=x, style=m.conv.modulation(codes[:, spec.latent]), weight=m.conv.weight[0, :, :, 0, 0],
                       delta=delta, bias=m.bias.view(3), skip=skip)  # W [3,Cin], bias [3]
        return call_op("to_rgb", tensors, dict(has_skip=int(skip is not None),
                                               delta_mode=self.modes.get(spec.name, 0)))

    def forward(self, codes: torch.Tensor, *deltas: torch.Tensor) -> torch.Tensor:
        cfg = self.decoder.cfg
        if codes.ndim != 3 or tuple(codes.shape[1:]) != (cfg.n_latent, cfg.style_dim):
            raise HsError(f"codes must be [B,{cfg.n_latent},{cfg.style_dim}], got {tuple(codes.shape)}")
        if len(deltas) != len(self.modes):
            raise HsError(f"expected {len(self.modes)} delta inputs {self.delta_names}, got {len(deltas)}")
        d = dict(zip(self.modes, deltas))
        const = self.decoder.input.input  # [1,C,4,4]
        x = const.permute(0, 2, 3, 1).expand(codes.shape[0], -1, -1, -1).contiguous()  # [B,4,4,C] NHWC
        skip = None
        for spec in self.specs:
            if spec.kind == "rgb":
                skip = self._to_rgb(spec, x, codes, skip, d.get(spec.name))  # [B,H,W,3]
            else:
                x = self._styled_conv(spec, x, codes, d.get(spec.name))  # [B,Ho,Wo,Cout]
        return skip.permute(0, 3, 1, 2)  # NHWC -> NCHW [B,3,S,S]


class PluginGeneratorGraph(nn.Module):
    """(codes, Δ per tuned layer in `modes` form; full 3x3 Δ OHWI [B,O,3,3,I]) -> (image [B,3,size,size],
    image_pooled [B,3,S,S]) on the plugin ops (PluginGenerator: NHWC inside, HsModConv/HsToRGB
    nodes once exported with plugins.onnx_export.custom_translation_table). No grouped conv: the batch stays
    dynamic."""

    def __init__(self, model, modes: dict[str, int]):
        super().__init__()
        ordered = {s.name: modes[s.name] for s in model.cfg.tuned}  # forward takes Δ in this order
        self.gen = PluginGenerator(model.decoder, ordered)
        self.pool_size = model.cfg.hypernet.input_size

    def forward(self, codes, *deltas):
        img = self.gen(codes, *deltas)
        return img, F.adaptive_avg_pool2d(img, (self.pool_size, self.pool_size))
