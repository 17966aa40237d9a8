"""Engines for an `hs-export` directory: one engine per exported graph of the plugin set (the plain set with
--plain only), built or reused through the content-hash cache (engines.builder), recorded in the export report.

`run_export(cfg)` is what `hs-export` runs: export.pipeline's ONNX export + verification with this module's
`build_engines` as its engine step.
"""

from __future__ import annotations

import time

from hyperstyle_trt.core import contract as C
from hyperstyle_trt.core.errors import HsError
from hyperstyle_trt.core import flavor
from hyperstyle_trt.engines.builder import BuildOptions, get_or_build
from hyperstyle_trt.engines.profiles import batch_buckets, batch_profile
from hyperstyle_trt.export import pipeline as P
from hyperstyle_trt.export.config import ExportConfig
from hyperstyle_trt.export.pipeline import Artifact, ExportReport, Step, _nostep


def build_engines(cfg: ExportConfig, model, written: dict, report: ExportReport, step: Step = _nostep) -> None:
    """Build (or reuse) one engine per graph of the plugin set (the plain set when only --plain is selected); a
    dynamic-batch graph gets one optimization profile per batch bucket (engines.profiles.batch_buckets: the powers of
    two up to --max-batch, plus --max-batch and --opt-batch)."""
    try:
        fl = flavor.get_flavor()
    except HsError as e:
        report.engines_skipped = f"engines skipped: {e}"
        return
    variant = "plugin" if "plugin" in cfg.variants else "plain"
    for (graph, var, prec), path in written.items():
        if var not in (variant, "shared"):
            continue
        art = next(a for a in report.artifacts if a.path == path)
        if art.status.startswith("FAIL"):
            report.notes.append(f"{path.name}: no engine (the graph failed verification)")
            continue
        modes = C.delta_modes(model.cfg, per_channel=(var == "plugin"))
        dynamic = not (graph == "generator" and var == "plain")
        io = C.graph_io(model.cfg, graph, modes, "B" if dynamic else cfg.plain_batch, ohwi=(var == "plugin"))
        profile = batch_profile(io.inputs, cfg.max_batch, cfg.profile_opt_batch)  # shapes over 1..max_batch
        buckets = batch_buckets(cfg.max_batch, cfg.opt_batch) if profile else ()
        opts = BuildOptions(profile=profile, batch_buckets=buckets,
                            compute_capabilities=cfg.compute_capabilities,
                            aot_plugins=cfg.aot_plugins and var == "plugin" and graph == "generator")
        eng = path.with_suffix(".engine")
        t0 = time.perf_counter()
        with step(f"engine {eng.name} ({fl.name} {fl.version})"):
            try:
                res = get_or_build(path, eng, opts, cfg.engine_cache_dir, flavor=fl, record={
                    "kind": "engine", "graph": graph, "variant": var, "precision": prec,
                    "model_config": model.cfg.name, "export_config": cfg.to_dict(),
                    "inputs": {t.name: list(t.shape) for t in io.inputs},
                    "outputs": {t.name: list(t.shape) for t in io.outputs}})
            except HsError as e:
                report.artifacts.append(Artifact("engine", graph, var, prec, eng, 0,
                                                 time.perf_counter() - t0, f"FAIL build: {e}"))
                continue
        report.artifacts.append(Artifact("engine", graph, var, prec, eng, res.size, res.build_s, res.status))


def run_export(cfg: ExportConfig, step: Step = _nostep, model=None, force: bool = False) -> ExportReport:
    """`hs-export`'s library function: ONNX graphs (those already in `cfg.out` with unchanged inputs are reused
    unless `force`: export/reuse.py), verification, and (when `cfg.build_engines`) engines (content-hash cache)."""
    return P.run_onnx_export(cfg, step, model, engine_step=build_engines, force=force)
