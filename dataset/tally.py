"""What a job wrote, tallied from its files where they were written: each shard's parquet, stats,
reject and token files, and every file under rejects/pre/. Tallies add up (``add``) into one small
record, ``written.json`` in the output folder: samples, shards and reject rows, the samples'
sizes, histograms (scores, image side and aspect, caption words; kept and dropped) and languages,
a few reject examples per reason, the review queue (the kept samples with the lowest CLIP scores),
captions the hypernymizer rewrote, token statistics, the steps' reports. The launcher reads that
one file at the end of a run instead of every shard, checks the funnel counters against it and
builds the report from it. Its size does not grow with the run: counts, histograms, at most
REJECT_EXAMPLES rows per (stage, reason), REVIEW_SHOWN and REWRITES_SHOWN rows, FIRST_SHARDS shard
ids and a count per image code.
"""

from __future__ import annotations

import json
from typing import Callable

import numpy as np
import pyarrow as pa

from dataset import fileio
from dataset.layout import TOKENS, pass_rejects, shard_paths
from dataset.reader import load_stats, read_parquet
from dataset.side_arrays import load_side
from dataset.thumbnails import REJECT_EXAMPLES, example_order

WRITTEN = "written.json"
FIRST_SHARDS = 24  # the lowest shard ids with samples: the report's thumbnails come from their tars
REVIEW_SHOWN = 40  # the review queue: kept samples with the lowest CLIP scores
REWRITES_SHOWN = 12  # captions the hypernymizer changed, by key
SIZE_BINS = [(0, 256), (256, 401), (401, 512), (512, 1024), (1024, 2048), (2048, 10**9)]
SIZE_LABELS = [f"{lo}-{hi - 1}" if hi < 10**9 else f">={lo}" for lo, hi in SIZE_BINS]
EXAMPLE_COLUMNS = ["key", "stage", "reason", "url", "caption", "detail"]
EXAMPLE_FIELDS = ("key", "url", "caption", "detail")


def _column(name: str) -> Callable[[pa.Table], np.ndarray]:
    return lambda table: np.asarray(table.column(name).to_numpy(zero_copy_only=False), np.float64)


def _sides(table: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    """Width and height of the images as found: a sample's original, a reject's as probed."""
    names = ("original_width", "original_height") if "original_width" in table.column_names else ("width", "height")
    return tuple(np.asarray(table.column(n).to_numpy(zero_copy_only=False), np.float64) for n in names)


def _aspect(table: pa.Table) -> np.ndarray:
    width, height = _sides(table)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log2(width / height)


def _smaller_side(table: pa.Table) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.log2(np.fmin(*_sides(table)))


def _caption_words(table: pa.Table) -> np.ndarray:
    return np.asarray([len((text or "").split()) for text in table.column("caption").to_pylist()], np.float64)


# Histograms, kept and dropped apart: name -> (low, high, bins, values of a table); values outside
# [low, high) go to the end bins, missing ones (a reject before its image was probed) nowhere.
HISTOGRAMS: dict[str, tuple[float, float, int, Callable[[pa.Table], np.ndarray]]] = {
    "clip_score": (-0.1, 0.5, 30, _column("clip_score")),
    "nsfw_score": (0.0, 1.0, 20, _column("nsfw_score")),
    "watermark_score": (0.0, 1.0, 20, _column("watermark_score")),
    "side": (5.0, 12.0, 14, _smaller_side),  # log2 px: 32 to 4096, half an octave per bin
    "aspect": (-2.0, 2.0, 16, _aspect),  # log2 width/height: 1:4 to 4:1
    "caption_words": (0.0, 40.0, 20, _caption_words),
}
SCORE_COLUMNS = ("clip_score", "nsfw_score", "watermark_score")


def empty() -> dict:
    return {"samples": 0, "shards": 0, "rejects": 0, "sizes": {}, "examples": {}, "steps": {}, "first_shards": [],
            "scores": {}, "langs": {}, "review": [], "rewrites": [], "tokens": {}}


def histogram_counts(table: pa.Table, which: str) -> dict[str, dict[str, list[int]]]:
    """name -> {``which``: counts per bin} of the HISTOGRAMS ``table`` has values for."""
    found = {}
    for name, (low, high, bins, values_of) in HISTOGRAMS.items():
        try:
            values = values_of(table)
        except KeyError:  # a column this table does not have (a pre-shard reject has no scores)
            continue
        values = values[np.isfinite(values)]
        if len(values):
            at = np.clip(np.floor((values - low) / (high - low) * bins).astype(np.int64), 0, bins - 1)
            found[name] = {which: np.bincount(at, minlength=bins).tolist()}
    return found


def lang_counts(table: pa.Table, which: str) -> dict[str, dict[str, int]]:
    """{``which``: {language: rows}}; a row the language ID never saw counts under "none"."""
    counts: dict[str, int] = {}
    for lang in table.column("lang").to_pylist():
        counts[lang or "none"] = counts.get(lang or "none", 0) + 1
    return {which: counts} if counts else {}


def size_label(width: int | None, height: int | None) -> str:
    """The bin of a sample's original size, by its smaller side in pixels."""
    side = min(width or 0, height or 0)
    return next(label for (lo, hi), label in zip(SIZE_BINS, SIZE_LABELS) if lo <= side < hi)


def reject_file(path: str, out_dir: str | None = None) -> dict:
    """A tally of one reject file: its rows and the first examples of each (stage, reason), each
    with the file it is in (relative to ``out_dir``) and whether it has a thumbnail there."""
    found = empty()
    table = read_parquet(path)
    rows = table.select(EXAMPLE_COLUMNS).to_pylist()
    thumbnails = (table.column("thumbnail").to_pylist() if "thumbnail" in table.column_names
                  else [None] * len(rows))
    found["rejects"] = len(rows)
    found["scores"] = histogram_counts(table, "dropped")
    found["langs"] = lang_counts(table, "dropped")
    where = path[len(out_dir):].lstrip("/") if out_dir and path.startswith(out_dir) else path
    for row, thumb in sorted(zip(rows, thumbnails), key=lambda pair: example_order(pair[0])):
        bucket = found["examples"].setdefault(row["stage"], {}).setdefault(row["reason"], [])
        if len(bucket) < REJECT_EXAMPLES:
            bucket.append({**{name: row[name] for name in EXAMPLE_FIELDS}, "file": where, "thumbnail": bool(thumb)})
    return found


def _review(table: pa.Table, shard_id: int) -> list[dict]:
    """The shard's kept samples with the lowest CLIP scores, lowest first (key breaks ties)."""
    if table.column("clip_score").null_count == table.num_rows:
        return []
    rows = [row for row in table.select(["key", "clip_score", "caption", "url"]).to_pylist()
            if row["clip_score"] is not None]
    return [dict(row, shard=shard_id) for row in sorted(rows, key=_review_order)[:REVIEW_SHOWN]]


def _review_order(row: dict) -> tuple:
    return row["clip_score"], row["key"]


def _rewrites(table: pa.Table, shard_id: int) -> list[dict]:
    """The shard's first samples (by key) whose caption the hypernymizer changed, with the entities it found."""
    columns = ["key", "caption", "caption_hypernymized", "entities"]
    rows = [row for row in table.select(columns).to_pylist()
            if row["caption_hypernymized"] is not None and row["caption_hypernymized"] != row["caption"]]
    return [dict(row, shard=shard_id) for row in sorted(rows, key=lambda row: row["key"])[:REWRITES_SHOWN]]


def _token_counts(path: str) -> dict:
    """How often each image code and each caption length occurs in a shard's token file."""
    if not fileio.exists(path):
        return {}
    array = load_side(path)
    lengths = np.bincount(array["text_length"].astype(np.int64).ravel())
    return {"codes": np.bincount(array["image_codes"].astype(np.int64).ravel()).tolist(),
            "text_lengths": {str(n): int(c) for n, c in enumerate(lengths) if c},
            "text_width": int(array["text_ids"].shape[-1]), "samples": int(len(array))}


def shard(out_dir: str, shard_id: int, reject_prefixes: tuple[str, ...], summed: dict[str, tuple[str, ...]]) -> dict:
    """A tally of one finished shard: its samples and their sizes, its reject files (the shard
    step's and those ``reject_prefixes`` name) and what the steps of ``summed`` reported in its stats."""
    paths = shard_paths(out_dir, shard_id)
    found = empty()
    if fileio.exists(paths["parquet"]):
        table = read_parquet(paths["parquet"])
        found.update(samples=table.num_rows, shards=1, first_shards=[shard_id] if table.num_rows else [],
                     scores=histogram_counts(table, "kept"), langs=lang_counts(table, "kept"),
                     review=_review(table, shard_id), rewrites=_rewrites(table, shard_id),
                     tokens=_token_counts(paths[TOKENS.folder]))
        sides = zip(table.column("original_width").to_pylist(), table.column("original_height").to_pylist())
        for width, height in sides:
            label = size_label(width, height)
            found["sizes"][label] = found["sizes"].get(label, 0) + 1
    for path in [paths["rejects"], *(pass_rejects(out_dir, prefix, shard_id) for prefix in reject_prefixes)]:
        if fileio.exists(path):
            add(found, reject_file(path, out_dir))
    stats = load_stats(paths["stats"]) or {}
    found["steps"] = {stage: [shard_id, stats[stage]] for stage in summed if stats.get(stage)}
    return found


def add(total: dict, more: dict, summed: dict[str, tuple[str, ...]] | None = None) -> dict:
    """``more`` added into ``total`` (returned). A step's report is the lowest shard's, with the
    numbers ``summed`` names for the step added up over the shards."""
    for name in ("samples", "shards", "rejects"):
        total[name] += more[name]
    for label, n in more["sizes"].items():
        total["sizes"][label] = total["sizes"].get(label, 0) + n
    for stage, reasons in more["examples"].items():
        for reason, rows in reasons.items():
            bucket = total["examples"].setdefault(stage, {}).setdefault(reason, [])
            bucket[:] = sorted(bucket + rows, key=example_order)[:REJECT_EXAMPLES]
    for stage, (shard_id, info) in more["steps"].items():
        if stage not in total["steps"]:
            total["steps"][stage] = [shard_id, dict(info)]
            continue
        first_id, first = total["steps"][stage]
        base, other = (dict(info), first) if shard_id < first_id else (first, info)
        for name in (summed or {}).get(stage, ()):
            base[name] = base.get(name, 0) + other.get(name, 0)
        total["steps"][stage] = [min(shard_id, first_id), base]
    total["first_shards"] = sorted(set(total["first_shards"]) | set(more["first_shards"]))[:FIRST_SHARDS]
    for column, parts in more.get("scores", {}).items():
        for which, counts in parts.items():
            into = total.setdefault("scores", {}).setdefault(column, {})
            into[which] = [a + b for a, b in zip(into.get(which, [0] * len(counts)), counts)]
    for which, counts in more.get("langs", {}).items():
        into = total.setdefault("langs", {}).setdefault(which, {})
        for lang, n in counts.items():
            into[lang] = into.get(lang, 0) + n
    total["review"] = sorted(total.get("review", []) + more.get("review", []), key=_review_order)[:REVIEW_SHOWN]
    total["rewrites"] = sorted(total.get("rewrites", []) + more.get("rewrites", []),
                               key=lambda row: row["key"])[:REWRITES_SHOWN]
    _add_tokens(total.setdefault("tokens", {}), more.get("tokens", {}))
    return total


def _add_tokens(total: dict, more: dict) -> None:
    if not more:
        return
    codes = total.get("codes", [])
    longer, shorter = (codes, more["codes"]) if len(codes) >= len(more["codes"]) else (more["codes"], codes)
    total["codes"] = [a + (shorter[n] if n < len(shorter) else 0) for n, a in enumerate(longer)]
    lengths = total.setdefault("text_lengths", {})
    for length, n in more["text_lengths"].items():
        lengths[length] = lengths.get(length, 0) + n
    total["text_width"] = more["text_width"]
    total["samples"] = total.get("samples", 0) + more["samples"]


def read(out_dir: str) -> dict:
    """The tally the last job wrote into ``out_dir``."""
    return json.loads(fileio.read_bytes(fileio.join(out_dir, WRITTEN)))


def write(out_dir: str, total: dict) -> None:
    fileio.write_bytes(fileio.join(out_dir, WRITTEN), json.dumps(total, indent=0, ensure_ascii=False).encode())
