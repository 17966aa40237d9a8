"""The CPU default: onnxruntime over the graph cache (export.graph_cache) without an --export-dir.

Inverter.from_checkpoint(..., executor="onnxruntime") exports the tiny plain graphs into the session's cache
($HS_CACHE_DIR, tests/unit/conftest.py) once and reuses them; its results are checked against HyperStyle.invert with
the onnxruntime executor module's gates (test_onnxruntime_executor.py, benchmarks/results/cpu_verify_errors.json).
ModelSource.default_executor picks onnxruntime on a CPU when it imports, torch otherwise; the sessions get the
memory settings of runtime.executors.onnxruntime_executor.session_options."""

from __future__ import annotations

import sys

import pytest
import torch

from hyperstyle_trt.core.source import ModelSource
from tests.unit.runtime.test_onnxruntime_executor import CODES_TOL, DELTA_TOL, IMG_TOL, _err


@pytest.fixture(scope="module")
def cached_inv():
    from hyperstyle_trt.runtime import Inverter

    return Inverter.from_checkpoint(None, config="tiny", executor="onnxruntime", device="cpu", max_batch=4)


def test_onnxruntime_without_export_dir_matches_reference(cached_inv, images_f, ref5, tiny_model):
    from hyperstyle_trt.export.graph_cache import cache_root
    from hyperstyle_trt.models.stylegan2 import Generator

    d = cached_inv.describe()
    assert d["executor"] == "onnxruntime" and d["fixed_batch"] == {"generator": 1}
    assert d["export_dir"].startswith(str(cache_root() / "graphs"))
    res = cached_inv.invert(images_f, n_iters=2, copy=True)  # B=3: three 1-row generator chunks
    assert _err(res.codes, ref5.codes) <= CODES_TOL
    assert _err(res.images, ref5.iterations[2]) <= IMG_TOL
    for k, dl in ref5.iteration_deltas[1].items():
        assert res.deltas[k].shape == dl.shape and _err(res.deltas[k], dl) <= DELTA_TOL, k
    g = Generator(tiny_model.cfg.generator).eval()
    g.load_state_dict(cached_inv.fine_tuned_weights(res, 1))  # the generator weights, loaded only when asked
    with torch.no_grad():
        assert _err(g(res.codes[1:2]), res.images[1:2]) <= IMG_TOL


def test_second_construction_reuses_the_cache(cached_inv, monkeypatch):
    """A hit: neither the exporter nor the model loader runs."""
    import hyperstyle_trt.export.pipeline as pipeline
    import hyperstyle_trt.models.checkpoint as checkpoint
    from hyperstyle_trt.runtime import Inverter

    def boom(*a, **k):
        raise AssertionError("exported or loaded on a cache hit")

    monkeypatch.setattr(pipeline, "run_onnx_export", boom)
    monkeypatch.setattr(checkpoint, "build_model", boom)
    inv = Inverter.from_checkpoint(None, config="tiny", executor="onnxruntime", max_batch=2)
    assert inv.describe()["export_dir"] == cached_inv.describe()["export_dir"]


def test_default_executor(monkeypatch, tmp_path):
    assert ModelSource(config="tiny", device="cpu").default_executor() == "onnxruntime"
    assert ModelSource(config="tiny").default_executor("cpu") == "onnxruntime"
    assert ModelSource(config="tiny").default_executor("cuda") == "torch"
    assert ModelSource(config="tiny", executor="torch").default_executor("cpu") == "torch"
    assert ModelSource(export_dir=str(tmp_path)).default_executor("cpu") == "tensorrt"
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # not installed: import raises ImportError
    assert ModelSource(config="tiny").default_executor("cpu") == "torch"


def test_from_source_uses_the_cpu_default(cached_inv):
    from hyperstyle_trt.runtime import Inverter

    inv = Inverter.from_source(ModelSource(config="tiny", device="cpu"), max_batch=1)
    assert inv.describe()["executor"] == "onnxruntime"
    assert Inverter.from_source(ModelSource(config="tiny", device="cpu", executor="torch"),
                                max_batch=1).describe()["executor"] == "torch"
