"""Shared test fixtures. The reference data (golden outputs of the official implementation, official key lists) is
part of the repository: tests/data (its README says what it is and how it was produced)."""

from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parent / "data"
GOLDEN = DATA / "golden"
OFFICIAL_KEYS = DATA / "official_keys.json"


@pytest.fixture(scope="session")
def golden_dir() -> Path:
    if not (GOLDEN / "stats.json").is_file():
        pytest.fail(f"golden reference data missing at {GOLDEN} (it is part of the repository: is the checkout whole?)")
    return GOLDEN


@pytest.fixture(scope="session")
def official_keys_path() -> Path:
    if not OFFICIAL_KEYS.is_file():
        pytest.fail(f"official key list missing at {OFFICIAL_KEYS} (it is part of the repository)")
    return OFFICIAL_KEYS


@pytest.fixture(scope="session")
def tiny_model():
    """The tiny HyperStyle on the embedded default weights (fp32, CPU), shared by the session."""
    from hyperstyle_trt.models.checkpoint import build_model

    return build_model("tiny", quiet=True)


@pytest.fixture(scope="session")
def tiny_export(tmp_path_factory, tiny_model):
    """The session's tiny hs-export run: (ExportConfig, ExportReport). Plain + plugin graphs, fp32 + fp16, verified,
    no engines, default batches (plain generator at batch 1: onnx.reference, which the fp16 mutation test runs on
    it, cannot evaluate the plain generator's grouped conv with groups > 1). Shared by every test module that reads
    a tiny export (tests/unit/export); copy it before changing it. tests/unit/runtime/test_onnxruntime_executor.py
    exports its own (plain_batch=2, its padded-chunk case)."""
    from hyperstyle_trt.export.config import ExportConfig
    from hyperstyle_trt.export.pipeline import run_onnx_export

    out = Path(tmp_path_factory.mktemp("tiny_export"))
    cfg = ExportConfig(config="tiny", precisions=("fp32", "fp16"), out=out, build_engines=False)
    return cfg, run_onnx_export(cfg, model=tiny_model)
