"""Exact image dedup across the whole run, the last pass over the written shards.

Only (sha256, key, shard) triples are shuffled. Among samples with the same sha256 of the original
bytes the smallest key wins, so the choice does not depend on the runner. Each shard that holds a
loser is rewritten without it.
"""

from __future__ import annotations

import apache_beam as beam

from dataset.layout import shard_paths
from dataset.reader import read_parquet
from pipeline.whole_run_pass import WholeRunPass, drop_named


def losers_of(entries: list[tuple[str, int]]) -> list[tuple[int, tuple[str, str]]]:
    """(shard, (key, winner key)) for every sample but the smallest key among equal images."""
    ordered = sorted(set(entries))
    if len(ordered) < 2:
        return []
    winner = ordered[0][0]
    return [(shard, (key, winner)) for key, shard in ordered[1:]]


def shard_hashes(out_dir: str, shard_id: int) -> list[tuple[str, str]]:
    """(sha256, key) of every sample currently in a shard, read from its parquet."""
    columns = read_parquet(shard_paths(out_dir, shard_id)["parquet"], ["sha256", "key"])
    return list(zip(columns.column("sha256").to_pylist(), columns.column("key").to_pylist()))


class ImageDedup(WholeRunPass):
    """Drops exact duplicate images across shards; every shard is visited so counts add up."""

    stage = "image_dedup"
    reason = "duplicate_image"
    rejects = "dedup"
    monotone = True  # a sample that comes back can only beat a winner, never revive a loser

    @classmethod
    def enabled(cls, config) -> bool:
        return config.dedup.image

    def expand(self, shard_samples):
        out_dir, cut, reason, rejects = self.out_dir, self.cutter(), self.reason, self.rejects
        losers = (shard_samples
                  | "ImageHashes" >> beam.FlatMap(
                      lambda item: [(sha256, (key, item[0])) for sha256, key in shard_hashes(out_dir, item[0])])
                  | "GroupBySha256" >> beam.GroupByKey()
                  | "Losers" >> beam.FlatMap(lambda item: losers_of(list(item[1]))))

        def visit(item):
            shard_id, grouped = item
            written = sum(grouped["samples"])  # samples the earlier passes left
            details = {key: f"same image as {winner}" for key, winner in grouped["losers"]}
            return shard_id, cut(shard_id, written, drop_named(out_dir, shard_id, rejects=rejects, reason=reason,
                                                               details=details))

        return ({"samples": shard_samples, "losers": losers}
                | "JoinLosers" >> beam.CoGroupByKey()
                | "RewriteShards" >> beam.Map(visit))
