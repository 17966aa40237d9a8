"""Shared test fixtures. The reference material lives in ../shared next to the repository (CI lays it out so)."""

import os
from pathlib import Path

import pytest

SHARED = Path(os.environ.get("HS_SHARED", Path(__file__).resolve().parents[2] / "shared"))
GOLDEN = SHARED / "reference" / "golden"
OFFICIAL_KEYS = SHARED / "reference" / "official_keys.json"


@pytest.fixture(scope="session")
def golden_dir() -> Path:
    if not (GOLDEN / "README.md").is_file():
        pytest.fail(f"golden reference data missing at {GOLDEN} (set HS_SHARED to the shared/ directory)")
    return GOLDEN


@pytest.fixture(scope="session")
def official_keys_path() -> Path:
    if not OFFICIAL_KEYS.is_file():
        pytest.fail(f"official key list missing at {OFFICIAL_KEYS} (set HS_SHARED to the shared/ directory)")
    return OFFICIAL_KEYS
