"""TensorRT IPluginV3 for `HsToRGB` (plugins/to_rgb/spec.json): output shapes, shape checks and the enqueue call into
the Triton launcher. The classes themselves are built lazily by plugins.trt_common (no TensorRT at import).

    Plugin, Creator = plugin_classes()      # for the detected flavor (tensorrt, else tensorrt_rtx)
"""

from __future__ import annotations

from typing import Mapping

from hyperstyle_trt.core.errors import HsError
from hyperstyle_trt.plugins.registry import load_spec
from hyperstyle_trt.plugins.trt_common import OpImpl

SPEC = load_spec("to_rgb")


def output_shape(attrs: Mapping[str, int], shapes: Mapping[str, tuple[int, ...]]) -> tuple[int, int, int, int]:
    """Concrete output shape [B,H,W,3] (same spatial size as x)."""
    b, h, w, _ = shapes["x"]
    return (b, h, w, 3)


def check_shapes(attrs: Mapping[str, int], shapes: Mapping[str, tuple[int, ...]]) -> None:
    """HsError unless the inputs agree with the spec (skip is [B,H/2,W/2,3]; H and W even when has_skip)."""
    _, h, w, _ = shapes["x"] if "x" in shapes else (0, 0, 0, 0)
    if attrs["has_skip"] and ((h > 0 and h % 2) or (w > 0 and w % 2)):
        raise HsError(f"HsToRGB: has_skip=1 needs an even H and W, got x {list(shapes['x'])}")
    SPEC.bind_dims(attrs, shapes)


def output_exprs(trt, attrs: Mapping[str, int], inputs, eb):
    """DimsExprs [B, H, W, 3] from the x DimsExprs."""
    x = inputs[0]
    out = trt.DimsExprs(4)
    out[0], out[1], out[2] = x[0], x[1], x[2]
    out[3] = eb.constant(3)
    return out


def launch(attrs: Mapping[str, int], ptrs: Mapping[str, int], out_ptr: int, shapes: Mapping[str, tuple[int, ...]],
           dtype: str, stream: int, workspace: int = 0) -> None:
    """Enqueue: call the Triton launcher `plugins.to_rgb.op.launch_raw` (contract in plugins/to_rgb/README.md).
    Needs no workspace. Runs only on a GPU inside TensorRT; never on the CPU test machine."""
    from hyperstyle_trt.plugins.to_rgb import op

    b, h, w, cin = shapes["x"]
    op.launch_raw(x=ptrs["x"], style=ptrs["style"], weight=ptrs["weight"], delta=ptrs.get("delta", 0),
                  bias=ptrs["bias"], skip=ptrs.get("skip", 0), y=out_ptr, B=b, H=h, W=w, Cin=cin,
                  has_skip=attrs["has_skip"], delta_mode=attrs["delta_mode"], dtype=dtype, stream=stream)


IMPL = OpImpl(spec=SPEC, output_exprs=output_exprs, check_shapes=check_shapes, launch=launch)


def plugin_classes(flavor: str | None = None):
    """(HsToRGBPlugin, HsToRGBCreator) for the given (default: detected) TensorRT flavor."""
    from hyperstyle_trt.plugins.trt_common import plugin_classes as _pc

    return _pc("to_rgb", flavor)
