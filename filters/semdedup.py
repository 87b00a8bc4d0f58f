"""Semantic deduplication of image embeddings: SemDeDup (Abbas et al. 2023, "SemDeDup: Data-efficient
learning at web-scale through semantic deduplication", arXiv:2303.09540; facebookresearch/SemDeDup).

Spherical k-means over L2-normalised CLIP image embeddings; inside each cluster, samples are visited
from the least to the most similar to the centroid (the paper's default ``keep_hard``), and a sample
whose cosine similarity to an already kept one exceeds ``1 - eps`` is dropped as its duplicate.
The reference code drops a sample similar to ANY earlier one (kept or dropped); comparing with kept
samples only keeps the end of a chain a~b~c whose ends are not duplicates, and names for each drop
the kept sample that stands for it.
"""

from __future__ import annotations

import faiss
import numpy as np

# facebookresearch/SemDeDup clustering_configs.yaml: faiss.Kmeans(niter=100, spherical=True)
KMEANS_ITERATIONS = 100
# benchmarks/semdedup.py, 10^5 x 512, k=100, 2 cores: faiss 3.4 s; sklearn MiniBatchKMeans 24-34 s, KMeans 90 s.
DEFAULT_BLOCK = 1024  # rows of the similarity matrix held at once: 1024 x n float32, 40 MB for n = 10^4
ASSIGN_ROWS = 8192  # embeddings scored against all centroids at once
# float32 matrix products pick candidates; float64 dot products decide. On unit vectors the float32
# error is ~1e-6, so a candidate margin of 1e-4 misses no pair the exact product puts over the threshold.
CANDIDATE_MARGIN = 1e-4


def normalized(embeddings: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm, float32; zero rows stay zero."""
    x = np.asarray(embeddings, dtype=np.float32)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)


def fit_centroids(sample: np.ndarray, clusters: int, seed: int) -> np.ndarray:
    """Spherical k-means centroids (float32, unit rows) of a sample of embeddings; at most one
    cluster per sample row. faiss with a fixed seed gives the same centroids on every call."""
    x = np.ascontiguousarray(normalized(sample))
    if x.ndim != 2 or len(x) == 0:
        raise ValueError("sample must be a non-empty (n, d) array")
    if clusters < 1:
        raise ValueError("clusters must be >= 1")
    k = min(clusters, len(x))
    kmeans = faiss.Kmeans(x.shape[1], k, niter=KMEANS_ITERATIONS, seed=seed, spherical=True,
                          max_points_per_centroid=len(x), min_points_per_centroid=1)  # the caller bounds the sample
    kmeans.train(x)
    return normalized(kmeans.centroids)


def nearest_centroid(embeddings: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Index of the most cosine-similar centroid of each embedding (ties: the lowest index)."""
    x = np.asarray(embeddings, dtype=np.float32)
    units = normalized(centroids)
    ids = np.empty(len(x), dtype=np.int64)
    for start in range(0, len(x), ASSIGN_ROWS):
        ids[start:start + ASSIGN_ROWS] = np.argmax(x[start:start + ASSIGN_ROWS] @ units.T, axis=1)
    return ids


def paper_order(keys: list[str], x: np.ndarray, centroid: np.ndarray) -> np.ndarray:
    """Row order from the least to the most similar to the centroid, ties by key: the first of a
    group of duplicates is the one kept (SemDeDup's ``keep_hard``). Row-wise float64 sums, so a
    row's similarity does not depend on where it sits in the input."""
    to_centroid = (x.astype(np.float64) * normalized(centroid).astype(np.float64)).sum(axis=1)
    return np.lexsort((np.asarray(keys, dtype=str), to_centroid))


def earlier_candidates(x: np.ndarray, start: int, stop: int, threshold: float) -> np.ndarray:
    """(stop - start, stop) mask: row ``start + r`` is near column ``c < start + r``."""
    near = x[start:stop] @ x[:stop].T > threshold - CANDIDATE_MARGIN
    rows = np.arange(stop - start)
    near[:, start:] &= rows[None, :] < rows[:, None]
    return near


def greedy_duplicates(x: np.ndarray, threshold: float, block_size: int) -> list[tuple[int, int, float]]:
    """(dropped row, kept row, cosine) visiting rows in order: a row is dropped when its cosine to
    an earlier kept row exceeds ``threshold`` (the most similar kept row, the earliest on ties)."""
    kept = np.ones(len(x), dtype=bool)
    duplicates = []
    for start in range(0, len(x), block_size):
        stop = min(start + block_size, len(x))
        near = earlier_candidates(x, start, stop, threshold)
        for offset in np.flatnonzero(near.any(axis=1)):
            row = start + int(offset)
            candidates = np.flatnonzero(near[offset])
            candidates = candidates[kept[candidates]]
            if len(candidates) == 0:
                continue
            cosines = (x[candidates].astype(np.float64) * x[row].astype(np.float64)).sum(axis=1)
            best = int(np.argmax(cosines))
            if cosines[best] > threshold:
                kept[row] = False
                duplicates.append((row, int(candidates[best]), float(cosines[best])))
    return duplicates


def semantic_duplicates(keys: list[str], embeddings: np.ndarray, centroid: np.ndarray, eps: float,
                        block_size: int = DEFAULT_BLOCK) -> list[tuple[str, str, float]]:
    """(dropped key, kept key it duplicates, cosine) inside ONE cluster, for every sample whose cosine
    to an already kept sample exceeds ``1 - eps``; samples are visited in SemDeDup's order, so the
    result does not depend on the input order. Memory O(block_size x n)."""
    if not 0 < eps < 1:
        raise ValueError(f"eps must be in (0, 1), got {eps}")
    if block_size < 1:
        raise ValueError("block_size must be >= 1")
    if len(keys) != len(embeddings):
        raise ValueError(f"{len(keys)} keys for {len(embeddings)} embeddings")
    if len(set(keys)) != len(keys):
        raise ValueError("keys must be unique")
    if len(keys) < 2:
        return []
    x = normalized(embeddings)
    order = paper_order(keys, x, centroid)
    found = greedy_duplicates(np.ascontiguousarray(x[order]), 1.0 - eps, block_size)
    return [(keys[order[dropped]], keys[order[kept]], cosine) for dropped, kept, cosine in found]
