"""PyTorch reference of HyperStyle (the numerical source of truth). Imports without GPU, nvcc or TensorRT."""

from core.config import HyperStyleConfig, get_config
from core.errors import HsError

__all__ = ["HsError", "HyperStyleConfig", "get_config"]
