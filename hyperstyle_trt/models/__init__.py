"""PyTorch reference of HyperStyle (the numerical source of truth). Imports without GPU, nvcc or TensorRT."""

from hyperstyle_trt.core.config import HyperStyleConfig, get_config
from hyperstyle_trt.core.errors import HsError

__all__ = ["HsError", "HyperStyleConfig", "get_config"]
