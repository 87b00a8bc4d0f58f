"""Evaluation-set decontamination inside a shard, after the image step: a sample whose pHash is
within ``dedup.against_distance`` bits of an image of the evaluation set a user names is dropped
(``eval_overlap``), as COYO-700M removed near-duplicates of ImageNet, COCO and Flickr30k images
(Byeon et al. 2022). The set's hashes are looked up by band (``filters.near_dup.HashIndex``), not
scanned. Beam-free.
"""

from __future__ import annotations

import functools
import os

from filters.dedup_config import DedupConfig
from filters.image_config import ImageConfig
from filters.near_dup import HashIndex, load_hashes
from filters.record import Dropped
from filters.settings import ConfigError
from pipeline.shard_step import RecordStep

REASON = "eval_overlap"


def evaluation_set(path: str, max_distance: int, max_pixels: int) -> HashIndex:
    """The evaluation set's index, built once per process while its files stay as they are (a
    folder of images is hashed here)."""
    return _index(path, max_distance, max_pixels, _files_of(path))


def _files_of(path: str) -> tuple:
    """(name, size, modification time) of every file of ``path``: what the cached index was built from."""
    if not os.path.isdir(path):
        found = os.stat(path) if os.path.exists(path) else None
        return ((path, found.st_size, found.st_mtime_ns),) if found else ()
    return tuple((os.path.join(root, name), (found := os.stat(os.path.join(root, name))).st_size, found.st_mtime_ns)
                 for root, _, names in sorted(os.walk(path)) for name in sorted(names))


@functools.lru_cache(maxsize=2)
def _index(path: str, max_distance: int, max_pixels: int, files: tuple) -> HashIndex:
    try:
        return load_hashes(path, max_distance, max_pixels)
    except (OSError, ValueError) as err:
        raise ConfigError(f"dedup.against: {err}") from None


class DecontaminateStep(RecordStep):
    stage = "decontaminate"
    reasons = (REASON,)
    settings = {"dedup": DedupConfig, "image": ImageConfig}

    @classmethod
    def enabled(cls, config) -> bool:
        return config.dedup.against is not None

    @classmethod
    def index_of(cls, config) -> HashIndex:
        return evaluation_set(config.dedup.against, config.dedup.against_distance, config.image.max_pixels)

    @classmethod
    def preflight(cls, config) -> None:
        index = cls.index_of(config)
        if not len(index):
            raise ConfigError(f"dedup.against: no image or hash found in {config.dedup.against}")

    @classmethod
    def resolved(cls, config) -> dict[str, str]:
        """The evaluation set's hashes: a resume must find the same set, whatever its path holds now."""
        index = cls.index_of(config)
        return {"dedup.against": f"{len(index)} hashes, sha256 {index.digest()}"}

    def __init__(self, dedup: DedupConfig, image: ImageConfig):
        self.index = evaluation_set(dedup.against, dedup.against_distance, image.max_pixels)
        self.info = {"against": dedup.against, "hashes": len(self.index), "unreadable": self.index.unreadable,
                     "max_distance": dedup.against_distance}

    def process(self, record: dict) -> dict:
        found = self.index.match(record["phash"])
        if found:
            raise Dropped(REASON, f"pHash {record['phash']} is {found[1]} bits from {found[0]} of the evaluation set")
        return record
