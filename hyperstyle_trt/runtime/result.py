"""`InverterResult`: what `Inverter.invert` returns (device tensors, host conversions)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from hyperstyle_trt.models.images import unit_to_uint8


@dataclass
class InverterResult:
    """One inversion batch. Tensors are on the Inverter's device in its precision's dtype (float32 / float16).

    images: final generator output [B,3,size,size] in the generator's range (~[-1,1], as models' InversionResult.image)
    images_pooled: the same pooled to the hypernet input size [B,3,S,S]
    codes: W+ codes [B,n_latent,style_dim] (w_encoder(x) + latent_avg; fixed over iterations)
    deltas: accumulated offsets {layer name: [B,Cout,Cin,k,k]} in the official OIHW layout (per-channel layers
        repeated over the 3x3 taps as the official head does; a broadcast view, not a copy)
    raw_deltas: the same offsets in the executor's contract layout {layer name: delta_<layer> tensor} (OHWI
        [B,O,3,3,I] / per-channel [B,O,I] for the plugin layout); `Inverter.edit` feeds them back
    n_iters: T; owned: False when the tensors are views of the Inverter's buffers, valid only until its next
        `invert` / `edit` call (copy() or invert(copy=True) gives owned tensors).
    """

    images: torch.Tensor
    images_pooled: torch.Tensor
    codes: torch.Tensor
    deltas: dict[str, torch.Tensor]
    raw_deltas: dict[str, torch.Tensor] = field(repr=False, default_factory=dict)
    n_iters: int = 0
    owned: bool = True

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def copy(self) -> "InverterResult":
        """Owned copies of every tensor. Δ in both layouts share one copy of the raw buffers' contents: each official
        view (permute / per-channel broadcast of its raw Δ) is re-made over the cloned raw tensor, so a per-channel
        layer stays [B,O,I] in memory instead of being materialised over the k x k taps."""
        raw = {k: v.clone(memory_format=torch.contiguous_format) for k, v in self.raw_deltas.items()}
        deltas = {}
        for k, v in self.deltas.items():
            view = _view_over(v, self.raw_deltas[k], raw[k]) if k in raw else None
            deltas[k] = v.clone() if view is None else view
        return InverterResult(self.images.clone(), self.images_pooled.clone(), self.codes.clone(), deltas, raw,
                              self.n_iters, True)

    def to_uint8(self) -> np.ndarray:
        """Final images as host uint8 HWC [B,size,size,3] (official tensor2im: (y+1)/2 clamped, x255, rounded)."""
        return unit_to_uint8(self.images).cpu().numpy()

    def numpy(self) -> dict[str, np.ndarray]:
        """Host float32 arrays: images, images_pooled, codes, and `delta/<layer>` (official layout)."""
        out = {k: getattr(self, k).detach().float().cpu().numpy() for k in ("images", "images_pooled", "codes")}
        out.update({f"delta/{k}": v.detach().float().cpu().numpy() for k, v in self.deltas.items()})
        return out

    @staticmethod
    def concat(parts: list["InverterResult"], official) -> "InverterResult":
        """One owned result from chunk results; the official Δ are views of the concatenated raw Δ (official(name,
        raw) as the Inverter builds them), not concatenated copies of the per-channel broadcasts."""
        cat = torch.cat
        raw = {k: cat([p.raw_deltas[k] for p in parts]) for k in parts[0].raw_deltas}
        deltas = {k: official(k, v) for k, v in raw.items()}
        return InverterResult(cat([p.images for p in parts]), cat([p.images_pooled for p in parts]),
                              cat([p.codes for p in parts]), deltas, raw, parts[0].n_iters, True)


def _view_over(view: torch.Tensor, base: torch.Tensor, new_base: torch.Tensor) -> torch.Tensor | None:
    """`view` (a view of contiguous `base`'s elements: permute / expand / reshape) re-made with the same sizes, strides
    and relative offset over `new_base` (a contiguous tensor of base's shape); None when view is not such a view."""
    if not (base.is_contiguous() and new_base.is_contiguous() and new_base.shape == base.shape
            and view.device == base.device and view.dtype == base.dtype
            and view.untyped_storage().data_ptr() == base.untyped_storage().data_ptr()):
        return None
    lo = view.storage_offset() - base.storage_offset()
    hi = lo + sum((n - 1) * st for n, st in zip(view.shape, view.stride()) if n > 0)
    if view.numel() == 0 or min(view.stride(), default=0) < 0 or lo < 0 or hi >= base.numel():
        return None
    return new_base.as_strided(view.shape, view.stride(), new_base.storage_offset() + lo)
