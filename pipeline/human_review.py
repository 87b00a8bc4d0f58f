"""A person's rejections (``altcap review``, ``pipeline.review``) as the last whole-run pass, so they
stand through whatever the folder goes through later: a resume of its run; ``--retry-failed``
(``monotone``: no sample that comes back revives one a person rejected, and should the retry fetch
the passes' drops again, the decisions drop them again); ``altcap score``, which sees only the
samples left.

The decisions live in the output folder, ``review.json``: {"rejected": {key: note}}. The pass is in
every run's job and reads them where it runs, not when the job is built; a folder without them
counts no stage, so only a reviewed folder's funnel has a ``review`` stage. A decided sample leaves
its shard through ``dataset.rewrite`` for rejects/review-NNNNN.parquet, with the note as its detail.
When SemDeDup ran before, its embedding first goes where SemDeDup re-reads the samples that reached
it (``rejects/semantic-NNNNN.npy``), so a resume clusters the same embeddings.
"""

from __future__ import annotations

import json
from typing import Callable

import apache_beam as beam

from dataset import fileio
from dataset.layout import EMBEDDINGS, pass_rejects, shard_paths
from dataset.reader import column_if_any
from pipeline.semantic_dedup import SemanticDedup, keep_dropped
from pipeline.whole_run_pass import WholeRunPass

DECISIONS = "review.json"
STAGE, REASON, REJECTS = "review", "human_review", "review"


def read_decisions(out_dir: str) -> dict[str, str] | None:
    """key -> note of every sample a person rejected in the folder; None when none was reviewed."""
    path = fileio.join(out_dir, DECISIONS)
    return json.loads(fileio.read_bytes(path))["rejected"] if fileio.exists(path) else None


def write_decisions(out_dir: str, decisions: dict[str, str]) -> None:
    blob = json.dumps({"rejected": dict(sorted(decisions.items()))}, indent=1, ensure_ascii=False)
    fileio.write_bytes(fileio.join(out_dir, DECISIONS), blob.encode())


def shard_check(out_dir: str, shard_id: int, decisions: dict[str, str],
                semantic: bool) -> Callable[[dict], tuple[str, str] | None] | None:
    """The check that drops the shard's decided samples; None when it holds none and dropped none
    before (the shard is not read again). ``semantic``: SemDeDup ran before this pass, so their
    embeddings are kept for its resume first."""
    paths = shard_paths(out_dir, shard_id)
    decided = set(column_if_any(paths["parquet"], "key")) & decisions.keys()
    if not decided and not fileio.exists(pass_rejects(out_dir, REJECTS, shard_id)):
        return None
    if semantic and decided and fileio.exists(paths[EMBEDDINGS.folder]):
        keep_dropped(out_dir, SemanticDedup.rejects, shard_id, decided)
    return lambda sample: (REASON, decisions[sample["key"]]) if sample["key"] in decisions else None


class ReviewShards(beam.DoFn):
    """(shard id, samples) -> the samples left once the folder's decisions are applied; counts the
    stage only in a folder that has decisions."""

    def __init__(self, out_dir: str, semantic: bool, cut: Callable):
        self.out_dir = out_dir
        self.semantic = semantic
        self.cut = cut

    def setup(self):
        self.decisions = read_decisions(self.out_dir)

    def process(self, item):
        shard_id, written = item
        if self.decisions is None:
            return [item]
        return [(shard_id, self.cut(shard_id, written, shard_check(self.out_dir, shard_id, self.decisions,
                                                                    self.semantic)))]


class HumanReview(WholeRunPass):
    """Drops the samples a person rejected (``review.json``)."""

    stage = STAGE
    reason = REASON
    rejects = REJECTS
    monotone = True  # a person's rejection stands whatever samples come back

    @classmethod
    def enabled(cls, config) -> bool:
        return True  # whether the folder has decisions is read where the pass runs

    def expand(self, shard_samples):
        semantic = SemanticDedup.enabled(self.config)
        return shard_samples | "ApplyDecisions" >> beam.ParDo(ReviewShards(self.out_dir, semantic, self.cutter()))
