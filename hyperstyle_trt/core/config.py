"""Frozen model configurations: the official FFHQ presets and tiny test presets.

A `HyperStyleConfig` fully determines every module shape, so a state_dict can be checked against it key by key.
The layer table (`layer_specs`) is the single source of the HyperStyle layer indexing (docs/architecture.md §2):
index 0 is `conv1`, 1 is `to_rgb1`, and for k = 0.. : 2+3k is `convs.{2k}` (upsampling), 3+3k is `convs.{2k+1}`,
4+3k is `to_rgbs.{k}`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from hyperstyle_trt.core.errors import HsError

# HyperStyle's fixed set of layers served by the shared hypernetwork (refinement_blocks.py, `shared_layers`).
SHARED_LAYERS = (0, 2, 3, 5, 6, 8, 9, 11, 12)
ENCODER_TYPES = ("SharedWeightsHyperNetResNet", "SharedWeightsHyperNetResNetSeparable")


@dataclass(frozen=True)
class GeneratorConfig:
    """rosinality StyleGAN2 generator. `channels` maps resolution -> channels as ((4, c), (8, c), ...)."""

    size: int = 1024
    style_dim: int = 512
    n_mlp: int = 8
    channels: tuple[tuple[int, int], ...] = ()

    def __post_init__(self) -> None:
        if self.size < 8 or self.size & (self.size - 1):
            raise HsError(f"generator size must be a power of two >= 8, got {self.size}")
        if not self.channels:
            object.__setattr__(self, "channels", official_channels(self.size))
        res = tuple(r for r, _ in self.channels)
        want = tuple(2**i for i in range(2, self.log_size + 1))
        if res != want:
            raise HsError(f"generator channels must list resolutions {want}, got {res}")

    @property
    def log_size(self) -> int:
        return int(math.log2(self.size))

    @property
    def n_latent(self) -> int:
        return self.log_size * 2 - 2

    @property
    def num_noise(self) -> int:
        return (self.log_size - 2) * 2 + 1

    @property
    def n_layers(self) -> int:
        """Number of HyperStyle layer indices (modulated convs incl. toRGB): 26 / 23 / 20 for 1024 / 512 / 256."""
        return 3 * (self.log_size - 2) + 2

    def ch(self, res: int) -> int:
        return dict(self.channels)[res]


def official_channels(size: int, channel_multiplier: int = 2) -> tuple[tuple[int, int], ...]:
    table = {4: 512, 8: 512, 16: 512, 32: 512, 64: 256 * channel_multiplier, 128: 128 * channel_multiplier,
             256: 64 * channel_multiplier, 512: 32 * channel_multiplier, 1024: 16 * channel_multiplier}
    return tuple((2**i, table[2**i]) for i in range(2, int(math.log2(size)) + 1))


@dataclass(frozen=True)
class LayerSpec:
    """One modulated conv of the generator, in HyperStyle's layer indexing."""

    idx: int
    name: str  # module path in the generator, e.g. "convs.8"
    kind: str  # "conv" | "up" | "rgb"
    res: int  # output resolution
    in_ch: int
    out_ch: int
    kernel: int
    latent: int  # W+ row used
    noise: int | None  # noise buffer index (None for toRGB)

    @property
    def input_name(self) -> str:
        """Name of this layer's delta tensor in exported graphs, e.g. `delta_convs_8`."""
        return "delta_" + self.name.replace(".", "_")

    @property
    def delta_shape(self) -> tuple[int, int, int, int]:
        return (self.out_ch, self.in_ch, self.kernel, self.kernel)


def layer_specs(g: GeneratorConfig) -> tuple[LayerSpec, ...]:
    c4 = g.ch(4)
    specs = [LayerSpec(0, "conv1", "conv", 4, c4, c4, 3, 0, 0), LayerSpec(1, "to_rgb1", "rgb", 4, c4, 3, 1, 1, None)]
    in_ch = c4
    for k in range(g.log_size - 2):
        res = 2 ** (k + 3)
        out_ch = g.ch(res)
        base = 2 + 3 * k
        specs.append(LayerSpec(base, f"convs.{2 * k}", "up", res, in_ch, out_ch, 3, 1 + 2 * k, 2 * k + 1))
        specs.append(LayerSpec(base + 1, f"convs.{2 * k + 1}", "conv", res, out_ch, out_ch, 3, 2 + 2 * k, 2 * k + 2))
        specs.append(LayerSpec(base + 2, f"to_rgbs.{k}", "rgb", res, out_ch, 3, 1, 3 + 2 * k, None))
        in_ch = out_ch
    return tuple(specs)


@dataclass(frozen=True)
class HypernetConfig:
    """SharedWeightsHyperNetResNet(/Separable). Widths default to the official ResNet-34 / 512-d code sizes."""

    encoder_type: str = "SharedWeightsHyperNetResNet"
    layers_to_tune: tuple[int, ...] = (0, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18, 20, 21, 23, 24)
    input_nc: int = 6
    input_size: int = 256  # hypernet / W-encoder input resolution (the generator output is pooled to this)
    widths: tuple[int, int, int, int] = (64, 128, 256, 512)  # ResNet-34 stages
    blocks: tuple[int, int, int, int] = (3, 4, 6, 3)
    code_dim: int = 512  # refinement-block output channels and shared-hypernet z_dim
    shared_inner: int = 128
    inner: int = 256

    def __post_init__(self) -> None:
        if self.encoder_type not in ENCODER_TYPES:
            raise HsError(f"unknown encoder_type {self.encoder_type!r}; expected one of {ENCODER_TYPES}")

    @property
    def feature_size(self) -> int:
        return self.input_size // 16


@dataclass(frozen=True)
class WEncoderConfig:
    """WEncoder(50, 'ir_se'): IR-SE units per stage and widths."""

    widths: tuple[int, int, int, int] = (64, 128, 256, 512)
    units: tuple[int, int, int, int] = (3, 4, 14, 3)
    se_reduction: int = 16
    input_nc: int = 3


@dataclass(frozen=True)
class HyperStyleConfig:
    name: str
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    hypernet: HypernetConfig = field(default_factory=HypernetConfig)
    w_encoder: WEncoderConfig = field(default_factory=WEncoderConfig)

    def __post_init__(self) -> None:
        n = self.generator.n_layers
        bad = [i for i in self.hypernet.layers_to_tune if not 0 <= i < n]
        if bad:
            raise HsError(f"layers_to_tune {bad} out of range for a {self.generator.size}px generator (0..{n - 1})")
        specs = self.layers
        for i in SHARED_LAYERS:
            if i in self.hypernet.layers_to_tune and (specs[i].in_ch, specs[i].out_ch) != (self.shared_ch,) * 2:
                raise HsError(f"shared layer {i} must be {self.shared_ch}->{self.shared_ch}, "
                              f"got {specs[i].in_ch}->{specs[i].out_ch}")

    @property
    def layers(self) -> tuple[LayerSpec, ...]:
        return layer_specs(self.generator)

    @property
    def tuned(self) -> tuple[LayerSpec, ...]:
        """The tuned layers, in HyperStyle index order."""
        return tuple(s for s in self.layers if s.idx in self.hypernet.layers_to_tune)

    @property
    def shared_ch(self) -> int:
        return self.generator.ch(4)

    def replace(self, **kw) -> "HyperStyleConfig":
        return dataclasses.replace(self, **kw)


def _official(size: int) -> HyperStyleConfig:
    n = 3 * (int(math.log2(size)) - 2) + 2
    tune = tuple(i for i in (0, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18, 20, 21, 23, 24) if i < n)
    return HyperStyleConfig(name=f"ffhq{size}", generator=GeneratorConfig(size=size),
                            hypernet=HypernetConfig(layers_to_tune=tune))


def _tiny() -> HyperStyleConfig:
    # 128 px generator (17 layer indices: shared layers 0..12 and two non-shared layers 14, 15), 64 px hypernet input.
    gen = GeneratorConfig(size=128, style_dim=32, n_mlp=2,
                          channels=((4, 16), (8, 16), (16, 16), (32, 16), (64, 16), (128, 8)))
    hyp = HypernetConfig(layers_to_tune=(0, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15), input_size=64,
                         widths=(8, 8, 16, 16), blocks=(1, 2, 1, 1), code_dim=16, shared_inner=8, inner=8)
    enc = WEncoderConfig(widths=(16, 16, 32, 32), units=(1, 2, 1, 1), se_reduction=16)
    return HyperStyleConfig(name="tiny", generator=gen, hypernet=hyp, w_encoder=enc)


PRESETS = {"ffhq1024": lambda: _official(1024), "ffhq512": lambda: _official(512), "ffhq256": lambda: _official(256),
           "tiny": _tiny}


def get_config(name: str) -> HyperStyleConfig:
    """Preset by name: ffhq1024 (default, the released model), ffhq512, ffhq256, tiny (CPU tests)."""
    try:
        return PRESETS[name]()
    except KeyError:
        raise HsError(f"unknown config {name!r}; expected one of {sorted(PRESETS)}") from None
