"""Session fixtures for the export tests: one tiny export run shared by several tests (tiny_model: in
tests/conftest.py)."""

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_export(tmp_path_factory, tiny_model):
    """Plain + plugin graphs, fp32 + fp16, verified, no engines: (ExportConfig, ExportReport)."""
    from hyperstyle_trt.export.config import ExportConfig
    from hyperstyle_trt.export.pipeline import run_export

    out = Path(tmp_path_factory.mktemp("tiny_export"))
    cfg = ExportConfig(config="tiny", precisions=("fp32", "fp16"), out=out, build_engines=False)
    return cfg, run_export(cfg, model=tiny_model)
