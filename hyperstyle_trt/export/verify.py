"""CPU verification of exported graphs against the PyTorch reference (models/, the numerical source of truth).

Plain graphs run in ONNX Runtime (CPU EP, fp16 kernels included); plugin graphs run in `onnx.reference` with the
plugin ops from plugins/onnx_ref.py (which call the plugins' PyTorch references). The reference is the official
module, not the export wrapper: `HyperStyle.encode`, `hypernet(cat[x, y])` (+ the accumulated Δ) and
`decoder(codes, Δ)` + `pool`, in fp32, so fp16 errors below are fp16-vs-fp32-reference errors.

Tolerances: per config family, graph, output and precision, on max |onnx - ref| / max(1, max |ref|) (`gate`); each
gate is 2-4x the worst value measured (GATES; the figures: benchmarks/results/cpu_verify_errors.json). Note: ONNX
Runtime's CPU provider runs fp16 nodes that lack fp16 kernels in fp32 without rounding the intermediates (a graph
whose demodulation lost its fp32 casts gives the same numbers there); onnx.reference rounds every op's output to
its declared type, so tests/unit/export/test_fp16_mutation.py checks the fp16 policy there
(`runtime="onnx.reference"`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

import numpy as np
import torch

from hyperstyle_trt.core.contract import acc_name
from hyperstyle_trt.core.errors import HsError, one_line
from hyperstyle_trt.models.hyperstyle import HyperStyle

# GATES[family][precision][(graph key, output)]; graph key: w_encoder, hypernet, generator_plain, generator_plugin;
# output "acc" stands for every hypernet output acc_<layer>. The rule: each gate is 2-4x the worst error measured for
# it (tiny: worst over export seeds 0, 1, 2, verified as hs-export does; ffhq: the recorded FFHQ-1024 figures, which
# the smaller ffhq presets, unmeasured, share). The measured figures and how they were taken:
# benchmarks/results/cpu_verify_errors.json; tests/unit/export/test_gates.py holds GATES to them.
GATES = {
    "tiny": {
        "fp32": {("w_encoder", "codes"): 4e-7, ("hypernet", "acc"): 2e-7,
                 ("generator_plain", "image"): 5e-6, ("generator_plain", "image_pooled"): 5e-6,
                 ("generator_plugin", "image"): 5e-6, ("generator_plugin", "image_pooled"): 5e-6},
        "fp16": {("w_encoder", "codes"): 1.2e-3, ("hypernet", "acc"): 3e-4,
                 ("generator_plain", "image"): 6e-3, ("generator_plain", "image_pooled"): 6e-3,
                 ("generator_plugin", "image"): 1e-2, ("generator_plugin", "image_pooled"): 1e-2},
    },
    "ffhq": {
        "fp32": {("w_encoder", "codes"): 3e-5, ("hypernet", "acc"): 3e-5, ("generator_plain", "image"): 3e-5,
                 ("generator_plain", "image_pooled"): 3e-5, ("generator_plugin", "image"): 3e-5,
                 ("generator_plugin", "image_pooled"): 3e-5},
        "fp16": {("w_encoder", "codes"): 1e-2, ("hypernet", "acc"): 1e-3,
                 ("generator_plain", "image"): 1e-2, ("generator_plain", "image_pooled"): 1e-2,
                 ("generator_plugin", "image"): 1.5e-2, ("generator_plugin", "image_pooled"): 1.5e-2},
    },
}


def graph_key(graph: str, plugin: bool) -> str:
    """GATES' graph key: the generator's two variants differ (plugin kernels vs standard ops), the others do not."""
    return f"generator_{'plugin' if plugin else 'plain'}" if graph == "generator" else graph


def gate(config_name: str, graph: str, output: str, precision: str, plugin: bool = False) -> float:
    """The tolerance on max |onnx - ref| / max(1, max |ref|) for one output (see GATES). HsError for an unknown
    graph, output or precision."""
    family = "tiny" if config_name == "tiny" else "ffhq"
    key = (graph_key(graph, plugin), "acc" if output.startswith("acc_") else output)
    try:
        return GATES[family][precision][key]
    except KeyError:
        raise HsError(f"no tolerance for {key[0]} output {output} in {precision}") from None


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
    from hyperstyle_trt.models.delta import to_contract, to_official

    tuned = model.cfg.tuned

    def full(spec, d):  # graph Δ -> official [B,O,I,k,k]
        return to_official(d, modes[spec.name], ohwi, spec.kernel)

    def graph_form(spec, d):  # official [B,O,I,k,k] -> graph Δ
        return to_contract(d, modes[spec.name], ohwi, spec.kernel).contiguous()

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
        from hyperstyle_trt.plugins.onnx_ref import run_reference

        model = onnx.load(str(path))
        outs = run_reference(model, dict(feeds))
        return dict(zip([o.name for o in model.graph.output], outs))
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    try:
        sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    except Exception as e:  # ORT raises its own exception types
        raise HsError(f"ONNX Runtime cannot load {Path(path).name}: {one_line(e)}") from None
    return dict(zip([o.name for o in sess.get_outputs()], sess.run(None, dict(feeds))))


def compare(outs: Mapping[str, np.ndarray], refs: Mapping[str, torch.Tensor],
            tols: Mapping[str, float] | Callable[[str], float]) -> list[OutputError]:
    """Per-output errors of `outs` (any float dtype) vs fp32 `refs`; `tols`: {output: tolerance} or output ->
    tolerance (`gate`)."""
    tol_of = tols if callable(tols) else tols.__getitem__
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
                               tol_of(name)))
    return res


def verify_graph(path: Path, model: HyperStyle, graph: str, modes: Mapping[str, int], feeds: dict,
                 precision: str, plugin: bool, ohwi: bool = False, runtime: str | None = None) -> list[OutputError]:
    """Run `path` on `feeds` (fp32 tensors; cast to fp16 for fp16 graphs) and compare with the reference, each output
    against its `gate`. `plugin`: the graph has plugin nodes (run in onnx.reference); `ohwi`: its full 3x3 Δ are
    OHWI (plugin variant graphs). runtime: "onnxruntime" | "onnx.reference" (default: onnx.reference for plugin
    graphs, ONNX Runtime for the others)."""
    if runtime not in (None, "onnxruntime", "onnx.reference"):
        raise HsError(f"runtime {runtime!r}: expected onnxruntime or onnx.reference")
    dt = np.float16 if precision == "fp16" else np.float32
    use_ref = plugin if runtime is None else runtime == "onnx.reference"
    outs = run_onnx(path, {k: v.numpy().astype(dt) for k, v in feeds.items()}, use_ref)
    # The reference sees the same (possibly fp16-rounded) inputs, so only the graph's own error is measured.
    ref_feeds = {k: torch.from_numpy(v.numpy().astype(dt).astype(np.float32)) for k, v in feeds.items()}
    return compare(outs, reference_fn(model, graph, modes, ohwi)(ref_feeds),
                   lambda name: gate(model.cfg.name, graph, name, precision, plugin))


def worst(errors: list[OutputError]) -> OutputError | None:
    return max(errors, key=lambda e: e.rel) if errors else None


__all__ = ["GATES", "gate", "graph_key", "OutputError", "reference_fn", "run_onnx", "compare", "verify_graph",
           "worst"]
