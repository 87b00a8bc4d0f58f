"""Perceptual near-duplicates: 64-bit pHash, Hamming bands, and the smallest-key-wins rule.

The hash is the DCT perceptual hash of Zauner (2010, "Implementation and Benchmarking of Perceptual
Image Hash Functions"; pHash.org), exactly as ``imagehash.phash`` computes it with hash_size=8: grey,
32x32 Lanczos, 2-D DCT-II, the 8x8 lowest frequencies compared with their median. It survives
re-encoding, scaling and brightness/contrast/hue changes; a 5% crop per side already moves half of
the photos past DEFAULT_MAX_DISTANCE. Flat images all hash to 8000000000000000 (black: 0).

Near-duplicates are found without comparing all pairs. The 64 bits are cut into ``max_distance + 1``
contiguous bands; two hashes within Hamming distance d differ in at most d bits, so at least one band
is identical (the pigeonhole principle of multi-index hashing, Norouzi, Punjani and Fleet 2012). Only
hashes that share a (band index, band bits) key are compared: a shuffle of (band, hash, key) triples.

The cost is the pairs inside a band group, about (d+1) n^2 / 2^(64/(d+1)) / 2 for uniform hashes:
with d = DEFAULT_MAX_DISTANCE the bands hold 5-6 bits and a group ~n/64 of the hashes, 10^5 random
hashes make 10^9 pairs, and the pairs grow with n^2. They are compared by faiss's binary flat range
search (a popcount per pair); the rest of the per-group work is vectorised: 3 s for 10^5 hashes,
134 s for 10^6 on one core (benchmarks/dedup.py).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from typing import Iterable, Iterator

import faiss
import numpy as np
import scipy.fftpack
from PIL import Image, ImageOps

from filters.image_probe import open_image

HASH_BITS = 64
HASH_HEX_CHARS = HASH_BITS // 4
# Measured in tests/test_near_dup.py on 67 photos (skimage, ../shared/realdata, CC3M): JPEG q30, 50%
# scale, brightness/contrast x1.3 and a hue shift stay within 10 bits for 94-100% of them (5% crops
# per side: 54%), while no two different photos are within 10 (the closest pair is 12 apart).
DEFAULT_MAX_DISTANCE = 10
_DCT_SIDE = 32  # imagehash: hash_size * highfreq_factor (8 * 4)
_LOW_SIDE = 8
# Hashes per faiss index in ``_first_within``. benchmarks/dedup.py --tables pairs (one thread, 16,000 hashes
# of a band group, two runs): uniform 134-146 ms, one cluster all within reach 110-151 ms; one index of all
# earlier hashes 113-119 ms and 1.7-1.9 s (every pair in reach comes back); numpy 0.3-0.55 s; MultiHash 2.6-3.3 s.
_CHUNK = 256


def phash(image: Image.Image) -> str:
    """The 64-bit pHash of ``image`` as 16 lower-case hex digits, identical to
    ``str(imagehash.phash(image))``: any mode goes through Pillow's ``convert("L")`` as there."""
    grey = image.convert("L").resize((_DCT_SIDE, _DCT_SIDE), Image.Resampling.LANCZOS)
    dct = scipy.fftpack.dct(scipy.fftpack.dct(np.asarray(grey), axis=0), axis=1)
    low = dct[:_LOW_SIDE, :_LOW_SIDE]
    bits = (low > np.median(low)).flatten()
    return format(int("".join("1" if bit else "0" for bit in bits), 2), f"0{HASH_HEX_CHARS}x")


def phash_of_bytes(data: bytes, max_pixels: int) -> str:
    """pHash of an encoded image as displayed (EXIF orientation applied) and as the image step hashes
    it (transparency flattened on white, ``to_rgb``); the first frame of an animation. Raises
    ValueError, before decoding, for images over ``max_pixels``, and Pillow's errors for unreadable
    data. Opens the web formats the pipeline reads (``open_image``)."""
    from filters.image_transform import to_rgb  # which hashes its images with ``phash``
    try:
        image = open_image(data)
    except Image.DecompressionBombError as err:  # a GIF frame far past its canvas, refused while opening
        raise ValueError(str(err)) from None
    width, height = image.size
    if width * height > max_pixels:
        raise ValueError(f"{width}x{height} = {width * height} px > max_pixels {max_pixels}")
    return phash(to_rgb(ImageOps.exif_transpose(image)))


def hash_int(hash_hex: str) -> int:
    """The 64-bit value of a 16-hex-digit hash; ValueError for anything else."""
    if len(hash_hex) != HASH_HEX_CHARS:
        raise ValueError(f"a hash is {HASH_HEX_CHARS} hex digits, got {hash_hex!r}")
    try:
        return int(hash_hex, 16)
    except ValueError:
        raise ValueError(f"a hash is {HASH_HEX_CHARS} hex digits, got {hash_hex!r}") from None


def hamming(a: str, b: str) -> int:
    """Number of differing bits between two hex hashes."""
    return (hash_int(a) ^ hash_int(b)).bit_count()


def band_widths(max_distance: int) -> list[int]:
    """Bits per band: ``max_distance + 1`` contiguous bands, the first ones one bit wider when
    64 does not divide evenly."""
    count = _checked_distance(max_distance) + 1
    base, wider = divmod(HASH_BITS, count)
    return [base + 1] * wider + [base] * (count - wider)


def bands(hash_hex: str, max_distance: int) -> list[tuple[int, int]]:
    """(band index, band bits as an int) for each band, most significant bits first. Two hashes
    within ``max_distance`` share at least one pair (pigeonhole; Norouzi et al. 2012)."""
    return _bands_of_int(hash_int(hash_hex), band_widths(max_distance))


def _bands_of_int(value: int, widths: list[int]) -> list[tuple[int, int]]:
    out, shift = [], HASH_BITS
    for index, width in enumerate(widths):
        shift -= width
        out.append((index, (value >> shift) & ((1 << width) - 1)))
    return out


def near_duplicate_losers(entries: Iterable[tuple[str, str]], max_distance: int) -> list[tuple[str, str, int]]:
    """(loser key, winner key, distance) for every key with another entry within ``max_distance``
    whose key is smaller; the winner is the smallest such key. Sorted by loser key, and the same
    whatever the order of ``entries`` (pairs of (phash, key), e.g. one band group).

    The rule is "drop a sample when a near-duplicate with a smaller key exists". In a chain A~B, B~C
    (A < B < C, A not ~ C) both B and C go, although C is not near A: the rule needs only pairs, no
    connected components, so it runs as a shuffle of (band, hash, key) triples, one group at a time.
    """
    _checked_distance(max_distance)
    entries = list(entries)  # a shuffle hands a group over as an iterable
    if not entries:
        return []
    values = _hash_values([hash_hex for hash_hex, _ in entries])
    keys = [key for _, key in entries]
    key_names = sorted(set(keys))
    key_ranks = _ranks(keys, key_names)
    distinct, distinct_index = np.unique(values, return_inverse=True)
    smallest_rank = np.full(len(distinct), len(key_names))
    np.minimum.at(smallest_rank, distinct_index, key_ranks)
    winners = _winners(distinct, smallest_rank, max_distance)[distinct_index]
    winner_ranks = smallest_rank[winners]
    distances = np.bitwise_count(values ^ distinct[winners])
    loses = winner_ranks < key_ranks
    return _best_per_loser(key_names, key_ranks[loses], winner_ranks[loses], distances[loses])


def _ranks(keys: list[str], sorted_names: list[str]) -> np.ndarray:
    rank = {name: index for index, name in enumerate(sorted_names)}
    return np.fromiter(map(rank.__getitem__, keys), dtype=np.int64, count=len(keys))


def _winners(distinct: np.ndarray, smallest_rank: np.ndarray, max_distance: int) -> np.ndarray:
    """For each distinct hash, the index of the first distinct hash within ``max_distance`` in the
    order (smallest key, hash): itself when none comes earlier."""
    ranking = np.lexsort((distinct, smallest_rank))
    winners = np.empty_like(ranking)
    winners[ranking] = ranking[_first_within(distinct[ranking], max_distance)]
    return winners


def _best_per_loser(key_names: list[str], losers: np.ndarray, winners: np.ndarray,
                    distances: np.ndarray) -> list[tuple[str, str, int]]:
    """(loser key, winner key, distance) from key ranks, one per loser: the smallest winner, then the
    smallest distance; sorted by loser."""
    order = np.lexsort((distances, winners, losers))
    order = order[np.diff(losers[order], prepend=-1) != 0]  # the first row of each loser
    return [(key_names[loser], key_names[winner], distance) for loser, winner, distance
            in zip(losers[order].tolist(), winners[order].tolist(), distances[order].tolist())]


def _hash_values(hashes: list[str]) -> np.ndarray:
    """uint64 values of hex hashes: decoded at once when all are 16 hex digits, else by ``hash_int``
    one by one (its ValueError for what is not a hash)."""
    try:
        raw = bytes.fromhex("".join(hashes))  # skips whitespace: then fewer than 8 bytes a hash come out
    except (TypeError, ValueError):
        raw = b""
    if len(raw) == HASH_BITS // 8 * len(hashes) and set(map(len, hashes)) == {HASH_HEX_CHARS}:
        return np.frombuffer(raw, dtype=">u8").astype(np.uint64)
    return np.array([hash_int(hash_hex) for hash_hex in hashes], dtype=np.uint64)


def _checked_distance(max_distance: int) -> int:
    if not 0 <= max_distance < HASH_BITS:
        raise ValueError(f"max_distance must be in 0..{HASH_BITS - 1}, got {max_distance}")
    return max_distance


def _first_within(values: np.ndarray, max_distance: int) -> np.ndarray:
    """For each position i, the first position j <= i whose value is within ``max_distance`` bits
    (i itself when none earlier is). Chunk by chunk of ``_CHUNK`` values, faiss range-searches the
    positions not yet resolved, so that each position stops at the first chunk holding a match (at
    the latest its own: a later match in it never beats the distance-0 match with itself)."""
    first = np.full(len(values), -1, dtype=np.int64)
    with _one_faiss_thread():
        for start in range(0, len(values), _CHUNK):
            chunk = faiss.IndexBinaryFlat(HASH_BITS)
            chunk.add(_codes(values[start:start + _CHUNK]))
            open_positions = start + np.flatnonzero(first[start:] < 0)
            # faiss/utils/hamming.cpp hamming_range_search keeps a distance only when "dis < radius"
            limits, _, labels = chunk.range_search(_codes(values[open_positions]), max_distance + 1)
            matched = np.flatnonzero(limits[1:] > limits[:-1])
            if len(matched):
                first[open_positions[matched]] = start + np.minimum.reduceat(labels, limits[matched].astype(np.intp))
    return first


@contextlib.contextmanager
def _one_faiss_thread() -> Iterator[None]:
    """faiss without OpenMP threads in the calling thread only (omp_set_num_threads sets that thread's
    own setting): a pipeline already runs groups in parallel, and OpenMP teams on busy cores wait for
    each other. Measured: 400 groups of 1-1,500 hashes, 2 cores, one other busy process: 1.8-16 s
    with 2 threads, 0.4-0.8 s with 1 (numpy before faiss: 0.4-1.2 s)."""
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(threads)


def _codes(values: np.ndarray) -> np.ndarray:
    """uint64 hashes as faiss's binary codes: 8 bytes a row (the byte order does not change a Hamming distance)."""
    return np.ascontiguousarray(values, dtype=np.uint64).view(np.uint8).reshape(-1, HASH_BITS // 8)


def merge_losers(found: Iterable[tuple[str, str, int]]) -> dict[str, tuple[str, int]]:
    """Loser key -> (winner key, distance) over the losers of several band groups: the smallest
    winner key, then the smallest distance, whatever the order the groups come in."""
    merged: dict[str, tuple[str, int]] = {}
    for loser, winner, distance in found:
        if loser not in merged or (winner, distance) < merged[loser]:
            merged[loser] = (winner, distance)
    return merged


class HashIndex:
    """A set of hashes (an evaluation set) that answers "is this hash within ``max_distance`` of one
    of them?" through band lookups, never a scan of the whole set."""

    def __init__(self, hashes: Iterable[str], max_distance: int) -> None:
        self.max_distance = max_distance
        self._widths = band_widths(max_distance)
        self._values = {hash_int(hash_hex) for hash_hex in hashes}
        self._by_band: dict[tuple[int, int], list[int]] = {}
        for value in sorted(self._values):
            for band in _bands_of_int(value, self._widths):
                self._by_band.setdefault(band, []).append(value)
        self.unreadable = 0  # files that ``load_hashes`` could not hash

    def __len__(self) -> int:
        return len(self._values)

    def digest(self) -> str:
        """Names the set of hashes (16 hex digits of a SHA-256), whatever order they came in."""
        return hashlib.sha256(b"".join(value.to_bytes(8, "big") for value in sorted(self._values))).hexdigest()[:16]

    def match(self, hash_hex: str) -> tuple[str, int] | None:
        """(the smallest indexed hash within ``max_distance``, its distance), or None."""
        value = hash_int(hash_hex)
        near = [candidate for band in _bands_of_int(value, self._widths)
                for candidate in self._by_band.get(band, ())
                if (candidate ^ value).bit_count() <= self.max_distance]
        if not near:
            return None
        best = min(near)
        return format(best, f"0{HASH_HEX_CHARS}x"), (best ^ value).bit_count()


def load_hashes(path: str, max_distance: int, max_pixels: int) -> HashIndex:
    """The index of an evaluation set: a folder of images (recursively; files that cannot be hashed,
    over ``max_pixels`` included, are skipped and counted in ``unreadable``), a ``.parquet`` file with
    a ``phash`` column, or a text file with one hash per line (blank lines and ``#`` comments allowed)."""
    if os.path.isdir(path):
        hashes, unreadable = _folder_hashes(path, max_pixels)
    elif path.endswith(".parquet"):
        hashes, unreadable = _parquet_hashes(path), 0
    else:
        hashes, unreadable = _text_hashes(path), 0
    index = HashIndex(hashes, max_distance)
    index.unreadable = unreadable
    return index


def files_under(path: str) -> list[str]:
    """A file, or every file under a folder in a stable order."""
    if not os.path.isdir(path):
        return [path]
    return [os.path.join(root, name) for root, _, names in sorted(os.walk(path)) for name in sorted(names)]


def file_hashes(paths: list[str], max_pixels: int) -> Iterator[tuple[str, str | None]]:
    """(path, pHash) of each file; None for a file that does not read as an image."""
    for path in paths:
        with open(path, "rb") as file:
            data = file.read()
        try:
            yield path, phash_of_bytes(data, max_pixels)
        except MemoryError:
            raise
        except Exception:  # Pillow's plugins raise many types on files that are not images
            yield path, None


def _folder_hashes(folder: str, max_pixels: int) -> tuple[list[str], int]:
    found = [phash for _, phash in file_hashes(files_under(folder), max_pixels)]
    hashes = [phash for phash in found if phash is not None]
    return hashes, len(found) - len(hashes)


def _text_hashes(path: str) -> list[str]:
    hashes = []
    with open(path, encoding="utf-8") as file:
        for number, line in enumerate(file, start=1):
            text = line.split("#", 1)[0].strip().lower()
            if text:
                hashes.append(_checked(text, f"{path} line {number}"))
    return hashes


def _parquet_hashes(path: str) -> list[str]:
    import pyarrow.parquet as pq

    with open(path, "rb") as file:
        column = pq.read_table(file, columns=["phash"]).column("phash").to_pylist()
    return [_checked(str(value).lower(), f"{path} row {row}") for row, value in enumerate(column)]


def _checked(hash_hex: str, where: str) -> str:
    try:
        hash_int(hash_hex)
    except ValueError as err:
        raise ValueError(f"{where}: {err}") from None
    return hash_hex
