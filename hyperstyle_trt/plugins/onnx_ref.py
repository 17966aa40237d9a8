"""CPU execution of plugin graphs: `onnx.reference` ops for `hyperstyle::HsModConv` / `hyperstyle::HsToRGB` that call
the PyTorch references (plugins/<op>/reference.py).

    from onnx.reference import ReferenceEvaluator
    sess = ReferenceEvaluator(model, new_ops=reference_ops())
    (y,) = sess.run(None, feeds)

fp16 inputs are computed in fp32 (CPU convolutions) and the result is cast back to the input dtype, so an fp16 graph
gives the fp32 reference rounded once to fp16 per op.
"""

from __future__ import annotations

import numpy as np
from onnx.reference.op_run import OpRun

from hyperstyle_trt.core.errors import HsError
from hyperstyle_trt.plugins.registry import DOMAIN, OpSpec, get_spec


def _torch_inputs(spec: OpSpec, attrs: dict[str, int], inputs: tuple) -> dict:
    """Name the node inputs after the spec (absent optional inputs -> None), as fp32 torch tensors."""
    import torch

    names = spec.input_names(attrs)
    if len(inputs) != len(names):
        raise HsError(f"{spec.name} with {attrs} takes inputs {list(names)}, got {len(inputs)}")
    named = {t.name: None for t in spec.inputs}
    named.update({n: torch.from_numpy(np.array(v, dtype=np.float32)) for n, v in zip(names, inputs)})  # copy
    return named


class _HsOp(OpRun):
    """Common part: resolve attributes through the spec, run the torch reference in fp32, cast back."""

    op_domain = DOMAIN
    KEY = ""

    def _run(self, *inputs, **kwargs):  # kwargs: the node's attributes (plugin_version among them)
        spec = get_spec(self.KEY)
        version = kwargs.pop("plugin_version", spec.version)
        if isinstance(version, bytes):
            version = version.decode()
        if str(version) != spec.version:
            raise HsError(f"{spec.name}: node has plugin_version {version!r}, this reference implements "
                          f"{spec.version!r}")
        ns = kwargs.pop("plugin_namespace", None)
        if isinstance(ns, bytes):
            ns = ns.decode()
        if ns is not None and ns != spec.namespace:
            raise HsError(f"{spec.name}: node has plugin_namespace {ns!r}, this reference implements "
                          f"{spec.namespace!r}")
        attrs = spec.resolve_attrs({k: v for k, v in kwargs.items() if v is not None})
        import torch

        with torch.no_grad():
            y = self.compute(attrs, _torch_inputs(spec, attrs, inputs))
        return (y.numpy().astype(inputs[0].dtype),)

    def compute(self, attrs: dict[str, int], t: dict):
        raise NotImplementedError


class HsModConv(_HsOp):
    """hyperstyle::HsModConv via plugins.mod_conv.reference.mod_conv_ref."""

    KEY = "mod_conv"

    def _run(self, *inputs, upsample=None, delta_mode=None, demodulate=None, plugin_version=None,
             plugin_namespace=None):
        return super()._run(*inputs, upsample=upsample, delta_mode=delta_mode, demodulate=demodulate,
                            plugin_version=plugin_version, plugin_namespace=plugin_namespace)

    def compute(self, attrs, t):
        from hyperstyle_trt.plugins.mod_conv.reference import mod_conv_ref

        return mod_conv_ref(t["x"], t["style"], t["weight"], t["delta"], t["noise"], t["bias"], **attrs)


class HsToRGB(_HsOp):
    """hyperstyle::HsToRGB via plugins.to_rgb.reference.to_rgb_ref."""

    KEY = "to_rgb"

    def _run(self, *inputs, has_skip=None, delta_mode=None, plugin_version=None, plugin_namespace=None):
        return super()._run(*inputs, has_skip=has_skip, delta_mode=delta_mode, plugin_version=plugin_version,
                            plugin_namespace=plugin_namespace)

    def compute(self, attrs, t):
        from hyperstyle_trt.plugins.to_rgb.reference import to_rgb_ref

        return to_rgb_ref(t["x"], t["style"], t["weight"], t["delta"], t["bias"], t["skip"],
                          delta_mode=attrs["delta_mode"])


def reference_ops() -> list[type[OpRun]]:
    """The `new_ops` list for onnx.reference.ReferenceEvaluator."""
    return [HsModConv, HsToRGB]


def run_reference(model, feeds: dict) -> list[np.ndarray]:
    """Run a (plugin) ONNX model on CPU with onnx.reference; returns all outputs."""
    from onnx.reference import ReferenceEvaluator

    return ReferenceEvaluator(model, new_ops=reference_ops()).run(None, feeds)
