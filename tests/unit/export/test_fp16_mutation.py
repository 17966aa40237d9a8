"""A lost fp32 cast in the demodulation fails verification.

The fp16 pass (export/fp16.py) keeps the demodulation chain Pow -> ReduceSum -> Sqrt -> Reciprocal in fp32. The
test re-converts the tiny fp32 plain generator with one of those ops dropped from KEEP_FP32 and verifies it with
the reference evaluator (onnx.reference rounds every op's output to its declared type, as an fp16 engine does;
ONNX Runtime's CPU provider computes such fp16 nodes in fp32 and gives identical numbers for the mutated graph).

Input: uniform Δ = 999 on conv1 (every modulated weight x1000). Demodulation divides the scale out, so the
reference image is the Δ = 0 one, but the sums of squares (~1e6 here) overflow fp16 (max 65504) unless they are
formed in fp32. Measured (2026-12-01, seed 0): unmutated 3.0e-3 (gate 6e-3); Pow, ReduceSum or Sqrt computed in
fp16: 0.82. Dropping only Reciprocal is harmless (its input is the fp32 norm, its output ~1e-3) and is not tested.
"""

import numpy as np
import onnx
import onnx_graphsurgeon as gs
import pytest
import torch

from hyperstyle_trt.core import contract as C
from hyperstyle_trt.export import fp16, onnx_io, passes
from hyperstyle_trt.export.verify import gate, verify_graph
from hyperstyle_trt.models import graphs as G

DEMOD = ("Pow", "ReduceSum", "Sqrt")


@pytest.fixture(scope="module")
def case(tiny_export, tiny_model):
    """(fp32 plain generator path, Δ modes, feeds with conv1's Δ = 999) and the check that the feeds make sense."""
    cfg, _ = tiny_export
    modes = C.delta_modes(tiny_model.cfg, False)
    io = C.graph_io(tiny_model.cfg, "generator", modes, cfg.plain_batch, False)
    feeds = G.example_inputs(io, cfg.plain_batch, seed=0)
    big = dict(feeds, delta_conv1=torch.full_like(feeds["delta_conv1"], 999.0))
    with torch.no_grad():  # demodulation cancels the scale: same image as with Δ = 0 on conv1
        d = {s.name: big[s.input_name] for s in tiny_model.cfg.tuned}
        y_big = tiny_model.decoder(big["codes"], d)
        y_0 = tiny_model.decoder(big["codes"], {**d, "conv1": torch.zeros_like(d["conv1"])})
    assert (y_big - y_0).abs().max() < 1e-4
    return cfg.out / "generator_plain_fp32.onnx", modes, big


def _fp16_graph(src, dst):
    g = gs.import_onnx(onnx.load(str(src)))
    fp16.convert_to_fp16(g)
    passes.fold(g)
    onnx_io.save_onnx_atomic(passes.export_model(g, 18), dst, 1 << 30)
    return dst


def _verify(path, model, modes, feeds):
    with np.errstate(all="ignore"):  # the mutated graph overflows on purpose
        return verify_graph(path, model, "generator", modes, feeds, "fp16", plugin=False, runtime="onnx.reference")


def test_unmutated_fp16_graph_passes(case, tiny_model, tmp_path):
    src, modes, feeds = case
    errs = _verify(_fp16_graph(src, tmp_path / "g.onnx"), tiny_model, modes, feeds)
    assert [e.name for e in errs] == ["image", "image_pooled"]
    assert all(e.ok for e in errs), errs
    assert errs[0].tol == gate("tiny", "generator", "image", "fp16") and errs[0].rel > 1e-4  # really fp16


@pytest.mark.parametrize("op", DEMOD)
def test_demodulation_in_fp16_fails_verification(op, case, tiny_model, tmp_path, monkeypatch):
    src, modes, feeds = case
    monkeypatch.setattr(fp16, "KEEP_FP32", fp16.KEEP_FP32 - {op})
    path = _fp16_graph(src, tmp_path / "g.onnx")
    m = onnx.shape_inference.infer_shapes(onnx.load(str(path)))
    types = {v.name: v.type.tensor_type.elem_type for v in m.graph.value_info}
    assert any(types.get(n.output[0]) == onnx.TensorProto.FLOAT16 for n in m.graph.node if n.op_type == op)
    errs = _verify(path, tiny_model, modes, feeds)
    assert not any(e.ok for e in errs), errs
    assert min(e.rel for e in errs) > 20 * max(e.tol for e in errs)  # a blow-up, not a marginal miss
