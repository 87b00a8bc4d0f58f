"""Read a finished output folder: its samples with their metadata, caption, image and side-file
vectors, by key, shard by shard.

    from dataset import read_samples
    for sample in read_samples("out/"):
        sample["key"], sample["caption"], sample["image"], sample["meta"]["clip_score"]
        sample["embeddings"]["image_embedding"]   # when the run wrote embeddings
"""

from __future__ import annotations

import json
import tarfile
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from dataset import fileio
from dataset.layout import SIDE_FILES, SideFile, shard_ids, shard_paths
from dataset.side_arrays import load_side


def read_parquet(path: str, columns: list[str] | None = None) -> pa.Table:
    """A parquet file's table, read wholly on this thread.

    Not ``pq.read_table(stream)``: with a Python stream, pyarrow's pool threads can drop the last
    reference to the stream (or to buffers it returned) after the call returns; when that happens
    while the interpreter exits, the thread dies inside a C++ destructor and the process aborts
    ("terminate called without an active exception", exit -6; apache/arrow#39162). Without
    threads or pre-buffering every such reference is released here."""
    with fileio.open_read(path) as stream:
        return pq.ParquetFile(stream, pre_buffer=False).read(columns=columns, use_threads=False)


def read_rows(path: str) -> list[dict]:
    return read_parquet(path).to_pylist()


def column_if_any(path: str, column: str) -> list:
    """One column of a shard's parquet or reject file; empty when the file is not there."""
    return read_parquet(path, [column]).column(column).to_pylist() if fileio.exists(path) else []


def load_stats(path: str) -> dict | None:
    """A shard's stats marker; None when it is missing or torn (the shard is then not done)."""
    if not fileio.exists(path):
        return None
    try:
        return json.loads(fileio.read_bytes(path))
    except ValueError:
        return None


def read_side(path: str, side: SideFile) -> dict[str, dict[str, np.ndarray]]:
    """key -> {column: value} of one shard's side file; empty when the shard has none."""
    if not fileio.exists(path):
        return {}
    array = load_side(path)
    return {str(row["key"]): {name: row[name] for name in side.columns} for row in array}


def tar_samples(path: str) -> Iterator[tuple[str, dict[str, bytes]]]:
    """(key, {extension: bytes}) of each sample of a shard tar, in order."""
    members: dict[str, bytes] = {}
    current = None
    with fileio.open_read(path) as stream, tarfile.open(fileobj=stream, mode="r|") as tar:
        for member in tar:
            key, _, ext = member.name.partition(".")
            if key != current and current is not None:
                yield current, members
                members = {}
            current = key
            members[ext] = tar.extractfile(member).read()
    if current is not None:
        yield current, members


META_EXTS = ("txt", "json")  # a sample's members beside its image


def image_ext_of(members: dict[str, bytes]) -> str:
    return next(ext for ext in members if ext not in META_EXTS)


def written_records(tar_path: str) -> Iterator[dict]:
    """The records of a written shard as its steps left them: each .json row with the image, less the
    fields no step set (``final_caption`` tells a caption never hypernymized by its absence)."""
    for _, members in tar_samples(tar_path):
        record = {name: value for name, value in json.loads(members["json"]).items() if value is not None}
        record["image_url"] = record.pop("url")
        image_ext = image_ext_of(members)
        record.update(image_bytes=members[image_ext], image_ext=image_ext)
        yield record


def read_shard(out_dir: str, shard_id: int) -> Iterator[dict]:
    """The samples of one shard in shard order: ``key``, ``meta`` (the parquet row), ``caption``
    (the .txt), ``image`` (bytes), ``image_ext``, and one dict of vectors per side file it has."""
    paths = shard_paths(out_dir, shard_id)
    rows = {row["key"]: row for row in read_rows(paths["parquet"])}
    sides = {side.folder: read_side(paths[side.folder], side) for side in SIDE_FILES}
    for key, members in tar_samples(paths["tar"]):
        yield _sample(key, members, rows, sides)


def _sample(key: str, members: dict[str, bytes], rows: dict, sides: dict) -> dict:
    image_ext = image_ext_of(members)
    sample = {"key": key, "meta": rows[key], "caption": members["txt"].decode("utf-8"),
              "image": members[image_ext], "image_ext": image_ext}
    for folder, vectors in sides.items():
        if key in vectors:
            sample[folder] = vectors[key]
    return sample


def read_samples(out_dir: str) -> Iterator[dict]:
    """Every sample of a finished output folder, shard by shard (see ``read_shard``)."""
    for shard_id in shard_ids(out_dir):
        yield from read_shard(out_dir, shard_id)
