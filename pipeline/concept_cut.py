"""Conceptual Captions' concept-frequency cut over the whole run, a pass over the written shards
after hypernymization.

Only concept counts move: each shard's mentions (``hypernymize.concepts``), summed by a combine,
come back to every shard as a side input, and each shard is rewritten without the captions that
hold a rare concept.
"""

from __future__ import annotations

import apache_beam as beam

from hypernymize.concepts import RARE_REASON, check_concepts, concept_counts
from pipeline.combiners import SumCounts
from pipeline.whole_run_pass import WholeRunPass, write_summary


class ConceptFrequencyCut(WholeRunPass):
    """Drops the captions that mention a concept fewer than ``hypernymize.min_concept_mentions``
    times in the run."""

    stage = "concepts"
    reason = RARE_REASON
    rejects = "concept"
    summary_file = "concepts.json"

    @classmethod
    def enabled(cls, config) -> bool:
        return config.hypernymize.enabled and config.hypernymize.min_concept_mentions > 0

    @classmethod
    def summary(cls, out_dir: str, top: int = 20) -> dict | None:
        """What the last pass found, with only the ``top`` most mentioned concepts."""
        summary = super().summary(out_dir)
        if summary:
            summary["most_mentioned"] = dict(list(summary.pop("counts").items())[:top])
        return summary

    def expand(self, shard_samples):
        out_dir, summary_file, cut, reread = self.out_dir, self.summary_file, self.cutter(), self.rereader()
        min_mentions = self.config.hypernymize.min_concept_mentions

        def summarise(counts):
            ordered = dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))
            kept = sum(1 for n in counts.values() if n >= min_mentions)
            write_summary(out_dir, summary_file, {"min_mentions": min_mentions, "mentions": sum(counts.values()),
                                                  "concepts": len(counts), "concepts_kept": kept, "counts": ordered})
            return counts

        counts = (shard_samples
                  | "ShardMentions" >> beam.Map(lambda item: concept_counts(reread(item[0], "entities")))
                  | "CountConcepts" >> beam.CombineGlobally(SumCounts())
                  | "WriteConcepts" >> beam.Map(summarise))

        def visit(item, counts):
            shard_id, written = item
            return shard_id, cut(shard_id, written,
                                 lambda sample: check_concepts(sample["entities"], counts, min_mentions))

        return shard_samples | "CutRareConcepts" >> beam.Map(visit, counts=beam.pvalue.AsSingleton(counts))
