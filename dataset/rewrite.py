"""Drop samples from a written shard, idempotently: the whole-run passes (concept cut, CLIP top
fraction, image dedup) use this.

The reject rows are written first, under the pass's own file, and the shard is then rewritten
without every key in that file (tar, parquet and side files), so a killed run that starts again
finishes the pass. Samples already in the file are not judged again. The tar is read once: the
new one is written beside it while the images of the rejects the report may show are taken for
their thumbnails (``dataset.thumbnails``), then the reject file, then the new tar replaces the old.
"""

from __future__ import annotations

import io
import tarfile
from typing import Callable

from dataset import fileio
from dataset.layout import SIDE_FILES, shard_paths
from dataset.reader import META_EXTS, read_rows
from dataset.schema import REJECT_SCHEMA, SAMPLE_SCHEMA
from dataset.side_arrays import drop_keys
from dataset.thumbnails import example_picks, with_thumbnails
from dataset.writer import naming, write_parquet


def _rewrite_tar(path: str, drop: set[str], wanted: set[str],
                 before_commit: Callable[[dict[str, bytes]], None]) -> None:
    """The tar without the samples in ``drop``; ``before_commit`` gets the images of the ``wanted``
    keys before the new tar replaces the old."""
    images = {}
    with naming(path), fileio.open_read(path) as source, fileio.atomic_write(path) as target:
        with tarfile.open(fileobj=source, mode="r|") as reader, \
                tarfile.open(fileobj=target, mode="w|", format=tarfile.USTAR_FORMAT) as writer:
            for member in reader:
                key, _, ext = member.name.partition(".")
                data = reader.extractfile(member).read() if member.isfile() else None
                if key in wanted and ext not in META_EXTS:
                    images[key] = data
                if key not in drop:
                    writer.addfile(member, io.BytesIO(data) if data is not None else None)
        before_commit(images)


def drop_from_shard(out_dir: str, shard_id: int, rejects_path: str,
                    judge: Callable[[list[dict]], list[dict]]) -> int:
    """Reject what ``judge`` (samples not yet judged -> reject rows) picks, then rewrite the shard
    without every sample in ``rejects_path``; returns how many that file holds."""
    paths = shard_paths(out_dir, shard_id)
    samples = read_rows(paths["parquet"])
    existing = read_rows(rejects_path) if fileio.exists(rejects_path) else []
    judged = {row["key"] for row in existing}
    fresh = judge([sample for sample in samples if sample["key"] not in judged])
    rows = existing + fresh
    dropped = {row["key"] for row in rows}
    kept = [row for row in samples if row["key"] not in dropped]

    def write_rejects(images: dict[str, bytes]) -> None:
        if fresh:
            write_parquet(rejects_path, with_thumbnails(rows, images), REJECT_SCHEMA)

    if len(kept) < len(samples):
        _rewrite_tar(paths["tar"], dropped, example_picks(rows) & {row["key"] for row in fresh}, write_rejects)
        write_parquet(paths["parquet"], kept, SAMPLE_SCHEMA)
    for side in SIDE_FILES:  # each checked on its own: a killed rewrite may have left one behind
        if dropped and fileio.exists(paths[side.folder]):
            with naming(paths[side.folder]):
                drop_keys(paths[side.folder], dropped)
    return len(rows)
