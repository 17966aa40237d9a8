"""`hs-bench`'s frozen configuration: what the end-to-end benchmark's flags resolve into, validated on construction.

The model-source flags (--config, --checkpoint + --w-encoder, --export-dir, --device) are core.source's option group
and arrive as one validated `ModelSource`; this module checks the benchmark's own flags (batch, methods, counts,
sweep, images, LPIPS weights).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from hyperstyle_trt.core.errors import HsError
from hyperstyle_trt.core.source import ModelSource

OPTIM = ("projector", "pti")
FAST = ("hyperstyle-fast", "hyperstyle-trt", "hyperstyle-ort")
METHOD_NAMES = ("projector", "pti", "hyperstyle-ref", "hyperstyle-fast", "hyperstyle-trt", "hyperstyle-ort")
GPU_DEFAULTS = {"warmup": 3, "repeats": 20, "baseline_steps": 20}
CPU_DEFAULTS = {"warmup": 1, "repeats": 2, "baseline_steps": 2}
SOURCE_FIELDS = ("config", "checkpoint", "w_encoder", "export_dir", "device")  # what hs-bench declares of the group


@dataclass(frozen=True)
class BenchConfig:
    """What `hs-bench` (no sub-command) resolves its flags into. None = the device's default (GPU_DEFAULTS /
    CPU_DEFAULTS) for warmup / repeats / baseline_steps. source: the weights (a preset's embedded default, a
    checkpoint + W encoder, or an hs-export directory, whose own model is then the reference) and the device
    ("auto" | "cpu" | "cuda" | "cuda:N"); source.config None = the checkpoint's own, else ffhq1024 (tiny on a CPU).
    wide: print the full table (every figure) instead of the 100-column summary."""

    batch: int = 8
    methods: tuple[str, ...] = METHOD_NAMES
    iters: int = 5
    source: ModelSource = ModelSource(precision=None)
    images: Path | None = None
    repeats: int | None = None
    warmup: int | None = None
    out: Path = Path("bench_out")
    lpips_weights: Path | None = None
    baseline_steps: int | None = None
    full_baselines: bool = False
    sweep: tuple[int, ...] = ()
    seed: int = 0
    wide: bool = False
    argv: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in ("batch", "iters", "repeats", "baseline_steps"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
                raise HsError(f"--{name.replace('_', '-')} must be an integer >= 1, got {v!r}")
        if self.warmup is not None and self.warmup < 0:
            raise HsError(f"--warmup must be >= 0, got {self.warmup}")
        bad = [m for m in self.methods if m not in METHOD_NAMES]
        if bad or not self.methods:
            raise HsError(f"unknown --methods {bad or '(none)'}; expected a comma list of {', '.join(METHOD_NAMES)}")
        if len(set(self.methods)) != len(self.methods):
            raise HsError(f"--methods lists a method twice: {','.join(self.methods)}")
        if any((not isinstance(b, int)) or b < 1 for b in self.sweep):
            raise HsError(f"--sweep must be batch sizes >= 1, got {list(self.sweep)}")
        if self.full_baselines and self.baseline_steps is not None:
            raise HsError("--full-baselines runs every step; drop --baseline-steps (or --full-baselines)")
        if self.images is not None and not Path(self.images).is_dir():
            raise HsError(f"--images {self.images}: expected a directory of face crops (png/jpg)")
        if self.lpips_weights is not None and not Path(self.lpips_weights).is_dir():
            raise HsError(f"--lpips-weights {self.lpips_weights}: expected a directory holding vgg16 / alexnet "
                          "weights (.ckpt, or the .npz fp16 copies of make gpu-carry)")

    def to_dict(self) -> dict:
        """JSON-able: the benchmark's fields and the source's (config, checkpoint, w_encoder, export_dir, device) side
        by side, as bench.json records them."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "source"}
        d |= {k: getattr(self.source, k) for k in SOURCE_FIELDS}
        return {k: (str(v) if isinstance(v, Path) else list(v) if isinstance(v, tuple) else v) for k, v in d.items()}
