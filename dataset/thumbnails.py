"""Small JPEG thumbnails for the report, and which rejects get one.

A reject keeps no image, but the report shows a grid per reject reason: the shard writer and the
whole-run passes, which still hold the image bytes when they reject, store a thumbnail in the
reject row (column ``thumbnail``) of the few rejects the tally will show as examples
(``example_picks``: the first REJECT_EXAMPLES of each stage and reason in the tally's own order).
The rest of a run's rejects cost nothing. NSFW rejects are blurred: a report gets opened at work.
"""

from __future__ import annotations

import io
import warnings
from typing import Iterable

from PIL import Image, ImageFilter

REJECT_EXAMPLES = 6  # per (stage, reason): the report's grid of a reason
THUMBNAIL_SIDE = 128  # px, the longer side: 3-6 KB as JPEG q70
MAX_PIXELS = 64 * 1024 * 1024  # a header claiming more is not decoded for a thumbnail
BLURRED_REASONS = frozenset({"nsfw"})


def thumbnail(image_bytes: bytes, *, blur: bool = False, side: int = THUMBNAIL_SIDE) -> bytes | None:
    """A JPEG of at most ``side`` px on its longer side; None when the bytes do not decode (a corrupt
    image is a reason to reject, not to fail the shard)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a decompression-bomb warning: the size is checked below
            with Image.open(io.BytesIO(image_bytes)) as image:
                if image.width * image.height > MAX_PIXELS:
                    return None
                image.draft("RGB", (side, side))
                small = image.convert("RGB")
                small.thumbnail((side, side))
    except Exception:  # noqa: BLE001 - Pillow raises many types for bad input
        return None
    if blur:
        small = small.resize((8, max(1, 8 * small.height // small.width))).resize(small.size).filter(
            ImageFilter.GaussianBlur(4))
    out = io.BytesIO()
    small.save(out, "JPEG", quality=70)
    return out.getvalue()


def example_order(row: dict) -> tuple:
    """The order in which the tally takes reject examples (``dataset.tally``)."""
    return tuple(row.get(name) or "" for name in ("url", "caption", "detail", "key"))


def example_picks(rows: Iterable[dict]) -> set[str]:
    """Keys of the rows the tally can show: the first REJECT_EXAMPLES of each (stage, reason)."""
    picked: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        picked.setdefault((row["stage"], row["reason"]), []).append(row)
    return {row["key"] for group in picked.values() for row in sorted(group, key=example_order)[:REJECT_EXAMPLES]}


def with_thumbnails(rows: list[dict], images: dict[str, bytes]) -> list[dict]:
    """``rows`` where the picked ones have a thumbnail (from ``images`` by key, or the one they had)
    and the others none, so the same rejects give the same file however a run got there."""
    picks = example_picks(rows)
    for row in rows:
        if row["key"] not in picks:
            row["thumbnail"] = None
        elif row["key"] in images:
            row["thumbnail"] = thumbnail(images[row["key"]], blur=row["reason"] in BLURRED_REASONS)
    return rows
