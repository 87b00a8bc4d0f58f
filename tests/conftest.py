"""Shared fixtures: where the real third-party data lives, and a skip when it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
REALDATA = Path(os.environ.get("ALTCAP_REALDATA", ROOT.parent / "shared" / "realdata"))


def realdata_path(*parts: str) -> Path:
    """Path under ../shared/realdata, or skip the test with a clear message when it is missing."""
    path = REALDATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real test data not found at {path} (set ALTCAP_REALDATA or check out ../shared)")
    return path


@pytest.fixture
def realdata():
    return realdata_path
