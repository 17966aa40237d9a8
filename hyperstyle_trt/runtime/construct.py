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
        checkpoint is None, and build an Inverter on `executor`: "torch" runs the model itself; "onnxruntime" runs
        its plain ONNX graphs, exported once into the per-user graph cache (export.graph_cache: a message on stderr
        while it exports; later calls reuse the entry and never load the model unless its generator weights are
        asked for). The default stays "torch" here (the numerical reference, and no minutes-long export or cache
        writes behind a library call); the CLIs' default is `core.source.default_executor`."""
        from hyperstyle_trt.models.checkpoint import build_model

        ckpt = None if checkpoint is None else str(checkpoint)
        wenc = None if w_encoder is None else str(w_encoder)
        ex_cls = get_executor(executor)
        if executor == "onnxruntime":
            from hyperstyle_trt.export.graph_cache import plain_graphs

            path = plain_graphs(ckpt, wenc, config, precision=precision)
            ex = ex_cls.from_export(path, device=device, precision=precision, max_batch=max_batch)
            kw.setdefault("decoder_state", lambda: _decoder_state(ckpt, wenc, config))
            return cls(ex, max_batch=max_batch, **kw)
        if ex_cls.from_model.__func__ is Executor.from_model.__func__:
            ex_cls.from_model(None, device, precision)  # raises the executor's own one-line HsError
        model = build_model(config, checkpoint=ckpt, w_encoder=wenc, quiet=True)
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
        default through `from_checkpoint` with `source.default_executor(device)` when no executor is named
        (onnxruntime on a CPU when it is installed, else torch); device "auto" resolves here."""
        device = source.resolved_device()
        executor = source.executor or source.default_executor(device)
        if source.export_dir is not None:
            return cls.from_export(source.export_dir, executor=executor, max_batch=max_batch,
                                   device=None if source.device == "auto" else device, precision=source.precision,
                                   **kw)
        return cls.from_checkpoint(source.checkpoint, w_encoder=source.w_encoder, config=source.config,
                                   executor=executor, device=device,
                                   precision=source.precision or "fp32", max_batch=max_batch, **kw)


def _decoder_state(checkpoint: str | None, w_encoder: str | None, config: str | None) -> Mapping[str, torch.Tensor]:
    """The fp32 generator state_dict of a checkpoint (or of the embedded default weights of `config`)."""
    from hyperstyle_trt.models.checkpoint import build_model

    model = build_model(config, checkpoint=checkpoint, w_encoder=w_encoder, quiet=True)
    return {k: v.detach().clone() for k, v in model.decoder.state_dict().items()}


def _export_decoder_state(path: Path) -> Mapping[str, torch.Tensor]:
    """The generator weights an export was made from (export_summary.json's config: its checkpoint, or the
    embedded default weights of its preset)."""
    import json

    summary = path / "export_summary.json"
    try:
        cfg = json.loads(summary.read_text())["config"]
    except (OSError, ValueError, KeyError) as e:
        raise HsError(f"cannot read {summary} to find the generator weights ({e}); pass decoder_state=") from None
    return _decoder_state(cfg.get("checkpoint"), cfg.get("w_encoder"), cfg.get("config"))
