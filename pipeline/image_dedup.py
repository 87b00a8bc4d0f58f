"""Exact image dedup across the whole run: a second, cheap pass over the written shards.

Only (sha256, key, shard) triples are shuffled. Among samples with the same sha256 of the original
bytes the smallest key wins, so the choice does not depend on the runner. Each shard that holds a
loser is rewritten without it. The pass is idempotent, so a killed run that starts again finishes
it: the losers' reject rows are written before the shard is rewritten, and a shard whose
dedup rejects already exist keeps them.
"""

from __future__ import annotations

import io
import tarfile

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from filters.record import IMAGE_DEDUP, reject
from pipeline import fileio
from pipeline.schema import REJECT_SCHEMA, SAMPLE_SCHEMA, reject_row
from pipeline.shard_builder import shard_paths, write_parquet, write_table

REASON = "duplicate_image"


def losers_of(entries: list[tuple[str, int]]) -> list[tuple[int, tuple[str, str]]]:
    """(shard, (key, winner key)) for every sample but the smallest key among equal images."""
    ordered = sorted(set(entries))
    if len(ordered) < 2:
        return []
    winner = ordered[0][0]
    return [(shard, (key, winner)) for key, shard in ordered[1:]]


def _read_table(path: str):
    with fileio.open_read(path) as stream:
        return pq.read_table(stream)


def _rewrite_tar(path: str, drop: set[str]) -> None:
    with fileio.open_read(path) as source, fileio.atomic_write(path) as target:
        with tarfile.open(fileobj=source, mode="r|") as reader, \
                tarfile.open(fileobj=target, mode="w|", format=tarfile.USTAR_FORMAT) as writer:
            for member in reader:
                if member.name.partition(".")[0] in drop:
                    continue
                data = reader.extractfile(member).read() if member.isfile() else None
                writer.addfile(member, io.BytesIO(data) if data is not None else None)


def apply_dedup(out_dir: str, shard_id: int, losers: list[tuple[str, str]]) -> int:
    """Drop ``losers`` (key, winner key) from a shard; returns how many it has dropped in all."""
    paths = shard_paths(out_dir, shard_id)
    has_rejects = fileio.exists(paths["dedup_rejects"])
    if not losers and not has_rejects:
        return 0  # the common case: nothing to drop, nothing dropped before
    samples = _read_table(paths["parquet"]).to_pylist()
    existing = _read_table(paths["dedup_rejects"]).to_pylist() if has_rejects else []
    known = {row["key"] for row in existing}
    fresh = {key: winner for key, winner in losers if key not in known}
    if fresh:
        existing += [reject_row(reject(dict(sample, image_url=sample["url"]), IMAGE_DEDUP, REASON,
                                       f"same image as {fresh[sample['key']]}"))
                     for sample in samples if sample["key"] in fresh]
        write_parquet(paths["dedup_rejects"], existing, REJECT_SCHEMA)
    dropped = {row["key"] for row in existing}
    kept = [row for row in samples if row["key"] not in dropped]
    if len(kept) < len(samples):
        _rewrite_tar(paths["tar"], dropped)
        write_parquet(paths["parquet"], kept, SAMPLE_SCHEMA)
    if fileio.exists(paths["embeddings"]):  # checked on its own: a killed rewrite may have left it behind
        embeddings = _read_table(paths["embeddings"])
        keep = pa.array([key not in dropped for key in embeddings.column("key").to_pylist()])
        if not pc.all(keep).as_py():
            write_table(paths["embeddings"], embeddings.filter(keep))
    return len(existing)
