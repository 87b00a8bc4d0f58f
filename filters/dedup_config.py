"""Settings of deduplication and decontamination (``dedup``): URL dedup before the downloads, exact
and perceptual image dedup and SemDeDup as whole-run passes, and an evaluation set kept out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from filters.settings import require


@dataclass
class DedupConfig:
    CHOICES: ClassVar[dict] = {"url": {"url", "pair", "none"}}

    url: str = "url"  # url: one record per image URL; pair: per (URL, alt-text); none
    image: bool = True  # drop exact duplicate images (sha256 of the original bytes)
    # Perceptual near-duplicates: pHashes (filters/near_dup.py) at most this many bits apart (of 64) are
    # one image; the smallest key is kept. None: off. 10 keeps re-encodes, resizes and recolourings
    # together and no two different photos of a 67-photo set (measured, tests/test_near_dup.py).
    near_distance: int | None = None
    # An evaluation set kept out of the data, as COYO-700M did: a folder of its images, a text file of
    # pHashes (`altcap phash`) or a parquet with a phash column; a sample within against_distance bits
    # of one is dropped (eval_overlap).
    against: str | None = None
    against_distance: int = 10
    # SemDeDup (Abbas et al. 2023) over the CLIP image embeddings: within each k-means cluster a sample
    # whose cosine similarity to a kept one exceeds 1 - semantic_eps is dropped. None: off.
    semantic_eps: float | None = None
    semantic_clusters: int = 0  # k-means clusters; 0: the square root of the samples, at least 1
    semantic_sample: int = 100_000  # at most this many embeddings fit the k-means (a deterministic sample)

    def check(self) -> None:
        require(self.near_distance is None or 0 <= self.near_distance < 64, "dedup.near_distance is in bits: 0..63")
        require(0 <= self.against_distance < 64, "dedup.against_distance is in bits: 0..63")
        require(self.semantic_eps is None or 0 < self.semantic_eps < 1, "dedup.semantic_eps must be in (0, 1)")
        require(self.semantic_clusters >= 0 and self.semantic_sample > 0,
                "dedup.semantic_clusters must be >= 0 and dedup.semantic_sample > 0")
