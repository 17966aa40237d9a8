"""CPU verification of exported graphs against the PyTorch reference (models/, the numerical source of truth).

Plain graphs run in ONNX Runtime (CPU EP, fp16 kernels included); plugin graphs run in `onnx.reference` with the
plugin ops from plugins/onnx_ref.py (which call the plugins' PyTorch references). The reference is the official
module, not the export wrapper: `HyperStyle.encode`, `hypernet(cat[x, y])` (+ the accumulated Δ) and
`decoder(codes, Δ)` + `pool`, in fp32, so fp16 errors below are fp16-vs-fp32-reference errors.

Tolerances (max |onnx - ref| / max(1, max |ref|), per output; measured values in the docstrings of the tests):
- fp32: 1e-4 (observed <= 3e-6 tiny, FFHQ-1024 in tests/unit/export/test_ffhq_slow.py);
- fp16: 3e-2 (observed ~1e-3 tiny: one rounding per op over ~30 layers).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

import numpy as np
import torch

from core.contract import DeltaMode, acc_name
from core.errors import HsError
from models.hyperstyle import HyperStyle

TOLERANCES = {"fp32": 1e-4, "fp16": 3e-2}


@dataclass(frozen=True)
class OutputError:
    """One output's error vs the reference: max/mean abs error, the reference's max |value|, relative max error
    (max_abs / max(1, ref_absmax)), the tolerance applied and whether it passed."""

    name: str
    max_abs: float
    mean_abs: float
    ref_absmax: float
    rel: float
    tol: float

    @property
    def ok(self) -> bool:
        return bool(self.rel <= self.tol)


def reference_fn(model: HyperStyle, graph: str, modes: Mapping[str, int], ohwi: bool = False) -> Callable[[dict], dict]:
    """feeds {input name: fp32 tensor} -> {output name: fp32 tensor} computed with the official modules. `ohwi`: the
    graph's full 3x3 Δ are [B,O,3,3,I] (plugin variant), converted to/from the official [B,O,I,3,3] here."""
    from plugins.mod_conv.reference import from_ohwi, to_ohwi

    tuned = model.cfg.tuned

    def full(spec, d):  # graph Δ -> official [B,O,I,k,k]
        if modes[spec.name] == DeltaMode.PER_CHANNEL:
            return d[..., None, None].expand(*d.shape, 3, 3)
        return from_ohwi(d) if ohwi and spec.kernel == 3 else d

    def graph_form(spec, d):  # official [B,O,I,k,k] -> graph Δ
        if modes[spec.name] == DeltaMode.PER_CHANNEL:
            return d[..., 0, 0]
        return to_ohwi(d) if ohwi and spec.kernel == 3 else d

    @torch.no_grad()
    def run(feeds: dict) -> dict:
        if graph == "w_encoder":
            return {"codes": model.encode(feeds["image"])}
        if graph == "hypernet":
            step = model.hypernet(torch.cat([feeds["image"], feeds["recon_pooled"]], dim=1))
            out = {}
            for s in tuned:
                out[acc_name(s)] = feeds[s.input_name] + graph_form(s, step[s.name])
            return out
        if graph == "generator":
            img = model.decoder(feeds["codes"], {s.name: full(s, feeds[s.input_name]) for s in tuned})
            return {"image": img, "image_pooled": model.pool(img)}
        raise AssertionError(graph)

    return run


def run_onnx(path: Path, feeds: Mapping[str, np.ndarray], plugin: bool) -> dict[str, np.ndarray]:
    """Run the graph at `path` on CPU: ONNX Runtime for standard graphs, onnx.reference for plugin graphs."""
    import onnx

    if plugin:
        from plugins.onnx_ref import run_reference

        model = onnx.load(str(path))
        outs = run_reference(model, dict(feeds))
        return dict(zip([o.name for o in model.graph.output], outs))
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    try:
        sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    except Exception as e:  # ORT raises its own exception types
        raise HsError(f"ONNX Runtime cannot load {Path(path).name}: {str(e).splitlines()[0][:300]}") from None
    return dict(zip([o.name for o in sess.get_outputs()], sess.run(None, dict(feeds))))


def compare(outs: Mapping[str, np.ndarray], refs: Mapping[str, torch.Tensor], precision: str) -> list[OutputError]:
    """Per-output errors of `outs` (any float dtype) vs fp32 `refs`, with the precision's tolerance."""
    res = []
    for name, r in refs.items():
        if name not in outs:
            raise HsError(f"output {name} missing from the graph's results")
        r = r.detach().float().numpy()
        o = np.asarray(outs[name], dtype=np.float32)
        if o.shape != r.shape:
            raise HsError(f"output {name}: shape {o.shape} != reference {r.shape}")
        err = np.abs(o - r)
        amax = float(np.abs(r).max()) if r.size else 0.0
        mx = float(err.max()) if err.size else 0.0
        if not np.isfinite(o).all():
            mx = float("inf")
        res.append(OutputError(name, mx, float(err.mean()) if err.size else 0.0, amax, mx / max(1.0, amax),
                               TOLERANCES[precision]))
    return res


def verify_graph(path: Path, model: HyperStyle, graph: str, modes: Mapping[str, int], feeds: dict,
                 precision: str, plugin: bool, ohwi: bool = False) -> list[OutputError]:
    """Run `path` on `feeds` (fp32 tensors; cast to fp16 for fp16 graphs) and compare with the reference. `plugin`:
    the graph has plugin nodes (run in onnx.reference); `ohwi`: its full 3x3 Δ are OHWI (plugin variant graphs)."""
    dt = np.float16 if precision == "fp16" else np.float32
    outs = run_onnx(path, {k: v.numpy().astype(dt) for k, v in feeds.items()}, plugin)
    # The reference sees the same (possibly fp16-rounded) inputs, so only the graph's own error is measured.
    ref_feeds = {k: torch.from_numpy(v.numpy().astype(dt).astype(np.float32)) for k, v in feeds.items()}
    return compare(outs, reference_fn(model, graph, modes, ohwi)(ref_feeds), precision)


def worst(errors: list[OutputError]) -> OutputError | None:
    return max(errors, key=lambda e: e.rel) if errors else None


__all__ = ["TOLERANCES", "OutputError", "reference_fn", "run_onnx", "compare", "verify_graph", "worst"]
