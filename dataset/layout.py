"""Where a run's files go (DESIGN's output folder), and the side files that sit beside the shards.

    out/shards/NNNNN.tar             WebDataset: KEY.<image ext>, KEY.txt (final caption), KEY.json
    out/shards/NNNNN.parquet         one row per sample (dataset.schema.SAMPLE_SCHEMA)
    out/shards/NNNNN_stats.json      the shard's funnel; written last, it marks the shard as done
    out/<side file>/NNNNN.npy        per-sample vectors by key, in shard order (SIDE_FILES)
    out/tokens/tokenizers.json       the tokenizers that made tokens/ (tokens.manifest)
    out/rejects/shard-NNNNN.parquet  what the shard's steps rejected
    out/rejects/<pass>-NNNNN.parquet what a whole-run pass dropped from the shard, or the model steps
                                     when they ran as a pass of their own (clip-, models-)
    out/rejects/pre/                 what the stages before the shards rejected
    out/written.json                 the job's tally of what it wrote (dataset.tally)
"""

from __future__ import annotations

from dataclasses import dataclass

from dataset import fileio

SHARDS, REJECTS, PRE_REJECTS = "shards", "rejects", "pre"


@dataclass(frozen=True)
class SideFile:
    """A per-shard numpy file beside the shards, ``out/<folder>/NNNNN.npy``: one structured array
    (``np.save`` without pickle; ``np.load(path, mmap_mode="r")`` maps it) with a row per sample that
    has the side file's values, in shard order: ``key`` and one fixed-size field per name in
    ``columns``. A step puts a sample's values in its record's ``field``, a tuple with one array or
    scalar per column; their numpy types are the file's. A shard without such samples has no file."""

    folder: str
    field: str
    columns: tuple[str, ...]


EMBEDDINGS = SideFile("embeddings", "clip_embeddings", ("image_embedding", "text_embedding"))
TOKENS = SideFile("tokens", "tokens", ("text_ids", "text_length", "image_codes"))
SIDE_FILES = (EMBEDDINGS, TOKENS)  # every side file, so whole-run passes and --overwrite treat them alike
TOKENIZERS_FILE = "tokenizers.json"  # in the tokens folder: which tokenizers made the codes


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
        paths[side.folder] = fileio.join(out_dir, side.folder, f"{name}.npy")
    return paths


def pass_rejects(out_dir: str, prefix: str, shard_id: int) -> str:
    """What the whole-run pass whose reject files start with ``prefix`` dropped from a shard."""
    return fileio.join(out_dir, REJECTS, f"{prefix}-{shard_name(shard_id)}.parquet")


def shard_ids(out_dir: str) -> list[int]:
    """The finished shards of an output folder (those whose stats marker is written), in order."""
    markers = fileio.match(fileio.join(out_dir, SHARDS, "*_stats.json"))
    return [int(path.rsplit("/", 1)[-1].split("_", 1)[0]) for path in markers]
