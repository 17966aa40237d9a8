"""AOT plugin engines (full TensorRT >= 10.9 only; never built here): what runs on this machine. The refusals on
TensorRT-RTX / without TensorRT, the QDP-route model a parser would get (external data left in place), the cache
key (kernel sources, Triton, SM) and the config / CLI checks that fail before minutes of export."""

import types

import onnx
import pytest

from hyperstyle_trt.engines import builder as B
from hyperstyle_trt.core.errors import HsError
from hyperstyle_trt.plugins import qdp
from tests.unit._helpers.onnx_models import single_node_model


def test_check_aot_refuses_tensorrt_rtx_in_one_line():
    rtx = B.Flavor("tensorrt_rtx", types.SimpleNamespace(), "1.7")
    with pytest.raises(HsError, match="TensorRT-RTX accepts only IPluginV3") as e:
        B.check_aot(rtx)
    assert "\n" not in str(e.value)


@pytest.mark.trt
def test_aot_build_of_a_plugin_graph_is_refused_on_rtx(tmp_path):
    from hyperstyle_trt.core.flavor import get_flavor

    fl = get_flavor()
    if not fl.is_rtx:
        pytest.skip("checks the TensorRT-RTX refusal; full TensorRT is installed")
    path = tmp_path / "conv.onnx"
    onnx.save(single_node_model("mod_conv", {"delta_mode": 1}), str(path))
    with pytest.raises(HsError, match="TensorRT-RTX accepts only IPluginV3"):
        B.build_serialized(path, B.BuildOptions(aot_plugins=True), fl)
    with pytest.raises(HsError, match="TensorRT-RTX accepts only IPluginV3"):
        B.get_or_build(path, tmp_path / "conv.engine", B.BuildOptions(aot_plugins=True), tmp_path / "cache", flavor=fl)
    assert not (tmp_path / "conv.engine").exists()


def test_qdp_model_bytes_renames_nodes_and_keeps_external_data_in_place(tmp_path):
    path = tmp_path / "g.onnx"
    onnx.save_model(single_node_model("mod_conv", {"delta_mode": 1, "upsample": 1}), str(path),
                    save_as_external_data=True, location="g.onnx.data", size_threshold=0)
    m = onnx.load_from_string(qdp.qdp_model_bytes(path))
    (node,) = m.graph.node
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    assert node.op_type == "HsModConv_delta" and attrs["aot"] == 1 and attrs["plugin_namespace"] == b"hyperstyle"
    ext = [t for t in m.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
    assert ext and all({e.key: e.value for e in t.external_data}["location"] == "g.onnx.data" for t in ext)
    assert not any(t.raw_data for t in ext)  # weights stay in the .data file the parser's path points at


def test_kernel_digest_follows_the_target_and_the_sources(tmp_path):
    import shutil
    from pathlib import Path

    assert qdp.kernel_digest(90) == qdp.kernel_digest(90) != qdp.kernel_digest(89)
    root = Path(qdp.__file__).resolve().parents[1]
    assert "plugins/mod_conv/kernel.py" in qdp.KERNEL_SOURCES and "plugins/to_rgb/kernel.py" in qdp.KERNEL_SOURCES
    for rel in qdp.KERNEL_SOURCES:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(root / rel, tmp_path / rel)
    assert qdp.kernel_digest(90, tmp_path) == qdp.kernel_digest(90)
    k = tmp_path / "plugins/mod_conv/kernel.py"
    k.write_text(k.read_text() + "\n# a one-line change\n")
    assert qdp.kernel_digest(90, tmp_path) != qdp.kernel_digest(90)


def test_qdp_route_refuses_a_graph_of_another_plugin_version():
    m = single_node_model("mod_conv", {"delta_mode": 1})
    for a in m.graph.node[0].attribute:
        if a.name == "plugin_version":
            a.s = b"1"  # a v1 graph: OIHW weight/delta, which the v2 kernels would misread
    with pytest.raises(HsError, match="plugin_version '1', but this build implements version 2"):
        qdp.to_qdp_model(m)


def test_export_config_rejects_aot_without_plugin_engines():
    from hyperstyle_trt.export.config import ExportConfig

    for kw in (dict(build_engines=False), dict(variants=("plain",)), dict(compute_capabilities=("SM86",))):
        with pytest.raises(HsError, match="--aot-plugins"):
            ExportConfig(config="tiny", aot_plugins=True, **kw)
    assert ExportConfig(config="tiny", aot_plugins=True).aot_plugins


def test_cli_refuses_aot_up_front_without_full_tensorrt(tmp_path, capsys):
    from hyperstyle_trt.core.flavor import get_flavor
    from hyperstyle_trt.cli.export import main

    try:
        full = not get_flavor().is_rtx
    except HsError:
        full = False
    if full:
        pytest.skip("checks the refusal; full TensorRT is installed here")
    assert main(["--aot-plugins", "--config", "tiny", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "TensorRT" in err and "\n" not in err
    assert not (tmp_path / "x").exists()  # refused before any export work


@pytest.mark.trt
def test_parse_from_bytes_finds_external_weights_through_the_path(tmp_path, make_onnx):
    """The mechanism the AOT route relies on (a rewritten model in memory, weights still in the .data file beside
    the original), checked with the importable flavor on a plain graph through the builder's parse_onnx."""
    from hyperstyle_trt.engines.network import parse_onnx

    path = make_onnx(tmp_path / "ext.onnx", external=True)
    blob = onnx.load(str(path), load_external_data=False).SerializeToString()
    with parse_onnx(blob, external_data_path=path, register=False) as net:
        assert net.name == "ext.onnx" and net.network.num_layers >= 2
    with pytest.raises(HsError, match="could not parse ext.onnx") as e:  # the path is what locates the weights
        parse_onnx(blob, external_data_path=tmp_path / "elsewhere" / "ext.onnx", register=False)
    assert "\n" not in str(e.value)


@pytest.mark.slow
def test_aot_kernels_of_ffhq_layers_load_weights_as_vectors():
    """AOT kernels are compiled with the 16-byte alignment TensorRT gives its tensors when the channel counts allow
    (plugins/qdp.py ALIGNMENT): the W/delta tiles go through cp.async like in a JIT launch, not scalar gathers."""
    pytest.importorskip("triton", reason="triton not installed (pip install 'hyperstyle-trt[kernels]')")
    from hyperstyle_trt.benchmarks.codegen import analyze

    la = qdp.aot_launch("mod_conv", {"delta_mode": 1}, {"B": 2, "H": 64, "W": 64, "Cin": 512, "Cout": 512}, "fp16")
    c = analyze(la.kernel)
    assert c.spill_bytes == 0 and c.ldgsts >= 6 and c.ldg_scalar <= 20, c
    odd = qdp.aot_launch("mod_conv", {"delta_mode": 1}, {"B": 2, "H": 8, "W": 8, "Cin": 24, "Cout": 40}, "fp16")
    assert analyze(odd.kernel).ldg_scalar > c.ldg_scalar  # no alignment promise for channel counts % 16 != 0


def test_aot_refused_for_triton_with_hidden_kernel_params(monkeypatch):
    """TensorRT passes an AOT kernel exactly the arguments its aot_impl declares; Triton >= 3.3 adds two hidden
    trailing pointers, so --aot-plugins is refused there (one line) and accepted past this check before 3.3."""
    assert qdp.aot_contract_problem("3.2.0") is None
    for v in ("3.3.0", "3.6.0", "3.9.1", "4.0.0+git1234"):
        msg = qdp.aot_contract_problem(v)
        assert msg and "hidden scratch pointers" in msg and "\n" not in msg
    full = B.Flavor("tensorrt", types.SimpleNamespace(), "10.9.0")
    monkeypatch.setattr(qdp, "real_problem", qdp.aot_contract_problem, raising=False)
    monkeypatch.setattr(qdp, "aot_contract_problem", lambda: qdp.real_problem("3.9.0"))
    with pytest.raises(HsError, match=r"^--aot-plugins: Triton 3.9.0 appends 2 hidden scratch pointers"):
        B.check_aot(full)
    monkeypatch.setattr(qdp, "aot_contract_problem", lambda: None)
    with pytest.raises(HsError, match="tensorrt.plugin"):  # past the Triton check: the next one (no full TensorRT)
        B.check_aot(full)


def test_compiled_kernel_entry_has_two_params_more_than_the_plugin_declares():
    """The evidence for the refusal, from the installed Triton: the compiled toRGB entry takes the declared inputs,
    extras and output plus Triton's two hidden pointers."""
    pytest.importorskip("triton", reason="triton not installed (pip install 'hyperstyle-trt[kernels]')")
    import triton

    from hyperstyle_trt.plugins._triton import HIDDEN_TRAILING_PARAMS

    attrs = {"delta_mode": 1}
    la = qdp.aot_launch("to_rgb", attrs, {"B": 2, "H": 8, "W": 8, "Cin": 16}, "fp16")
    declared = sum(len(part) for part in qdp.kernel_args("to_rgb", attrs))
    hidden = la.kernel.n_params - declared
    assert hidden == (HIDDEN_TRAILING_PARAMS if qdp.aot_contract_problem(triton.__version__) else 0)
