"""Look things up in a finished output folder, without Beam: the keys rejected for a reason, and one
record by key (a sample with its image, or a reject with its stage and reason). Each is a scan of
the folder's parquet files, one column first: fine for a person at a terminal, not for a job.
"""

from __future__ import annotations

from typing import Iterator

import pyarrow.compute as pc

from dataset import fileio
from dataset.layout import REJECTS, shard_ids, shard_paths
from dataset.reader import image_ext_of, read_parquet, tar_samples


def reject_files(out_dir: str) -> list[str]:
    """Every reject file: the shard steps', the whole-run passes', and rejects/pre/'s."""
    return sorted(fileio.match(fileio.join(out_dir, REJECTS, "*.parquet"))
                  + fileio.match(fileio.join(out_dir, REJECTS, "pre", "*.parquet")))


def rejected_keys(out_dir: str, reason: str) -> Iterator[tuple[str, str, str]]:
    """(key, stage, detail) of every record rejected for ``reason``, file by file."""
    for path in reject_files(out_dir):
        table = read_parquet(path, ["key", "stage", "reason", "detail"])
        found = table.filter(pc.equal(table.column("reason"), reason))
        yield from zip(*(found.column(name).to_pylist() for name in ("key", "stage", "detail")))


def reasons(out_dir: str) -> dict[str, int]:
    """Reject rows per reason over the folder, most frequent first."""
    counts: dict[str, int] = {}
    for path in reject_files(out_dir):
        for reason in read_parquet(path, ["reason"]).column("reason").to_pylist():
            counts[reason] = counts.get(reason, 0) + 1
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


def find_record(out_dir: str, key: str) -> tuple[dict, bytes | None, str | None] | None:
    """(the parquet row, the image's bytes, its extension) of a sample, or (the reject row, None,
    None) of a reject, or None when the folder has no record of ``key``."""
    for shard_id in shard_ids(out_dir):
        paths = shard_paths(out_dir, shard_id)
        table = read_parquet(paths["parquet"])
        rows = table.filter(pc.equal(table.column("key"), key)).to_pylist()
        if rows:
            members = next((members for found, members in tar_samples(paths["tar"]) if found == key), None)
            if members is None:
                return rows[0], None, None
            ext = image_ext_of(members)
            return rows[0], members[ext], ext
    for path in reject_files(out_dir):
        table = read_parquet(path)
        rows = table.filter(pc.equal(table.column("key"), key)).to_pylist()
        if rows:
            return rows[0], None, None
    return None
