"""The model-source options, declared once (as Polygraphy's argument groups): where the weights come from (a preset
with the embedded default weights, a HyperStyle checkpoint + its W encoder, or an hs-export directory) and how they
run (executor, device, precision). hs-export, hs-invert, hs-serve and hs-bench compose `model_source_options` and
turn what it parsed into one frozen, validated `ModelSource`.

    @click.command()
    @model_source_options(export_dir=True, executor=True, device="auto")
    def cli(**kw):
        src = ModelSource.from_options(kw)      # pops the group's keys; HsError (one line) when they contradict
        inv = Inverter.from_source(src, max_batch=8)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import click

from hyperstyle_trt.core.config import PRESETS
from hyperstyle_trt.core.device import EXPECTED, parse_device
from hyperstyle_trt.core.errors import HsError
from hyperstyle_trt.core.precision import PRECISION_NAMES, check_precision

EXECUTORS = ("torch", "onnxruntime", "tensorrt")  # the built-in executors (runtime.executors registers them)
GROUP_KEYS = ("config", "checkpoint", "w_encoder", "export_dir", "executor", "device", "precision")


@dataclass(frozen=True)
class ModelSource:
    """Where the model comes from and how it runs; validated on construction.

    config: a preset name (None: ffhq1024, or the checkpoint's own); checkpoint + w_encoder: official checkpoint
    files (both or neither); export_dir: an hs-export directory (excludes the three above); executor: None lets the
    consumer choose its default; device: "auto" | "cpu" | "cuda" | "cuda:N"; precision: "fp32" | "fp16" | None (an
    export's own)."""

    config: str | None = None
    checkpoint: str | None = None
    w_encoder: str | None = None
    export_dir: str | None = None
    executor: str | None = None
    device: str = "auto"
    precision: str | None = "fp32"

    def __post_init__(self) -> None:
        if self.config is not None and self.config not in PRESETS:
            raise HsError(f"--config must be one of {sorted(PRESETS)}, got {self.config!r}")
        if self.export_dir is not None and (self.checkpoint or self.w_encoder or self.config):
            raise HsError("--export-dir carries its own weights and config; drop --checkpoint/--w-encoder/--config")
        if (self.checkpoint is None) != (self.w_encoder is None):
            raise HsError("--checkpoint and --w-encoder go together (the HyperStyle checkpoint and its W encoder)")
        if self.executor is not None and self.executor not in EXECUTORS:
            raise HsError(f"--executor must be one of {EXECUTORS}, got {self.executor!r}")
        if self.export_dir is not None and self.executor == "torch":
            raise HsError("--executor torch runs from a checkpoint or the embedded default, not an --export-dir")
        if self.device != "auto":
            object.__setattr__(self, "device", parse_device(self.device))
        if self.precision is not None:
            check_precision(self.precision, "--precision")
        for p, what in ((self.checkpoint, "checkpoint"), (self.w_encoder, "W-encoder checkpoint")):
            if p is not None and not Path(p).is_file():
                raise HsError(f"{what} not found: {p}")
        if self.export_dir is not None and not Path(self.export_dir).is_dir():
            raise HsError(f"export directory not found: {self.export_dir}")

    @classmethod
    def from_options(cls, kw: dict[str, Any], **defaults) -> "ModelSource":
        """Pop the group's keys from a click command's kwargs (the others stay) and validate them; `defaults` fill
        keys a command did not declare."""
        vals = {k: kw.pop(k) for k in GROUP_KEYS if k in kw}
        return cls(**{**defaults, **vals})

    @property
    def embedded(self) -> bool:
        """True when the embedded default (untrained) weights are used."""
        return self.checkpoint is None and self.export_dir is None

    def resolved_device(self) -> str:
        """"auto" -> "cuda" when torch sees a GPU, else "cpu"; other values as given (parsed)."""
        if self.device != "auto":
            return self.device
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"

    def default_executor(self, device: str | None = None) -> str:
        """The executor when none is named: tensorrt for an export directory; for a checkpoint or the embedded
        default, onnxruntime on a CPU when it is importable (its plain graphs are exported once into the per-user
        graph cache: export.graph_cache), torch otherwise (CUDA, or no onnxruntime). `device`: the resolved device
        (default: `resolved_device()`)."""
        if self.executor is not None:
            return self.executor
        if self.export_dir is not None:
            return "tensorrt"
        if (device or self.resolved_device()) != "cpu":
            return "torch"
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            return "torch"
        return "onnxruntime"

    def replace(self, **changes) -> "ModelSource":
        return dataclasses.replace(self, **changes)

    def describe(self) -> str:
        """One line for logs and summaries."""
        if self.export_dir:
            return f"export {self.export_dir}"
        return self.checkpoint or f"embedded default weights ({self.config or 'ffhq1024'}, untrained)"


def model_source_options(config: bool = True, checkpoint: bool = True, export_dir: bool = False,
                         executor: bool = False, device: str | None = None, precision: str | None = "fp32",
                         precision_flag: bool = True) -> Callable:
    """A click decorator adding the model-source options a command needs. `device`: the default shown (None: no
    --device option); `precision`: the --precision default (None: the export's own); `precision_flag`: declare
    --precision at all (hs-export has its own --fp16/--fp32)."""
    opts = []
    if config:
        opts.append(click.option("--config", default=None, metavar="NAME",
                                 help=f"Model preset ({', '.join(sorted(PRESETS))}); default ffhq1024."))
    if checkpoint:
        opts.append(click.option("--checkpoint", default=None, type=click.Path(dir_okay=False),
                                 help="hyperstyle_ffhq.pt (default: embedded weights; needs --w-encoder)."))
        opts.append(click.option("--w-encoder", "w_encoder", default=None, type=click.Path(dir_okay=False),
                                 help="faces_w_encoder.pt (required with --checkpoint)."))
    if export_dir:
        opts.append(click.option("--export-dir", "export_dir", default=None, type=click.Path(file_okay=False),
                                 help="An hs-export output directory (engines / ONNX) instead of a checkpoint."))
    if executor:
        opts.append(click.option("--executor", default=None, type=click.Choice(EXECUTORS),
                                 help="Backend (default: tensorrt from an --export-dir; otherwise onnxruntime on a "
                                      "CPU when installed, its graphs exported once into a cache, else torch)."))
    if device is not None:
        opts.append(click.option("--device", default=device, show_default=True,
                                 help=f"auto, cpu, cuda or cuda:N ({EXPECTED.removeprefix('expected ')})."))
    if precision_flag:
        opts.append(click.option("--precision", default=precision, show_default=precision is not None,
                                 type=click.Choice(PRECISION_NAMES),
                                 help="Compute precision" + ("" if precision else " (default: the export's own).")))

    def deco(fn: Callable) -> Callable:
        for o in reversed(opts):
            fn = o(fn)
        return fn

    return deco
