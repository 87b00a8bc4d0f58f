"""The image step inside a shard: probe the header, apply the image rules, then decode, resize
and re-encode (``filters.image_*``). Beam-free.

It runs in the download threads; at most one decode per core runs at a time, so a burst of large
images cannot multiply decode memory by the thread count.
"""

from __future__ import annotations

import os
import threading
from typing import ClassVar

from filters import image_rules
from filters.image_config import ImageConfig, ResizeConfig
from filters.image_probe import probe_image
from filters.image_transform import transform_image
from filters.record import reject
from pipeline.shard_step import RecordStep


class ImageStep(RecordStep):
    stage = "image"
    reasons = ("unreadable", "decompression_bomb", "decode_error", *image_rules.REASONS, "internal_error")
    settings: ClassVar[dict] = {"image": ImageConfig, "resize": ResizeConfig}

    def __init__(self, image: ImageConfig, resize: ResizeConfig):
        self.image = image
        self.resize = resize
        self.decoding = threading.BoundedSemaphore(os.cpu_count() or 1)

    def process(self, record: dict) -> dict:
        """``image_bytes`` replaced by the resized image; a reject keeps what the probe learnt."""
        data = record["image_bytes"]
        with self.decoding:
            info = probe_image(data)
            record.update(width=info.width, height=info.height, image_format=info.format, sha256=info.sha256)
            failure = image_rules.check_image_rules(info, self.image)
            if failure:
                return reject(record, self.stage, *failure)
            image = transform_image(data, info, self.resize, max_pixels=self.image.max_pixels)
        record.update(image_bytes=image.data, image_ext=image.ext, width=image.width, height=image.height,
                      original_width=image.original_width, original_height=image.original_height, phash=image.phash)
        return record
