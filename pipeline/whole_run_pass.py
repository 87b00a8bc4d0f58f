"""The contract of a whole-run pass: a second, cheap pass over the written shards that drops
samples for a reason only the whole run can decide (concept frequency, the CLIP top fraction,
image dedup). ``pipeline.passes.PASSES`` lists them in the order they run.

A pass is a PTransform from (shard id, samples) to (shard id, samples left), with its ``stage``,
its ``reason``, its reject files (``rejects``: rejects/<rejects>-NNNNN.parquet), the run-level
summary file it writes (if any) and ``enabled(config)``, decided from the config alone when the job
is built (building never reads the output folder: a dry run of a gs:// folder looks nothing up); a
pass that depends on what the folder holds reads it where it runs (``pipeline.human_review``). It
visits every shard once, so the funnel adds up, and drops through ``dataset.rewrite``, which is
idempotent: a killed run finishes the pass. What it judges by must not change on a resume:
``reread`` reads a column of the samples that reached the pass, from the shard and from the reject
files of this pass and of every pass after it.
``monotone``: more samples in the run can only add to what the pass drops (exact dedup), so a
retry that brings samples back (``pipeline.shard_retry``) need not fetch the ones it dropped again.
"""

from __future__ import annotations

import functools
import json
from typing import Callable, ClassVar

import apache_beam as beam

from dataset import fileio
from dataset.layout import pass_rejects, shard_paths
from dataset.reader import column_if_any
from dataset.rewrite import drop_from_shard
from dataset.schema import reject_row
from filters.record import reject
from pipeline.metrics import count_stage


class WholeRunPass(beam.PTransform):
    stage: ClassVar[str]
    reason: ClassVar[str]
    rejects: ClassVar[str]
    summary_file: ClassVar[str | None] = None
    leaves: ClassVar[tuple[str, ...]] = ()  # other files it writes (globs under the output folder)
    monotone: ClassVar[bool] = False

    @classmethod
    def enabled(cls, config) -> bool:
        raise NotImplementedError

    def __init__(self, config, out_dir: str, rereads: tuple[str, ...]):
        """``rereads``: the reject file prefixes of this pass and of the passes after it."""
        super().__init__()
        self.config = config
        self.out_dir = out_dir
        self.rereads = rereads

    def cutter(self) -> Callable[[int, int, Callable | None], int]:
        """``cut(shard_id, written, check)``: this pass's ``cut_shard``, picklable for Beam."""
        return functools.partial(cut_shard, self.out_dir, stage=self.stage, reason=self.reason, rejects=self.rejects)

    def rereader(self) -> Callable[[int, str], list]:
        """``reread(shard_id, column)`` for this pass, picklable for Beam."""
        return functools.partial(reread, self.out_dir, rereads=self.rereads)

    @classmethod
    def summary(cls, out_dir: str) -> dict | None:
        """What the last run of the pass found, for stats.json and the report."""
        path = fileio.join(out_dir, cls.summary_file) if cls.summary_file else None
        return json.loads(fileio.read_bytes(path)) if path and fileio.exists(path) else None


def write_summary(out_dir: str, name: str, summary: dict) -> None:
    fileio.write_bytes(fileio.join(out_dir, name), json.dumps(summary, indent=0, ensure_ascii=False).encode())


def reread(out_dir: str, shard_id: int, column: str, *, rereads: tuple[str, ...]) -> list:
    """``column`` of every sample of the shard that reached the pass whose ``rereads`` these are."""
    paths = [shard_paths(out_dir, shard_id)["parquet"]]
    paths += [pass_rejects(out_dir, prefix, shard_id) for prefix in rereads]
    return [value for path in paths for value in column_if_any(path, column)]


def drop_failing(out_dir: str, shard_id: int, check: Callable[[dict], tuple[str, str] | None],
                 *, stage: str, rejects: str) -> int:
    """Drop the samples ``check`` fails ((reason, detail), or None: the sample stays) from a shard into
    its reject file of prefix ``rejects``; returns how many that file holds."""
    def judge(samples: list[dict]) -> list[dict]:
        failures = ((sample, check(sample)) for sample in samples)
        return [reject_row(reject(dict(sample, image_url=sample["url"]), stage, *failure))
                for sample, failure in failures if failure]

    return drop_from_shard(out_dir, shard_id, pass_rejects(out_dir, rejects, shard_id), judge)


def cut_shard(out_dir: str, shard_id: int, written: int, check: Callable[[dict], tuple[str, str] | None] | None,
              *, stage: str, reason: str, rejects: str) -> int:
    """A pass's visit to one shard: drop the samples ``check`` fails (None: none) into the shard's
    reject file of prefix ``rejects``, count the stage; returns the samples left."""
    dropped = 0 if check is None else drop_failing(out_dir, shard_id, check, stage=stage, rejects=rejects)
    count_stage(stage, written, {reason: dropped})
    return written - dropped


def drop_named(out_dir: str, shard_id: int, *, rejects: str, reason: str,
               details: dict[str, str]) -> Callable[[dict], tuple[str, str] | None] | None:
    """The check that drops the samples ``details`` names (key -> detail) from a shard; None when it
    names none and the pass dropped none there before (the common case: the shard is not read)."""
    if not details and not fileio.exists(pass_rejects(out_dir, rejects, shard_id)):
        return None
    return lambda sample: (reason, details[sample["key"]]) if sample["key"] in details else None
