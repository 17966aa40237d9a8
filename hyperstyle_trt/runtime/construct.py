"""How an `Inverter` is made: from a checkpoint (or the embedded default weights), an in-memory model, an hs-export
directory, or a core.source.ModelSource (what every command's model-source options parse into). A mixin of
runtime.inverter.Inverter: `Inverter.from_checkpoint(...)` etc.; each builds an executor and calls the constructor."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Mapping

import torch

from hyperstyle_trt.core.errors import HsError
from hyperstyle_trt.runtime.executors import get_executor
from hyperstyle_trt.runtime.executors.base import Executor

if TYPE_CHECKING:
    from hyperstyle_trt.runtime.inverter import Inverter


class InverterConstructors:
    """The classmethods that build an Inverter (`cls(executor, max_batch=..., decoder_state=..., **kw)`)."""

    @classmethod
    def from_checkpoint(cls, checkpoint: str | Path | None, w_encoder: str | Path | None = None,
                        config: str | None = None, executor: str = "torch", device="cpu", precision: str = "fp32",
                        max_batch: int = 8, **kw) -> "Inverter":
        """Load a HyperStyle checkpoint (+ its W encoder), or the embedded default weights for `config` when
        checkpoint is None, and build an Inverter on `executor` (only "torch" runs from a checkpoint)."""
        from hyperstyle_trt.models.checkpoint import build_model

        ex_cls = get_executor(executor)
        if ex_cls.from_model.__func__ is Executor.from_model.__func__:
            ex_cls.from_model(None, device, precision)  # raises the executor's own one-line HsError
        model = build_model(config, checkpoint=None if checkpoint is None else str(checkpoint),
                            w_encoder=None if w_encoder is None else str(w_encoder), quiet=True)
        state = {k: v.detach().clone() for k, v in model.decoder.state_dict().items()}  # fp32 CPU, for fine-tuning
        ex = ex_cls.from_model(model, device, precision, copy=False)
        return cls(ex, max_batch=max_batch, decoder_state=state, **kw)

    @classmethod
    def from_model(cls, model, executor: str = "torch", device="cpu", precision: str = "fp32", max_batch: int = 8,
                   **kw) -> "Inverter":
        """An Inverter over an in-memory models.hyperstyle.HyperStyle (copied; the model is not modified)."""
        ex = get_executor(executor).from_model(model, device, precision)
        state = {k: v.detach().float().cpu().clone() for k, v in model.decoder.state_dict().items()}
        return cls(ex, max_batch=max_batch, decoder_state=state, **kw)

    @classmethod
    def from_export(cls, path: str | Path, executor: str = "tensorrt", max_batch: int = 8, device=None,
                    precision: str | None = None, **kw) -> "Inverter":
        """An Inverter over an hs-export directory (engines for "tensorrt", the plain ONNX graphs for
        "onnxruntime"). HsError (one line) when the directory or one of its graphs is missing."""
        p = Path(path)
        if not p.is_dir():
            raise HsError(f"export directory {p} not found; create it with hs-export --out {p}")
        ex = get_executor(executor).from_export(p, device=device, precision=precision, max_batch=max_batch)
        kw.setdefault("decoder_state", lambda: _export_decoder_state(p))
        return cls(ex, max_batch=max_batch, **kw)

    @classmethod
    def from_source(cls, source, max_batch: int = 8, **kw) -> "Inverter":
        """An Inverter for a core.source.ModelSource (what every command's model-source options parse into): an
        export directory through `from_export` (default executor tensorrt), else a checkpoint or the embedded
        default through `from_checkpoint` (default executor torch); device "auto" resolves here."""
        device = source.resolved_device()
        if source.export_dir is not None:
            return cls.from_export(source.export_dir, executor=source.executor or "tensorrt", max_batch=max_batch,
                                   device=None if source.device == "auto" else device, precision=source.precision,
                                   **kw)
        return cls.from_checkpoint(source.checkpoint, w_encoder=source.w_encoder, config=source.config,
                                   executor=source.executor or "torch", device=device,
                                   precision=source.precision or "fp32", max_batch=max_batch, **kw)


def _export_decoder_state(path: Path) -> Mapping[str, torch.Tensor]:
    """The generator weights an export was made from (export_summary.json's config: its checkpoint, or the
    embedded default weights of its preset)."""
    import json

    from hyperstyle_trt.models.checkpoint import build_model

    summary = path / "export_summary.json"
    try:
        cfg = json.loads(summary.read_text())["config"]
    except (OSError, ValueError, KeyError) as e:
        raise HsError(f"cannot read {summary} to find the generator weights ({e}); pass decoder_state=") from None
    model = build_model(cfg.get("config"), checkpoint=cfg.get("checkpoint"), w_encoder=cfg.get("w_encoder"),
                        quiet=True)
    return {k: v.detach().clone() for k, v in model.decoder.state_dict().items()}
