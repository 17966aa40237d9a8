"""A small strongly-typed fp16 ONNX graph with a dynamic batch, for engine builder / cache tests."""

import numpy as np
import onnx
import onnx.helper as oh
import pytest


def make_conv_onnx(path, seed: int = 0, external: bool = False):
    rng = np.random.default_rng(seed)
    w = onnx.numpy_helper.from_array((0.1 * rng.standard_normal((8, 3, 3, 3))).astype(np.float16), "w")
    g = oh.make_graph([oh.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]), oh.make_node("Relu", ["c"], ["y"])],
                      "conv", [oh.make_tensor_value_info("x", onnx.TensorProto.FLOAT16, ["B", 3, 16, 16])],
                      [oh.make_tensor_value_info("y", onnx.TensorProto.FLOAT16, ["B", 8, 16, 16])], initializer=[w])
    m = oh.make_model(g, opset_imports=[oh.make_opsetid("", 18)])
    if external:
        onnx.save_model(m, str(path), save_as_external_data=True, location=path.name + ".data", size_threshold=0)
    else:
        onnx.save_model(m, str(path))
    return path


PROFILE = (("x", (1, 3, 16, 16), (4, 3, 16, 16), (8, 3, 16, 16)),)


@pytest.fixture
def conv_onnx(tmp_path):
    return make_conv_onnx(tmp_path / "conv.onnx")


@pytest.fixture
def make_onnx():
    """make_onnx(path, seed=0, external=False) -> path of a small fp16 conv graph (dynamic batch "B")."""
    return make_conv_onnx


@pytest.fixture
def profile():
    return PROFILE
