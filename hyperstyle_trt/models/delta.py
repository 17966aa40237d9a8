"""The one Δ layout pair: a contract-layout Δ (what graphs, executors and the fused ops bind) <-> the official
[B,Cout,Cin,k,k] (OIHW, what `models.hyperstyle.HyperStyle` and the official code use). core.contract states the
layouts; this module converts between them, and nothing else does.

Contract layout of one layer's Δ (without B), by DeltaMode and graph variant:
    FULL, 3x3, OHWI (plugin graphs)   [Cout,3,3,Cin]     <-> official [Cout,Cin,3,3] (permute)
    FULL, 3x3, OIHW (plain graphs)    [Cout,Cin,3,3]     == official
    FULL, toRGB (k=1)                 [3,Cin,1,1]        == official (OHWI and OIHW are the same memory)
    PER_CHANNEL (3x3 only)            [Cout,Cin]         <-> official [Cout,Cin,3,3] (broadcast over the taps / tap 0)
`to_official` returns views (permute / expand: no copy); `to_contract` returns views too (call .contiguous() where a
kernel needs it).
"""

from __future__ import annotations

import torch

from hyperstyle_trt.core.contract import DeltaMode


def to_ohwi(t: torch.Tensor) -> torch.Tensor:
    """Official [..., Cout, Cin, k, k] (OIHW) -> [..., Cout, k, k, Cin] (OHWI, Cin contiguous), contiguous.
    Works for a weight [O,I,3,3] and a full Δ [B,O,I,3,3]."""
    return t.movedim(-3, -1).contiguous()


def from_ohwi(t: torch.Tensor) -> torch.Tensor:
    """[..., Cout, k, k, Cin] (OHWI) -> official [..., Cout, Cin, k, k] (OIHW), a view."""
    return t.movedim(-1, -3)


def to_official(delta: torch.Tensor, mode: int, ohwi: bool, kernel: int = 3) -> torch.Tensor:
    """Contract Δ [B,...] of one layer -> official [B,Cout,Cin,k,k] (a view). `mode`: the layer's DeltaMode (NONE is
    not a Δ and is refused); `ohwi`: the graph variant stores full 3x3 Δ as OHWI; `kernel`: the layer's k (1 or 3)."""
    assert mode != DeltaMode.NONE, "a layer with delta_mode NONE has no Δ"
    if mode == DeltaMode.PER_CHANNEL:
        return delta[..., None, None].expand(*delta.shape, kernel, kernel)  # the official head repeats over taps
    if ohwi and kernel == 3:
        return from_ohwi(delta)
    return delta


def to_contract(delta: torch.Tensor, mode: int, ohwi: bool, kernel: int = 3) -> torch.Tensor:
    """Official [B,Cout,Cin,k,k] -> the contract Δ of one layer (the inverse of `to_official`; a view). PER_CHANNEL
    keeps tap (0, 0): the official per-channel head's value is the same on every tap."""
    assert mode != DeltaMode.NONE, "a layer with delta_mode NONE has no Δ"
    if mode == DeltaMode.PER_CHANNEL:
        return delta[..., 0, 0]
    if ohwi and kernel == 3:
        return delta.movedim(-3, -1)
    return delta
