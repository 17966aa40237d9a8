"""Plugin nodes carry `plugin_namespace` (what full TensorRT's ONNX parser reads: onnx-tensorrt's
FallbackPluginImporter takes the namespace from that attribute only, never from the node domain). With TensorRT-RTX
here: the tiny plugin generator whose plugin nodes have an EMPTY domain still parses and builds, through the attribute
alone; without the attribute as well, it does not (the attribute is what carries it)."""

from __future__ import annotations

import onnx
import onnx.helper as oh
import pytest

from hyperstyle_trt.core.errors import HsError
from hyperstyle_trt.engines.network import parse_onnx
from hyperstyle_trt.plugins.registry import all_specs
from tests.unit.plugins._trt_util import build, plugin_layers

PLUGIN_OPS = {s.name for s in all_specs()}


def _plugin_nodes(model):
    return [n for n in model.graph.node if n.op_type in PLUGIN_OPS]


@pytest.fixture(scope="module")
def generator(tiny_export):
    cfg, _ = tiny_export
    m = onnx.load(str(cfg.out / "generator_plugin_fp16.onnx"))
    assert _plugin_nodes(m)
    return m


def test_every_exported_plugin_node_has_the_namespace_attribute(tiny_export):
    cfg, _ = tiny_export
    for name in ("generator_plugin_fp16.onnx", "generator_plugin_fp32.onnx"):
        nodes = _plugin_nodes(onnx.load(str(cfg.out / name), load_external_data=False))
        assert nodes
        for n in nodes:
            a = {x.name: oh.get_attribute_value(x) for x in n.attribute}
            assert n.domain == "hyperstyle" and a["plugin_namespace"] == b"hyperstyle", (name, n.name)
            assert isinstance(a["plugin_version"], bytes)


@pytest.mark.trt
def test_blank_domains_parse_and_build_through_the_attribute(generator):
    m = onnx.ModelProto()
    m.CopyFrom(generator)
    nodes = _plugin_nodes(m)
    for n in nodes:
        n.domain = ""
    net = parse_onnx(m)
    trt = net.flavor.module
    assert len(plugin_layers(trt, net.network)) == len(nodes)
    engine = build(trt, net, net.network, dynamic=True, opt=2)
    assert len(engine) > 0


@pytest.mark.trt
def test_without_domain_and_attribute_the_parser_finds_no_plugin(generator):
    from hyperstyle_trt.core.flavor import get_flavor
    from hyperstyle_trt.plugins.trt_common import register_plugins

    register_plugins(get_flavor().name)  # the creators are there: only the node's namespace is missing
    m = onnx.ModelProto()
    m.CopyFrom(generator)
    for n in _plugin_nodes(m):
        n.domain = ""
        keep = [a for a in n.attribute if a.name != "plugin_namespace"]
        del n.attribute[:]
        n.attribute.extend(keep)
    with pytest.raises(HsError, match="could not parse"):
        parse_onnx(m, register=True)
