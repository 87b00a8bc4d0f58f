"""DataComp's top-fraction CLIP cut over the whole run, a pass over the written shards.

The cut needs every score first, so it runs after all shards are written and before image dedup
(dedup then chooses among the survivors, and never keeps a copy the cut drops). Only scores move:
a histogram combine, then the scores of the bin that holds the cut (``filters.clip_rules``). Each
shard is then rewritten without its samples under the cut.
"""

from __future__ import annotations

import apache_beam as beam
import numpy as np

from dataset.layout import shard_paths
from dataset.reader import load_stats
from filters.clip_rules import (
    TOP_REASON,
    bin_counts,
    check_top_fraction,
    exact_top_cut,
    locate_top_cut,
    score_bins,
)
from pipeline.combiners import SumCounts
from pipeline.whole_run_pass import WholeRunPass, write_summary


def shard_filtering(out_dir: str, shard_id: int) -> bool:
    """Whether the shard was scored by a model with weights (random scores are never cut)."""
    stats = load_stats(shard_paths(out_dir, shard_id)["stats"]) or {}
    return bool((stats.get("clip") or {}).get("filtering"))


class TopFractionCut(WholeRunPass):
    """Drops all but the top ``clip.top_fraction`` of the run's scored pairs."""

    stage = "clip_top"
    reason = TOP_REASON
    rejects = "top"
    summary_file = "clip_top.json"

    @classmethod
    def enabled(cls, config) -> bool:
        return config.clip.enabled and config.clip.top_fraction is not None

    def expand(self, shard_samples):
        out_dir, summary_file, cut, reread = self.out_dir, self.summary_file, self.cutter(), self.rereader()
        fraction = self.config.clip.top_fraction

        def shard_scores(item) -> np.ndarray:
            if not shard_filtering(out_dir, item[0]):
                return np.zeros(0, np.float32)
            return np.asarray([s for s in reread(item[0], "clip_score") if s is not None], np.float32)

        scores = shard_samples | "ShardScores" >> beam.Map(shard_scores)
        where = (scores
                 | "ScoreBins" >> beam.Map(bin_counts)
                 | "ScoreHistogram" >> beam.CombineGlobally(SumCounts())
                 | "LocateCut" >> beam.Map(locate_top_cut, fraction))

        def in_cut_bin(shard_scores_, where):
            return [] if where is None else shard_scores_[score_bins(shard_scores_) == where.bin].tolist()

        def the_cut(lists, where):
            cut = None if where is None else exact_top_cut([s for part in lists for s in part], where)
            write_summary(out_dir, summary_file, {"fraction": fraction, "scored": where.total if where else 0,
                                                  "keep": where.keep if where else 0, "cut": cut})
            return cut

        the_score = (scores
                     | "ScoresAtCut" >> beam.Map(in_cut_bin, where=beam.pvalue.AsSingleton(where))
                     | "GatherAtCut" >> beam.combiners.ToList()
                     | "ExactCut" >> beam.Map(the_cut, where=beam.pvalue.AsSingleton(where)))

        def visit(item, score):
            shard_id, written = item
            check = None
            if score is not None and shard_filtering(out_dir, shard_id):
                def check(sample):
                    return check_top_fraction(sample["clip_score"], score, fraction)
            return shard_id, cut(shard_id, written, check)

        return shard_samples | "CutShards" >> beam.Map(visit, score=beam.pvalue.AsSingleton(the_score))
