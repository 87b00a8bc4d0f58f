"""Thumbnails of the rejects the report shows (dataset.thumbnails): small JPEGs of real photos, None for
bytes that do not decode or claim too many pixels, NSFW ones blurred; only the first examples of each
reason get one, and the same rejects get the same thumbnails however they were reached."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image

from dataset.thumbnails import REJECT_EXAMPLES, THUMBNAIL_SIDE, example_picks, thumbnail, with_thumbnails
from pipeline.demo import jpeg_bytes, skimage_photo


def png_header_claiming(width: int, height: int) -> bytes:
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + header
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(header)) + chunk + struct.pack(">I", zlib.crc32(chunk))


def test_a_thumbnail_is_a_small_jpeg_of_the_photo():
    photo = skimage_photo("astronaut.png").convert("RGB")
    small = Image.open(io.BytesIO(thumbnail(jpeg_bytes(photo))))
    assert small.format == "JPEG" and small.size == (THUMBNAIL_SIDE, THUMBNAIL_SIDE)
    expected = np.asarray(photo.resize(small.size), np.float64)
    assert np.abs(np.asarray(small, np.float64) - expected).mean() < 12


def test_bytes_that_do_not_decode_or_claim_too_much_give_none():
    assert thumbnail(b"not an image") is None
    assert thumbnail(jpeg_bytes(skimage_photo("coffee.png"))[:200]) is None
    assert thumbnail(png_header_claiming(100_000, 100_000)) is None


def test_nsfw_thumbnails_are_blurred():
    data = jpeg_bytes(skimage_photo("camera.png"))
    sharp, blurred = (np.asarray(Image.open(io.BytesIO(thumbnail(data, blur=blur))).convert("L"), np.float64)
                      for blur in (False, True))
    detail = [np.abs(np.diff(image, axis=1)).mean() for image in (sharp, blurred)]
    assert detail[1] < detail[0] / 4


def rows(reason: str, n: int) -> list[dict]:
    return [{"key": f"{reason}-{i}", "stage": "image", "reason": reason, "url": f"http://h/{i:02d}", "caption": "c",
             "detail": ""} for i in range(n)]


def test_only_the_first_examples_of_each_reason_are_picked():
    picked = example_picks(rows("too_small", 10)[::-1] + rows("aspect_ratio", 2))
    assert picked == {f"too_small-{i}" for i in range(REJECT_EXAMPLES)} | {"aspect_ratio-0", "aspect_ratio-1"}


def test_the_same_rejects_get_the_same_thumbnails_however_they_were_reached():
    image = jpeg_bytes(skimage_photo("coins.png"))
    everything = with_thumbnails(rows("too_small", 10), {f"too_small-{i}": image for i in range(10)})
    assert [bool(row["thumbnail"]) for row in everything] == [i < REJECT_EXAMPLES for i in range(10)]
    # a later run adds rejects that sort first: its thumbnails move to them, the old ones keep theirs or lose them
    earlier = with_thumbnails(rows("too_small", 10)[4:], {f"too_small-{i}": image for i in range(4, 10)})
    later = with_thumbnails(rows("too_small", 10)[:4] + earlier, {f"too_small-{i}": image for i in range(4)})
    assert sorted((row["key"], row["thumbnail"]) for row in later) == sorted(
        (row["key"], row["thumbnail"]) for row in everything)
