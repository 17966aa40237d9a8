"""Shared test fixtures. The reference material lives in ../shared next to the repository (CI lays it out so); HS_SHARED
overrides that, and a checkout without ../shared (the lent GPU machine: `make gpu-bundle` copies the golden data into
./shared, which travels with the checkout) uses ./shared."""

import os
from pathlib import Path

import pytest

_REPO = Path(__file__).resolve().parents[1]
_BESIDE = _REPO.parent / "shared"
SHARED = Path(os.environ.get("HS_SHARED", _BESIDE if _BESIDE.is_dir() or not (_REPO / "shared").is_dir()
                             else _REPO / "shared"))
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
