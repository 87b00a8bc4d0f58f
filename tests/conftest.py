"""Shared fixtures: where the real third-party data lives, and a skip when it is absent."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

import filters

ROOT = Path(__file__).resolve().parent.parent
ALTCAP = str(Path(sys.executable).parent / "altcap")
REALDATA = Path(os.environ.get("ALTCAP_REALDATA", ROOT.parent / "shared" / "realdata"))


def pytest_configure(config):
    stale = filters.stale_compiled_modules()
    if stale:
        raise pytest.UsageError(f"{', '.join(stale)} {filters.STALE_HINT}: the tests would not test them")


os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # img2dataset's albumentations asks PyPI otherwise


def missing(path: Path) -> str:
    return f"real test data not found at {path} (set ALTCAP_REALDATA or check out ../shared)"


def realdata_path(*parts: str) -> Path:
    """Path under ../shared/realdata, or skip the test with a clear message when it is missing."""
    path = REALDATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(missing(path))
    return path


def realdata_table(*parts: str) -> list[dict]:
    """The rows of a TSV under ../shared/realdata; none when it is missing (``realdata_cases`` says why)."""
    path = REALDATA.joinpath(*parts)
    return list(csv.DictReader(path.open(encoding="utf-8"), delimiter="\t")) if path.exists() else []


def realdata_cases(rows: list[dict], *parts: str) -> list:
    """Parameters over real-data rows, one per row (its ``path`` as id); without the data one
    parameter that skips and says where the data was looked for, instead of an empty set."""
    if rows:
        return [pytest.param(row, id=row["path"]) for row in rows]
    return [pytest.param(None, id="no-realdata", marks=pytest.mark.skip(reason=missing(REALDATA.joinpath(*parts))))]


@pytest.fixture
def realdata():
    return realdata_path


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path]:
    """``altcap demo`` run once, as a user runs it: what it printed and its output folder (the demo's
    terminal test and the report's tests share it)."""
    folder = tmp_path_factory.mktemp("demo") / "demo"
    done = subprocess.run([ALTCAP, "demo", "--output", str(folder)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done, folder


@pytest.fixture(scope="module")
def one_torch_thread():
    """Torch on one thread for a module of tiny models: they gain nothing from threads, and on a busy 2-core
    machine a second thread slowed a sampling step 26-fold (3.1 s against 0.12 s) and doubled the trainer's
    300 steps (150 s against 75 s)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
