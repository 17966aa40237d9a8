"""`InverterResult`: what `Inverter.invert` returns (device tensors, host conversions)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch


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
        """Owned copies of every tensor (Δ in both layouts share one copy of the raw buffers' contents)."""
        raw = {k: v.clone() for k, v in self.raw_deltas.items()}
        return InverterResult(self.images.clone(), self.images_pooled.clone(), self.codes.clone(),
                              {k: v.clone() for k, v in self.deltas.items()}, raw, self.n_iters, True)

    def to_uint8(self) -> np.ndarray:
        """Final images as host uint8 HWC [B,size,size,3] (official tensor2im: (y+1)/2 clamped, x255, rounded)."""
        x = ((self.images.detach().float() + 1) / 2).clamp(0, 1) * 255
        return x.round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()

    def numpy(self) -> dict[str, np.ndarray]:
        """Host float32 arrays: images, images_pooled, codes, and `delta/<layer>` (official layout)."""
        out = {k: getattr(self, k).detach().float().cpu().numpy() for k in ("images", "images_pooled", "codes")}
        out.update({f"delta/{k}": v.detach().float().cpu().numpy() for k, v in self.deltas.items()})
        return out
