"""Captions per second, one core: altcap's whole text stage against fastText alone.

"altcap" is the full preset (cleaning, every rule, fastText language ID on the captions that pass
the rules on form) in batches of ``text.batch_size``, as the pipeline runs it. "fastText alone"
is ``lid.176.ftz`` predicting every caption of the same list with the call altcap makes (the
fastest way into fastText from Python): the floor any fastText-based filter pays.

Inputs: the 10,000 raw web alt-texts of img2dataset's test parquet (most fail early, as on real
crawls) and the labelled clean human captions under tests/data/text (every rule runs on those).
The process is pinned to one core; rates are per CPU second (time a shared machine takes away
does not count); runs alternate and the best of ``--runs`` is kept. The text stage's modules run
as built: compiled by mypyc unless installed with ALTCAP_PURE_PYTHON=1.

    .venv/bin/python benchmarks/text.py [--runs 5] [--preset cc3m]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import pyarrow.parquet as pq

from filters import text_rules
from filters.langid import LanguageIdentifier, model_path
from filters.text_config import TextConfig
from filters.text_filter import TextFilter
from filters.text_presets import PRESETS

ROOT = Path(__file__).resolve().parent.parent
REALDATA = Path(os.environ.get("ALTCAP_REALDATA", ROOT.parent / "shared" / "realdata"))
WEB_PARQUET = REALDATA / "img2dataset_tests/tests/test_files/test_10000.parquet"
CLEAN = ROOT / "tests/data/text/clean_captions.txt"
TARGET = 50_000


def inputs() -> dict[str, list[str]]:
    sets = {}
    if WEB_PARQUET.exists():
        sets["web alt-texts"] = [str(t) for t in pq.read_table(WEB_PARQUET).column("TEXT").to_pylist()]
    clean = CLEAN.read_text(encoding="utf-8").splitlines()
    sets["clean captions"] = (clean * (10_000 // len(clean) + 1))[:10_000]
    return sets


def rate(work, items: list[str]) -> float:
    """Captions per CPU second of this process (on a shared machine, time the CPU was taken away
    does not count; the process runs on one core)."""
    started = time.process_time()
    work(items)
    return len(items) / (time.process_time() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--preset", default="cc3m", choices=sorted(PRESETS))
    args = parser.parse_args()
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core, whatever the machine
    text_filter = TextFilter(PRESETS[args.preset])
    fasttext_alone = LanguageIdentifier(model_path())

    batch = TextConfig().batch_size  # what the pipeline hands the stage at a time

    def ours(items):
        for start in range(0, len(items), batch):
            text_filter.check_batch(items[start:start + batch])

    predict = fasttext_alone.model.f.predict

    def theirs(items):  # the same fastText call altcap makes, and nothing else
        for text in items:
            predict(" ".join(text.split()) + "\n", 1, 0.0, "replace")

    built = "Python sources" if text_rules.__file__.endswith(".py") else "compiled by mypyc (setup.py)"
    print(f"text stage modules: {built}")
    print(f"{'captions':<16} {'n':>6} {'passed':>7} {'altcap ' + args.preset + '/s':>14} "
          f"{'fastText alone/s':>17} {'ratio':>6} {'target':>8}")
    for name, items in inputs().items():
        ours(items[:1000])
        theirs(items[:1000])
        rate_ours, rate_theirs = 0.0, 0.0
        for _ in range(args.runs):  # alternate, so both see the same machine state
            rate_ours = max(rate_ours, rate(ours, items))
            rate_theirs = max(rate_theirs, rate(theirs, items))
        passed = sum(v.passed for v in text_filter.check_batch(items))
        print(f"{name:<16} {len(items):>6} {passed:>7} {rate_ours:>14,.0f} {rate_theirs:>17,.0f} "
              f"{rate_ours / rate_theirs:>6.2f} {'met' if rate_ours >= TARGET else 'MISSED':>8}")


if __name__ == "__main__":
    main()
