"""Fixtures for the kernel tests: one Triton-interpreter worker process per session.

Triton chooses interpreter vs compiled kernels when `triton` is imported, so TRITON_INTERPRET=1 is set only in a
child process (plugins._triton.InterpreterWorker); this pytest process keeps compiled kernels for tests/gpu.
"""

import pytest


@pytest.fixture(scope="session")
def triton_interp():
    pytest.importorskip("triton", reason="triton not installed (pip install 'hyperstyle-trt[kernels]')")
    from hyperstyle_trt.plugins._triton import InterpreterWorker

    w = InterpreterWorker()
    yield w
    w.close()


@pytest.fixture(scope="module")
def trt():
    """The TensorRT flavor module with the hyperstyle plugin creators registered."""
    from hyperstyle_trt.core.flavor import get_flavor
    from hyperstyle_trt.plugins import register_plugins

    register_plugins()
    return get_flavor().module
