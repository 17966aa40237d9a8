"""plugins.onnx_export node helpers (and the test models built from them, tests/unit/_helpers/onnx_models.py): the
node form the TensorRT parser and the reference ops expect."""

import onnx.helper as oh
import pytest

from hyperstyle_trt.core.errors import HsError
from hyperstyle_trt.plugins.onnx_export import make_node, op_schema
from tests.unit._helpers.onnx_models import single_node_model


def test_make_node_writes_domain_version_and_every_attribute():
    n = make_node("HsModConv", ["x", "s", "w", "d", "n", "b"], ["y"], "c0", {"delta_mode": 2})
    assert (n.op_type, n.domain, n.name) == ("HsModConv", "hyperstyle", "c0")
    a = {x.name: oh.get_attribute_value(x) for x in n.attribute}
    assert a == {"upsample": 0, "delta_mode": 2, "demodulate": 1, "plugin_version": b"2",
                 "plugin_namespace": b"hyperstyle"}


def test_make_node_checks_the_input_list():
    with pytest.raises(HsError, match="takes inputs"):
        make_node("mod_conv", ["x", "s", "w", "n", "b"], ["y"], attrs={"delta_mode": 1})  # delta missing
    with pytest.raises(HsError, match="takes inputs"):
        make_node("to_rgb", ["x", "s", "w", "b"], ["y"], attrs={"has_skip": 1})


def test_op_schema_follows_the_input_variant():
    s = op_schema("to_rgb", {"has_skip": 1})
    assert [i.name for i in s.inputs] == ["x", "style", "weight", "bias", "skip"]
    assert set(s.attributes) == {"has_skip", "delta_mode", "plugin_version", "plugin_namespace"}


def test_single_node_model_dynamic_batch_and_constants():
    m = single_node_model("mod_conv", {"upsample": 1}, dims={"B": 3, "H": 4, "W": 4, "Cin": 8, "Cout": 8},
                          dynamic_batch=True)
    assert [i.name for i in m.graph.input] == ["x", "style"]
    assert sorted(t.name for t in m.graph.initializer) == ["bias", "noise", "weight"]
    assert [d.dim_param or d.dim_value for d in m.graph.output[0].type.tensor_type.shape.dim] == ["B", 8, 8, 8]
