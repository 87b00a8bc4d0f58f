"""Build one output shard: make every record's sample concurrently, write the shard atomically.

A shard is the unit of output and of resume. Its files are written under temporary names and
renamed when complete; ``NNNNN_stats.json`` is written last and marks the shard as done. A later
run that finds it, for the same set of input keys, reuses the shard instead of downloading again.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import tarfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from filters.record import CLIP, DOWNLOAD, HYPERNYMIZE, IMAGE, is_rejected
from pipeline import fileio
from pipeline.clip_step import EMBEDDINGS, ClipStep, scored
from pipeline.schema import REJECT_SCHEMA, SAMPLE_SCHEMA, embedding_schema, reject_row, sample_row, table

log = logging.getLogger("altcap")

TAR_MTIME = 0  # fixed member times keep shards byte-identical between runs
PROGRESS_EVERY_S = 10.0


def shard_name(shard_id: int) -> str:
    return f"{shard_id:05d}"


def shard_paths(out_dir: str, shard_id: int) -> dict:
    name = shard_name(shard_id)
    shards = fileio.join(out_dir, "shards")
    return {
        "tar": fileio.join(shards, f"{name}.tar"),
        "parquet": fileio.join(shards, f"{name}.parquet"),
        "stats": fileio.join(shards, f"{name}_stats.json"),
        "rejects": fileio.join(out_dir, "rejects", f"shard-{name}.parquet"),
        "concept_rejects": fileio.join(out_dir, "rejects", f"concept-{name}.parquet"),
        "top_rejects": fileio.join(out_dir, "rejects", f"top-{name}.parquet"),
        "dedup_rejects": fileio.join(out_dir, "rejects", f"dedup-{name}.parquet"),
        "embeddings": fileio.join(out_dir, "embeddings", f"{name}.parquet"),
    }


def keys_digest(records: Iterable[dict]) -> str:
    """Identifies the set of input records of a shard (order-free)."""
    digest = hashlib.sha1()
    for key in sorted(r["key"] for r in records):
        digest.update(key.encode())
    return digest.hexdigest()


def record_order(record: dict) -> tuple:
    return record["key"], record.get("page_url") or "", record.get("source") or ""


def ordered_map(pool: ThreadPoolExecutor, fn: Callable, items: list, window: int) -> Iterator:
    """``map`` over a thread pool that yields in input order with at most ``window`` in flight."""
    pending = []
    upcoming = iter(items)
    for item in upcoming:
        pending.append(pool.submit(fn, item))
        if len(pending) >= window:
            break
    head = 0
    while head < len(pending):
        result = pending[head].result()
        pending[head] = None
        head += 1
        nxt = next(upcoming, None)
        if nxt is not None:
            pending.append(pool.submit(fn, nxt))
        yield result


def tar_member(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = TAR_MTIME
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


class ShardWriter:
    """Streams samples into a WebDataset tar and collects parquet rows; commits atomically."""

    def __init__(self, paths: dict):
        self.paths = paths
        self.samples: list[dict] = []
        self.rejects: list[dict] = []
        self.embedded: list[tuple[str, np.ndarray, np.ndarray]] = []  # (key, image, text)
        self._tar_context = fileio.atomic_write(paths["tar"])
        self._tar = tarfile.open(fileobj=self._tar_context.__enter__(), mode="w|",
                                 format=tarfile.USTAR_FORMAT)

    def add(self, outcome: dict) -> None:
        if is_rejected(outcome):
            self.rejects.append(reject_row(outcome))
            return
        row = sample_row(outcome)
        key = outcome["key"]
        tar_member(self._tar, f"{key}.{outcome['image_ext']}", outcome["image_bytes"])
        final = outcome.get("caption_hypernymized", outcome.get("caption"))  # the rewrite when it ran
        tar_member(self._tar, f"{key}.txt", (final or "").encode("utf-8"))
        tar_member(self._tar, f"{key}.json", json.dumps(row, ensure_ascii=False).encode("utf-8"))
        self.samples.append(row)
        if EMBEDDINGS in outcome:
            self.embedded.append((key, *outcome[EMBEDDINGS]))

    def commit(self, stats: dict) -> None:
        self._tar.close()
        self._tar_context.__exit__(None, None, None)
        write_parquet(self.paths["parquet"], self.samples, SAMPLE_SCHEMA)
        write_parquet(self.paths["rejects"], self.rejects, REJECT_SCHEMA)
        if self.embedded:
            write_table(self.paths["embeddings"], embeddings_table(self.embedded))
        fileio.write_bytes(self.paths["stats"], json.dumps(stats, indent=1).encode())

    def abort(self, err: BaseException) -> None:
        self._tar_context.__exit__(type(err), err, err.__traceback__)


def write_parquet(path: str, rows: list[dict], schema) -> None:
    write_table(path, table(rows, schema))


def write_table(path: str, data: pa.Table) -> None:
    with fileio.atomic_write(path) as stream:
        pq.write_table(data, stream, compression="zstd")


def embeddings_table(embedded: list[tuple[str, np.ndarray, np.ndarray]]) -> pa.Table:
    """(key, image vector, text vector) rows as the embeddings parquet (float16 vectors)."""
    dimension = len(embedded[0][1])

    def vectors(column: int) -> pa.Array:
        flat = np.concatenate([row[column] for row in embedded]).astype(np.float16)
        return pa.FixedSizeListArray.from_arrays(pa.array(flat, pa.float16()), dimension)

    keys = pa.array([row[0] for row in embedded], pa.string())
    return pa.Table.from_arrays([keys, vectors(1), vectors(2)], schema=embedding_schema(dimension))


def funnel_of(records_in: int, outcomes: Counter, stages_run: tuple = (DOWNLOAD, IMAGE)) -> dict:
    """Per-stage in/passed/rejected counts of one shard from (stage, reason) tallies."""
    stages = {}
    entering = records_in
    for stage in stages_run:
        rejected = {reason: n for (s, reason), n in sorted(outcomes.items()) if s == stage}
        passed = entering - sum(rejected.values())
        stages[stage] = {"in": entering, "passed": passed, "rejected": rejected}
        entering = passed
    return stages


def load_stats(path: str) -> dict | None:
    if not fileio.exists(path):
        return None
    try:
        return json.loads(fileio.read_bytes(path))
    except ValueError:
        return None  # a torn marker counts as no marker: the shard is rebuilt


class StaleShardError(RuntimeError):
    """A finished shard on disk was made from other input records than this run assigns it."""


def build_shard(shard_id: int, records: list[dict], *, out_dir: str, make_sample: Callable,
                pool: ThreadPoolExecutor, window: int, clip_step: ClipStep | None = None,
                hypernymize_step: Callable[[Iterable[dict]], Iterable[dict]] | None = None) -> dict:
    """Write shard ``shard_id`` (or reuse it when already complete) and return its stats."""
    paths = shard_paths(out_dir, shard_id)
    digest = keys_digest(records)
    stats = load_stats(paths["stats"])
    if stats is not None:
        if stats.get("keys_digest") != digest:
            raise StaleShardError(
                f"{paths['stats']} was written for other input records; the output folder holds "
                "a different run (use a new --output or --overwrite)")
        stats["reused"] = True
        return stats

    records = sorted(records, key=record_order)
    started = time.monotonic()
    outcomes: Counter = Counter()
    writer = ShardWriter(paths)
    last_report = started
    try:
        made = scored(ordered_map(pool, make_sample, records, window), clip_step)
        if hypernymize_step:
            made = hypernymize_step(made)
        for done, outcome in enumerate(made, 1):
            writer.add(outcome)
            if is_rejected(outcome):
                outcomes[(outcome["stage"], outcome["reason"])] += 1
            now = time.monotonic()
            if now - last_report >= PROGRESS_EVERY_S:
                last_report = now
                log.info("shard %s: %d/%d records, %d samples, %.0f records/s", shard_name(shard_id),
                         done, len(records), len(writer.samples), done / (now - started))
        elapsed = time.monotonic() - started
        stats = {
            "shard": shard_id,
            "keys_digest": digest,
            "records": len(records),
            "samples": len(writer.samples),
            "stages": funnel_of(len(records), outcomes, (DOWNLOAD, IMAGE) + ((CLIP,) if clip_step else ())
                                + ((HYPERNYMIZE,) if hypernymize_step else ())),
            "elapsed_s": round(elapsed, 3),
        }
        if clip_step:
            stats["clip"] = clip_step.info
        writer.commit(stats)
    except BaseException as err:
        writer.abort(err)
        raise
    log.info("shard %s done: %d samples of %d records in %.1f s", shard_name(shard_id),
             stats["samples"], len(records), elapsed)
    stats["reused"] = False
    return stats


def shard_hashes(out_dir: str, shard_id: int) -> list[tuple[str, str]]:
    """(sha256, key) of every sample currently in a shard, read from its parquet."""
    path = shard_paths(out_dir, shard_id)["parquet"]
    with fileio.open_read(path) as stream:
        columns = pq.read_table(stream, columns=["sha256", "key"])
    return list(zip(columns.column("sha256").to_pylist(), columns.column("key").to_pylist()))
