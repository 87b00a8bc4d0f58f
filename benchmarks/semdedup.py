"""SemDeDup speed (filters/semdedup.py) on synthetic CLIP-like image embeddings with planted
semantic duplicates: the k-means fit per library, the assignment to centroids, the within-cluster
deduplication, and how many planted duplicates were found.

The embeddings mimic CLIP's geometry: every row shares a common direction (CLIP image embeddings
lie in a narrow cone, pairwise cosine ~0.5), rows of one topic share a topic direction, and the
rest is noise; a planted duplicate is a copy of a row turned by a small angle (cosine 0.995-0.999).
"faiss" is ``fit_centroids`` (faiss.Kmeans, spherical); the scikit-learn fits run on the same
normalised rows with the same iteration cap and have their centroids normalised afterwards.
"mean cos" is the mean cosine of a row to its nearest centroid (higher is a tighter clustering).

    .venv/bin/python benchmarks/semdedup.py [--n 100000] [--dim 512] [--clusters 100] [--eps 0.01]
                                            [--fitters faiss,minibatch,kmeans]
"""

from __future__ import annotations

import argparse
import contextlib
import time

import numpy as np
from sklearn.cluster import KMeans, MiniBatchKMeans
from threadpoolctl import threadpool_limits

from filters.semdedup import KMEANS_ITERATIONS, fit_centroids, nearest_centroid, normalized, semantic_duplicates

CONE, TOPIC = 0.45, 0.30  # squared weights: same-topic cosine ~0.75, other topics ~0.45
ROWS_PER_TOPIC = 500


def turned(base: np.ndarray, cosines: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Unit rows at exactly ``cosines`` to the unit rows ``base``, in random directions."""
    noise = rng.standard_normal(base.shape).astype(np.float32)
    noise -= (noise * base).sum(axis=1, keepdims=True) * base
    noise = normalized(noise)
    return normalized(base * cosines[:, None] + noise * np.sqrt(1 - cosines**2)[:, None])


def clip_like(n: int, dim: int, planted: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(n unit rows, (planted, 2) pairs of row indices: the original and its duplicate)."""
    rng = np.random.default_rng(seed)
    originals = n - planted
    cone = normalized(rng.standard_normal(dim))
    topics = normalized(rng.standard_normal((max(1, originals // ROWS_PER_TOPIC), dim)))
    noise = normalized(rng.standard_normal((originals, dim)))
    rows = normalized(np.sqrt(CONE) * cone + np.sqrt(TOPIC) * topics[rng.integers(0, len(topics), originals)]
                      + np.sqrt(1 - CONE - TOPIC) * noise)
    bases = rng.choice(originals, planted, replace=False)
    copies = turned(rows[bases], rng.uniform(0.995, 0.999, planted).astype(np.float32), rng)
    return np.concatenate([rows, copies]), np.stack([bases, np.arange(originals, n)], axis=1)


def fit_sklearn(x: np.ndarray, clusters: int, seed: int, minibatch: bool) -> np.ndarray:
    model = (MiniBatchKMeans(clusters, max_iter=KMEANS_ITERATIONS, n_init=1, batch_size=4096, random_state=seed)
             if minibatch else KMeans(clusters, max_iter=KMEANS_ITERATIONS, n_init=1, random_state=seed))
    return normalized(model.fit(x).cluster_centers_)


FITTERS = {
    "faiss": lambda x, k, seed: fit_centroids(x, k, seed),
    "minibatch": lambda x, k, seed: fit_sklearn(x, k, seed, minibatch=True),
    "kmeans": lambda x, k, seed: fit_sklearn(x, k, seed, minibatch=False),
}


def timed(function, *args):
    start = time.perf_counter()
    result = function(*args)
    return result, time.perf_counter() - start


def mean_cosine(x: np.ndarray, centroids: np.ndarray) -> float:
    ids = nearest_centroid(x, centroids)
    return float((x * centroids[ids]).sum(axis=1).mean())


def dedup_all(x: np.ndarray, ids: np.ndarray, centroids: np.ndarray, eps: float) -> list[tuple[str, str, float]]:
    keys = [f"{i:09d}" for i in range(len(x))]
    order = np.argsort(ids, kind="stable")
    found = []
    for members in np.split(order, np.cumsum(np.bincount(ids, minlength=len(centroids)))[:-1]):
        if len(members) > 1:
            found += semantic_duplicates([keys[i] for i in members], x[members], centroids[ids[members[0]]], eps)
    return found


def scores(found: list[tuple[str, str, float]], pairs: np.ndarray, ids: np.ndarray) -> dict[str, int]:
    dropped = {int(key) for key, _, _ in found}
    planted_rows = set(pairs.ravel().tolist())
    one_dropped = sum((int(a) in dropped) != (int(b) in dropped) for a, b in pairs)
    split = int((ids[pairs[:, 0]] != ids[pairs[:, 1]]).sum())
    return {"duplicates planted": len(pairs), "planted pairs with one dropped": one_dropped,
            "planted pairs split by clusters": split, "dropped in all": len(dropped),
            "dropped, not planted": len(dropped - planted_rows)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--clusters", type=int, default=100)
    parser.add_argument("--eps", type=float, default=0.01)
    parser.add_argument("--planted", type=float, default=0.05, help="share of rows that are planted duplicates")
    parser.add_argument("--fitters", default="faiss,minibatch,kmeans", help=f"comma list of {', '.join(FITTERS)}")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--blas-threads", type=int, help="cap BLAS threads (threadpoolctl); default: the library's")
    args = parser.parse_args()
    with threadpool_limits(args.blas_threads, user_api="blas") if args.blas_threads else contextlib.nullcontext():
        run(args)


def run(args: argparse.Namespace) -> None:

    x, pairs = clip_like(args.n, args.dim, int(args.n * args.planted), args.seed)
    print(f"{args.n} x {args.dim} float32, k={args.clusters}, eps={args.eps}, {len(pairs)} planted duplicates, "
          f"k-means iterations <= {KMEANS_ITERATIONS}, BLAS threads {args.blas_threads or 'default'}")
    print(f"{'step':34s} {'seconds':>9s} {'mean cos':>9s}")
    fits, fit_seconds = {}, {}
    for name in args.fitters.split(","):
        fits[name], fit_seconds[name] = timed(FITTERS[name], x, args.clusters, args.seed)
        print(f"{'k-means fit, ' + name:34s} {fit_seconds[name]:9.2f} {mean_cosine(x, fits[name]):9.4f}", flush=True)
    chosen = "faiss" if "faiss" in fits else next(iter(fits))
    ids, assign_seconds = timed(nearest_centroid, x, fits[chosen])
    found, dedup_seconds = timed(dedup_all, x, ids, fits[chosen], args.eps)
    sizes = np.bincount(ids, minlength=len(fits[chosen]))
    print(f"{'assignment (nearest_centroid)':34s} {assign_seconds:9.2f}")
    print(f"{'within-cluster dedup':34s} {dedup_seconds:9.2f}   clusters: largest {sizes.max()}, "
          f"median {int(np.median(sizes))}")
    print(f"{'total (fit + assign + dedup)':34s} "
          f"{fit_seconds[chosen] + assign_seconds + dedup_seconds:9.2f}")
    for name, value in scores(found, pairs, ids).items():
        print(f"{name:34s} {value:9d}")


if __name__ == "__main__":
    main()
