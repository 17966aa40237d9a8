"""`run_onnx_export(cfg)`: the ONNX half of `hs-export` (export, verification, sidecars, summary), with the engine
step passed in by the caller (engines.pipeline.run_export, what `hs-export` runs, passes its `build_engines`).

For each selected variant the three graphs are exported once in fp32 (dynamo exporter -> gs passes), then written
per precision (the fp16 pass mutates the fp32 graph after the fp32 file is written), verified on CPU, and finally
built into TensorRT engines with the content-hash cache. Files (in `cfg.out`):

    w_encoder_<prec>.onnx              shared by both variants (standard ops, dynamic batch)
    hypernet_plain_<prec>.onnx         full Δ [B,O,I,3,3] (official OIHW) everywhere, dynamic batch
    hypernet_plugin_<prec>.onnx        full Δ OHWI [B,O,3,3,I] for the shared (and Separable) layers, per-channel
                                       Δ [B,O,I] for the non-shared ones, dynamic batch
    generator_plain_<prec>.onnx        standard ops, OIHW Δ, batch fixed to cfg.plain_batch (grouped conv)
    generator_plugin_<prec>.onnx       HsModConv/HsToRGB plugin nodes, NHWC, OHWI Δ, dynamic batch
    <graph>.engine                     TensorRT engines of the plugin set (or of the plain set with --plain only)
    *.json                             a sidecar per artifact; export_summary.json for the whole run

Reuse (export/reuse.py): a graph already in `cfg.out` whose sidecar names the same content key (weights, graph,
variant, precision, the export settings that shape it, exporter sources and versions) and whose files still hash to
the recorded sha256 is kept, not exported again (`force=True` redoes it); its row says `reused`. When every graph of
a run is reused the model is never loaded (`_Model`).
"""

from __future__ import annotations

import contextlib
import gc
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, ContextManager

import torch

from hyperstyle_trt.core.atomic import write_json_atomic
from hyperstyle_trt.core.sidecar import read_sidecar, sha256_files, software_versions, write_sidecar
from hyperstyle_trt.core import contract as C
from hyperstyle_trt.models import graphs as G
from hyperstyle_trt.export import onnx_io, passes, reuse
from hyperstyle_trt.export.onnx_io import plugin_versions
from hyperstyle_trt.export.config import ExportConfig
from hyperstyle_trt.export.fp16 import convert_to_fp16
from hyperstyle_trt.export.verify import verify_graph, worst
from hyperstyle_trt.core.errors import HsError, one_line

Step = Callable[[str], ContextManager]
EngineStep = Callable[..., None]  # (cfg, model, written, report, step) -> None


@dataclass
class Artifact:
    """One written file (ONNX graph or engine) and what is known about it."""

    kind: str  # "onnx" | "engine"
    graph: str
    variant: str  # "plain" | "plugin" | "shared"
    precision: str
    path: Path
    size: int
    seconds: float
    status: str = ""
    reused: bool = False  # kept from an earlier run (export/reuse.py), not exported again
    max_rel_err: float | None = None  # worst output's max abs error / max(1, max |ref|)
    max_abs_err: float | None = None
    errors: list[dict] = field(default_factory=list)


@dataclass
class ExportReport:
    config: dict
    artifacts: list[Artifact] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    engines_skipped: str | None = None
    seconds: float = 0.0

    @property
    def reused(self) -> list[Artifact]:
        """ONNX graphs kept from an earlier run into the same directory."""
        return [a for a in self.artifacts if a.reused]

    @property
    def failed(self) -> list[Artifact]:
        """Artifacts that failed verification/building or could not be produced (SKIPPED)."""
        return [a for a in self.artifacts if a.status.startswith(("FAIL", "SKIPPED"))]

    def to_dict(self) -> dict:
        d = asdict(self)
        for a in d["artifacts"]:
            a["path"] = str(a["path"])
        return d


def _nostep(desc: str) -> ContextManager:
    return contextlib.nullcontext()


def load_model(cfg: ExportConfig):
    """The HyperStyle model (eval, fp32, CPU): the checkpoint's, or the embedded default weights."""
    from hyperstyle_trt.models.checkpoint import build_model

    return build_model(cfg.config, checkpoint=cfg.checkpoint, w_encoder=cfg.w_encoder, quiet=True)


class _Model:
    """The export's model, loaded at its first use (`get()`): a run whose graphs are all reused never loads it.
    `cfg` (the HyperStyleConfig) comes from the preset without loading when no checkpoint is given."""

    def __init__(self, cfg: ExportConfig, step: "Step", model=None):
        self._ecfg, self._step, self._m = cfg, step, model

    def get(self):
        if self._m is None:
            with self._step(f"load model ({self._ecfg.config or 'ffhq1024'})"):
                self._m = load_model(self._ecfg)
        return self._m

    @property
    def cfg(self):
        if self._m is None and self._ecfg.checkpoint is None:
            from hyperstyle_trt.core.config import get_config

            return get_config(self._ecfg.config)
        return self.get().cfg

    @property
    def is_default(self) -> bool:
        return getattr(self._m, "is_default", True) if self._m is not None else self._ecfg.checkpoint is None


def plugin_generator(model, modes: dict[str, int]):
    """The colleagues' NHWC PluginGenerator wrapped to this graph contract (codes, Δ... -> image, image_pooled),
    and the custom translation table for the exporter. HsError when the plugin pieces are not available."""
    try:
        from hyperstyle_trt.plugins.generator import PluginGeneratorGraph
        from hyperstyle_trt.plugins.onnx_export import custom_translation_table
    except ImportError as e:
        raise HsError(f"plugin variant unavailable: {e}") from None
    return PluginGeneratorGraph(model, modes), custom_translation_table()


def graph_list(variants) -> list[tuple[str, str, bool]]:
    """(graph, variant, dynamic batch) in export order: the W encoder once ("shared"), then per variant the hypernet
    (dynamic) and the generator (dynamic in the plugin variant; the plain one's batch is fixed: grouped conv)."""
    out = [("w_encoder", "shared", True)]
    for v in variants:
        out += [("hypernet", v, True), ("generator", v, v == "plugin")]
    return out


def _graph_jobs(cfg: ExportConfig, model) -> list[tuple[str, str, dict, bool, bool]]:
    """(graph, variant, Δ modes, dynamic batch, OHWI Δ) in export order (`graph_list`). The plugin variant takes
    full 3x3 Δ in OHWI [B,O,3,3,I] (HsModConv v2), the plain one (and the W encoder) the official OIHW."""
    return [(g, v, C.delta_modes(model.cfg, per_channel=v == "plugin"), dyn, v == "plugin")
            for g, v, dyn in graph_list(cfg.variants)]


def artifact_name(graph: str, variant: str, precision: str) -> str:
    return f"{graph}_{precision}" if variant == "shared" else f"{graph}_{variant}_{precision}"


def _module(model, graph: str, variant: str, modes: dict, ohwi: bool):
    if graph == "w_encoder":
        return G.WEncoderGraph(model), None
    if graph == "hypernet":
        return G.HypernetGraph(model, modes, ohwi), None
    if variant == "plain":
        return G.GeneratorGraph(model), None
    return plugin_generator(model, modes)


def _export_graph(module, feeds: dict, io: C.GraphIO, dynamic: bool, cfg: ExportConfig, table, plugin: bool):
    """module -> checked, BN-folded, constant-folded gs.Graph (fp32)."""
    proto = onnx_io.export_module(module, list(feeds.values()), io.input_names, io.output_names, dynamic,
                                  cfg.max_batch, cfg.opset, table)
    g = passes.import_graph(proto)
    del proto
    passes.check_io(g, io, dynamic)
    passes.batchnorm_to_affine(g)
    passes.fold(g)
    if plugin:
        passes.check_plugin_nodes(g, expect_plugins=True)
    return g


def _reuse(cfg: ExportConfig, graph: str, variant: str, prec: str, key: str, report: ExportReport,
           written: dict) -> bool:
    """Keep `cfg.out`'s graph when it is reusable for `key` (export/reuse.py): a `reused` row, True. Otherwise False,
    with a note saying why an existing graph is exported again."""
    path = cfg.out / f"{artifact_name(graph, variant, prec)}.onnx"
    t0 = time.perf_counter()
    why = reuse.unusable(path, key, cfg.verify)
    if why is not None:
        if why != "missing":
            report.notes.append(f"{path.name}: exported again ({why})")
        return False
    side = read_sidecar(path) or {}
    files = [path.parent / f for f in side.get("files", [])]
    art = Artifact("onnx", graph, variant, prec, path, sum(f.stat().st_size for f in files),
                   time.perf_counter() - t0, status="ok", reused=True)
    errs = side.get("verification") or []
    if errs:
        w = max(errs, key=lambda e: e["rel"])
        art.max_rel_err, art.max_abs_err, art.errors = w["rel"], w["max_abs"], errs
    report.artifacts.append(art)
    written[(graph, variant, prec)] = path
    return True


def export_graphs(cfg: ExportConfig, model, report: ExportReport, step: Step = _nostep,
                  force: bool = False) -> dict[tuple, Path]:
    """Export, write and verify every selected graph, or keep the one already in `cfg.out` when its reuse key
    matches (export/reuse.py; `force`: export every graph again); returns {(graph, variant, precision): onnx path}.
    `model`: a HyperStyle, None (loaded from `cfg` when a graph needs it) or a `_Model`."""
    model = model if isinstance(model, _Model) else _Model(cfg, step, model)
    mcfg, written = model.cfg, {}
    weights = reuse.weights_digest(cfg.checkpoint, cfg.w_encoder, cfg.config)
    precisions = [p for p in ("fp32", "fp16") if p in cfg.precisions]
    for graph, variant, modes, dynamic, ohwi in _graph_jobs(cfg, model):
        label = f"{graph} ({variant})"
        keys = {p: reuse.reuse_key(cfg, weights, graph, variant, p, dynamic) for p in precisions}
        todo = precisions if force else [p for p in precisions
                                         if not _reuse(cfg, graph, variant, p, keys[p][0], report, written)]
        if not todo:
            continue
        m = model.get()  # a checkpoint that will not load is the run's HsError, not a SKIPPED row
        try:
            module, table = _module(m, graph, variant, modes, ohwi)
        except HsError as e:  # e.g. the plugin ops are not importable: say so, never fall back silently
            for prec in todo:
                path = cfg.out / f"{artifact_name(graph, variant, prec)}.onnx"
                report.artifacts.append(Artifact("onnx", graph, variant, prec, path, 0, 0.0, f"SKIPPED: {e}"))
            continue
        batch = "B" if dynamic else cfg.plain_batch
        io = C.graph_io(mcfg, graph, modes, batch, ohwi)
        ex_batch = cfg.verify_batch if dynamic else cfg.plain_batch
        feeds = G.example_inputs(io, ex_batch, seed=cfg.seed)
        t0 = time.perf_counter()
        plugin = variant == "plugin" and graph == "generator"
        try:
            with step(f"export {label}"):
                g = _export_graph(module, feeds, io, dynamic, cfg, table, plugin)
        except HsError as e:  # one graph failing does not hide the others' results
            for prec in todo:
                path = cfg.out / f"{artifact_name(graph, variant, prec)}.onnx"
                report.artifacts.append(Artifact("onnx", graph, variant, prec, path, 0, 0.0, f"FAIL export: {e}"))
            continue
        export_s = time.perf_counter() - t0
        for prec in todo:  # fp32 before fp16: the fp16 pass mutates the fp32 graph (fp16 is last: nothing follows)
            name = artifact_name(graph, variant, prec)
            path = cfg.out / f"{name}.onnx"
            t1 = time.perf_counter()
            with step(f"write {path.name}"):
                if prec == "fp16":
                    fp16_stats = convert_to_fp16(g)
                    passes.fold(g)
                files = onnx_io.save_onnx_atomic(passes.export_model(g, cfg.opset), path,
                                                 cfg.external_data_threshold)
            art = Artifact("onnx", graph, variant, prec, path, sum(f.stat().st_size for f in files),
                           export_s + time.perf_counter() - t1, status="ok")
            if cfg.verify:
                with step(f"verify {path.name} ({'onnx.reference' if plugin else 'onnxruntime'})"):
                    try:
                        errs = verify_graph(path, m, graph, modes, feeds, prec, plugin, ohwi)
                    except HsError as e:
                        errs, art.status = [], f"FAIL verify: {e}"
                    except Exception as e:  # noqa: BLE001 onnx.reference / onnxruntime raise their own types:
                        # a FAIL row for this graph; the others are still verified and the summary is written
                        errs, art.status = [], f"FAIL verify: {type(e).__name__}: {one_line(str(e))}"
                w = worst(errs)
                if w is not None:
                    art.max_rel_err, art.max_abs_err = w.rel, w.max_abs
                    art.errors = [asdict(e) | {"ok": e.ok} for e in errs]
                    bad = [e for e in errs if not e.ok]
                    if bad:
                        b = max(bad, key=lambda e: e.rel / e.tol)
                        art.status = f"FAIL tolerance ({b.name}: {b.rel:.2e} > {b.tol:.1e})"
            write_sidecar(path, {
                "kind": "onnx", "graph": graph, "variant": variant, "precision": prec, "model_config": mcfg.name,
                "export_config": cfg.to_dict(), "versions": software_versions(),
                "sha256": sha256_files(files), "files": [f.name for f in files],
                "inputs": {t.name: list(t.shape) for t in io.inputs},
                "outputs": {t.name: list(t.shape) for t in io.outputs},
                "delta_modes": {k: C.DeltaMode(v).name.lower() for k, v in modes.items()},
                "delta_layout": C.delta_layout(ohwi).value,
                "ops": passes.op_counts(g), "plugins": plugin_versions(path) if plugin else {},
                "fp16": fp16_stats if prec == "fp16" else None,
                "verification": art.errors, "export_s": round(art.seconds, 3), "status": art.status,
                "reuse_key": keys[prec][0], "reuse_inputs": keys[prec][1]})
            report.artifacts.append(art)
            written[(graph, variant, prec)] = path
        del g, module
        gc.collect()  # the FFHQ hypernet graph holds ~1.3 GB of arrays; free it before the next export
    return written


def run_onnx_export(cfg: ExportConfig, step: Step = _nostep, model=None, engine_step: EngineStep | None = None,
                    force: bool = False) -> ExportReport:
    """Export (and verify) every graph `cfg` selects, keeping those already in `cfg.out` whose inputs are unchanged
    (`force`: export them all again), run `engine_step` on what was written (engines.pipeline's `build_engines`: this
    layer does not import engines), then write `export_summary.json`. `step(desc)` returns a context manager wrapped
    around each long step (the CLI shows progress with it). `model`: the HyperStyle to export (None: loaded from
    `cfg` when a graph needs it); engine_step receives a `_Model` (its `.cfg`, `.get()`)."""
    t0 = time.perf_counter()
    report = ExportReport(config=cfg.to_dict())
    try:
        cfg.out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise HsError(f"cannot create --out {cfg.out}: {e.strerror}") from None
    probe = cfg.out / ".hs_write_probe"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise HsError(f"--out {cfg.out} is not writable: {e.strerror}") from None
    model = _Model(cfg, step, model)
    if model.is_default and cfg.checkpoint is None:
        report.notes.append("embedded default weights (deterministic, untrained): timing is faithful, images are not")
    torch.manual_seed(cfg.seed)
    written = export_graphs(cfg, model, report, step, force)
    if report.reused:
        report.notes.append(f"reused {len(report.reused)} graph(s) from an earlier run with the same inputs "
                            f"({', '.join(a.path.name for a in report.reused)}); --force exports them again")
    if not cfg.build_engines:
        report.engines_skipped = "engines skipped: --no-engines"
    elif engine_step is None:
        report.engines_skipped = "engines skipped: ONNX export only (engines.pipeline.run_export builds them)"
    else:
        engine_step(cfg, model, written, report, step)
    report.seconds = time.perf_counter() - t0
    write_json_atomic(cfg.out / "export_summary.json", report.to_dict())
    return report
