"""Readers for url+caption lists: TSV (Conceptual Captions), CSV, JSONL and parquet (LAION).

Each reader takes an open stream and yields candidate records; a row without a usable URL becomes
a reject with its reason, so every row comes out once. Column names are configurable; ``auto``
tries the names the well-known datasets use.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Iterable, Iterator

from crawl.urls import resolve_url
from filters.record import SOURCE, Dropped, make_key, new_record, reject

URL_NAMES = ("url", "URL", "image_url", "img_url", "link", "image")
CAPTION_NAMES = ("caption", "TEXT", "text", "alt", "alt_text", "title", "description")


class ListFormatError(ValueError):
    """The list cannot be read with the given column settings."""


def pick_column(names: Iterable[str], wanted: str, candidates: tuple[str, ...], what: str,
                source: str) -> str:
    names = list(names)
    if wanted != "auto":
        if wanted not in names:
            raise ListFormatError(f"{source}: no {what} column {wanted!r} (columns: {', '.join(names)})")
        return wanted
    for name in candidates:
        if name in names:
            return name
    lowered = {n.lower(): n for n in names}
    for name in candidates:
        if name.lower() in lowered:
            return lowered[name.lower()]
    raise ListFormatError(
        f"{source}: cannot tell which column holds the {what} (columns: {', '.join(names)}); "
        f"set input.{'url' if what == 'image URL' else 'caption'}_column")


def row_to_record(url, caption, *, source: str, row_number: int, **extra) -> dict:
    """One list row as a record, or a reject when the URL is missing or unusable."""
    url = "" if url is None else str(url).strip()
    caption = "" if caption is None else str(caption)
    where = f"{source}#{row_number}"
    record = new_record(url, caption, source=where, **extra)
    if not url:
        record["key"] = make_key(where, caption)
        return reject(record, SOURCE, "no_url", "empty URL cell")
    try:
        record["image_url"] = resolve_url(url, None)
    except Dropped as dropped:
        return dropped.reject(record, SOURCE)
    record["key"] = make_key(record["image_url"], caption)
    return record


def read_delimited(stream, *, delimiter: str, source: str, url_column: str = "auto",
                   caption_column: str = "auto", header: str = "auto",
                   headerless_columns: tuple[str, ...] = ("caption", "url")) -> Iterator[dict]:
    """TSV/CSV rows. Without a header (CC3M's TSV is ``caption<TAB>url``) columns go by position."""
    text = io.TextIOWrapper(stream, encoding="utf-8", errors="replace", newline="")
    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    rows = csv.reader(text, delimiter=delimiter, quoting=quoting)
    first = next(rows, None)
    if first is None:
        return
    has_header = header == "yes" or (header == "auto" and _looks_like_header(first))
    if has_header:
        url_name = pick_column(first, url_column, URL_NAMES, "image URL", source)
        caption_name = pick_column(first, caption_column, CAPTION_NAMES, "caption", source)
        url_at, caption_at = first.index(url_name), first.index(caption_name)
        body, start = rows, 1
    else:
        names = list(headerless_columns)
        if "url" not in names or "caption" not in names:
            raise ListFormatError("input.headerless_columns must name 'url' and 'caption'")
        url_at, caption_at = names.index("url"), names.index("caption")
        body, start = _chain([first], rows), 0
    for number, row in enumerate(body, start=start):
        url = row[url_at] if url_at < len(row) else None
        caption = row[caption_at] if caption_at < len(row) else None
        yield row_to_record(url, caption, source=source, row_number=number)


def _chain(head, tail):
    yield from head
    yield from tail


def _looks_like_header(row: list[str]) -> bool:
    known = {n.lower() for n in URL_NAMES + CAPTION_NAMES}
    return any(cell.strip().lower() in known for cell in row) and not any(
        cell.strip().lower().startswith(("http://", "https://")) for cell in row)


def read_jsonl(stream, *, source: str, url_column: str = "auto",
               caption_column: str = "auto") -> Iterator[dict]:
    """One JSON object per line; a line that is not an object becomes a reject."""
    url_name = caption_name = None
    for number, line in enumerate(io.TextIOWrapper(stream, encoding="utf-8", errors="replace")):
        if not line.strip():
            continue
        where = f"{source}#{number}"
        try:
            obj = json.loads(line)
            if not isinstance(obj, dict):
                raise ValueError("not a JSON object")
        except ValueError as err:
            record = new_record("", "", source=where, key=make_key(where, ""))
            yield reject(record, SOURCE, "malformed_row", str(err)[:200])
            continue
        if url_name is None:
            url_name = pick_column(obj.keys(), url_column, URL_NAMES, "image URL", source)
            caption_name = pick_column(obj.keys(), caption_column, CAPTION_NAMES, "caption", source)
        yield row_to_record(obj.get(url_name), obj.get(caption_name), source=source, row_number=number)


def read_parquet(stream, *, source: str, url_column: str = "auto",
                 caption_column: str = "auto", batch_rows: int = 65536) -> Iterator[dict]:
    """Parquet read batch by batch (bounded memory), only the two needed columns."""
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(stream, pre_buffer=False)  # no pool threads: see dataset.reader.read_parquet
    except Exception as err:  # pyarrow raises several types for a file that isn't parquet
        raise ListFormatError(f"{source}: not a readable parquet file ({err})") from None
    names = parquet.schema_arrow.names
    url_name = pick_column(names, url_column, URL_NAMES, "image URL", source)
    caption_name = pick_column(names, caption_column, CAPTION_NAMES, "caption", source)
    number = 0
    for batch in parquet.iter_batches(batch_size=batch_rows, columns=[url_name, caption_name], use_threads=False):
        urls = batch.column(0).to_pylist()
        captions = batch.column(1).to_pylist()
        for url, caption in zip(urls, captions):
            yield row_to_record(url, caption, source=source, row_number=number)
            number += 1
