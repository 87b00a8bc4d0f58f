"""Helpers for tests that run the real Beam pipeline against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pyarrow.parquet as pq
from PIL import Image

from pipeline.config import load_config
from pipeline.run import run

IN_MEMORY = ["--direct_running_mode=in_memory", "--direct_num_workers=1"]
PERMISSIVE = [
    "image.formats=jpeg,png,webp,gif,bmp,tiff,mpo,avif,ico",
    "image.min_side=1",
    "image.max_aspect_ratio=1000",
    "image.allow_animated=true",
]
# Text rules that keep every non-empty caption: for tests of the other stages.
TEXT_RULES_OFF = ["text.preset=laion", "text.min_chars=0", "text.max_repeats=0"]


def local_config(*overrides: str):
    """Settings for a test run: private addresses allowed explicitly, no retry waits, and text
    rules off unless a test sets them."""
    base = (["download.allow_private_addresses=true", "download.retries=0", "download.timeout=5"]
            + TEXT_RULES_OFF)
    return load_config(None, base + list(overrides))


def run_local(inputs, out: Path, *overrides: str, beam_args=IN_MEMORY, **kwargs) -> dict:
    return run([str(i) for i in inputs], str(out), local_config(*overrides),
               beam_args=list(beam_args), **kwargs)


def jpeg(width: int, height: int, color=(200, 40, 40), quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def shard_rows(out: Path) -> list[dict]:
    rows = []
    for path in sorted((out / "shards").glob("*.parquet")):
        rows.extend(pq.read_table(path).to_pylist())
    return rows


def reject_rows(out: Path) -> list[dict]:
    rows = []
    for path in sorted((out / "rejects").rglob("*.parquet")):
        rows.extend(pq.read_table(path).to_pylist())
    return rows


def tar_samples(out: Path) -> dict[str, dict[str, bytes]]:
    """key -> {extension: bytes} over every shard tar."""
    samples: dict[str, dict[str, bytes]] = {}
    for path in sorted((out / "shards").glob("*.tar")):
        with tarfile.open(path) as tar:
            for member in tar:
                key, _, ext = member.name.partition(".")
                samples.setdefault(key, {})[ext] = tar.extractfile(member).read()
    return samples


def stats_of(out: Path) -> dict:
    return json.loads((out / "stats.json").read_text())


def reasons(stats: dict, stage: str) -> dict:
    return next(e["reasons"] for e in stats["funnel"] if e["stage"] == stage)
