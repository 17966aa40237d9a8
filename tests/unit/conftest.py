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
