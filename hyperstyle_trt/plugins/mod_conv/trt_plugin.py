"""TensorRT IPluginV3 for `HsModConv` (plugins/mod_conv/spec.json): output shapes, shape checks and the enqueue call
into the Triton launcher. The classes themselves are built lazily by plugins.trt_common (no TensorRT at import).

    Plugin, Creator = plugin_classes()      # for the detected flavor (tensorrt, else tensorrt_rtx)
"""

from __future__ import annotations

from typing import Mapping

from hyperstyle_trt.core.errors import HsError
from hyperstyle_trt.plugins.registry import load_spec
from hyperstyle_trt.plugins.trt_common import OpImpl

SPEC = load_spec("mod_conv")


def output_shape(attrs: Mapping[str, int], shapes: Mapping[str, tuple[int, ...]]) -> tuple[int, int, int, int]:
    """Concrete output shape [B,Ho,Wo,Cout] from input shapes (-1 stays -1 for a runtime batch)."""
    b, h, w, _ = shapes["x"]
    f = 2 if attrs["upsample"] else 1
    return (b, h * f if h >= 0 else -1, w * f if w >= 0 else -1, shapes["weight"][0])


def check_shapes(attrs: Mapping[str, int], shapes: Mapping[str, tuple[int, ...]]) -> None:
    """HsError unless the inputs agree with the spec and noise is [Ho,Wo] with Ho = (2 if upsample else 1) * H."""
    env = SPEC.bind_dims(attrs, shapes)
    f = 2 if attrs["upsample"] else 1
    for big, small in (("Ho", "H"), ("Wo", "W")):
        if big in env and small in env and env[big] != f * env[small]:
            raise HsError(f"HsModConv: noise is {env[big]} along {big}, expected {f}*{small}={f * env[small]} "
                          f"(upsample={attrs['upsample']})")


def output_exprs(trt, attrs: Mapping[str, int], inputs, eb):
    """DimsExprs [B, f*H, f*W, Cout] from the x and weight DimsExprs (f = 2 if upsample)."""
    x, weight = inputs[0], inputs[2]
    out = trt.DimsExprs(4)
    out[0] = x[0]
    if attrs["upsample"]:
        two = eb.constant(2)
        out[1] = eb.operation(trt.DimensionOperation.PROD, x[1], two)
        out[2] = eb.operation(trt.DimensionOperation.PROD, x[2], two)
    else:
        out[1], out[2] = x[1], x[2]
    out[3] = weight[0]
    return out


def launch(attrs: Mapping[str, int], ptrs: Mapping[str, int], out_ptr: int, shapes: Mapping[str, tuple[int, ...]],
           dtype: str, stream: int, workspace: int = 0) -> None:
    """Enqueue: call the Triton launcher `plugins.mod_conv.op.launch_raw` (contract in plugins/mod_conv/README.md)
    with TensorRT's workspace (sized by `workspace_size`). Runs only on a GPU inside TensorRT; never on the CPU test
    machine."""
    from hyperstyle_trt.plugins.mod_conv import op
    from hyperstyle_trt.plugins.mod_conv.strategy import workspace_bytes

    b, h, w, cin = shapes["x"]
    if workspace == 0 and workspace_bytes(b, h, w, cin, shapes["weight"][0], attrs["upsample"], dtype):
        raise HsError(f"HsModConv: this {h}x{w} layer runs the staged path but TensorRT gave no workspace: the engine "
                      "was built by older plugin code (workspace 0); rebuild it")
    op.launch_raw(x=ptrs["x"], style=ptrs["style"], weight=ptrs["weight"], delta=ptrs.get("delta", 0),
                  noise=ptrs["noise"], bias=ptrs["bias"], y=out_ptr, B=b, H=h, W=w, Cin=cin,
                  Cout=shapes["weight"][0], upsample=attrs["upsample"], delta_mode=attrs["delta_mode"],
                  demodulate=attrs["demodulate"], dtype=dtype, stream=stream, workspace=workspace)


def workspace_size(attrs: Mapping[str, int], shapes: Mapping[str, tuple[int, ...]], dtype: str) -> int:
    """Workspace bytes for any batch up to the profile's largest (shapes: its max dims): the staged layers'
    per-sample weights and split-K partial sums (plugins.mod_conv.strategy; the split count depends on the batch,
    so the bound is the largest over 1..B). Pure Python: runs in TensorRT's build phase, also without a GPU."""
    from hyperstyle_trt.plugins.mod_conv.strategy import max_workspace_bytes

    b, h, w, cin = shapes["x"]
    return max_workspace_bytes(1, b, h, w, cin, shapes["weight"][0], attrs["upsample"], dtype)


IMPL = OpImpl(spec=SPEC, output_exprs=output_exprs, check_shapes=check_shapes, launch=launch,
              workspace=workspace_size)


def plugin_classes(flavor: str | None = None):
    """(HsModConvPlugin, HsModConvCreator) for the given (default: detected) TensorRT flavor."""
    from hyperstyle_trt.plugins.trt_common import plugin_classes as _pc

    return _pc("mod_conv", flavor)
