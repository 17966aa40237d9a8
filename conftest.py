"""Root conftest: GPU / TensorRT tests skip with a stated reason; nothing touches CUDA at import."""

import importlib.util
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def pytest_collection_modifyitems(config, items):
    has_gpu = None
    has_trt = any(importlib.util.find_spec(m) is not None for m in ("tensorrt", "tensorrt_rtx"))
    for item in items:
        if "gpu" in item.keywords:
            if has_gpu is None:
                has_gpu = _cuda_available()
            if not has_gpu:
                item.add_marker(pytest.mark.skip(
                    reason="no CUDA GPU on this machine (torch.cuda.is_available() is False)"))
        if "trt" in item.keywords and not has_trt:
            item.add_marker(pytest.mark.skip(reason="no TensorRT flavor installed (neither tensorrt nor tensorrt_rtx)"))
