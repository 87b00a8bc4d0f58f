"""The record that flows through the stages, and the reject convention.

A record is a plain dict (cheap to pickle and encode). A rejected record is the same dict with
``stage``, ``reason`` (a short, stable snake_case category counted in the funnel) and ``detail``
(free text: the error message, the offending value) added.
"""

from __future__ import annotations

import hashlib
from typing import Iterable, Iterator

SOURCE = "source"  # the first stage: the readers in crawl/ reject with it; the others name theirs

REJECTED_IMAGE = "rejected_image"  # a reject's image bytes, for the report's thumbnails (dataset.thumbnails)
KEY_HEX_CHARS = 20  # 80 bits: collisions stay unlikely up to ~10^11 records


def make_key(image_url: str, alt_text: str) -> str:
    """Stable sample key from the image URL and the alt-text (no dots: WebDataset splits on them)."""
    digest = hashlib.sha1(f"{image_url}\n{alt_text}".encode("utf-8", "surrogatepass")).hexdigest()
    return digest[:KEY_HEX_CHARS]


def new_record(image_url: str, alt_raw: str, *, page_url: str | None = None, source: str = "",
               caption: str | None = None, **extra) -> dict:
    """A candidate pair as it leaves a source. ``caption`` defaults to the alt-text itself."""
    record = {
        "key": make_key(image_url, alt_raw),
        "image_url": image_url,
        "page_url": page_url,
        "alt_raw": alt_raw,
        "caption": alt_raw if caption is None else caption,
        "source": source,
    }
    record.update(extra)
    return record


def reject(record: dict, stage: str, reason: str, detail: str = "") -> dict:
    """A copy of ``record`` marked as dropped by ``stage`` for ``reason``. Its image bytes, if any, move
    to REJECTED_IMAGE: the shard writer makes thumbnails of a few and lets the rest go."""
    out = {k: v for k, v in record.items() if k != "image_bytes"}
    if record.get("image_bytes"):
        out[REJECTED_IMAGE] = record["image_bytes"]
    out["stage"] = stage
    out["reason"] = reason
    out["detail"] = detail
    return out


def is_rejected(record: dict) -> bool:
    return "reason" in record


def sample_batches(outcomes: Iterable[dict], size: int) -> Iterator[list[dict]]:
    """The outcomes in order, in lists that each hold ``size`` samples not rejected (the last may
    hold fewer): a batch step sees rejects pass through without counting them."""
    pending: list[dict] = []
    samples = 0
    for outcome in outcomes:
        pending.append(outcome)
        samples += not is_rejected(outcome)
        if samples >= size:
            yield pending
            pending, samples = [], 0
    if pending:
        yield pending


def is_input_error(err: BaseException) -> bool:
    """Whether a malformed input may have caused ``err``: any Exception, or a panic of a native
    (Rust) parser such as FastWARC or resiliparse, which Python sees as a BaseException."""
    return isinstance(err, Exception) or type(err).__name__ == "PanicException"


class Dropped(Exception):
    """Raised by a pure rule or step to drop a record: ``reason`` is the funnel category,
    ``detail`` the specifics, ``fields`` extra record fields worth keeping (e.g. http_status)."""

    def __init__(self, reason: str, detail: str = "", **fields):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
        self.fields = fields

    def reject(self, record: dict, stage: str) -> dict:
        out = reject(record, stage, self.reason, self.detail)
        out.update(self.fields)
        return out
