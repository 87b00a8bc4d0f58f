"""Dedup costs, one core: pHash images/s, grouping random hashes by band, the pair search inside one
band group, and SemDeDup on embeddings.

    .venv/bin/python benchmarks/dedup.py [--photos 180] [--sizes 100000] [--max-distance 10] [--planted 0.01]
                                         [--group-sizes 1600 16000] [--embeddings 100000]
                                         [--tables phash grouping pairs semdedup]

pHash: the skimage photos (300-1411 px a side), hashed from decoded images and from their JPEG q90
bytes (decode + EXIF orientation + hash, as ``load_hashes`` reads an evaluation folder).

Grouping: n uniform random 64-bit hashes with random keys, of which a fraction are planted copies of
another hash with 1..max_distance bits flipped. As the pipeline's shuffle would: a dict from (band,
bits) to its (hash, key) entries, ``near_duplicate_losers`` per group, ``merge_losers``. Every planted
copy (or its original, whichever key is larger) must be found; other losers are chance pairs of
random hashes within the distance, about C(n, 2) P(Binomial(64, 1/2) <= d), each checked. The pairs
compared grow as (d+1) n^2 / 2^(64/(d+1)): 10x the hashes cost ~100x the comparison time.

Pair search: for each of the hashes of one group in (smallest key, hash) order, the first one within
max_distance (``_first_within``), on hashes sharing their first 6 bits as in a band group: uniform
random, or one cluster (each max_distance // 2 bits from one hash, so every pair is within reach).
Rows: the numpy blocks used before faiss, faiss flat range search over one index of all earlier
hashes, over chunks of 256 (what ``_first_within`` does), and faiss's multi-index hashing
(IndexBinaryMultiHash, 4 tables of 16 bits flipping up to max_distance // 4 bits each: exact, as
one table differs in at most that many bits; uniform groups only).
"same" compares with numpy.

SemDeDup: CLIP-like embeddings with 5% planted duplicates (``benchmarks/semdedup.py``'s data), k-means
fit, assignment and the within-cluster pass (``filters.semdedup``), planted pairs with one dropped.

Each table is one function in TABLES taking the parsed arguments; another measurement is another
function added there (its name is a --tables choice).
"""

from __future__ import annotations

import argparse
import io
import math
import time
from typing import Callable, NamedTuple

import faiss
import numpy as np
import skimage.data
from PIL import Image

from filters.near_dup import (
    DEFAULT_MAX_DISTANCE,
    _codes,
    _first_within,
    bands,
    hamming,
    merge_losers,
    near_duplicate_losers,
    phash,
    phash_of_bytes,
)
from filters.semdedup import fit_centroids, nearest_centroid

MAX_PIXELS = 89_478_485
PHOTOS = ("astronaut", "camera", "chelsea", "coffee", "coins", "hubble_deep_field", "immunohistochemistry", "moon",
          "retina", "rocket", "brick", "grass")


class Table(NamedTuple):
    title: str
    header: tuple[str, ...]
    rows: list[tuple]


def images_per_second(hash_one: Callable, items: list) -> float:
    start = time.perf_counter()
    for item in items:
        hash_one(item)
    return len(items) / (time.perf_counter() - start)


def jpeg_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def phash_table(args) -> Table:
    photos = [Image.fromarray(getattr(skimage.data, name)()) for name in PHOTOS]
    images = [photos[i % len(photos)] for i in range(args.photos)]
    encoded = [jpeg_bytes(image) for image in images]
    megapixels = sum(image.width * image.height for image in images) / len(images) / 1e6
    rows = [("decoded image", f"{images_per_second(phash, images):.0f}"),
            ("JPEG q90 bytes", f"{images_per_second(lambda data: phash_of_bytes(data, MAX_PIXELS), encoded):.0f}")]
    return Table(f"pHash, {args.photos} skimage photos ({megapixels:.2f} Mpx on average), one thread",
                 ("input", "images/s"), rows)


def planted_hashes(count: int, planted_fraction: float, max_distance: int,
                   seed: int) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(hash, key) entries, and the (original key, copy key) of each planted near-duplicate."""
    rng = np.random.default_rng(seed)
    planted = round(count * planted_fraction)
    values = rng.integers(0, 2**64, size=count, dtype=np.uint64)
    originals = rng.choice(count - planted, size=planted)
    for copy, original in zip(range(count - planted, count), originals):
        mask = 0
        for bit in rng.choice(64, size=int(rng.integers(1, max_distance + 1)), replace=False):
            mask |= 1 << int(bit)
        values[copy] = values[original] ^ np.uint64(mask)
    keys = [f"{int(key):020x}" for key in rng.permutation(count)]
    entries = [(format(int(value), "016x"), key) for value, key in zip(values, keys)]
    return entries, [(keys[int(original)], keys[copy]) for copy, original in zip(range(count - planted, count),
                                                                                    originals)]


def chance_pairs(count: int, max_distance: int) -> float:
    """Expected pairs of uniform random 64-bit hashes within ``max_distance``."""
    within = sum(math.comb(64, bits) for bits in range(max_distance + 1)) / 2**64
    return math.comb(count, 2) * within


def grouping_row(count: int, args) -> tuple:
    entries, planted = planted_hashes(count, args.planted, args.max_distance, seed=count)
    start = time.perf_counter()
    groups: dict[tuple[int, int], list[tuple[str, str]]] = {}
    for entry in entries:
        for band in bands(entry[0], args.max_distance):
            groups.setdefault(band, []).append(entry)
    grouped = time.perf_counter()
    found = [loser for group in groups.values() for loser in near_duplicate_losers(group, args.max_distance)]
    compared = time.perf_counter()
    losers = merge_losers(found)
    merged = time.perf_counter()
    hash_of = {key: hash_hex for hash_hex, key in entries}
    planted_losers = {max(pair) for pair in planted}
    others = set(losers) - planted_losers
    wrong = sum(hamming(hash_of[loser], hash_of[winner]) > args.max_distance or winner >= loser
                for loser, (winner, _) in losers.items())
    pairs = sum(len(group) * (len(group) - 1) // 2 for group in groups.values())
    return (f"{count:,}", f"{len(groups):,}", f"{max(map(len, groups.values())):,}", f"{pairs / 1e6:,.0f}",
            f"{grouped - start:.1f}", f"{compared - grouped:.1f}", f"{merged - compared:.2f}",
            f"{merged - start:.1f}", f"{len(planted_losers):,}", f"{len(planted_losers & set(losers)):,}",
            f"{len(others):,}", f"{chance_pairs(count, args.max_distance):,.0f}", wrong)


def grouping_table(args) -> Table:
    header = ("hashes", "groups", "largest", "pairs M", "group s", "losers s", "merge s", "total s", "planted losers",
              "planted found", "other found", "chance pairs", "wrong")
    return Table(f"Band grouping, max_distance {args.max_distance} ({args.max_distance + 1} bands), "
                 f"{args.planted:.0%} planted near-duplicates, one thread",
                 header, [grouping_row(count, args) for count in args.sizes])


def numpy_first_within(values: np.ndarray, max_distance: int) -> np.ndarray:
    """The numpy version ``_first_within`` replaced: 256 rows of the distance matrix at a time."""
    first = np.empty(len(values), dtype=np.int64)
    for start in range(0, len(values), 256):
        stop = min(start + 256, len(values))
        distances = np.bitwise_count(values[start:stop, None] ^ values[None, :stop])
        first[start:stop] = np.argmax(distances <= max_distance, axis=1)
    return first


def one_index_first_within(values: np.ndarray, max_distance: int) -> np.ndarray:
    """256 hashes at a time: added to one faiss index, then range-searched against all in it."""
    index, first = faiss.IndexBinaryFlat(64), np.empty(len(values), dtype=np.int64)
    for start in range(0, len(values), 256):
        codes = _codes(values[start:start + 256])
        index.add(codes)
        limits, _, labels = index.range_search(codes, max_distance + 1)
        first[start:start + 256] = np.minimum.reduceat(labels, limits[:-1].astype(np.intp))
    return first


def multi_hash_first_within(values: np.ndarray, max_distance: int) -> np.ndarray:
    """faiss IndexBinaryMultiHash, 4 tables of 16 bits, each probed up to max_distance // 4 flipped bits
    (exact: some table differs in no more), queried 256 at a time against all hashes."""
    index = faiss.IndexBinaryMultiHash(64, 4, 16)
    index.nflip = max_distance // 4
    index.add(_codes(values))
    first = np.empty(len(values), dtype=np.int64)
    for start in range(0, len(values), 256):
        limits, _, labels = index.range_search(_codes(values[start:start + 256]), max_distance + 1)
        first[start:start + 256] = np.minimum.reduceat(labels, limits[:-1].astype(np.intp))
    return first


PAIR_SEARCHES = {"numpy, 256-row blocks (before)": numpy_first_within,
                 "faiss flat, one index": one_index_first_within,
                 "faiss flat, 256-hash chunks (used)": _first_within,
                 "faiss multi-hash 4 x 16 bits": multi_hash_first_within}


def band_group(count: int, max_distance: int, clustered: bool, seed: int) -> np.ndarray:
    """Distinct hashes with the same first 6 bits, shuffled; clustered: each max_distance // 2 bits
    from one hash."""
    rng = np.random.default_rng(seed)
    if not clustered:
        values = rng.integers(0, 2**58, size=count, dtype=np.uint64) | np.uint64(0b101101 << 58)
    else:
        flips = rng.random((count, 58)).argsort(axis=1)[:, :max_distance // 2]
        masks = np.bitwise_or.reduce(np.uint64(1) << flips.astype(np.uint64), axis=1)
        values = np.uint64(0xb4_0123_4567_89ab_cd) ^ masks
    return rng.permutation(np.unique(values))


def pair_search_table(args) -> Table:
    rows = []
    for count in args.group_sizes:
        for clustered in (False, True):
            values = band_group(count, args.max_distance, clustered, seed=count)
            expected = numpy_first_within(values, args.max_distance)
            for name, search in PAIR_SEARCHES.items():
                if clustered and search is multi_hash_first_within:
                    continue  # 35 s for 16,000: every pair comes back from several tables
                start = time.perf_counter()
                first = search(values, args.max_distance)
                seconds = time.perf_counter() - start
                rows.append((f"{len(values):,}", "one cluster" if clustered else "uniform", name,
                             f"{seconds * 1e3:,.1f}", f"{seconds / (len(values) ** 2 / 2) * 1e9:.2f}",
                             "yes" if np.array_equal(first, expected) else "NO"))
    return Table(f"Pair search in one band group, max_distance {args.max_distance}, one thread",
                 ("hashes", "layout", "search", "ms", "ns/pair", "same"), rows)


def semdedup_table(args) -> Table:
    """SemDeDup on CLIP-like embeddings with planted duplicates (benchmarks/semdedup.py has the data,
    and compares the k-means of scikit-learn)."""
    from semdedup import clip_like, dedup_all, scores, timed

    rows = []
    for count in args.embeddings:
        x, pairs = clip_like(count, 512, count // 20, seed=0)
        centroids, fit_s = timed(fit_centroids, x, 100, 0)
        ids, assign_s = timed(nearest_centroid, x, centroids)
        found, dedup_s = timed(dedup_all, x, ids, centroids, 0.01)
        tally = scores(found, pairs, ids)
        rows.append((f"{count:,}", f"{fit_s:.1f}", f"{assign_s:.1f}", f"{dedup_s:.1f}",
                     f"{fit_s + assign_s + dedup_s:.1f}",
                     f"{tally['planted pairs with one dropped']}/{tally['duplicates planted']}",
                     tally["dropped, not planted"]))
    return Table("SemDeDup, 512-d, k=100, eps 0.01 (faiss k-means, one thread)",
                 ("embeddings", "fit s", "assign s", "dedup s", "total s", "planted found", "false"), rows)


TABLES = {"phash": phash_table, "grouping": grouping_table, "pairs": pair_search_table, "semdedup": semdedup_table}


def print_table(table: Table) -> None:
    cells = [tuple(map(str, row)) for row in [table.header, *table.rows]]
    widths = [max(len(row[column]) for row in cells) for column in range(len(table.header))]
    print(f"\n{table.title}")
    for number, row in enumerate(cells):
        print("  ".join(cell.rjust(width) for cell, width in zip(row, widths)))
        if number == 0:
            print("  ".join("-" * width for width in widths))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=180, help="photos hashed per pHash row")
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000],
                        help="hash counts to group (10^6 takes ~35x the 10^5 time)")
    parser.add_argument("--group-sizes", type=int, nargs="+", default=[1_600, 16_000],
                        help="hashes in one band group for the pair search (10^5 hashes: ~1,600; 10^6: ~16,000)")
    parser.add_argument("--tables", nargs="+", choices=TABLES, default=list(TABLES))
    parser.add_argument("--max-distance", type=int, default=DEFAULT_MAX_DISTANCE)
    parser.add_argument("--planted", type=float, default=0.01, help="fraction of hashes that are planted copies")
    parser.add_argument("--embeddings", type=int, nargs="+", default=[100_000], help="embeddings SemDeDup sees")
    args = parser.parse_args()
    faiss.omp_set_num_threads(1)
    for name in args.tables:
        print_table(TABLES[name](args))


if __name__ == "__main__":
    main()
