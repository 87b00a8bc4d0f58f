"""What happens to one record inside a shard: get the bytes, probe, apply the rules, transform.

Fetch, probe, decode and encode run in one fused chain so image bytes never leave the worker.
Every failure, expected or not, becomes a reject with its stage and reason.
"""

from __future__ import annotations

import os
import threading
import traceback

from crawl.fetch import Fetcher
from filters.image_probe import probe_image
from filters.image_rules import check_image_rules
from filters.image_transform import transform_image
from filters.record import DOWNLOAD, IMAGE, Dropped, is_input_error, reject
from pipeline import fileio
from pipeline.config import Config


def _unexpected(record: dict, stage: str, err: Exception) -> dict:
    where = traceback.extract_tb(err.__traceback__)[-1]
    detail = f"{type(err).__name__}: {err} (at {where.filename.rsplit('/', 1)[-1]}:{where.lineno})"
    return reject(record, stage, "internal_error", detail[:500])


class SampleMaker:
    """Turns a candidate record into a sample (with ``image_bytes``) or a reject.

    Called from many download threads at once; at most one decode per core runs at a time, so a
    burst of large images cannot multiply decode memory by the thread count.
    """

    def __init__(self, config: Config, fetcher: Fetcher | None):
        self.config = config
        self.fetcher = fetcher
        self.decoding = threading.BoundedSemaphore(os.cpu_count() or 1)

    def fetch_bytes(self, record: dict) -> bytes:
        ref = record.get("image_ref")
        if ref:
            try:
                return fileio.read_range(ref["path"], ref["offset"], ref["size"])
            except OSError as err:
                raise Dropped("unreadable_file", f"{ref['path']}: {err}") from None
        result = self.fetcher.fetch(record["image_url"])
        record["http_status"] = result.status
        return result.body

    def __call__(self, record: dict) -> dict:
        record = dict(record)
        try:
            data = self.fetch_bytes(record)
        except Dropped as dropped:
            return dropped.reject(record, DOWNLOAD)
        except BaseException as err:  # a bug must cost one record, not the job
            if not is_input_error(err):
                raise
            return _unexpected(record, DOWNLOAD, err)
        try:
            with self.decoding:
                return self._image(record, data)
        except Dropped as dropped:
            return dropped.reject(record, IMAGE)
        except BaseException as err:
            if not is_input_error(err):
                raise
            return _unexpected(record, IMAGE, err)

    def _image(self, record: dict, data: bytes) -> dict:
        """Probe, rules, transform; Dropped on the way out keeps what the probe learnt."""
        info = probe_image(data)
        record.update(width=info.width, height=info.height, image_format=info.format,
                      sha256=info.sha256)
        check_image_rules(info, self.config.image)
        image = transform_image(data, info, self.config.resize, max_pixels=self.config.image.max_pixels)
        record.update(image_bytes=image.data, image_ext=image.ext, width=image.width,
                      height=image.height, original_width=image.original_width,
                      original_height=image.original_height)
        return record
