"""Executors by name: `torch`, `onnxruntime`, `tensorrt` (runtime/executors/base.py holds the interface).

    from hyperstyle_trt.runtime.executors import get_executor, available_executors
    cls = get_executor("torch")              # the class; imported on first use only
    ex = cls.from_model(model, "cpu", "fp32")

Entries are "module:Class" strings resolved lazily, so `import runtime` needs neither onnxruntime nor TensorRT;
an executor whose backend is missing raises HsError (one line) when it is asked for, naming what to install.
"""

from __future__ import annotations

import importlib

from hyperstyle_trt.core.errors import HsError
from hyperstyle_trt.runtime.executors.base import Executor

_REGISTRY: dict[str, str | type[Executor]] = {
    "torch": "hyperstyle_trt.runtime.executors.torch_executor:TorchExecutor",
    "onnxruntime": "hyperstyle_trt.runtime.executors.onnxruntime_executor:OnnxRuntimeExecutor",
    "tensorrt": "hyperstyle_trt.runtime.executors.tensorrt_executor:TensorRTExecutor",
}


def register_executor(name: str, target: str | type[Executor]) -> None:
    """Register (or replace) an executor: a class, or a "module:Class" path imported on first use."""
    _REGISTRY[name] = target


def available_executors() -> list[str]:
    """The registered names (whether their backend is installed is checked by get_executor)."""
    return sorted(_REGISTRY)


def get_executor(name: str) -> type[Executor]:
    """The executor class registered as `name` (HsError for an unknown name or a backend that will not import)."""
    target = _REGISTRY.get(name)
    if target is None:
        raise HsError(f"unknown executor {name!r}; expected one of {available_executors()}")
    if isinstance(target, str):
        mod_name, cls_name = target.split(":")
        try:
            mod = importlib.import_module(mod_name)
        except ImportError as e:
            raise HsError(f"executor {name!r} is not available here ({e})") from None
        target = getattr(mod, cls_name)
        _REGISTRY[name] = target
    return target


__all__ = ["Executor", "available_executors", "get_executor", "register_executor"]
