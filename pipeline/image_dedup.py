"""Exact image dedup across the whole run: a second, cheap pass over the written shards.

Only (sha256, key, shard) triples are shuffled. Among samples with the same sha256 of the original
bytes the smallest key wins, so the choice does not depend on the runner. Each shard that holds a
loser is rewritten without it (``shard_rewrite.cut_shard``: idempotent, so a resumed run finishes
the pass).
"""

from __future__ import annotations

from typing import Callable

from pipeline import fileio
from pipeline.shard_builder import shard_paths

REASON = "duplicate_image"


def losers_of(entries: list[tuple[str, int]]) -> list[tuple[int, tuple[str, str]]]:
    """(shard, (key, winner key)) for every sample but the smallest key among equal images."""
    ordered = sorted(set(entries))
    if len(ordered) < 2:
        return []
    winner = ordered[0][0]
    return [(shard, (key, winner)) for key, shard in ordered[1:]]


def dedup_check(out_dir: str, shard_id: int, losers: list[tuple[str, str]]) -> Callable[[dict], tuple] | None:
    """The check that drops ``losers`` (key, winner key) from a shard, for ``cut_shard``; None when
    there is nothing to drop and nothing was dropped before (the common case: the shard is not read)."""
    if not losers and not fileio.exists(shard_paths(out_dir, shard_id)["dedup_rejects"]):
        return None
    winners = dict(losers)

    def check(sample: dict) -> tuple[str, str] | None:
        winner = winners.get(sample["key"])
        return (REASON, f"same image as {winner}") if winner else None

    return check
