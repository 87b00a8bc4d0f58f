"""Read an existing img2dataset output folder: its samples skip the download.

A record does not carry the image bytes (they must not travel through a shuffle); it carries an
``image_ref`` (file path, byte offset, size) that the shard stage reads instead of fetching a URL.
Both of img2dataset's layouts are read: ``webdataset`` (NNNNN.tar) and ``files`` (NNNNN/KEY.jpg).
"""

from __future__ import annotations

import json
import tarfile
from typing import Iterator

from filters.record import SOURCE, make_key, new_record, reject

IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "webp", "gif", "bmp", "tiff", "avif")


def sample_record(*, sample_key: str, meta: bytes | None, caption: bytes | None,
                  image_ref: dict | None, source: str) -> dict:
    """One img2dataset sample as a candidate record, or a reject when its image is missing."""
    try:
        info = json.loads(meta) if meta else {}
    except ValueError:
        info = {}
    text = caption.decode("utf-8", "replace") if caption is not None else (info.get("caption") or "")
    url = info.get("url") or ""
    where = f"{source}#{sample_key}"
    record = new_record(url or where, text, source=where, source_key=sample_key)
    if image_ref is None:
        record["key"] = make_key(where, text)
        return reject(record, SOURCE, "no_image", "sample has no image file")
    record["image_ref"] = image_ref
    return record


def read_webdataset_tar(stream, *, tar_path: str) -> Iterator[dict]:
    """Stream a WebDataset tar once; images are referenced by offset, texts read inline."""
    current, parts = None, {}
    try:
        with tarfile.open(fileobj=stream, mode="r|*") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                name = member.name.rsplit("/", 1)[-1]
                sample_key, _, ext = name.partition(".")
                if sample_key != current:
                    if current is not None:
                        yield _tar_sample(current, parts, tar_path)
                    current, parts = sample_key, {}
                ext = ext.lower()
                if ext in IMAGE_EXTENSIONS:
                    parts["image"] = {"path": tar_path, "offset": member.offset_data, "size": member.size}
                elif ext in ("txt", "json"):
                    handle = tar.extractfile(member)
                    parts[ext] = handle.read() if handle else b""
    except tarfile.TarError as err:
        record = new_record(tar_path, "", source=tar_path, key=make_key(tar_path, "tar"))
        yield reject(record, SOURCE, "malformed_record", f"unreadable tar: {err}")
    if current is not None:
        yield _tar_sample(current, parts, tar_path)


def _tar_sample(sample_key: str, parts: dict, tar_path: str) -> dict:
    return sample_record(sample_key=sample_key, meta=parts.get("json"), caption=parts.get("txt"),
                         image_ref=parts.get("image"), source=tar_path)
