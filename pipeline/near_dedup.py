"""Perceptual near-duplicates across the whole run, a pass after exact image dedup.

Only (band, pHash, key, shard) values are shuffled: each sample's pHash goes under its
``max_distance + 1`` band keys (``filters.near_dup.bands``), and within a band group every sample
that has a near-duplicate of smaller key loses (``near_duplicate_losers``); a loser found in several
bands keeps its smallest winner. Each shard holding a loser is rewritten without it. The hashes are
re-read from the shard and from the reject files of this pass and the passes after it, so a resumed
pass judges the same set; and a sample that comes back (``--retry-failed``) can only add losers.

For a person to check the rule, the pass saves a few dropped pairs side by side (``near_pairs/``),
which the report shows.
"""

from __future__ import annotations

import io

import apache_beam as beam
from PIL import Image

from dataset import fileio
from dataset.layout import shard_paths
from dataset.reader import image_ext_of, tar_samples
from filters.near_dup import bands, near_duplicate_losers
from pipeline.whole_run_pass import WholeRunPass, drop_named

PAIRS = "near_pairs"  # out/near_pairs/<loser key>.jpg: the dropped image beside the one kept
PAIRS_PER_SHARD, PAIR_SHARDS = 2, 32  # pairs saved: a few from each of the first shards, not one per loser
PAIR_SIDE = 128


def image_of(out_dir: str, shard_id: int, key: str) -> bytes | None:
    """A sample's stored image, found by reading its shard's tar up to it; None when it is not there."""
    for found, members in tar_samples(shard_paths(out_dir, shard_id)["tar"]):
        if found == key:
            return members[image_ext_of(members)]
    return None


def save_pair(out_dir: str, loser: tuple[str, int], winner: tuple[str, int]) -> None:
    """The dropped image (left) beside the one kept (right), for the report."""
    images = [image_of(out_dir, shard, key) for key, shard in (loser, winner)]
    if None in images:  # the winner may have lost to a third image meanwhile
        return
    pair = Image.new("RGB", (2 * PAIR_SIDE, PAIR_SIDE), "white")
    for n, data in enumerate(images):
        image = Image.open(io.BytesIO(data)).convert("RGB")
        image.thumbnail((PAIR_SIDE, PAIR_SIDE))
        pair.paste(image, (n * PAIR_SIDE + (PAIR_SIDE - image.width) // 2, (PAIR_SIDE - image.height) // 2))
    buffer = io.BytesIO()
    pair.save(buffer, "JPEG", quality=85)
    fileio.write_bytes(fileio.join(out_dir, PAIRS, f"{loser[0]}.jpg"), buffer.getvalue())


class NearDuplicates(WholeRunPass):
    """Drops the samples whose pHash is within ``dedup.near_distance`` bits of one of smaller key."""

    stage = "near_dedup"
    reason = "near_duplicate"
    rejects = "near"
    monotone = True  # a sample that comes back can only be a new winner: no loser comes back
    leaves = (f"{PAIRS}/*",)

    @classmethod
    def enabled(cls, config) -> bool:
        return config.dedup.near_distance is not None

    def expand(self, shard_samples):
        out_dir, cut, reread, reason, rejects = self.out_dir, self.cutter(), self.rereader(), self.reason, self.rejects
        distance = self.config.dedup.near_distance

        def banded(item):
            shard_id = item[0]
            for phash, key in zip(reread(shard_id, "phash"), reread(shard_id, "key")):
                if phash is not None:  # a shard written before pHashes existed has none
                    for band in bands(phash, distance):
                        yield band, (phash, key, shard_id)

        def losers_in(item):
            members = list(item[1])
            shard_of = {key: shard_id for _, key, shard_id in members}
            for loser, winner, bits in near_duplicate_losers([(phash, key) for phash, key, _ in members], distance):
                yield loser, (winner, bits, shard_of[loser], shard_of[winner])

        losers = (shard_samples
                  | "HashBands" >> beam.FlatMap(banded)
                  | "GroupByBand" >> beam.GroupByKey()
                  | "LosersInBands" >> beam.FlatMap(losers_in)
                  | "SmallestWinner" >> beam.CombinePerKey(min)
                  | "ByShard" >> beam.Map(lambda found: (found[1][2], (found[0], *found[1]))))

        def visit(item):
            shard_id, grouped = item
            found = sorted(grouped["losers"])
            for loser, winner, _, _, winner_shard in found[:PAIRS_PER_SHARD if shard_id < PAIR_SHARDS else 0]:
                if not fileio.exists(fileio.join(out_dir, PAIRS, f"{loser}.jpg")):
                    save_pair(out_dir, (loser, shard_id), (winner, winner_shard))
            details = {loser: f"{bits} bits from {winner}" for loser, winner, bits, _, _ in found}
            check = drop_named(out_dir, shard_id, rejects=rejects, reason=reason, details=details)
            return shard_id, cut(shard_id, sum(grouped["samples"]), check)

        return ({"samples": shard_samples, "losers": losers}
                | "JoinLosers" >> beam.CoGroupByKey()
                | "RewriteShards" >> beam.Map(visit))
