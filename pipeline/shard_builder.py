"""Build one output shard: run the shard's steps over its records, write the shard atomically.

A shard is the unit of output and of resume. Its files are written under temporary names and
renamed when complete; ``NNNNN_stats.json`` is written last and marks the shard as done. A later
run that finds it, for the same set of input keys, reuses the shard instead of downloading again.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable

from dataset.layout import shard_name, shard_paths
from dataset.reader import load_stats
from dataset.writer import ShardWriter
from filters.record import is_rejected
from pipeline import progress
from pipeline.shard_retry import RetryFailed
from pipeline.shard_step import ShardStep, run_steps

log = logging.getLogger("altcap")

PROGRESS_EVERY_S = 10.0


class StaleShardError(RuntimeError):
    """A finished shard on disk was made from other input records than this run assigns it (an
    input edited in place, its size unchanged). Raised in a worker, it stops the job; the launcher
    finds it in the runner's failure (``found_in``) and reports it as the user error it is."""

    _tagged_with_step = True  # Beam then re-raises it as it is, without logging a traceback

    @classmethod
    def found_in(cls, failure: BaseException) -> StaleShardError | None:
        if isinstance(failure, cls):
            return failure
        found = re.search(rf"{cls.__name__}: (.+)", str(failure))
        return cls(found.group(1)) if found else None


def keys_digest(records: Iterable[dict]) -> str:
    """Identifies the set of input records of a shard (order-free)."""
    digest = hashlib.sha1()
    for key in sorted(r["key"] for r in records):
        digest.update(key.encode())
    return digest.hexdigest()


def record_order(record: dict) -> tuple:
    return record["key"], record.get("page_url") or "", record.get("source") or ""


def funnel_of(records_in: int, outcomes: Counter, stages: tuple[str, ...]) -> dict:
    """Per-stage in/passed/rejected counts of one shard from (stage, reason) tallies."""
    funnel = {}
    entering = records_in
    for stage in stages:
        rejected = {reason: n for (s, reason), n in sorted(outcomes.items()) if s == stage}
        passed = entering - sum(rejected.values())
        funnel[stage] = {"in": entering, "passed": passed, "rejected": rejected}
        entering = passed
    return funnel


def reached(stages: tuple[str, ...]) -> Callable[[dict], tuple[str, ...]]:
    """The progress counters an outcome that left the steps of ``stages`` went through: in and passed of
    every stage before the one that rejected it, in of that one; in and passed of all when it passed."""
    names = [(f"{stage}{progress.IN}", f"{stage}{progress.PASSED}") for stage in stages]
    upto = {stage: sum(names[:at], ()) + names[at][:1] for at, stage in enumerate(stages)}
    every = sum(names, ())
    return lambda outcome: upto.get(outcome["stage"], every) if is_rejected(outcome) else every


def build_shard(shard_id: int, records: list[dict], *, out_dir: str, steps: list[ShardStep],
                pool: ThreadPoolExecutor, window: int, retry: RetryFailed | None = None) -> dict:
    """Write shard ``shard_id`` (or reuse it when already complete, or with ``retry`` write it again
    with its failed records run anew) and return its stats."""
    paths = shard_paths(out_dir, shard_id)
    digest = keys_digest(records)
    records = sorted(records, key=record_order)
    stats = load_stats(paths["stats"])
    if stats is None:
        return _write_shard(shard_id, paths, digest, records, run_steps(steps, records, pool, window), steps)
    if stats.get("keys_digest") != digest:
        raise StaleShardError(
            f"{paths['stats']} was written for other input records; the output folder holds "
            "a different run (use a new --output or --overwrite)")
    again = retry.plan(out_dir, shard_id, records, steps) if retry else None
    if again is None:
        stats["reused"] = True
        return stats
    again.start()
    return _write_shard(shard_id, paths, digest, records, again.outcomes(steps, pool, window), steps,
                        lambda written: again.amend(written, stats, steps))


def _write_shard(shard_id: int, paths: dict, digest: str, records: list[dict], outcomes: Iterable[dict],
                 steps: list[ShardStep], amend: Callable[[dict], None] | None = None) -> dict:
    """Write the shard's ``outcomes`` (one per record, in order) and its stats, which ``amend`` may
    complete before the commit."""
    for step in steps:  # the numbers a step adds up start again with each shard
        if step.summed:
            step.info.update(dict.fromkeys(step.summed, 0))
    started = time.monotonic()
    tally: Counter = Counter()
    writer = ShardWriter(paths, tuple(step.side_file for step in steps if step.side_file))
    went_through = reached(tuple(step.stage for step in steps))
    last_report = started
    try:
        for done, outcome in enumerate(outcomes, 1):
            writer.add(outcome)
            if is_rejected(outcome):
                tally[(outcome["stage"], outcome["reason"])] += 1
            progress.tick_ahead(went_through(outcome))  # the shard's counts come when it is done
            now = time.monotonic()
            if now - last_report >= PROGRESS_EVERY_S:
                last_report = now
                log.debug("shard %s: %d/%d records, %d samples, %.0f records/s", shard_name(shard_id),
                          done, len(records), len(writer.samples), done / (now - started))
        elapsed = time.monotonic() - started
        stats = {
            "shard": shard_id,
            "keys_digest": digest,
            "records": len(records),
            "samples": len(writer.samples),
            "stages": funnel_of(len(records), tally, tuple(step.stage for step in steps)),
            "elapsed_s": round(elapsed, 3),
        }
        stats.update({step.stage: dict(step.info) for step in steps if step.info is not None})
        if amend:
            amend(stats)
        writer.commit(stats)
    except BaseException as err:
        writer.abort(err)
        raise
    log.debug("shard %s done: %d samples of %d records in %.1f s", shard_name(shard_id),
              stats["samples"], len(records), elapsed)
    stats["reused"] = False
    return stats
