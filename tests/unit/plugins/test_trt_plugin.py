"""The Python IPluginV3 plugins with the installed TensorRT flavor (TensorRT-RTX here): registration, fields
round-trip, formats, shape checks, the enqueue call (bound to the real launch_raw signatures, not launched), one-node
ONNX graphs parse and build.
Engines are built, never run (no GPU needed)."""

import pytest

from hyperstyle_trt.core.errors import HsError
from tests.unit._helpers.onnx_models import single_node_model
from hyperstyle_trt.plugins.trt_common import int32_fields
from hyperstyle_trt.plugins.registry import get_spec
from _trt_util import build, parse, plugin_layers

pytestmark = pytest.mark.trt

CASES = [("mod_conv", {}), ("mod_conv", {"upsample": 1, "delta_mode": 1}),
         ("mod_conv", {"delta_mode": 2, "demodulate": 0}), ("to_rgb", {}),
         ("to_rgb", {"has_skip": 1, "delta_mode": 1})]


def _classes(key):
    from hyperstyle_trt.plugins.trt_common import plugin_classes

    return plugin_classes(key)


def test_register_is_idempotent(trt):
    from hyperstyle_trt.plugins import register_plugins

    first, second = register_plugins(), register_plugins()
    assert set(first) == {"mod_conv", "to_rgb"} and all(first[k] is second[k] for k in first)
    reg = trt.get_plugin_registry()
    for key in first:
        s = get_spec(key)
        assert reg.get_creator(s.name, s.version, s.namespace) is not None
        other = str(int(s.version) + 1)  # a version nobody registered
        assert reg.get_creator(s.name, other, s.namespace) is None


@pytest.mark.parametrize("key, attrs", CASES)
def test_fields_round_trip(trt, key, attrs):
    _, Creator = _classes(key)
    creator = Creator()
    assert (creator.name, creator.plugin_namespace, creator.plugin_version) == (get_spec(key).name, "hyperstyle",
                                                                                   get_spec(key).version)
    assert [f.name for f in creator.field_names] == list(get_spec(key).attr_names)
    from hyperstyle_trt.plugins.trt_common import attrs_to_fields

    p = creator.create_plugin("n0", attrs_to_fields(trt, get_spec(key), get_spec(key).resolve_attrs(attrs)),
                              trt.TensorRTPhase.BUILD)
    assert p.attrs == get_spec(key).resolve_attrs(attrs)
    q = creator.create_plugin("n0", p.get_fields_to_serialize(), trt.TensorRTPhase.RUNTIME)
    assert q.attrs == p.attrs and q.input_names == p.input_names
    assert (q.plugin_name, q.plugin_version, q.plugin_namespace, q.num_outputs) == \
        (p.plugin_name, p.plugin_version, p.plugin_namespace, 1)
    assert p.clone().attrs == p.attrs and p.attach_to_context(None).attrs == p.attrs


def test_missing_fields_take_defaults_and_bad_values_fail(trt):
    _, Creator = _classes("mod_conv")
    p = Creator().create_plugin("n", trt.PluginFieldCollection([]), trt.TensorRTPhase.BUILD)
    assert p.attrs == {"upsample": 0, "delta_mode": 0, "demodulate": 1}
    bad = int32_fields(trt, {"delta_mode": 7})  # owns its array: a PluginField keeps only a raw pointer
    with pytest.raises(HsError, match="delta_mode=7"):
        Creator().create_plugin("n", bad, trt.TensorRTPhase.BUILD)


def _desc(trt, dims, dtype, fmt=None):
    d = trt.PluginTensorDesc()
    d.dims = trt.Dims(list(dims))
    d.type = dtype
    d.format = fmt if fmt is not None else trt.TensorFormat.LINEAR
    return d


def _dyn(trt, desc):
    d = trt.DynamicPluginTensorDesc()
    d.desc = desc
    return d


def test_supports_format_combination_linear_one_float_type(trt):
    Plugin, _ = _classes("to_rgb")
    p = Plugin({})
    H, F = trt.DataType.HALF, trt.DataType.FLOAT
    io = [_dyn(trt, _desc(trt, (2, 8, 8, 16), H)), _dyn(trt, _desc(trt, (2, 16), H))]
    assert p.supports_format_combination(0, io, 4) and p.supports_format_combination(1, io, 4)
    io[1] = _dyn(trt, _desc(trt, (2, 16), F))
    assert not p.supports_format_combination(1, io, 4)  # T must match input 0
    io = [_dyn(trt, _desc(trt, (2, 8, 8, 16), trt.DataType.INT32))]
    assert not p.supports_format_combination(0, io, 4)
    io = [_dyn(trt, _desc(trt, (2, 8, 8, 16), F, trt.TensorFormat.CHW32))]
    assert not p.supports_format_combination(0, io, 4)
    assert p.get_output_data_types([F, F, F, F]) == [F]


ENQUEUE_CASES = [
    ("mod_conv", {"upsample": 1, "delta_mode": 2},
     [(2, 8, 8, 16), (2, 16), (32, 3, 3, 16), (2, 32, 16), (16, 16), (32,)],
     dict(x=101, style=102, weight=103, delta=104, noise=105, bias=106, y=201, B=2, H=8, W=8, Cin=16, Cout=32,
          upsample=1, delta_mode=2, demodulate=1, dtype="float16", stream=77, workspace=999)),
    ("to_rgb", {"has_skip": 1}, [(2, 8, 8, 16), (2, 16), (3, 16), (3,), (2, 4, 4, 3)],
     dict(x=101, style=102, weight=103, delta=0, bias=104, skip=105, y=201, B=2, H=8, W=8, Cin=16, has_skip=1,
          delta_mode=0, dtype="float16", stream=77)),
]


@pytest.mark.parametrize("key, attrs, shapes, want", ENQUEUE_CASES, ids=["mod_conv", "to_rgb"])
def test_enqueue_calls_the_launcher_with_named_pointers(trt, monkeypatch, key, attrs, shapes, want):
    import importlib
    import inspect

    op = importlib.import_module(f"hyperstyle_trt.plugins.{key}.op")
    real = inspect.signature(op.launch_raw)
    calls = []
    monkeypatch.setattr(op, "launch_raw", lambda **kw: calls.append(real.bind(**kw).arguments))  # binds or fails
    Plugin, _ = _classes(key)
    p = Plugin(attrs)
    H = trt.DataType.HALF
    p.on_shape_change([_desc(trt, s, H) for s in shapes], [])
    assert p.enqueue([], [], [101 + i for i in range(len(shapes))], [201], 999, 77) == 0  # workspace 999
    assert calls == [want]


# Expected bytes, stated independently of plugins/mod_conv/strategy.py: Cin = 16 < 128 channels never splits K, so
# the largest need is at the profile's max batch 8: per-sample weights 8*Cout*(4 phases if up)*9*Cin*itemsize (here
# multiples of 256, so coef starts right after) + fp32 coef 8*Cout*4, whatever H.
@pytest.mark.parametrize("h, up, dtype, want", [(4, 0, "HALF", 8 * 24 * 9 * 16 * 2 + 768),  # 56064
                                               (8, 1, "HALF", 8 * 24 * 4 * 9 * 16 * 2 + 768),  # 221952
                                               (64, 0, "HALF", 56064), (128, 0, "HALF", 56064),
                                               (4, 0, "FLOAT", 8 * 24 * 9 * 16 * 4 + 768),  # 111360
                                               (8, 1, "FLOAT", 8 * 24 * 4 * 9 * 16 * 4 + 768)],  # 443136
                         ids=["4", "8up", "64", "128", "fp32-4", "fp32-8up"])
def test_workspace_size_covers_every_batch_of_the_profile(trt, h, up, dtype, want):
    """get_workspace_size reads the profile's max dims: every layer runs staged, so it gets the per-sample weights and
    fp32 demodulation coefficients of the largest batch; to_rgb never needs any."""
    H = getattr(trt.DataType, dtype)
    item = 2 if dtype == "HALF" else 4
    cin, cout, bmax = 16, 24, 8
    shapes = [(bmax, h, h, cin), (bmax, cin), (cout, 3, 3, cin), ((1 + up) * h, (1 + up) * h), (cout,)]
    inp = []
    for s in shapes:
        d = _dyn(trt, _desc(trt, s, H))
        d.max = trt.Dims(list(s))  # what the method reads
        inp.append(d)
    Plugin, _ = _classes("mod_conv")
    got = Plugin({"upsample": up}).get_workspace_size(inp, [])
    assert got == want == bmax * cout * (4 if up else 1) * 9 * cin * item + bmax * cout * 4
    rgb, _ = _classes("to_rgb")
    assert rgb({}).get_workspace_size(inp[:2] + [inp[2]], []) == 0


def test_staged_layer_enqueue_needs_the_workspace(trt, monkeypatch):
    """A staged layer (64^2 -> 128^2) enqueued without a workspace (an engine built by older plugin code) fails with
    a one-line error instead of allocating inside TensorRT's stream; with one, the launcher gets its pointer."""
    from hyperstyle_trt.plugins.mod_conv import op

    calls = []
    monkeypatch.setattr(op, "launch_raw", lambda **kw: calls.append(kw))
    Plugin, _ = _classes("mod_conv")
    p = Plugin({"upsample": 1})
    H = trt.DataType.HALF
    shapes = [(2, 64, 64, 16), (2, 16), (16, 3, 3, 16), (128, 128), (16,)]
    p.on_shape_change([_desc(trt, s, H) for s in shapes], [])
    with pytest.raises(HsError, match="gave no workspace.*rebuild"):
        p.enqueue([], [], [101, 102, 103, 104, 105], [201], 0, 77)
    assert not calls
    assert p.enqueue([], [], [101, 102, 103, 104, 105], [201], 4096, 77) == 0
    assert calls[0]["workspace"] == 4096


def test_on_shape_change_rejects_inconsistent_shapes(trt):
    Plugin, _ = _classes("mod_conv")
    p = Plugin({"upsample": 1})
    H = trt.DataType.HALF
    shapes = [(2, 8, 8, 16), (2, 16), (32, 3, 3, 16), (8, 8), (32,)]  # noise must be 16x16 when upsampling
    with pytest.raises(HsError, match="noise"):
        p.on_shape_change([_desc(trt, s, H) for s in shapes], [])


@pytest.mark.parametrize("dynamic", [False, True], ids=["static", "dyn1-8"])
@pytest.mark.parametrize("key, attrs", CASES)
def test_one_node_graph_parses_and_builds_fp16(trt, key, attrs, dynamic):
    model = single_node_model(key, attrs, dims={"B": 2, "H": 8, "W": 8, "Cin": 16, "Cout": 24}, dynamic_batch=dynamic)
    parsed, net = parse(trt, model)
    (plugin,) = plugin_layers(trt, net)
    assert plugin.attrs == get_spec(key).resolve_attrs(attrs)  # ONNX attributes reached the plugin as fields
    out = net.get_output(0)
    f = 2 if attrs.get("upsample") else 1
    assert tuple(out.shape) == (-1 if dynamic else 2, 8 * f, 8 * f, 24 if key == "mod_conv" else 3)
    assert out.dtype == trt.DataType.HALF
    engine = build(trt, parsed, net, dynamic)
    assert engine is not None and len(engine) > 0


def test_staged_layer_graph_builds_with_a_workspace_for_batch_8(trt, monkeypatch):
    """A 64^2 -> 128^2 upsampling node (a staged layer): TensorRT-RTX asks the plugin for its workspace with the
    profile's max batch while building (the bound over batches 1..8), and the engine builds."""
    from hyperstyle_trt.plugins.mod_conv import strategy

    asked = []
    real = strategy.max_workspace_bytes
    monkeypatch.setattr(strategy, "max_workspace_bytes", lambda *a: asked.append(a) or real(*a))
    model = single_node_model("mod_conv", {"upsample": 1, "delta_mode": 1},
                              dims={"B": 2, "H": 64, "W": 64, "Cin": 16, "Cout": 16}, dynamic_batch=True)
    parsed, net = parse(trt, model)
    assert build(trt, parsed, net, True) is not None
    assert asked and all(a[:7] == (1, 8, 64, 64, 16, 16, 1) for a in asked), asked
    assert real(*asked[0]) > 8 * 16 * 36 * 16 * 2


def test_one_node_graph_builds_fp32(trt):
    parsed, net = parse(trt, single_node_model("mod_conv", {"delta_mode": 1}, dtype="float32"))
    assert net.get_output(0).dtype == trt.DataType.FLOAT
    assert build(trt, parsed, net, False) is not None


def test_inconsistent_graph_fails_the_build(trt):
    model = single_node_model("to_rgb", {"has_skip": 1}, constants=("weight", "bias"))
    skip = next(i for i in model.graph.input if i.name == "skip")
    skip.type.tensor_type.shape.dim[1].dim_value = 3  # H/2 would be 4
    parsed, net = parse(trt, model)
    with pytest.raises(HsError, match=r"failed to build the in-memory model: .+") as e:  # the build fails
        build(trt, parsed, net, False)
    assert "\n" not in str(e.value)
