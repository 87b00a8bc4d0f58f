"""What a job wrote, tallied from its files where they were written: each shard's parquet, stats
and reject files, and every file under rejects/pre/. Tallies add up (``add``) into one small
record, ``written.json`` in the output folder: samples, shards and reject rows, the samples'
sizes, histograms of their scores (kept and dropped), a few reject examples per reason, the steps'
reports. The launcher reads that one file at
the end of a run instead of every shard, and checks the funnel counters against it. Its size does
not grow with the run: counts, histograms, at most REJECT_EXAMPLES rows per (stage, reason) and
FIRST_SHARDS shard ids.
"""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa

from dataset import fileio
from dataset.layout import pass_rejects, shard_paths
from dataset.reader import load_stats, read_parquet

WRITTEN = "written.json"
REJECT_EXAMPLES = 3
FIRST_SHARDS = 24  # the lowest shard ids with samples: the report's thumbnails come from their tars
SIZE_BINS = [(0, 256), (256, 401), (401, 512), (512, 1024), (1024, 2048), (2048, 10**9)]
SIZE_LABELS = [f"{lo}-{hi - 1}" if hi < 10**9 else f">={lo}" for lo, hi in SIZE_BINS]
EXAMPLE_COLUMNS = ["stage", "reason", "url", "caption", "detail"]
# Histograms of the scores, kept and dropped apart: (low, high, bins); values outside go to the end bins.
SCORE_BINS = {"clip_score": (-0.1, 0.5, 30), "nsfw_score": (0.0, 1.0, 20), "watermark_score": (0.0, 1.0, 20)}


def empty() -> dict:
    return {"samples": 0, "shards": 0, "rejects": 0, "sizes": {}, "examples": {}, "steps": {}, "first_shards": [],
            "scores": {}}


def score_counts(table: pa.Table, which: str) -> dict[str, dict[str, list[int]]]:
    """column -> {``which``: counts per bin} of the SCORE_BINS columns ``table`` has values in."""
    found = {}
    for column, (low, high, bins) in SCORE_BINS.items():
        if column not in table.column_names:
            continue
        values = np.asarray([v for v in table.column(column).to_pylist() if v is not None], np.float64)
        values = values[np.isfinite(values)]
        if len(values):
            at = np.clip(((values - low) / (high - low) * bins).astype(np.int64), 0, bins - 1)
            found[column] = {which: np.bincount(at, minlength=bins).tolist()}
    return found


def size_label(width: int | None, height: int | None) -> str:
    """The bin of a sample's original size, by its smaller side in pixels."""
    side = min(width or 0, height or 0)
    return next(label for (lo, hi), label in zip(SIZE_BINS, SIZE_LABELS) if lo <= side < hi)


def _example_order(row: dict) -> tuple:
    return tuple(row[name] or "" for name in ("url", "caption", "detail"))


def reject_file(path: str) -> dict:
    """A tally of one reject file: its rows and the first examples of each (stage, reason)."""
    found = empty()
    table = read_parquet(path)
    rows = table.select(EXAMPLE_COLUMNS).to_pylist()
    found["rejects"] = len(rows)
    found["scores"] = score_counts(table, "dropped")
    for row in sorted(rows, key=_example_order):
        bucket = found["examples"].setdefault(row["stage"], {}).setdefault(row["reason"], [])
        if len(bucket) < REJECT_EXAMPLES:
            bucket.append({name: row[name] for name in ("url", "caption", "detail")})
    return found


def shard(out_dir: str, shard_id: int, reject_prefixes: tuple[str, ...], summed: dict[str, tuple[str, ...]]) -> dict:
    """A tally of one finished shard: its samples and their sizes, its reject files (the shard
    step's and those ``reject_prefixes`` name) and what the steps of ``summed`` reported in its stats."""
    paths = shard_paths(out_dir, shard_id)
    found = empty()
    if fileio.exists(paths["parquet"]):
        table = read_parquet(paths["parquet"])
        found.update(samples=table.num_rows, shards=1, first_shards=[shard_id] if table.num_rows else [],
                     scores=score_counts(table, "kept"))
        sides = zip(table.column("original_width").to_pylist(), table.column("original_height").to_pylist())
        for width, height in sides:
            label = size_label(width, height)
            found["sizes"][label] = found["sizes"].get(label, 0) + 1
    for path in [paths["rejects"], *(pass_rejects(out_dir, prefix, shard_id) for prefix in reject_prefixes)]:
        if fileio.exists(path):
            add(found, reject_file(path))
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
            bucket[:] = sorted(bucket + rows, key=_example_order)[:REJECT_EXAMPLES]
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
    return total


def read(out_dir: str) -> dict:
    """The tally the last job wrote into ``out_dir``."""
    return json.loads(fileio.read_bytes(fileio.join(out_dir, WRITTEN)))


def write(out_dir: str, total: dict) -> None:
    fileio.write_bytes(fileio.join(out_dir, WRITTEN), json.dumps(total, indent=0, ensure_ascii=False).encode())
