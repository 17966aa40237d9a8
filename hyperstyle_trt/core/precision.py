"""The one precision table: a graph / engine / executor precision ("fp32" | "fp16") and every other spelling of the
same dtype (numpy / torch "float32", ONNX "tensor(float)", TensorRT "FLOAT", Triton "TYPE_FP32"), derived here.

    p = precision("fp16")          # also accepts "float16", "HALF", "TYPE_FP16", "tensor(float16)"
    p.name, p.numpy, p.trt, p.itemsize   # "fp16", "float16", "HALF", 2
    p.np_dtype(), p.torch_dtype()        # numpy.float16, torch.float16 (torch imported only here)
"""

from __future__ import annotations

from dataclasses import dataclass

from hyperstyle_trt.core.errors import HsError


@dataclass(frozen=True)
class Precision:
    """One float precision with its names in every framework this project talks to."""

    name: str       # ours: "fp32" | "fp16" (CLI flags, sidecars, file names)
    numpy: str      # numpy / torch attribute name: "float32" | "float16"
    onnx: str       # onnxruntime's NodeArg.type: "tensor(float)" | "tensor(float16)"
    trt: str        # TensorRT DataType member: "FLOAT" | "HALF"
    triton: str     # Triton Inference Server config type: "TYPE_FP32" | "TYPE_FP16"
    itemsize: int   # bytes per element

    def np_dtype(self):
        import numpy as np

        return np.dtype(self.numpy)

    def torch_dtype(self):
        import torch

        return getattr(torch, self.numpy)

    def __str__(self) -> str:
        return self.name


FP32 = Precision("fp32", "float32", "tensor(float)", "FLOAT", "TYPE_FP32", 4)
FP16 = Precision("fp16", "float16", "tensor(float16)", "HALF", "TYPE_FP16", 2)
PRECISIONS: dict[str, Precision] = {p.name: p for p in (FP32, FP16)}
PRECISION_NAMES = tuple(PRECISIONS)  # ("fp32", "fp16"): what flags accept
FLOAT_DTYPES = tuple(p.numpy for p in PRECISIONS.values())  # ("float32", "float16"): the contract's float dtypes
_ALIASES = {alias: p for p in PRECISIONS.values() for alias in (p.name, p.numpy, p.onnx, p.trt, p.triton)}


def precision(value) -> Precision:
    """Any spelling of fp32 / fp16 (our name, numpy/torch dtype or its name, ONNX, TensorRT, Triton) -> Precision."""
    if isinstance(value, Precision):
        return value
    key = value if isinstance(value, str) else str(value).removeprefix("torch.")
    try:
        return _ALIASES[key]
    except (KeyError, TypeError):
        raise HsError(f"unknown precision {value!r}; expected one of {PRECISION_NAMES}") from None


def check_precision(value: str, what: str = "precision") -> str:
    """`value` must be one of our names ("fp32" | "fp16"); returns it (the one check every flag and config uses)."""
    if value not in PRECISIONS:
        raise HsError(f"{what} must be one of {PRECISION_NAMES}, got {value!r}")
    return value
