"""The text stage's modules compiled by mypyc (setup.py) give exactly what their Python sources
give: every verdict on the labelled captions and the real web alt-texts, in every preset."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import filters
from filters.text_filter import TextFilter
from filters.text_presets import PRESETS

from conftest import realdata_path

ROOT = Path(__file__).resolve().parent.parent
COMPILED = ("english", "text_clean", "text_filter", "text_rules")
WEB = ("img2dataset_tests", "tests", "test_files", "test_10000.parquet")

# Runs in a child process: imports every filters module from its .py file, then prints the
# verdicts on the texts it reads from stdin.
PURE_RUN = """
import importlib.abc, importlib.util, json, os, sys
from dataclasses import asdict

class PreferSource(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        source = os.path.join(sys.argv[1], *name.split(".")) + ".py"
        if name.startswith("filters.") and os.path.exists(source):
            return importlib.util.spec_from_file_location(name, source)
        return None

sys.meta_path.insert(0, PreferSource())
from filters import text_rules
from filters.text_filter import TextFilter
from filters.text_presets import PRESETS
assert text_rules.__file__.endswith(".py"), text_rules.__file__
texts = json.load(sys.stdin)
print(json.dumps({name: [asdict(v) for v in TextFilter(PRESETS[name]).check_batch(texts)] for name in PRESETS}))
"""


def compiled(module: str) -> bool:
    return not getattr(filters, module).__file__.endswith(".py")


@pytest.fixture(scope="module")
def texts() -> list[str]:
    data = ROOT / "tests" / "data" / "text"
    lines = [line for name in ("clean_captions.txt", "junk_alt_texts.txt")
             for line in (data / name).read_text(encoding="utf-8").splitlines()]
    web = pq.read_table(realdata_path(*WEB)).column("TEXT").to_pylist()
    return lines + [str(t) for t in web[:3000]]


def test_the_build_compiled_the_text_modules():
    __import__("filters.text_filter")  # imports the other three
    if os.environ.get("ALTCAP_PURE_PYTHON") == "1":
        pytest.skip("installed with ALTCAP_PURE_PYTHON=1")
    assert all(compiled(name) for name in COMPILED), {name: getattr(filters, name).__file__ for name in COMPILED}


def test_compiled_verdicts_equal_the_python_sources(texts):
    if not compiled("text_rules"):
        pytest.skip("the text modules are not compiled here: nothing to compare")
    child = subprocess.run([sys.executable, "-c", PURE_RUN, str(ROOT)], input=json.dumps(texts),
                           capture_output=True, text=True, check=True, cwd=ROOT)
    pure = json.loads(child.stdout)
    for name in PRESETS:
        ours = [asdict(v) for v in TextFilter(PRESETS[name]).check_batch(texts)]
        assert len(ours) == len(pure[name]) == len(texts)
        differing = [(t, a, b) for t, a, b in zip(texts, ours, pure[name]) if a != b]
        assert not differing, (name, differing[:3])
