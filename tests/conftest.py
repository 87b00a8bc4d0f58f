"""Shared fixtures: where the real third-party data lives, and a skip when it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import filters

ROOT = Path(__file__).resolve().parent.parent
REALDATA = Path(os.environ.get("ALTCAP_REALDATA", ROOT.parent / "shared" / "realdata"))


def pytest_configure(config):
    stale = filters.stale_compiled_modules()
    if stale:
        raise pytest.UsageError(f"{', '.join(stale)} {filters.STALE_HINT}: the tests would not test them")


def realdata_path(*parts: str) -> Path:
    """Path under ../shared/realdata, or skip the test with a clear message when it is missing."""
    path = REALDATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real test data not found at {path} (set ALTCAP_REALDATA or check out ../shared)")
    return path


@pytest.fixture
def realdata():
    return realdata_path
