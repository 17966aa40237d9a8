"""The plugin variant's Δ layout: full 3x3 Δ OHWI [B,Cout,3,3,Cin] (HsModConv v2), everything else as in the plain
variant. The OHWI hypernet graph must equal `to_ohwi` of the OIHW graph bit for bit (fp32, same inputs): the shared
layers get OHWI from permuted w1/b1 columns (no runtime transpose), the others from a broadcast or a transpose."""

import pytest
import torch

from hyperstyle_trt.core import contract as C
from hyperstyle_trt.models import graphs as G
from hyperstyle_trt.models.checkpoint import fill_default_
from hyperstyle_trt.core.config import HypernetConfig, get_config
from hyperstyle_trt.models.hyperstyle import HyperStyle
from hyperstyle_trt.plugins.mod_conv.reference import to_ohwi


def _model(encoder_type: str | None = None, tune_all: bool = False) -> HyperStyle:
    cfg = get_config("tiny")
    h = dict(cfg.hypernet.__dict__)
    if encoder_type:
        h["encoder_type"] = encoder_type
    if tune_all:
        h["layers_to_tune"] = tuple(range(cfg.generator.n_layers))
    # the embedded default weights: non-zero everywhere (the zeros of __init__ would prove nothing)
    return fill_default_(HyperStyle(cfg.replace(hypernet=HypernetConfig(**h)))).eval()


def test_delta_shape_and_graph_io():
    cfg = get_config("tiny")
    conv = next(s for s in cfg.tuned if s.name == "convs.8")
    rgb = next(s for s in cfg.layers if s.kind == "rgb")
    o, i = conv.out_ch, conv.in_ch
    assert C.delta_shape(conv, C.DeltaMode.FULL) == (o, i, 3, 3)
    assert C.delta_shape(conv, C.DeltaMode.FULL, ohwi=True) == (o, 3, 3, i)
    assert C.delta_shape(conv, C.DeltaMode.PER_CHANNEL, ohwi=True) == (o, i)
    full = C.DeltaMode.FULL
    assert C.delta_shape(rgb, full, ohwi=True) == C.delta_shape(rgb, full) == (3, rgb.in_ch, 1, 1)
    modes = C.delta_modes(cfg, per_channel=True)
    for graph in ("hypernet", "generator"):
        io = C.graph_io(cfg, graph, modes, ohwi=True)
        shapes = {t.name: t.shape for t in io.inputs + io.outputs}
        assert shapes["delta_conv1"] == ("B", cfg.layers[0].out_ch, 3, 3, cfg.layers[0].in_ch)  # shared: full OHWI
        assert shapes["delta_convs_8"] == ("B", o, i)  # non-shared: per-channel
    io = C.graph_io(cfg, "hypernet", modes, ohwi=True)
    assert {t.name: t.shape for t in io.outputs}["acc_conv1"] == ("B", cfg.layers[0].out_ch, 3, 3,
                                                                   cfg.layers[0].in_ch)
    plain = C.graph_io(cfg, "generator", C.delta_modes(cfg, False), batch=2)
    assert {t.name: t.shape for t in plain.inputs}["delta_conv1"] == (2, cfg.layers[0].out_ch,
                                                                      cfg.layers[0].in_ch, 3, 3)


def _check_ohwi_equals_oihw(m: HyperStyle, per_channel: bool, batch: int = 3) -> int:
    """Run the OIHW and the OHWI hypernet graphs on the same inputs (Δ inputs converted with to_ohwi); every output
    must be bit-identical after to_ohwi. Returns how many outputs are OHWI."""
    cfg = m.cfg
    modes = C.delta_modes(cfg, per_channel)
    oihw, ohwi = G.HypernetGraph(m, modes), G.HypernetGraph(m, modes, ohwi=True)
    io_oihw, io_ohwi = (C.graph_io(cfg, "hypernet", modes, ohwi=o) for o in (False, True))
    feeds = G.example_inputs(io_oihw, batch, seed=1)  # batch > 1: distinct per-sample Δ
    feeds_ohwi = {k: (to_ohwi(v) if t.shape != u.shape else v)
                  for (k, v), t, u in zip(feeds.items(), io_oihw.inputs, io_ohwi.inputs)}
    with torch.no_grad():
        ref, got = oihw(*feeds.values()), ohwi(*feeds_ohwi.values())
    n_ohwi = 0
    for spec, r, g, t in zip(cfg.tuned, ref, got, io_ohwi.outputs):
        assert tuple(g.shape) == t.concrete(batch), spec.name
        if modes[spec.name] == C.DeltaMode.FULL and spec.kernel == 3:
            n_ohwi += 1
            r = to_ohwi(r)
        assert torch.equal(g, r), spec.name
    # the model's parameters are untouched; the permuted copies are the graph's own buffers
    hn = m.hypernet.shared_weight_hypernet
    assert not hasattr(oihw, "w1_ohwi") and ohwi.w1_ohwi.data_ptr() != hn.w1.data_ptr()
    assert not torch.equal(ohwi.w1_ohwi, hn.w1) and torch.equal(ohwi.w1_ohwi.sort(1).values, hn.w1.sort(1).values)
    return n_ohwi


@pytest.mark.parametrize("encoder_type,tune_all,per_channel", [
    (None, False, False),  # shared (permuted w1/b1) + full RefinementBlock (broadcast)
    (None, False, True),  # the plugin variant's modes: shared OHWI + per-channel
    (None, True, True),  # every layer, toRGB included (k=1: unchanged)
    ("SharedWeightsHyperNetResNetSeparable", True, False),  # Separable: runtime transpose
])
def test_ohwi_hypernet_equals_to_ohwi_of_oihw(encoder_type, tune_all, per_channel):
    assert _check_ohwi_equals_oihw(_model(encoder_type, tune_all), per_channel) > 0


@pytest.mark.slow
def test_ffhq1024_ohwi_hypernet_equals_to_ohwi_of_oihw():
    """FFHQ-1024 sizes (w1 [512, 4608]): still bit-identical (~8 s, 3 GB RAM on the 2-core CPU box)."""
    from hyperstyle_trt.models.checkpoint import build_model

    assert _check_ohwi_equals_oihw(build_model("ffhq1024", quiet=True), per_channel=True, batch=2) == 9

def test_shared_ohwi_needs_no_transpose():
    """The shared layers' OHWI comes from the permuted w1/b1 (a MatMul, a Reshape): the graph has no more
    transposes than the OIHW one (counted in the torch.export graph, before the ONNX exporter)."""
    m = _model()
    modes = C.delta_modes(m.cfg, per_channel=True)
    counts = []
    for ohwi in (False, True):
        feeds = G.example_inputs(C.graph_io(m.cfg, "hypernet", modes, ohwi=ohwi), 1)
        ep = torch.export.export(G.HypernetGraph(m, modes, ohwi=ohwi), tuple(feeds.values()))
        ops = [str(n.target) for n in ep.graph.nodes if n.op == "call_function"]
        counts.append(sum(any(t in o for t in ("permute", "transpose", "aten.t.", "movedim")) for o in ops))
    assert counts[1] == counts[0], counts


def test_separable_plugin_export_verifies(tmp_path):
    """Separable hypernet (every tuned layer full): the plugin variant's graphs carry OHWI Δ end to end (hypernet
    Transpose, generator HsModConv delta_mode=1) and match the reference (ORT / onnx.reference, fp32)."""
    import json

    from hyperstyle_trt.export.config import ExportConfig
    from hyperstyle_trt.export.pipeline import run_onnx_export
    m = _model("SharedWeightsHyperNetResNetSeparable")
    cfg = ExportConfig(config="tiny", precisions=("fp32",), variants=("plugin",), out=tmp_path, build_engines=False)
    report = run_onnx_export(cfg, model=m)
    rows = {a.path.name: (a.status, a.max_rel_err) for a in report.artifacts}
    assert all(st == "ok" and err < 1e-5 for st, err in rows.values()), rows
    c8 = next(s for s in m.cfg.tuned if s.name == "convs.8")
    for name in ("hypernet_plugin_fp32", "generator_plugin_fp32"):
        side = json.loads((tmp_path / f"{name}.onnx.json").read_text())
        assert side["delta_layout"] == "OHWI" and side["delta_modes"]["convs.8"] == "full"
        assert side["inputs"]["delta_convs_8"] == ["B", c8.out_ch, 3, 3, c8.in_ch]
