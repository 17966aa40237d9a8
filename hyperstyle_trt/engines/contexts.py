"""Execution contexts across TensorRT bindings: the calls whose names changed between TensorRT releases, in one
place (runtime/executors/tensorrt_executor.py uses them; optimization-profile selection is in engines/profiles.py).

    ctx = create_context(trt, engine)                        # no device memory of its own
    set_device_memory(ctx, ptr, device_memory_size(engine))  # the block every context of the engine shares

Not yet run on a GPU or with full TensorRT: exercised against the fake TensorRT of
tests/unit/runtime/test_tensorrt_executor.py (current and TensorRT < 10.1 names).
"""

from __future__ import annotations

from hyperstyle_trt.core.errors import HsError


def device_memory_size(engine) -> int:
    """Bytes one context of `engine` needs at any shape of its profiles: `device_memory_size_v2` (TensorRT >= 10.1,
    TensorRT-RTX), else `device_memory_size`."""
    for attr in ("device_memory_size_v2", "device_memory_size"):
        v = getattr(engine, attr, None)
        if v is not None:
            return int(v)
    raise HsError("this TensorRT exposes neither ICudaEngine.device_memory_size_v2 nor device_memory_size")


def create_context(trt, engine):
    """An execution context without device memory of its own: `create_execution_context(USER_MANAGED)` (TensorRT
    >= 10, TensorRT-RTX), else `create_execution_context_without_device_memory()` (deprecated since TensorRT 10.0)."""
    strategy = getattr(getattr(trt, "ExecutionContextAllocationStrategy", None), "USER_MANAGED", None)
    if strategy is not None:
        return engine.create_execution_context(strategy)
    make = getattr(engine, "create_execution_context_without_device_memory", None)
    if make is None:
        raise HsError("this TensorRT can create execution contexts only with their own device memory "
                      "(no ExecutionContextAllocationStrategy.USER_MANAGED)")
    return make()


def set_device_memory(ctx, ptr: int, size: int) -> None:
    """Give `ctx` the block [ptr, ptr + size): `set_device_memory(ptr, size)` (TensorRT >= 10.1, TensorRT-RTX), else
    the `device_memory` property."""
    setter = getattr(ctx, "set_device_memory", None)
    if setter is not None:
        setter(ptr, size)
    else:
        ctx.device_memory = ptr
