"""Unit-test settings shared by every module under tests/unit."""

import os

import pytest


@pytest.fixture(scope="session", autouse=True)
def _graph_cache_in_tmp(tmp_path_factory):
    """The per-user graph cache (export.graph_cache: $HS_CACHE_DIR) points to a session temp directory, so no test
    reads or writes ~/.cache (hs-invert's CPU default, onnxruntime, exports the tiny graphs there once)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HS_CACHE_DIR", str(tmp_path_factory.mktemp("hs_cache")))
        yield os.environ["HS_CACHE_DIR"]


@pytest.fixture(scope="module")
def one_torch_thread():
    """torch on one thread for the module (`pytestmark = pytest.mark.usefixtures("one_torch_thread")`): the tiny
    model gains nothing from threads, and on a busy 2-core machine two OpenMP threads spin (observed 3 to 15 s per
    photo with two threads, 0.25 s with one)."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
