"""Helpers for tests that run the real Beam pipeline against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import io
import json
import tarfile
from contextlib import contextmanager
from pathlib import Path

import pyarrow.parquet as pq
from PIL import Image

from crawl.serve import LocalServer
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


HOST = "photos.altcap.test"


class Site:
    """A local server reached under a fixed host name (``download.connect_to``). Sample keys hash
    the image URL: with the server's random port in it, keys and so shards would change between
    runs, and a test that expects a shard would fail on some ports."""

    def __init__(self, server: LocalServer, host: str):
        self.server = server
        self.host = host
        self.connect_to = f'download.connect_to=["{host}:80:127.0.0.1:{server.port}"]'

    def url(self, path: str) -> str:
        return f"http://{self.host}{path}"


@contextmanager
def serve(routes: dict, host: str = HOST):
    with LocalServer(routes) as server:
        yield Site(server, host)


def local_config(*overrides: str):
    """Settings for a test run: private addresses allowed explicitly, no retry waits, no rate limit
    for the one test host, and text rules off unless a test sets them."""
    base = (["download.allow_private_addresses=true", "download.retries=0", "download.timeout=5",
             "download.host_rps=0"]
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


def wat_metadata_record(page_url: str, links: list[dict]) -> bytes:
    """A WARC metadata record as Common Crawl's WAT files hold them (JSON envelope)."""
    envelope = {"Container": {"Filename": "test.warc.gz", "Compressed": True, "Offset": "0"},
                "Envelope": {
                    "Format": "WARC", "WARC-Header-Length": "0",
                    "WARC-Header-Metadata": {"WARC-Type": "response", "WARC-Target-URI": page_url},
                    "Payload-Metadata": {
                        "Actual-Content-Type": "application/http; msgtype=response",
                        "HTTP-Response-Metadata": {
                            "Response-Message": {"Status": "200", "Version": "HTTP/1.1"},
                            "HTML-Metadata": {"Head": {"Title": "t"}, "Links": links}}}}}
    body = json.dumps(envelope).encode()
    head = (f"WARC/1.0\r\nWARC-Type: metadata\r\nWARC-Target-URI: {page_url}\r\n"
            f"WARC-Date: 2024-05-31T01:17:49Z\r\nWARC-Record-ID: <urn:uuid:3d3f4785-c69a-4f8c-"
            f"968c-d23302c55ef4>\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    return head + body + b"\r\n\r\n"
