"""core.contract: the graph I/O contract (names, shapes, dtypes, Δ modes and layouts), importable without torch."""

import subprocess
import sys
from pathlib import Path

import pytest

from hyperstyle_trt.core import contract as C
from hyperstyle_trt.core.config import SHARED_LAYERS, get_config
from hyperstyle_trt.core.errors import HsError

ROOT = Path(__file__).resolve().parents[3]


def test_core_imports_without_torch_or_model_code():
    mods = ("errors", "config", "contract", "atomic", "flavor", "sidecar", "device", "precision", "entry")
    code = ("import sys, importlib; import hyperstyle_trt.core; "
            f"[importlib.import_module('hyperstyle_trt.core.' + m) for m in {mods!r}]; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('torch', 'tensorrt', 'tensorrt_rtx') or "
            "m.split('.')[:2] in (['hyperstyle_trt', n] for n in ('models', 'plugins', 'export', 'engines', "
            "'runtime'))]; assert not bad, bad")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]


@pytest.mark.parametrize("precision,dtype", [("fp32", "float32"), ("fp16", "float16")])
def test_every_tensor_carries_the_graph_precision(precision, dtype):
    cfg = get_config("tiny")
    modes = C.delta_modes(cfg, per_channel=True)
    for g in C.GRAPHS:
        io = C.graph_io(cfg, g, modes, batch=3, ohwi=True, precision=precision)
        assert {t.dtype for t in io.inputs + io.outputs} == {dtype}
        assert all(t.shape[0] == 3 for t in io.inputs + io.outputs)


def test_names_shapes_and_ping_pong_pairing():
    cfg = get_config("tiny")
    modes = C.delta_modes(cfg, per_channel=True)
    hn = C.graph_io(cfg, "hypernet", modes, ohwi=True)
    gen = C.graph_io(cfg, "generator", modes, ohwi=True)
    deltas = [t for t in hn.inputs if t.name.startswith("delta_")]
    # acc_<layer> of iteration t is delta_<layer> of t+1 and of the generator: same shape, same order
    assert [t.name[len("delta_"):] for t in deltas] == [t.name[len("acc_"):] for t in hn.outputs]
    assert [t.shape for t in deltas] == [t.shape for t in hn.outputs] == [gen.tensor(t.name).shape for t in deltas]
    s, g = cfg.hypernet.input_size, cfg.generator
    assert gen.tensor("image").shape == ("B", 3, g.size, g.size)
    assert gen.tensor("image_pooled").shape == ("B", 3, s, s)
    assert C.graph_io(cfg, "w_encoder", modes).tensor("codes").shape == ("B", g.n_latent, g.style_dim)


def test_delta_modes_and_layouts():
    cfg = get_config("ffhq1024")
    plugin, plain = C.delta_modes(cfg, per_channel=True), C.delta_modes(cfg, per_channel=False)
    assert set(plain.values()) == {C.DeltaMode.FULL}
    for s in cfg.tuned:
        want = C.DeltaMode.FULL if s.idx in SHARED_LAYERS else C.DeltaMode.PER_CHANNEL
        assert plugin[s.name] == want, s.name
    conv8 = next(s for s in cfg.tuned if s.name == "convs.8")  # 512 -> 256
    assert C.delta_shape(conv8, C.DeltaMode.FULL) == (256, 512, 3, 3)
    assert C.delta_shape(conv8, C.DeltaMode.FULL, ohwi=True) == (256, 3, 3, 512)
    assert C.delta_shape(conv8, C.DeltaMode.PER_CHANNEL, ohwi=True) == (256, 512)
    assert C.delta_layout(True) is C.DeltaLayout.OHWI and C.delta_layout(False).value == "OIHW"
    assert [int(m) for m in C.DeltaMode] == [0, 1, 2]  # the plugins' `delta_mode` attribute values


def test_bad_names_are_one_line_errors():
    cfg = get_config("tiny")
    modes = C.delta_modes(cfg, False)
    with pytest.raises(HsError, match="unknown graph 'decoder'; expected one of"):
        C.graph_io(cfg, "decoder", modes)
    with pytest.raises(HsError, match="unknown precision 'bf16'"):
        C.graph_io(cfg, "generator", modes, precision="bf16")
    with pytest.raises(HsError, match="no tensor 'codez' in this graph"):
        C.graph_io(cfg, "generator", modes).tensor("codez")
