"""torch module -> ONNX (dynamo exporter), and atomic ONNX writing with external data for large graphs.

Artifacts are written under a temporary name in the destination directory and renamed into place (data file first),
so a reader never sees a half-written graph. Graphs whose initializers exceed a threshold (the FFHQ hypernet is
1.33 GB fp32; protobuf cannot serialize > 2 GB) keep their weights in `<name>.onnx.data` beside the graph.
"""

from __future__ import annotations

import inspect
import logging
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Mapping, Sequence

import onnx
import onnx_ir as ir
import onnx_ir.passes.common as ir_passes
import onnxscript.rewriter.onnx_fusions
import torch
from onnxscript import rewriter
from onnxscript.optimizer import _constant_folding
from onnxscript.rewriter import pattern
from onnxscript.rewriter.rules.common import _no_op

from hyperstyle_trt.core.atomic import atomic_path
from hyperstyle_trt.core.errors import HsError, one_line
from hyperstyle_trt.plugins.onnx_export import is_plugin_node
from hyperstyle_trt.plugins.registry import get_spec


def export_module(module: torch.nn.Module, args: Sequence[torch.Tensor], input_names: Sequence[str],
                  output_names: Sequence[str], dynamic_batch: bool, max_batch: int, opset: int,
                  custom_translation_table: Mapping | None = None) -> onnx.ModelProto:
    """Export `module(*args)` with the dynamo exporter; returns the ModelProto (weights in memory).

    dynamic_batch: axis 0 of every input is the symbolic dim "B" (traced with the range 1..max(max_batch, 64) so
    the exporter never specializes it; the engine profile sets the real 1..max_batch); otherwise the example batch
    is baked in. The exporter runs unoptimized and `optimize_ir` then runs its optimizer (constant folding, BN folding
    into Conv, ...) with exact no-op rules, so the demodulation's `+ 1e-8` survives.
    """
    dyn = None
    if dynamic_batch:
        b = torch.export.Dim("B", min=1, max=max(max_batch, 64))
        dyn = _batch_dynamic_shapes(module, len(args), {0: b})
    logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)
    kw = {}
    if custom_translation_table:
        kw["custom_translation_table"] = dict(custom_translation_table)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        try:
            prog = torch.onnx.export(module.eval(), tuple(args), dynamo=True, opset_version=opset,
                                     input_names=list(input_names), output_names=list(output_names),
                                     dynamic_shapes=dyn, optimize=False, verbose=False, **kw)
            optimize_ir(prog.model)
        except Exception as e:  # the exporter raises many types; report as one line with the cause
            raise HsError(f"ONNX export of {type(module).__name__} failed: {type(e).__name__}: "
                          f"{one_line(str(e))}") from e
    with tempfile.TemporaryDirectory(prefix="hs_export_") as d:
        # Round-trip through disk with external data: works for > 2 GB graphs and returns a plain ModelProto.
        p = Path(d) / "m.onnx"
        prog.save(str(p), external_data=True)
        del prog
        return onnx.load(str(p), load_external_data=True)


def _identity(op, x, **_):
    return op.Identity(x)


def _exact(value: float) -> pattern.Constant:
    return pattern.Constant(value, rel_tol=0.0, abs_tol=0.0)


# onnxscript's no-op rules match their constant with math.isclose(rel_tol=1e-5, abs_tol=1e-8): `x + 1e-8` counts as
# `x + 0` and is removed, which drops the demodulation epsilon (models/ops.py modulated_conv2d; docs/verification.md).
# These match exactly 0 / 1 (a true no-op) and replace onnxscript's Mul/Add/Sub/Div ones; the Dropout rules stay.
EXACT_NO_OP_RULES: tuple[pattern.RewriteRule, ...] = (
    *pattern.RewriteRule(lambda op, x: op.Mul(x, _exact(1.0)), _identity, name="mul_by_1_exact").commute(),
    *pattern.RewriteRule(lambda op, x: op.Add(x, _exact(0.0)), _identity, name="add_0_exact").commute(),
    pattern.RewriteRule(lambda op, x: op.Sub(x, _exact(0.0)), _identity, name="sub_0_exact"),
    pattern.RewriteRule(lambda op, x: op.Div(x, _exact(1.0)), _identity, name="div_by_1_exact"),
)
_KEPT_NO_OP = {id(_no_op.dropout_zero_rule), id(_no_op.dropout_inference_rule)}
_TOLERANT_NO_OP = {id(r) for r in _no_op.rules} - _KEPT_NO_OP
# The rule set torch.onnx.export(optimize=True) applies (onnxscript 0.7.2 rewriter._DEFAULT_REWRITE_RULES), in its
# order, with the tolerant arithmetic no-op rules swapped for EXACT_NO_OP_RULES.
REWRITE_RULES: tuple[pattern.RewriteRule, ...] = (
    *EXACT_NO_OP_RULES, *(r for r in rewriter._DEFAULT_REWRITE_RULES if id(r) not in _TOLERANT_NO_OP))
assert len(_TOLERANT_NO_OP) == 6 and len(REWRITE_RULES) == len(rewriter._DEFAULT_REWRITE_RULES), \
    "onnxscript's no-op rules changed: re-check export/onnx_io.py against the pinned onnxscript"


def optimize_ir(model: ir.Model, rules: Sequence[pattern.RewriteRule] = REWRITE_RULES) -> None:
    """Optimize `model` in place: what torch.onnx.export(optimize=True) runs (torch 2.13 -> onnxscript 0.7.2
    `_framework_apis.torch_2_8.optimize`: `optimizer.optimize_ir` with its defaults, then `onnx_fusions.fuse`), with
    `rules` as the rewrite rules. `optimize_ir` hard-codes its rule set, so its pass list is written out here; with
    `rules=onnxscript.rewriter._DEFAULT_REWRITE_RULES` the result is byte-identical to the exporter's
    (tests/unit/export/test_demod_epsilon.py checks that)."""
    cf = _constant_folding
    ir.passes.Sequential(
        ir_passes.InlinePass(),
        ir.passes.PassManager([
            cf.FoldConstantsPass(shape_inference=True, input_size_limit=cf.DEFAULT_CONSTANT_FOLD_INPUT_SIZE_LIMIT,
                                 output_size_limit=cf.DEFAULT_CONSTANT_FOLD_OUTPUT_SIZE_LIMIT,
                                 should_fold=lambda node: None),
            rewriter.RewritePass(list(rules)),
            ir_passes.RemoveUnusedNodesPass(),
            ir_passes.RemoveUnusedFunctionsPass(),
            ir_passes.RemoveUnusedOpsetsPass(),
        ], steps=2, early_stop=True),
        ir_passes.RemoveUnusedNodesPass(),
        ir_passes.LiftConstantsToInitializersPass(lift_all_constants=True, size_limit=0),
        ir_passes.LiftSubgraphInitializersToMainGraphPass(),
        ir_passes.DeduplicateInitializersPass(),
        ir_passes.CommonSubexpressionEliminationPass(),
        ir_passes.OutputFixPass(),
        ir_passes.NameFixPass(),
    )(model)
    onnxscript.rewriter.onnx_fusions.fuse(model)


def _batch_dynamic_shapes(module: torch.nn.Module, n_args: int, spec: dict) -> tuple:
    """dynamic_shapes matching forward's signature: one spec per positional parameter, a tuple for *args."""
    out: list = []
    for p in inspect.signature(module.forward).parameters.values():
        if p.kind == inspect.Parameter.VAR_POSITIONAL:
            out.append(tuple(spec for _ in range(n_args - len(out))))
            break
        out.append(spec)
    return tuple(out)


def initializer_bytes(model: onnx.ModelProto) -> int:
    """Total bytes of the initializers (and Constant-node tensors) held in `model`."""
    n = sum(len(t.raw_data) or onnx.numpy_helper.to_array(t).nbytes for t in model.graph.initializer)
    for node in model.graph.node:
        if node.op_type == "Constant":
            for a in node.attribute:
                if a.type == onnx.AttributeProto.TENSOR:
                    n += len(a.t.raw_data)
    return n


def save_onnx_atomic(model: onnx.ModelProto, path: Path, external_threshold: int = 1 << 30) -> list[Path]:
    """Write `model` to `path` atomically; initializers go to `<path>.data` when they exceed `external_threshold`
    bytes. A stale `<path>.data` from an earlier, larger export is removed. With external data the old graph is
    removed before the new data file lands, so a graph never sits beside data it does not describe. Returns the
    files written."""
    path = Path(path)
    d = path.parent
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise HsError(f"cannot create output directory {d}: {e.strerror}") from None
    data = path.with_name(path.name + ".data")
    external = initializer_bytes(model) > external_threshold
    if external:
        # onnx writes the data file beside the graph under its final name, so the graph is written in a private
        # temp directory and both files are then moved with atomic_path (same directory, fsync, rename). Two
        # files can't be swapped at once: the old graph goes first, so an interrupted write leaves no graph
        # rather than an old graph over new data.
        tmpdir = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=d))
        try:
            onnx.save_model(model, str(tmpdir / path.name), save_as_external_data=True,
                            all_tensors_to_one_file=True, location=data.name, size_threshold=1024)
            external = (tmpdir / data.name).exists()  # False when every tensor was under 1 KB
            if external:
                path.unlink(missing_ok=True)
                with atomic_path(data, mkdir=False) as tmp:
                    os.replace(tmpdir / data.name, tmp)
            with atomic_path(path, mkdir=False) as tmp:
                os.replace(tmpdir / path.name, tmp)
        except OSError as e:
            raise HsError(f"cannot write {path}: {e.strerror}") from None
        finally:
            shutil.rmtree(tmpdir, ignore_errors=True)
    else:
        with atomic_path(path, mkdir=False) as tmp:
            onnx.save_model(model, str(tmp))
    if not external and data.exists():
        data.unlink()
    return [path, data] if external else [path]


def onnx_files(path: Path) -> list[Path]:
    """The graph file and its external data file (if any)."""
    data = Path(path).with_name(Path(path).name + ".data")
    return [Path(path), data] if data.exists() else [Path(path)]


def graph_meta(path: Path) -> tuple[list[Path], list[str]]:
    """(graph file + referenced external-data files, plugin op types used), from one load without weights."""
    path = Path(path)
    model = onnx.load(str(path), load_external_data=False)
    locs = set()
    for t in model.graph.initializer:
        if t.data_location == onnx.TensorProto.EXTERNAL:
            locs.update(e.value for e in t.external_data if e.key == "location")
    missing = [loc for loc in locs if not (path.parent / loc).is_file()]
    if missing:
        raise HsError(f"{path}: external data file(s) {missing} not found")
    ops = sorted({n.op_type for n in model.graph.node if is_plugin_node(n)})
    return [path] + [path.parent / loc for loc in sorted(locs)], ops


def onnx_data_files(path: Path) -> list[Path]:
    """The graph file followed by every external-data file it references (sorted, deduplicated)."""
    return graph_meta(path)[0]


def plugin_versions_of(ops: list[str]) -> dict[str, str]:
    if not ops:
        return {}
    return {op: get_spec(op).version for op in ops}


def plugin_versions(path: Path) -> dict[str, str]:
    """{op type: spec version} for the plugin ops used in the graph (nodes of the hyperstyle domain)."""
    return plugin_versions_of(graph_meta(path)[1])
