"""Drop samples from a written shard: the second passes over the shards (the concept-frequency
cut, the top-fraction CLIP cut, exact image dedup) use this.

A pass is idempotent, so a killed run that starts again finishes it: the reject rows are written
first, under a file of the pass's own, and a shard is then rewritten without every key in that
file. Samples already in the file are not judged again.
"""

from __future__ import annotations

import io
import tarfile
from typing import Callable

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from filters.record import reject
from pipeline import fileio
from pipeline.funnel import counter_name
from pipeline.metrics import count
from pipeline.schema import REJECT_SCHEMA, SAMPLE_SCHEMA, reject_row
from pipeline.shard_builder import shard_paths, write_parquet, write_table


def read_rows(path: str) -> list[dict]:
    with fileio.open_read(path) as stream:
        return pq.read_table(stream).to_pylist()


def rows_if_any(path: str) -> list[dict]:
    return read_rows(path) if fileio.exists(path) else []


def column_if_any(path: str, column: str) -> list:
    """One column of a shard's parquet or reject file; empty when the file is not there."""
    if not fileio.exists(path):
        return []
    with fileio.open_read(path) as stream:
        return pq.read_table(stream, columns=[column]).column(column).to_pylist()


def _rewrite_tar(path: str, drop: set[str]) -> None:
    with fileio.open_read(path) as source, fileio.atomic_write(path) as target:
        with tarfile.open(fileobj=source, mode="r|") as reader, \
                tarfile.open(fileobj=target, mode="w|", format=tarfile.USTAR_FORMAT) as writer:
            for member in reader:
                if member.name.partition(".")[0] in drop:
                    continue
                data = reader.extractfile(member).read() if member.isfile() else None
                writer.addfile(member, io.BytesIO(data) if data is not None else None)


def drop_from_shard(out_dir: str, shard_id: int, rejects_path: str,
                    judge: Callable[[list[dict]], list[dict]]) -> int:
    """Reject what ``judge`` (samples not yet judged -> reject rows) picks, then rewrite the shard
    without every sample in ``rejects_path``; returns how many that file holds."""
    paths = shard_paths(out_dir, shard_id)
    samples = read_rows(paths["parquet"])
    existing = rows_if_any(rejects_path)
    judged = {row["key"] for row in existing}
    fresh = judge([sample for sample in samples if sample["key"] not in judged])
    if fresh:
        existing += fresh
        write_parquet(rejects_path, existing, REJECT_SCHEMA)
    dropped = {row["key"] for row in existing}
    kept = [row for row in samples if row["key"] not in dropped]
    if len(kept) < len(samples):
        _rewrite_tar(paths["tar"], dropped)
        write_parquet(paths["parquet"], kept, SAMPLE_SCHEMA)
    if dropped and fileio.exists(paths["embeddings"]):  # checked on its own: a killed rewrite may have left it
        with fileio.open_read(paths["embeddings"]) as stream:
            embeddings = pq.read_table(stream)
        keep = pa.array([key not in dropped for key in embeddings.column("key").to_pylist()], pa.bool_())
        if not pc.all(keep).as_py():
            write_table(paths["embeddings"], embeddings.filter(keep))
    return len(existing)


def cut_shard(out_dir: str, shard_id: int, written: int, stage: str, reason: str, rejects: str,
              check: Callable[[dict], tuple[str, str] | None] | None) -> int:
    """A whole-run cut's visit to one shard: drop the samples ``check`` fails (None: none), into
    the shard's ``rejects`` file (a ``shard_paths`` key), count the stage; returns the samples left."""
    dropped = 0
    if check is not None:
        def judge(samples: list[dict]) -> list[dict]:
            failures = ((sample, check(sample)) for sample in samples)
            return [reject_row(reject(dict(sample, image_url=sample["url"]), stage, *failure))
                    for sample, failure in failures if failure]

        dropped = drop_from_shard(out_dir, shard_id, shard_paths(out_dir, shard_id)[rejects], judge)
    count(counter_name(stage, "in"), written)
    count(counter_name(stage, "passed"), written - dropped)
    if dropped:
        count(counter_name(stage, "rejected", reason), dropped)
    return written - dropped
