"""DataComp's top-fraction CLIP cut over the whole run, as a second pass over the written shards.

The cut needs every score first, so it runs after all shards are written and before image dedup
(dedup then chooses among the survivors, and never keeps a copy the cut drops). Only scores move:
a histogram combine, then the scores of the bin that holds the cut (``filters.clip_rules``). Each
shard is then rewritten without its samples under the cut (``shard_rewrite``: idempotent).

A shard's scores are those of every sample the ``clip`` stage passed: the ones in the shard, plus
the ones this pass and image dedup already dropped, so a resumed run finds the same cut.
"""

from __future__ import annotations

import json

import apache_beam as beam
import numpy as np

from filters.clip_rules import (
    TOP_REASON,
    bin_counts,
    check_top_fraction,
    exact_top_cut,
    locate_top_cut,
    score_bins,
)
from filters.record import CLIP_TOP
from pipeline import fileio
from pipeline.combiners import SumCounts
from pipeline.shard_builder import load_stats, shard_paths
from pipeline.shard_rewrite import column_if_any, cut_shard

CUT_FILE = "clip_top.json"


def shard_filtering(out_dir: str, shard_id: int) -> bool:
    """Whether the shard was scored by a model with weights (random scores are never cut)."""
    stats = load_stats(shard_paths(out_dir, shard_id)["stats"]) or {}
    return bool((stats.get("clip") or {}).get("filtering"))


def shard_scores(out_dir: str, shard_id: int) -> np.ndarray:
    """Scores of every sample of the shard that reached this pass (float32): the concept cut runs
    before it, so its rejects are not among them."""
    if not shard_filtering(out_dir, shard_id):
        return np.zeros(0, np.float32)
    paths = shard_paths(out_dir, shard_id)
    found = [s for key in ("parquet", "top_rejects", "dedup_rejects") for s in column_if_any(paths[key], "clip_score")]
    return np.asarray([s for s in found if s is not None], np.float32)


class TopFractionCut(beam.PTransform):
    """(shard id, samples) -> (shard id, samples left) after dropping all but the top ``fraction``."""

    def __init__(self, fraction: float, out_dir: str):
        super().__init__()
        self.fraction = fraction
        self.out_dir = out_dir

    def expand(self, shard_samples):
        out_dir, fraction = self.out_dir, self.fraction
        scores = shard_samples | "ShardScores" >> beam.Map(lambda item: shard_scores(out_dir, item[0]))
        where = (scores
                 | "ScoreBins" >> beam.Map(bin_counts)
                 | "ScoreHistogram" >> beam.CombineGlobally(SumCounts())
                 | "LocateCut" >> beam.Map(locate_top_cut, fraction))

        def in_cut_bin(shard_scores_, where):
            return [] if where is None else shard_scores_[score_bins(shard_scores_) == where.bin].tolist()

        def the_cut(lists, where):
            cut = None if where is None else exact_top_cut([s for part in lists for s in part], where)
            summary = {"fraction": fraction, "scored": where.total if where else 0,
                       "keep": where.keep if where else 0, "cut": cut}
            fileio.write_bytes(fileio.join(out_dir, CUT_FILE), json.dumps(summary).encode())
            return cut

        cut = (scores
               | "ScoresAtCut" >> beam.Map(in_cut_bin, where=beam.pvalue.AsSingleton(where))
               | "GatherAtCut" >> beam.combiners.ToList()
               | "ExactCut" >> beam.Map(the_cut, where=beam.pvalue.AsSingleton(where)))

        def visit(item, cut):
            shard_id, written = item
            check = None
            if cut is not None and shard_filtering(out_dir, shard_id):
                def check(sample):
                    return check_top_fraction(sample["clip_score"], cut, fraction)
            return shard_id, cut_shard(out_dir, shard_id, written, CLIP_TOP, TOP_REASON, "top_rejects", check)

        return shard_samples | "CutShards" >> beam.Map(visit, cut=beam.pvalue.AsSingleton(cut))


def top_cut_summary(out_dir: str) -> dict | None:
    """What the last top-fraction pass found: fraction, samples scored, how many kept, the cut."""
    path = fileio.join(out_dir, CUT_FILE)
    return json.loads(fileio.read_bytes(path)) if fileio.exists(path) else None
