"""The best K of each prompt's N generations, a pass over the written shards of a synthetic run
(``altcap synth --keep K``), as DALL-E kept the best 32 of 512 draws by CLIP score (Ramesh et al.
2021, section 2.5).

Only (prompt id, score, key, shard) values are shuffled. Within a prompt the samples rank by CLIP
score, highest first, the smaller key breaking ties, so the choice does not depend on the runner;
the ranks count every sample that reached the pass (re-read from the shards and the reject files
of this pass and the later ones), so a resume ranks the same set.
"""

from __future__ import annotations

import apache_beam as beam

from pipeline.whole_run_pass import WholeRunPass, drop_named


def outranked(entries: list[tuple[float, str, int]], keep: int) -> list[tuple[int, tuple[str, str]]]:
    """(shard, (key, detail)) of a prompt's samples past the ``keep`` best of (score, key, shard)."""
    ranked = sorted(set(entries), key=lambda entry: (-entry[0], entry[1]))
    return [(shard, (key, f"rank {rank} of {len(ranked)} for its prompt (score {score:.4f}); the best {keep} kept"))
            for rank, (score, key, shard) in enumerate(ranked, 1) if rank > keep]


class BestOfPrompt(WholeRunPass):
    """Drops all but the ``synth.keep`` best-scored samples of each prompt."""

    stage = "best_of"
    reason = "outranked"
    rejects = "best"

    @classmethod
    def enabled(cls, config) -> bool:
        return bool(config.synth.generator) and config.synth.keep > 0 and config.clip.enabled

    def expand(self, shard_samples):
        out_dir, cut, reason, rejects, reread = self.out_dir, self.cutter(), self.reason, self.rejects, self.rereader()
        keep = self.config.synth.keep

        def scored(item):
            shard_id = item[0]
            columns = [reread(shard_id, name) for name in ("prompt_id", "clip_score", "key")]
            return [(prompt, (score, key, shard_id)) for prompt, score, key in zip(*columns) if score is not None]

        losers = (shard_samples
                  | "PromptScores" >> beam.FlatMap(scored)
                  | "GroupByPrompt" >> beam.GroupByKey()
                  | "Outranked" >> beam.FlatMap(lambda item: outranked(list(item[1]), keep)))

        def visit(item):
            shard_id, grouped = item
            check = drop_named(out_dir, shard_id, rejects=rejects, reason=reason, details=dict(grouped["losers"]))
            return shard_id, cut(shard_id, sum(grouped["samples"]), check)

        return ({"samples": shard_samples, "losers": losers}
                | "JoinLosers" >> beam.CoGroupByKey()
                | "RewriteShards" >> beam.Map(visit))
