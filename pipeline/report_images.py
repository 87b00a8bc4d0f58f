"""The images report.html shows, as data: URIs of small thumbnails (``dataset.thumbnails``): the
first samples of the first shards, the review queue's samples from the tars that hold them, and
the reject examples' thumbnails from their reject files. Only the files written.json names are
read: for the review queue up to REVIEW_SHOWN tars, read in parallel, each until its last wanted key.
"""

from __future__ import annotations

import base64
import tarfile
from concurrent.futures import ThreadPoolExecutor

import pyarrow as pa
import pyarrow.compute as pc

from dataset import fileio
from dataset.layout import shard_paths
from dataset.reader import META_EXTS, read_parquet
from dataset.thumbnails import thumbnail

SAMPLE_SIDE = 160  # px: the grids' thumbnails
READERS = 8  # tars read at once (object stores answer slowly, local disks don't mind)


def data_uri(jpeg: bytes | None) -> str | None:
    return f"data:image/jpeg;base64,{base64.b64encode(jpeg).decode()}" if jpeg else None


def _small(image: bytes) -> str | None:
    return data_uri(thumbnail(image, side=SAMPLE_SIDE))


def _tar_images(path: str, keys: set[str] | None, first: int = 0) -> dict[str, tuple[bytes, str]]:
    """(image bytes, caption) by key of the samples ``keys`` names (None: the first ``first``), read
    from the tar until they are all found (a sample's .json is its last member)."""
    found: dict[str, dict[str, bytes]] = {}
    with fileio.open_read(path) as stream, tarfile.open(fileobj=stream, mode="r|") as tar:
        for member in tar:
            key, _, ext = member.name.partition(".")
            if keys is None:
                if key not in found and len(found) >= first:
                    break
            elif key not in keys:
                if sum("json" in parts for parts in found.values()) == len(keys):
                    break
                continue
            found.setdefault(key, {})[ext] = tar.extractfile(member).read()
    images = {}
    for key, parts in found.items():
        image = next((data for ext, data in parts.items() if ext not in META_EXTS), None)
        if image is not None:
            images[key] = (image, parts.get("txt", b"").decode("utf-8", "replace"))
    return images


def first_samples(out_dir: str, shard_ids: list[int], count: int) -> list[tuple[str, str, str]]:
    """(key, caption, data URI) of the first ``count`` samples of the shards ``shard_ids``, in order."""
    shown: list[tuple[str, str, str]] = []
    for shard_id in shard_ids:
        images = _tar_images(shard_paths(out_dir, shard_id)["tar"], None, count - len(shown))
        shown += [(key, caption, _small(image)) for key, (image, caption) in images.items()]
        if len(shown) >= count:
            break
    return shown[:count]


def sample_thumbnails(out_dir: str, wanted: list[tuple[int, str]]) -> dict[str, str]:
    """key -> data URI of the samples ``wanted`` names as (shard id, key)."""
    by_shard: dict[int, set[str]] = {}
    for shard_id, key in wanted:
        by_shard.setdefault(shard_id, set()).add(key)
    with ThreadPoolExecutor(READERS) as pool:
        found = pool.map(lambda item: _tar_images(shard_paths(out_dir, item[0])["tar"], item[1]), by_shard.items())
        return {key: _small(image) for images in found
                for key, (image, _) in images.items()}


def reject_thumbnails(out_dir: str, examples: list[dict]) -> dict[tuple[str, str], str]:
    """(file, key) -> data URI of the reject examples that have a thumbnail in their file."""
    by_file: dict[str, set[str]] = {}
    for row in examples:
        if row.get("thumbnail"):
            by_file.setdefault(row["file"], set()).add(row["key"])
    found = {}
    for name, keys in by_file.items():
        table = read_parquet(fileio.join(out_dir, name), ["key", "thumbnail"])
        table = table.filter(pc.is_in(table.column("key"), value_set=pa.array(sorted(keys), pa.string())))
        for key, jpeg in zip(table.column("key").to_pylist(), table.column("thumbnail").to_pylist()):
            if jpeg:
                found[(name, key)] = data_uri(jpeg)
    return found

