"""The graph I/O contract: what the exporter writes, the engine builder profiles and every executor binds.

Three graphs with fixed, named I/O (`GRAPHS`):

| graph     | inputs                                                    | outputs                                     |
|-----------|-----------------------------------------------------------|---------------------------------------------|
| w_encoder | image [B,3,S,S]                                           | codes [B,n_latent,style_dim] (+ latent_avg) |
| hypernet  | image [B,3,S,S], recon_pooled [B,3,S,S], delta_<layer>... | acc_<layer>... (= delta_<layer> + H(x, y))  |
| generator | codes [B,n_latent,style_dim], delta_<layer>...            | image [B,3,size,size], image_pooled         |

S = cfg.hypernet.input_size (256 for FFHQ), <layer> = the generator layer with dots as underscores (`convs_8`); the
Δ inputs are named `LayerSpec.input_name` (`delta_convs_8`) in both graphs and the hypernet's outputs `acc_convs_8`, so
a runtime ping-pongs two buffer sets: acc_* of iteration t is bound as delta_* of iteration t+1 and of the generator.
The first iteration feeds zeros (Δ = 0 is the untuned generator). Every float tensor of a graph has the graph's
precision (`float32`, or `float16` for fp16 graphs: their buffers are fp16 end to end).

Δ shape per layer (delta_*, acc_*; without B), per variant:

| layer                                   | plain variant (OIHW)  | plugin variant (OHWI)                      |
|-----------------------------------------|-----------------------|--------------------------------------------|
| 3x3 conv, full (shared, Separable)      | [Cout,Cin,3,3]        | [Cout,3,3,Cin] (HsModConv v2, Cin inner)   |
| 3x3 conv, non-shared RefinementBlock    | [Cout,Cin,3,3]        | [Cout,Cin] per-channel (broadcast on 3x3)  |
| toRGB (k=1)                             | [3,Cin,1,1]           | [3,Cin,1,1] (same memory as OHWI)          |

Per-channel: the official head predicts one value per (o, i) and repeats it over 3x3, so the plugin broadcasts it
instead (9x less memory). OHWI: the HsModConv kernel loads its weight/Δ tiles along Cin (contiguous vector loads).
docs/contract.md says the same for readers. Pure Python: importable without torch or any model code.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from hyperstyle_trt.core.config import SHARED_LAYERS, HyperStyleConfig, LayerSpec
from hyperstyle_trt.core.errors import HsError
from hyperstyle_trt.core.precision import PRECISIONS as _PRECISIONS

GRAPHS = ("w_encoder", "hypernet", "generator")
VARIANTS = ("plain", "plugin")
PRECISIONS = {p.name: p.numpy for p in _PRECISIONS.values()}  # graph precision -> dtype of its float I/O


class DeltaMode(enum.IntEnum):
    """How a layer's Δ is given (the HsModConv/HsToRGB `delta_mode` attribute): absent, full per-weight, or one
    value per (Cout, Cin) broadcast over the 3x3 taps."""

    NONE = 0
    FULL = 1
    PER_CHANNEL = 2


class DeltaLayout(str, enum.Enum):
    """Memory order of a full 3x3 Δ: the official OIHW ([Cout,Cin,3,3], plain graphs) or OHWI ([Cout,3,3,Cin],
    plugin graphs: what the kernel reads)."""

    OIHW = "OIHW"
    OHWI = "OHWI"


def acc_name(spec: LayerSpec) -> str:
    """Hypernet output name for a layer: `acc_convs_8`."""
    return "acc_" + spec.name.replace(".", "_")


def delta_modes(cfg: HyperStyleConfig, per_channel: bool) -> dict[str, DeltaMode]:
    """{layer name: FULL | PER_CHANNEL} for the tuned layers. PER_CHANNEL only for non-shared, non-separable
    RefinementBlock convs (k=3), and only when `per_channel` (the plugin variant)."""
    sep = cfg.hypernet.encoder_type.endswith("Separable")
    return {s.name: DeltaMode.PER_CHANNEL if per_channel and not sep and s.idx not in SHARED_LAYERS and s.kind != "rgb"
            else DeltaMode.FULL for s in cfg.tuned}


def delta_layout(ohwi: bool) -> DeltaLayout:
    """The full-Δ layout of a variant: OHWI (plugin) or OIHW (official, plain)."""
    return DeltaLayout.OHWI if ohwi else DeltaLayout.OIHW


def delta_shape(spec: LayerSpec, mode: int, ohwi: bool = False) -> tuple[int, ...]:
    """Per-sample Δ shape (without B): full (Cout,Cin,k,k), or (Cout,k,k,Cin) with `ohwi` for k=3 convs (toRGB keeps
    (3,Cin,1,1): the same memory); per-channel (Cout,Cin)."""
    o, i, k, _ = spec.delta_shape
    if mode != DeltaMode.FULL:
        return (o, i)
    return (o, k, k, i) if ohwi and k == 3 else (o, i, k, k)


@dataclass(frozen=True)
class TensorIO:
    """A named graph input/output; shape[0] is the batch ("B" when dynamic); dtype a numpy/torch dtype name."""

    name: str
    shape: tuple[int | str, ...]
    dtype: str = "float32"

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

    def tensor(self, name: str) -> TensorIO:
        """The input or output called `name` (HsError naming the known ones otherwise)."""
        for t in self.inputs + self.outputs:
            if t.name == name:
                return t
        raise HsError(f"no tensor {name!r} in this graph; it has {self.input_names + self.output_names}")


def graph_io(cfg: HyperStyleConfig, graph: str, modes: dict[str, int], batch: int | str = "B",
             ohwi: bool = False, precision: str = "fp32") -> GraphIO:
    """The I/O contract of `graph` for Δ `modes` (see delta_modes); `batch` is "B" (dynamic) or a fixed int; `ohwi`:
    full 3x3 Δ as [B,Cout,3,3,Cin] (plugin variant) instead of the official [B,Cout,Cin,3,3]; `precision` "fp32" |
    "fp16": the dtype of every tensor."""
    if graph not in GRAPHS:
        raise HsError(f"unknown graph {graph!r}; expected one of {GRAPHS}")
    if precision not in PRECISIONS:
        raise HsError(f"unknown precision {precision!r}; expected one of {tuple(PRECISIONS)}")
    dt = PRECISIONS[precision]
    g, s = cfg.generator, cfg.hypernet.input_size
    img = (batch, 3, s, s)
    codes = TensorIO("codes", (batch, g.n_latent, g.style_dim), dt)
    deltas = tuple(TensorIO(t.input_name, (batch, *delta_shape(t, modes[t.name], ohwi)), dt) for t in cfg.tuned)
    if graph == "w_encoder":
        return GraphIO((TensorIO("image", img, dt),), (codes,))
    if graph == "hypernet":
        accs = tuple(TensorIO(acc_name(t), (batch, *delta_shape(t, modes[t.name], ohwi)), dt) for t in cfg.tuned)
        return GraphIO((TensorIO("image", img, dt), TensorIO("recon_pooled", img, dt), *deltas), accs)
    return GraphIO((codes, *deltas), (TensorIO("image", (batch, 3, g.size, g.size), dt),
                                      TensorIO("image_pooled", img, dt)))
