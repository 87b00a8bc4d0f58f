"""The fuzz targets of tests/test_fuzz.py, each for a set time: examples run, examples/s, failures.

    .venv/bin/python benchmarks/fuzz.py [--seconds 30] [--target NAME ...] [--seed 0] [--show 3]

The same inputs (hypothesis strategies) and the same checks as the tests, but for ``--seconds``
per target instead of a few hundred examples, with a seed of your choice, and without stopping at
the first failure: every failing input is counted, and the first ``--show`` distinct failures of
each target (exception type and message, the start of the input) are printed under the table.
Each example is bounded in time as in the tests (``test_fuzz.EXAMPLE_SECONDS``; over it is a Hang).
The defects already known are among the failures when an input reaches them (see the xfail
regression examples at the end of tests/test_fuzz.py).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings
from collections import Counter
from functools import partial
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, seed, settings

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import test_fuzz as fuzz  # noqa: E402  (the tests folder is not a package)


class TimeUp(BaseException):
    """Ends a target's run; a BaseException, so hypothesis hands it back instead of shrinking it."""


def targets() -> dict:
    """name -> (strategy, check); the checks are the tests' own. The hypernymizer's check needs the
    loaded hypernymizers (``main`` adds them)."""
    found = {
        "warc: random bytes": (fuzz.RAW_BYTES, fuzz.check_archive),
        "warc: mutated built archives": (fuzz.archive_inputs(fuzz.BUILT_SEEDS), fuzz.check_archive),
        "warc: mutated real archives": (fuzz.archive_inputs(fuzz.REAL_SEEDS), fuzz.check_archive),
        "warc: cut gzip member": (fuzz.CUT_MEMBERS, fuzz.check_cut_member),
        "warc: lying Content-Length": (fuzz.LYING_ARCHIVES, fuzz.check_lying_length),
        "wat: generated JSON": (fuzz.WAT_INPUTS, fuzz.check_wat),
        "http body decoding": (fuzz.HTTP_BODIES, fuzz.check_http_body),
        "html: generated pages": (fuzz.PAGES_OF_TREES, fuzz.check_generated_page),
        "html: tag soup": (fuzz.TAG_SOUP, fuzz.check_tag_soup),
        "image probe: mutated headers": (fuzz.IMAGES, fuzz.check_probe),
        "text stage: batches": (fuzz.TEXT_BATCHES, fuzz.check_texts),
        "text cleaning": (fuzz.TEXTS, fuzz.check_clean_caption),
        "hypernymizer": (fuzz.HYPERNYM_CAPTIONS, None),
    }
    if not fuzz.REAL_SEEDS:
        del found["warc: mutated real archives"]  # ../shared/realdata is not there
    return found


def run_target(strategy, check, seconds: float, seed_value: int) -> tuple[int, list[tuple[str, str]]]:
    """(examples run, failures as (kind, input)) after ``seconds`` of generated inputs."""
    examples, failures = 0, []
    ends = time.monotonic() + seconds

    @seed(seed_value)
    @settings(max_examples=10**9, database=None, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def one(example):
        nonlocal examples
        if time.monotonic() > ends:
            raise TimeUp()
        examples += 1
        try:
            check(example)
        except (Exception, fuzz.Hang) as failure:
            first_line = (str(failure).splitlines() or [""])[0]
            failures.append((f"{type(failure).__name__}: {first_line[:160]}", repr(example)[:200]))

    try:
        one()
    except TimeUp:
        pass
    return examples, failures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30, help="per target (default 30)")
    parser.add_argument("--target", action="append", default=[], metavar="NAME",
                        help="run only the targets whose name contains NAME (repeatable)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--show", type=int, default=3, metavar="N", help="distinct failures shown per target")
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # Pillow's warnings on corrupt EXIF and truncated files
    with tempfile.TemporaryDirectory() as work:
        chosen = {name: target for name, target in targets().items()
                  if not args.target or any(part in name for part in args.target)}
        if "hypernymizer" in chosen:
            started = time.perf_counter()
            loaded = fuzz.load_fuzz_hypernymizer(Path(work))
            print(f"hypernymizer loaded in {time.perf_counter() - started:.1f} s", flush=True)
            chosen["hypernymizer"] = (chosen["hypernymizer"][0], partial(fuzz.check_rewrite, loaded))
        rows, shown = [], []
        for name, (strategy, check) in chosen.items():
            started = time.perf_counter()
            examples, failures = run_target(strategy, check, args.seconds, args.seed)
            wall = time.perf_counter() - started
            rows.append((name, examples, wall, len(failures)))
            print(f"  {name}: {examples} examples, {len(failures)} failures", file=sys.stderr, flush=True)
            kinds = Counter(kind for kind, _ in failures)
            for kind, count in list(kinds.items())[:args.show]:
                example = next(example for k, example in failures if k == kind)
                shown.append(f"{name}: {count} x {kind}\n    input: {example}")
    print(f"\n{args.seconds:g} s per target, seed {args.seed}, {os.cpu_count()} cores, one process\n")
    print(f"{'target':<32} {'examples':>9} {'seconds':>8} {'examples/s':>11} {'failures':>9}")
    for name, examples, wall, failed in rows:
        print(f"{name:<32} {examples:>9} {wall:>8.1f} {examples / wall:>11.0f} {failed:>9}")
    if shown:
        print("\nfailures (first of each kind):")
        print("\n".join(shown))


if __name__ == "__main__":
    main()
