"""Plugin-field buffers outlive TensorRT's use of them (regression test for a use-after-free).

A `trt.PluginField(name, array, type)` stores a raw pointer to `array`'s data; the PluginFieldCollection built from
it copies that pointer, not the array. Collections built from temporaries therefore point into freed memory, which
numpy hands out again to the next small arrays. Each test below frees what it can (gc), allocates 100,000 one-element
int32 arrays holding JUNK, then reads the fields (or the engine TensorRT serialized) back: a dangling pointer reads
JUNK instead of the attribute.

The engine check reads the plugin's serialized fields out of the engine bytes (an engine cannot be deserialized
without a GPU, and no API lists a plugin's stored fields): TensorRT writes each field as
`<uint32 len(name)+1> name NUL <int32 PluginFieldType> <int32 count> <data>`. If that record is not found the test
fails (a new serialization format must be looked at, not skipped).
"""

import gc
import struct

import numpy as np
import pytest

from tests.unit._helpers.onnx_models import single_node_model
from hyperstyle_trt.plugins.registry import get_spec
from _trt_util import build, parse

pytestmark = pytest.mark.trt

JUNK = -123456789  # what the churn arrays hold; no attribute can take this value
CASES = [("mod_conv", {"upsample": 1, "delta_mode": 2, "demodulate": 0}),
         ("mod_conv", {"upsample": 0, "delta_mode": 1, "demodulate": 1}),
         ("to_rgb", {"has_skip": 1, "delta_mode": 1})]


def _churn(n: int = 100_000) -> list:
    """Collect garbage, then take freed small blocks back with JUNK arrays (kept alive by the caller)."""
    gc.collect()
    return [np.full(1, JUNK, np.int32) for _ in range(n)]


def _values(fc) -> dict[str, list[int]]:
    return {f.name: np.asarray(f.data).reshape(-1).tolist() for f in fc}


def _classes(key):
    from hyperstyle_trt.plugins.trt_common import plugin_classes

    return plugin_classes(key)


@pytest.mark.parametrize("key, attrs", CASES)
def test_attrs_to_fields_survive_gc_and_allocation_churn(trt, key, attrs):
    from hyperstyle_trt.plugins.trt_common import attrs_to_fields

    spec = get_spec(key)
    fc = attrs_to_fields(trt, spec, spec.resolve_attrs(attrs))
    junk = _churn()
    assert _values(fc) == {k: [v] for k, v in spec.resolve_attrs(attrs).items()}
    assert [f.type for f in fc] == [trt.PluginFieldType.INT32] * len(spec.attributes)
    assert len(junk) == 100_000


@pytest.mark.parametrize("key, attrs", CASES)
def test_fields_to_serialize_survive_and_round_trip_after_churn(trt, key, attrs):
    Plugin, Creator = _classes(key)
    want = get_spec(key).resolve_attrs(attrs)
    fc = Plugin(attrs).get_fields_to_serialize()  # the plugin itself is gone after this line
    junk = _churn()
    assert _values(fc) == {k: [v] for k, v in want.items()}
    assert Creator().create_plugin("n0", fc, trt.TensorRTPhase.RUNTIME).attrs == want
    assert len(junk) == 100_000


def test_plugin_holds_the_collection_it_returned(trt):
    """TensorRT's side of get_fields_to_serialize keeps only a pointer into the returned collection, and reads it after
    the call returned: the plugin must hold it (one object while the attributes stay, a new one when they change)."""
    import weakref

    Plugin, _ = _classes("mod_conv")
    p = Plugin({"upsample": 1, "delta_mode": 2})
    ref = weakref.ref(p.get_fields_to_serialize())
    junk = _churn()
    assert ref() is not None and ref() is p.get_fields_to_serialize()
    assert _values(ref())["delta_mode"] == [2]
    p.attrs = {**p.attrs, "delta_mode": 1}
    assert _values(p.get_fields_to_serialize())["delta_mode"] == [1]
    assert len(junk) == 100_000


@pytest.mark.parametrize("key", ["mod_conv", "to_rgb"])
def test_creator_field_names_survive_churn(trt, key):
    _, Creator = _classes(key)
    creator = Creator()
    junk = _churn()
    names = creator.field_names
    assert [f.name for f in names] == list(get_spec(key).attr_names)
    assert [(f.type, f.size) for f in names] == [(trt.PluginFieldType.INT32, 0)] * len(names)
    assert len(junk) == 100_000


def _serialized_fields(engine: bytes, names, int32_type: int) -> dict[str, list[int]]:
    """{field name: every int32 value stored for it} from the engine's one-element INT32 field records."""
    out = {}
    for name in names:
        head = struct.pack("<I", len(name) + 1) + name.encode() + b"\0" + struct.pack("<ii", int32_type, 1)
        vals, at = [], engine.find(head)
        while at >= 0:
            vals.append(struct.unpack_from("<i", engine, at + len(head))[0])
            at = engine.find(head, at + 1)
        out[name] = vals
    return out


@pytest.mark.parametrize("key, attrs", [CASES[0], CASES[2]])
def test_engine_stores_the_graph_attributes(trt, monkeypatch, key, attrs):
    """Build a one-node engine while Python allocates between get_fields_to_serialize returning and TensorRT copying
    the fields (JUNK churn inside the call): the engine's stored attributes equal the graph's."""
    Plugin, _ = _classes(key)
    spec = get_spec(key)
    want = spec.resolve_attrs(attrs)
    real = Plugin.get_fields_to_serialize
    junk, calls = [], []

    def churning(self):
        fc = real(self)
        calls.append(1)
        junk.append(_churn(20_000))
        return fc

    monkeypatch.setattr(Plugin, "get_fields_to_serialize", churning)
    model = single_node_model(key, attrs, dims={"B": 2, "H": 8, "W": 8, "Cin": 16, "Cout": 24})
    parsed, net = parse(trt, model)
    engine = build(trt, parsed, net, False)
    assert engine is not None
    assert calls, "TensorRT never asked the plugin for its fields"
    stored = _serialized_fields(bytes(engine), spec.attr_names, int(trt.PluginFieldType.INT32))
    assert all(stored.values()), f"no INT32 field record found in the engine: {stored} (serialization changed?)"
    assert stored == {k: [v] * len(stored[k]) for k, v in want.items()}
