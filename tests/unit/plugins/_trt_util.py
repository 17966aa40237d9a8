"""TensorRT helpers shared by the plugin tests, on the project's builder (engines.network.parse_onnx,
engines.builder.build_network): parse an ONNX model, count plugin layers, build (static or batch 1..8).

`parse` keeps every parsed network (engines.network.Network: builder, network, parser, freed in dependency order
when closed) alive for the test session, so a test may inspect the network after building it.
"""

from hyperstyle_trt.engines.builder import BuildOptions, build_network
from hyperstyle_trt.engines.network import parse_onnx

_ALIVE = []


def parse(trt, model):
    """Parse an onnx.ModelProto (strongly typed, as engines are built); returns (Network, its INetworkDefinition).
    The builder's HsError (the parser's error, one line) fails the test."""
    net = parse_onnx(model)
    assert net.flavor.module is trt
    _ALIVE.append(net)
    return net, net.network


def build(trt, parsed, net, dynamic, opt=4):
    """The serialized engine (bytes) of `parsed` (from `parse`); with `dynamic`, one profile with batch 1..8 (opt
    `opt`) on every input of `net`. HsError (one line) when TensorRT cannot build it."""
    profile = []
    if dynamic:
        for i in range(net.num_inputs):
            t = net.get_input(i)
            rest = tuple(t.shape)[1:]
            profile.append((t.name, (1, *rest), (opt, *rest), (8, *rest)))
    return build_network(parsed, BuildOptions(profile=tuple(profile)))


def plugin_layers(trt, net):
    """The IPluginV3 objects of the network's plugin layers."""
    out = []
    for i in range(net.num_layers):
        layer = net.get_layer(i)
        if layer.type == trt.LayerType.PLUGIN_V3:
            layer.__class__ = trt.IPluginV3Layer
            out.append(layer.plugin)
    return out
