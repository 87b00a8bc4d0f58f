"""``altcap run --retry-failed``: a finished shard written again, with only its failed records run anew.

The records the shard's steps rejected for a reason a step calls retryable (``ShardStep.retryable``:
a timeout, a reset, a 5xx, a 429) go through the steps again; the shard's samples are copied from
its tar (the image as stored, the .json row, the side-file values), its other rejects are kept as
they are, and all is written in record order as the shard step writes it, so a record that passes
now lands where a run without the failure would have put it. Beam-free.

A sample a whole-run pass dropped stays dropped when every enabled pass is ``monotone`` (more
samples can only add drops: exact image dedup). A cut over the run's values (concept frequency,
the CLIP top fraction) moves when samples come back, so with such a pass enabled the samples the
passes dropped are fetched again too (their images are gone) and judged afresh.

Crash-safe: the stats marker goes first, so a retry killed half-way leaves a shard that is not
done, which the next run builds whole.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterator

from dataset import fileio
from dataset.layout import pass_rejects, shard_name, shard_paths
from dataset.reader import column_if_any, read_rows, read_side, written_records
from filters.record import is_rejected
from pipeline.shard_step import ShardStep, run_steps

log = logging.getLogger("altcap")

AGAIN, REFETCH, KEEP, OLD_REJECT, DROPPED = "again", "refetch", "keep", "old_reject", "dropped"


@dataclass(frozen=True)
class RetryFailed:
    """What a retry runs again in a finished shard: ``pass_prefixes`` name the enabled whole-run
    passes' reject files; ``refetch_dropped`` (a pass that is not monotone is enabled) fetches the
    samples they dropped again."""

    pass_prefixes: tuple[str, ...]
    refetch_dropped: bool

    def plan(self, out_dir: str, shard_id: int, records: list[dict], steps: list[ShardStep]) -> ShardRetry | None:
        """The retry of a finished shard whose ``records`` are in record order; None when it has
        nothing to run again."""
        paths = shard_paths(out_dir, shard_id)
        by_stage = {step.stage: step for step in steps}
        rejects = read_rows(paths["rejects"]) if fileio.exists(paths["rejects"]) else []
        again = {row["key"] for row in rejects
                 if row["stage"] in by_stage and by_stage[row["stage"]].retryable(row["reason"])}
        dropped_files = [path for prefix in self.pass_prefixes
                         if fileio.exists(path := pass_rejects(out_dir, prefix, shard_id))]
        if not again and not (self.refetch_dropped and dropped_files):
            return None
        old = {row["key"]: row for row in rejects if row["key"] not in again}
        dropped = {key for path in dropped_files for key in column_if_any(path, "key")}
        kept = set(column_if_any(paths["parquet"], "key"))
        keys = [record["key"] for record in records]
        accounted = len(kept) + len(rejects) + len(dropped) == len(records) == len(set(keys))
        if not accounted or not set(keys) == kept | again | old.keys() | dropped:
            log.warning("shard %s: its files do not account for its records one by one; built whole again",
                        shard_name(shard_id))
            return ShardRetry(paths, records, [REFETCH] * len(records), {}, dropped_files)

        def status(key: str) -> str:
            if key in again:
                return AGAIN
            if key in dropped:
                return REFETCH if self.refetch_dropped else DROPPED
            return KEEP if key in kept else OLD_REJECT

        return ShardRetry(paths, records, [status(key) for key in keys], old,
                          dropped_files if self.refetch_dropped else [])


def _as_outcome(row: dict) -> dict:
    """A reject row as the reject it was written from (``dataset.schema.reject_row`` gives the row back)."""
    outcome = dict(row)
    outcome["image_url"] = outcome.pop("url")
    return outcome


@dataclass
class ShardRetry:
    """One shard's retry: a status per record, the rejects kept, the pass reject files it clears."""

    paths: dict
    records: list[dict]
    statuses: list[str]
    old_rejects: dict[str, dict]
    cleared: list[str]
    tally: Counter = field(default_factory=Counter)

    def start(self) -> None:
        """Unmark the shard as done, then clear the pass rejects of the samples fetched again (with
        what a pass keeps beside them: ``pipeline.semantic_dedup``'s embeddings)."""
        beside = [path.removesuffix(".parquet") + ".npy" for path in self.cleared]
        fileio.delete([self.paths["stats"], *self.cleared, *(path for path in beside if fileio.exists(path))])

    def _written(self, steps: list[ShardStep]) -> Iterator[dict]:
        """The shard's samples as records, with their side-file values, in shard order."""
        sides = [(step.side_file, read_side(self.paths[step.side_file.folder], step.side_file))
                 for step in steps if step.side_file]
        for record in written_records(self.paths["tar"]):
            for side, values in sides:
                if record["key"] in values:
                    record[side.field] = tuple(values[record["key"]][column] for column in side.columns)
            yield record

    def outcomes(self, steps: list[ShardStep], pool, window: int) -> Iterator[dict]:
        """Every record's outcome in record order: run again, copied, or the reject it was."""
        run = [record for record, status in zip(self.records, self.statuses) if status in (AGAIN, REFETCH)]
        fresh = run_steps(steps, run, pool, window)
        written = self._written(steps) if KEEP in self.statuses else iter(())
        for record, status in zip(self.records, self.statuses):
            if status in (AGAIN, REFETCH):
                outcome = next(fresh)
                self.tally["retried" if status == AGAIN else "refetched"] += 1
                self.tally["recovered"] += status == AGAIN and not is_rejected(outcome)
                yield outcome
            elif status == KEEP:
                sample = next(written)
                if sample["key"] != record["key"]:
                    raise RuntimeError(f"{self.paths['tar']}: {sample['key']} where {record['key']} was expected")
                yield sample
            elif status == OLD_REJECT:
                yield _as_outcome(self.old_rejects[record["key"]])

    def amend(self, stats: dict, before: dict, steps: list[ShardStep]) -> None:
        """The written shard's stats made whole: the samples a pass dropped before count as the
        shard's, and the numbers steps add up include the first build's."""
        stats["samples"] += self.statuses.count(DROPPED)
        for step in steps:
            for name in step.summed:
                stats[step.stage][name] += before.get(step.stage, {}).get(name, 0)
        stats["elapsed_s"] = round(stats["elapsed_s"] + before.get("elapsed_s", 0), 3)
        stats["retried"] = {name: self.tally[name] for name in ("retried", "recovered", "refetched")}
