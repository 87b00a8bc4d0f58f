"""Where a run's files go (DESIGN's output folder), and the side files that sit beside the shards.

    out/shards/NNNNN.tar             WebDataset: KEY.<image ext>, KEY.txt (final caption), KEY.json
    out/shards/NNNNN.parquet         one row per sample (dataset.schema.SAMPLE_SCHEMA)
    out/shards/NNNNN_stats.json      the shard's funnel; written last, it marks the shard as done
    out/<side file>/NNNNN.parquet    per-sample vectors by key, in shard order (SIDE_FILES)
    out/rejects/shard-NNNNN.parquet  what the shard's steps rejected
    out/rejects/<pass>-NNNNN.parquet what a whole-run pass dropped from the shard
    out/rejects/pre/                 what the stages before the shards rejected
"""

from __future__ import annotations

from dataclasses import dataclass

from dataset import fileio

SHARDS, REJECTS, PRE_REJECTS = "shards", "rejects", "pre"


@dataclass(frozen=True)
class SideFile:
    """A per-shard parquet beside the shards: a ``key`` column and one fixed-size vector column per
    name in ``columns``, one row per sample that has them, in shard order. A step puts the vectors
    of a sample in its record's ``field``, a tuple with one array per column."""

    folder: str
    field: str
    columns: tuple[str, ...]
    dtype: str  # numpy / Arrow type of the vectors


EMBEDDINGS = SideFile("embeddings", "clip_embeddings", ("image_embedding", "text_embedding"), "float16")
SIDE_FILES = (EMBEDDINGS,)  # every side file, so whole-run passes and --overwrite treat them alike


def shard_name(shard_id: int) -> str:
    return f"{shard_id:05d}"


def shard_paths(out_dir: str, shard_id: int) -> dict[str, str]:
    """The shard's own files: ``tar``, ``parquet``, ``stats``, ``rejects`` and each side file's folder."""
    name = shard_name(shard_id)
    shards = fileio.join(out_dir, SHARDS)
    paths = {
        "tar": fileio.join(shards, f"{name}.tar"),
        "parquet": fileio.join(shards, f"{name}.parquet"),
        "stats": fileio.join(shards, f"{name}_stats.json"),
        "rejects": fileio.join(out_dir, REJECTS, f"shard-{name}.parquet"),
    }
    for side in SIDE_FILES:
        paths[side.folder] = fileio.join(out_dir, side.folder, f"{name}.parquet")
    return paths


def pass_rejects(out_dir: str, prefix: str, shard_id: int) -> str:
    """What the whole-run pass whose reject files start with ``prefix`` dropped from a shard."""
    return fileio.join(out_dir, REJECTS, f"{prefix}-{shard_name(shard_id)}.parquet")


def shard_ids(out_dir: str) -> list[int]:
    """The finished shards of an output folder (those whose stats marker is written), in order."""
    markers = fileio.match(fileio.join(out_dir, SHARDS, "*_stats.json"))
    return [int(path.rsplit("/", 1)[-1].split("_", 1)[0]) for path in markers]
