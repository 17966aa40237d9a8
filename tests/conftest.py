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
