"""Exact image dedup across the whole run: a second, cheap pass over the written shards.

Only (sha256, key, shard) triples are shuffled. Among samples with the same sha256 of the original
bytes the smallest key wins, so the choice does not depend on the runner. Each shard that holds a
loser is rewritten without it (``shard_rewrite``: idempotent, so a resumed run finishes the pass).
"""

from __future__ import annotations

from filters.record import IMAGE_DEDUP, reject
from pipeline import fileio
from pipeline.schema import reject_row
from pipeline.shard_builder import shard_paths
from pipeline.shard_rewrite import drop_from_shard

REASON = "duplicate_image"


def losers_of(entries: list[tuple[str, int]]) -> list[tuple[int, tuple[str, str]]]:
    """(shard, (key, winner key)) for every sample but the smallest key among equal images."""
    ordered = sorted(set(entries))
    if len(ordered) < 2:
        return []
    winner = ordered[0][0]
    return [(shard, (key, winner)) for key, shard in ordered[1:]]


def apply_dedup(out_dir: str, shard_id: int, losers: list[tuple[str, str]]) -> int:
    """Drop ``losers`` (key, winner key) from a shard; returns how many it has dropped in all."""
    rejects_path = shard_paths(out_dir, shard_id)["dedup_rejects"]
    if not losers and not fileio.exists(rejects_path):
        return 0  # the common case: nothing to drop, nothing dropped before
    winners = dict(losers)

    def judge(samples: list[dict]) -> list[dict]:
        return [reject_row(reject(dict(sample, image_url=sample["url"]), IMAGE_DEDUP, REASON,
                                  f"same image as {winners[sample['key']]}"))
                for sample in samples if sample["key"] in winners]

    return drop_from_shard(out_dir, shard_id, rejects_path, judge)
