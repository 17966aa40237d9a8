"""TensorRT helpers shared by the plugin tests: parse an ONNX model, count plugin layers, build (static or 1..8).

The ONNX parser owns the weights of the network it fills, so it must outlive the network's use, and a builder freed
before its network leaves the network dangling (a crash at some later, unrelated point): `parse` keeps every logger,
builder, network and parser alive for the test session instead of leaving their destruction order to chance.
"""

_ALIVE = []


def parse(trt, model):
    """Parse an onnx.ModelProto; returns (builder, network). Fails the test with the parser's errors."""
    logger = trt.Logger(trt.Logger.ERROR)
    builder = trt.Builder(logger)
    net = builder.create_network(0)
    parser = trt.OnnxParser(net, logger)
    _ALIVE.append((logger, builder, net, parser))
    ok = parser.parse(model.SerializeToString())
    assert ok, [parser.get_error(i).desc() for i in range(parser.num_errors)]
    return builder, net


def build(trt, builder, net, dynamic, opt=4):
    """build_serialized_network; with `dynamic`, one profile with batch 1..8 (opt `opt`) on every input."""
    cfg = builder.create_builder_config()
    if dynamic:
        prof = builder.create_optimization_profile()
        for i in range(net.num_inputs):
            t = net.get_input(i)
            rest = list(t.shape)[1:]
            prof.set_shape(t.name, [1] + rest, [opt] + rest, [8] + rest)
        cfg.add_optimization_profile(prof)
    return builder.build_serialized_network(net, cfg)


def plugin_layers(trt, net):
    """The IPluginV3 objects of the network's plugin layers."""
    out = []
    for i in range(net.num_layers):
        layer = net.get_layer(i)
        if layer.type == trt.LayerType.PLUGIN_V3:
            layer.__class__ = trt.IPluginV3Layer
            out.append(layer.plugin)
    return out
