"""Fused FP16 modulated convolutions: specs, TensorRT plugins, ONNX helpers (see plugins/README.md, the op contract).

Importing this package imports neither torch kernels nor TensorRT. Entry points:
- `plugins.registry.get_spec(name)`: the spec of `HsModConv` / `HsToRGB`;
- `register_plugins(flavor=None)`: register the IPluginV3 creators with TensorRT (idempotent);
- `plugins.onnx_export`, `plugins.onnx_ref`, `plugins.generator`, `plugins.qdp`.
"""

from __future__ import annotations

from typing import Any


def trt_impls() -> dict[str, Any]:
    """{op key: OpImpl} of every plugin op (imports the per-op trt_plugin modules; they import no TensorRT)."""
    from hyperstyle_trt.plugins.mod_conv.trt_plugin import IMPL as MOD_CONV
    from hyperstyle_trt.plugins.to_rgb.trt_plugin import IMPL as TO_RGB

    return {"mod_conv": MOD_CONV, "to_rgb": TO_RGB}


def register_plugins(flavor: str | None = None) -> dict[str, Any]:
    """Register the hyperstyle IPluginV3 creators with TensorRT (`flavor`: "tensorrt" | "tensorrt_rtx" | None for
    the detected one). Idempotent. Returns {op key: creator}. HsError if no TensorRT is importable."""
    from hyperstyle_trt.plugins.trt_common import register_plugins as _register

    return _register(flavor)
