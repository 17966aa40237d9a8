"""PyTorch reference of HyperStyle (the numerical source of truth). Imports without GPU, nvcc or TensorRT."""

from models.config import HyperStyleConfig, get_config
from models.errors import HsError

__all__ = ["HsError", "HyperStyleConfig", "get_config"]
