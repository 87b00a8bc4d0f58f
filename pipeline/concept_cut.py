"""Conceptual Captions' concept-frequency cut over the whole run, as a second pass over the
written shards (after hypernymization, before the top-fraction CLIP cut and image dedup).

Only concept counts move: each shard's mentions (``hypernymize.concepts``), summed by a combine,
come back to every shard as a side input, and each shard is rewritten without the captions that
hold a rare concept (``shard_rewrite``: idempotent). A shard's mentions are those of every sample
hypernymization kept: the ones in the shard, plus the ones this pass, the top-fraction cut and
image dedup already dropped, so a resumed run counts the same.
"""

from __future__ import annotations

import json
from collections import Counter

import apache_beam as beam

from filters.record import CONCEPTS
from hypernymize.concepts import RARE_REASON, check_concepts, concept_counts
from pipeline import fileio
from pipeline.combiners import SumCounts
from pipeline.shard_builder import shard_paths
from pipeline.shard_rewrite import column_if_any, cut_shard

CONCEPTS_FILE = "concepts.json"


def shard_mentions(out_dir: str, shard_id: int) -> Counter:
    """Concept mentions of every sample of the shard that hypernymization kept."""
    paths = shard_paths(out_dir, shard_id)
    return concept_counts(entities for key in ("parquet", "concept_rejects", "top_rejects", "dedup_rejects")
                          for entities in column_if_any(paths[key], "entities"))


class ConceptFrequencyCut(beam.PTransform):
    """(shard id, samples) -> (shard id, samples left) after dropping the captions that mention a
    concept fewer than ``min_mentions`` times in the run."""

    def __init__(self, min_mentions: int, out_dir: str):
        super().__init__()
        self.min_mentions = min_mentions
        self.out_dir = out_dir

    def expand(self, shard_samples):
        out_dir, min_mentions = self.out_dir, self.min_mentions

        def summarise(counts):
            ordered = dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))
            summary = {"min_mentions": min_mentions, "mentions": sum(counts.values()), "concepts": len(counts),
                       "concepts_kept": sum(1 for n in counts.values() if n >= min_mentions), "counts": ordered}
            fileio.write_bytes(fileio.join(out_dir, CONCEPTS_FILE),
                               json.dumps(summary, indent=0, ensure_ascii=False).encode())
            return counts

        counts = (shard_samples
                  | "ShardMentions" >> beam.Map(lambda item: shard_mentions(out_dir, item[0]))
                  | "CountConcepts" >> beam.CombineGlobally(SumCounts())
                  | "WriteConcepts" >> beam.Map(summarise))

        def visit(item, counts):
            shard_id, written = item
            return shard_id, cut_shard(out_dir, shard_id, written, CONCEPTS, RARE_REASON, "concept_rejects",
                                       lambda sample: check_concepts(sample["entities"], counts, min_mentions))

        return shard_samples | "CutRareConcepts" >> beam.Map(visit, counts=beam.pvalue.AsSingleton(counts))


def concepts_summary(out_dir: str, top: int = 20) -> dict | None:
    """What the last concept pass found, with only the ``top`` most mentioned concepts."""
    path = fileio.join(out_dir, CONCEPTS_FILE)
    if not fileio.exists(path):
        return None
    summary = json.loads(fileio.read_bytes(path))
    summary["most_mentioned"] = dict(list(summary.pop("counts").items())[:top])
    return summary
