"""Frozen export configuration: what `hs-export` resolves its flags into, and what every sidecar records.

    cfg = ExportConfig(config="tiny", precisions=("fp16",), out=Path("out"))
    cfg.to_dict()   # JSON-able, printed by `hs-export --dry-run`
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path

from hyperstyle_trt.core.config import PRESETS
from hyperstyle_trt.core.errors import HsError

PRECISIONS = ("fp32", "fp16")
VARIANTS = ("plain", "plugin")
GRAPHS = ("w_encoder", "hypernet", "generator")
OPSET = 18  # the dynamo exporter's floor; opset 17 has no Pad adapter
# TensorRT-RTX 1.7's ComputeCapability targets: what --compute-capability accepts when tensorrt_rtx is not importable
# (when it is, its own enum decides: rtx_compute_capabilities).
RTX_COMPUTE_CAPABILITIES = ("SM75", "SM80", "SM86", "SM89", "SM120", "SM121")


def rtx_compute_capabilities() -> tuple[str, ...]:
    """The SM targets TensorRT-RTX can build for: the SM* members of tensorrt_rtx.ComputeCapability when the module
    imports, else RTX_COMPUTE_CAPABILITIES."""
    try:
        import tensorrt_rtx
    except Exception:  # noqa: BLE001 - not installed, or a broken install: the documented list decides
        return RTX_COMPUTE_CAPABILITIES
    members = getattr(getattr(tensorrt_rtx, "ComputeCapability", None), "__members__", {})
    return tuple(m for m in members if m.startswith("SM")) or RTX_COMPUTE_CAPABILITIES


@dataclass(frozen=True)
class ExportConfig:
    """Everything that determines the exported artifacts.

    config: model preset (core.config.PRESETS); None with a checkpoint = the checkpoint's own, else ffhq1024.
    checkpoint / w_encoder: checkpoint paths (None = embedded default weights).
    precisions / variants: subsets of PRECISIONS / VARIANTS.
    max_batch: dynamic-batch upper bound (dynamic graphs, engine profiles: one per batch bucket, engines.profiles);
    opt_batch: a batch the engines also get a profile tuned exactly for (None: the power-of-two buckets only).
    plain_batch: the fixed batch of the plain generator (grouped conv with groups = B).
    out: output directory; cache_dir: engine cache (None = `<out>/.engine_cache`).
    build_engines: build TensorRT engines when a flavor is importable; compute_capabilities: TensorRT-RTX targets
    such as ("SM86",) (empty = portable), checked here against rtx_compute_capabilities() before any export work;
    aot_plugins: the plugin generator's engine embeds the kernels as AOT QDPs (full TensorRT >= 10.9 on a GPU; runs
    without Python) instead of calling the Python plugins.
    verify: compare every graph with the PyTorch reference on `verify_batch` samples (ORT for plain graphs,
    onnx.reference for plugin graphs); seed: example-input seed.
    external_data_threshold: graphs whose initializers exceed this many bytes store them in `<name>.onnx.data`.
    """

    config: str | None = None
    checkpoint: str | None = None
    w_encoder: str | None = None
    precisions: tuple[str, ...] = ("fp16",)
    variants: tuple[str, ...] = VARIANTS
    max_batch: int = 8
    plain_batch: int = 1
    out: Path = Path("hs_export")
    build_engines: bool = True
    verify: bool = True
    verify_batch: int = 2
    seed: int = 0
    opset: int = OPSET
    external_data_threshold: int = 1 << 30
    cache_dir: Path | None = None
    compute_capabilities: tuple[str, ...] = ()
    opt_batch: int | None = None
    aot_plugins: bool = False

    def __post_init__(self) -> None:
        if self.config is not None and self.config not in PRESETS:
            raise HsError(f"unknown config {self.config!r}; expected one of {sorted(PRESETS)}")
        for name, vals, allowed in (("precision", self.precisions, PRECISIONS), ("variant", self.variants, VARIANTS)):
            if not vals:
                raise HsError(f"at least one {name} must be selected")
            bad = [v for v in vals if v not in allowed]
            if bad:
                raise HsError(f"unknown {name} {bad}; expected a subset of {list(allowed)}")
        for name in ("max_batch", "plain_batch", "verify_batch"):
            if getattr(self, name) < 1:
                raise HsError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if self.opt_batch is not None and not 1 <= self.opt_batch <= self.max_batch:
            raise HsError(f"--opt-batch must be in 1..{self.max_batch}, got {self.opt_batch}")
        bad_cc = [c for c in self.compute_capabilities if not re.fullmatch(r"SM\d{2,3}", str(c))]
        if bad_cc:
            raise HsError(f"--compute-capability {bad_cc} malformed; expected TensorRT-RTX names such as SM86, SM89")
        if self.compute_capabilities:
            known = rtx_compute_capabilities()
            unknown = [c for c in self.compute_capabilities if c not in known]
            if unknown:
                raise HsError(f"--compute-capability {', '.join(unknown)}: TensorRT-RTX builds for "
                              f"{', '.join(known)} only")
        if self.aot_plugins and not (self.build_engines and "plugin" in self.variants):
            raise HsError("--aot-plugins applies to the plugin variant's engines: drop --no-engines / --plain")
        if self.aot_plugins and self.compute_capabilities:
            raise HsError("--aot-plugins builds with full TensorRT for the GPU at hand; --compute-capability is for "
                          "TensorRT-RTX")
        if self.opset < 18:
            raise HsError(f"opset must be >= 18 (the dynamo exporter's floor), got {self.opset}")
        if self.config is None and self.checkpoint is None:
            object.__setattr__(self, "config", "ffhq1024")  # the embedded default's preset
        object.__setattr__(self, "out", Path(self.out))
        if self.cache_dir is not None:
            object.__setattr__(self, "cache_dir", Path(self.cache_dir))

    @property
    def engine_cache_dir(self) -> Path:
        return self.cache_dir if self.cache_dir is not None else self.out / ".engine_cache"

    @property
    def profile_opt_batch(self) -> int:
        return self.opt_batch or self.max_batch

    def replace(self, **kw) -> "ExportConfig":
        return dataclasses.replace(self, **kw)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        for k, v in d.items():
            if isinstance(v, Path):
                d[k] = str(v)
            elif isinstance(v, tuple):
                d[k] = list(v)
        d["engine_cache_dir"] = str(self.engine_cache_dir)
        return d
