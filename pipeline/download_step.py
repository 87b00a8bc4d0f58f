"""The first in-shard step: the image's bytes, fetched politely and safely (``crawl.fetch``) or
read from an img2dataset folder's file. Beam-free."""

from __future__ import annotations

from typing import ClassVar

from crawl.download_config import DownloadConfig
from crawl.fetch import REASONS, Fetcher, is_transient
from dataset import fileio
from filters.record import Dropped
from pipeline.shard_step import RecordStep


class DownloadStep(RecordStep):
    stage = "download"
    reasons = REASONS + ("http_*", "unreadable_file", "internal_error")
    settings: ClassVar[dict] = {"download": DownloadConfig}

    @classmethod
    def enabled(cls, config) -> bool:
        return not config.synth.generator  # a synthetic run's images are generated (pipeline.generate_step)

    @classmethod
    def retryable(cls, reason: str) -> bool:
        return is_transient(reason)

    def __init__(self, download: DownloadConfig):
        self.fetcher = Fetcher(download)

    def process(self, record: dict) -> dict:
        """A copy of ``record`` with ``image_bytes`` (as stored) and, when fetched, ``http_status``."""
        record = dict(record)
        ref = record.get("image_ref")
        if ref:
            try:
                record["image_bytes"] = fileio.read_range(ref["path"], ref["offset"], ref["size"])
            except OSError as err:
                raise Dropped("unreadable_file", f"{ref['path']}: {err}") from None
            return record
        result = self.fetcher.fetch(record["image_url"], host_shards=record.get("host_shards", 1))
        record["http_status"] = result.status
        record["image_bytes"] = result.body
        return record

    def close(self) -> None:
        self.fetcher.close()
