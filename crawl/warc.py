"""Alt-text candidates from web archives: HTML in WARC files, image links in Common Crawl WAT files.

FastWARC reads the container (WARC/1.0, 1.1 and 0.18, plain or gzip) with ``quirks_mode`` on,
which also accepts the LF-only header lines of ClueWeb09. The HTTP payload is decoded here rather
than with FastWARC's ``auto_decode``: many archives store the body already de-chunked and
decompressed while keeping the original ``Transfer-Encoding``/``Content-Encoding`` headers (pywb,
node-warc, ClueWeb), and ``auto_decode`` then fails and ends the whole iteration. Like warcio, we
keep such a body as it is.

Every problem with a page becomes one reject record (stage "source") located by
``f"{source}@{offset}"``; nothing raises out of the iteration except errors of the stream itself
(so a runner can retry a failed read).
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO

import brotli
from fastwarc.warc import ArchiveIterator, WarcRecord, WarcRecordType

from crawl.html_images import DEFAULT_LAZY_ATTRIBUTES, extract_image_records, image_records, parse_content_type
from crawl.urls import document_base
from filters.record import SOURCE, Dropped, is_input_error, make_key, new_record

TRUNCATED_RECORD = "truncated_record"
MALFORMED_RECORD = "malformed_record"
DECODE_ERROR = "decode_error"
PARSE_ERROR = "parse_error"
PAGE_TOO_LARGE = "page_too_large"
NOT_A_WARC = "not_a_warc"

DEFAULT_MAX_PAGE_BYTES = 8 * 1024 * 1024
HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
# Declared types that say nothing, so the payload decides (as browsers sniff them).
UNKNOWN_TYPES = frozenset({"", "unknown/unknown", "application/unknown", "*/*"})
WAT_IMAGE_PATH = "IMG@/src"
_PAGE_TYPES = WarcRecordType.response | WarcRecordType.resource

_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]+")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_BOMS = (b"\xef\xbb\xbf", b"\xfe\xff", b"\xff\xfe")


def read_warc(stream: BinaryIO, *, source: str,
              lazy_attributes: tuple[str, ...] = DEFAULT_LAZY_ATTRIBUTES,
              max_page_bytes: int = DEFAULT_MAX_PAGE_BYTES) -> Iterator[dict]:
    """Image records of every HTML ``response``/``resource`` record of a WARC stream.

    Other records (request, revisit, metadata, warcinfo, non-HTML payloads) give nothing. A page
    that is truncated, malformed, fails to decode or is larger than ``max_page_bytes`` gives one
    reject (truncated_record, malformed_record, decode_error, page_too_large); a stream that is
    not a WARC at all gives one not_a_warc reject.
    """
    with _stream_errors_reraised():
        for record in _archive_records(stream, source, _PAGE_TYPES):
            if isinstance(record, dict):
                yield record
            elif record.record_type & _PAGE_TYPES:
                yield from _page_records(record, source, lazy_attributes, max_page_bytes)


def read_wat(stream: BinaryIO, *, source: str) -> Iterator[dict]:
    """Image records from the ``IMG@/src`` links of Common Crawl WAT metadata records.

    Same rules and reasons as HTML extraction; links resolve against the page's ``<base href>``
    (``Head.Base``) or its WARC-Target-URI. Metadata of requests and non-HTML responses gives
    nothing; a record whose JSON cannot be read gives one malformed_record reject.
    """
    with _stream_errors_reraised():
        for record in _archive_records(stream, source, WarcRecordType.metadata):
            if isinstance(record, dict):
                yield record
            elif record.record_type == WarcRecordType.metadata:
                yield from _wat_records(record, source)


# --- the container ------------------------------------------------------------------------------

class _StreamReadError(Exception):
    """Carries an exception of the input stream's own ``read`` through FastWARC (which reports a
    broken archive with OSError too), so that it is re-raised instead of becoming a reject."""


class _GuardedStream:
    """The input stream, counting the bytes read and marking the failures of its ``read``."""

    def __init__(self, stream: BinaryIO):
        self._stream = stream
        self.bytes_read = 0

    def read(self, size: int = -1) -> bytes:
        try:
            data = self._stream.read(size)
        except Exception as error:
            raise _StreamReadError() from error
        self.bytes_read += len(data)
        return data

    def __getattr__(self, name):  # tell, seek, close
        return getattr(self._stream, name)


@contextmanager
def _stream_errors_reraised():
    try:
        yield
    except _StreamReadError as failure:
        raise failure.__cause__ from None


def _archive_records(stream: BinaryIO, source: str, page_types: WarcRecordType) -> Iterator[WarcRecord | dict]:
    """The records of the archive, then one reject if FastWARC had to stop early or found no
    record at all in a non-empty stream. Quirks mode skips junk between records.

    A record of ``page_types`` (or of no known type) without a valid Content-Length, which WARC
    1.1 section 5 makes mandatory, becomes one reject instead: truncated_record when the file ends
    there (cut inside the WARC header: FastWARC gives the header lines it saw and an empty block,
    which would pass for a page without HTML), malformed_record when another record follows."""
    guarded = _GuardedStream(stream)
    records = iter(ArchiveIterator(guarded, parse_http=False, quirks_mode=True))
    offset = None
    headless = None  # (offset, page URL, declared) of a record without a valid Content-Length
    while True:
        try:
            record = next(records)
        except StopIteration:
            if headless is not None:
                yield _headless_reject(source, *headless, file_ends=True)
            elif offset is None and guarded.bytes_read:
                yield _page_reject(source, 0, None, NOT_A_WARC, f"no WARC record in {guarded.bytes_read} bytes")
            return
        except OSError as error:
            if headless is not None:
                yield _headless_reject(source, *headless, file_ends=False)
            if offset is None:
                yield _page_reject(source, 0, None, NOT_A_WARC, str(error))
            else:
                yield _page_reject(source, offset, None, MALFORMED_RECORD,
                                   f"unreadable after the record at offset {offset}: {error}")
            return
        if headless is not None:
            yield _headless_reject(source, *headless, file_ends=False)
            headless = None
        offset = record.stream_pos
        declared = record.headers.get("Content-Length")
        could_be_page = record.record_type & (page_types | WarcRecordType.unknown)
        if could_be_page and not (declared or "").strip().isdigit():
            headless = offset, _target_uri(record), declared  # reported once we know if the file ends here
            continue
        yield record


def _headless_reject(source: str, offset: int, page_url: str | None, declared: str | None, *,
                     file_ends: bool) -> dict:
    if declared is not None:
        return _page_reject(source, offset, page_url, MALFORMED_RECORD, f"bad WARC Content-Length {declared!r}")
    if file_ends:
        return _page_reject(source, offset, page_url, TRUNCATED_RECORD,
                            "the file ends inside the WARC header (no Content-Length)")
    return _page_reject(source, offset, page_url, MALFORMED_RECORD, "no Content-Length in the WARC header")


def _page_reject(source: str, offset: int, page_url: str | None, reason: str, detail: str) -> dict:
    located = f"{source}@{offset}"
    record = new_record("", "", page_url=page_url, source=located, key=make_key(located, reason))
    return Dropped(reason, detail).reject(record, SOURCE)


def _target_uri(record: WarcRecord) -> str | None:
    """WARC-Target-URI without the angle brackets some writers (wget, WARC/1.1 drafts) add."""
    uri = record.headers.get("WARC-Target-URI")
    return uri.strip().removeprefix("<").removesuffix(">").strip() if uri else None


def _read_block(record: WarcRecord) -> bytes:
    """The rest of the record's block; Dropped when the file ends before Content-Length."""
    try:
        data = record.reader.read()
    except OSError as error:
        raise Dropped(MALFORMED_RECORD, f"unreadable record body: {error}") from None
    if len(data) < record.content_length:
        raise Dropped(TRUNCATED_RECORD, f"{len(data)} of {record.content_length} bytes present")
    return data


# --- WARC responses -----------------------------------------------------------------------------

def _page_records(record: WarcRecord, source: str, lazy_attributes: tuple[str, ...],
                  max_page_bytes: int) -> list[dict]:
    offset = record.stream_pos
    page_url = _target_uri(record)
    try:
        page = _html_payload(record, max_page_bytes)
    except Dropped as dropped:
        return [_page_reject(source, offset, page_url, dropped.reason, dropped.detail)]
    if page is None:
        return []
    html, charset = page
    try:
        return extract_image_records(html, page_url, source=f"{source}@{offset}", charset=charset,
                                     lazy_attributes=lazy_attributes)
    except BaseException as error:  # a parser failure costs this page, not the file
        if not is_input_error(error):
            raise
        return [_page_reject(source, offset, page_url, PARSE_ERROR, f"{type(error).__name__}: {error}")]


def _html_payload(record: WarcRecord, max_page_bytes: int) -> tuple[bytes, str | None] | None:
    """(decoded body, HTTP charset) of an HTML record; None for anything that is not HTML."""
    is_http = "application/http" in (record.headers.get("Content-Type") or "").lower()
    if is_http:
        record.is_http = True  # FastWARC matches "application/http" case-sensitively
        try:
            record.parse_http(quirks_mode=True)
        except OSError as error:
            _read_block(record)  # truncated_record if the file ends early: the headers were cut
            raise Dropped(MALFORMED_RECORD, f"unparseable HTTP headers: {error}") from None
        if record.http_headers is None or record.http_headers.status_code is None:
            _read_block(record)
            raise Dropped(MALFORMED_RECORD, "no HTTP status line")
        media_type, charset = record.http_content_type or "", record.http_charset
    else:
        media_type, charset = parse_content_type(record.headers.get("Content-Type") or "")
    media_type = media_type.lower()
    if media_type not in HTML_TYPES and media_type not in UNKNOWN_TYPES:
        return None
    # A crawler's own cut (WARC-Truncated: length, as Common Crawl does above 1 MiB) leaves an
    # intact record of a partial page: its images are extracted like any other page's.
    if record.content_length > max_page_bytes:
        raise Dropped(PAGE_TOO_LARGE, f"{record.content_length} bytes > {max_page_bytes}")
    body = _read_block(record)
    if is_http:
        body = decode_http_body(body, record.http_headers.get("Transfer-Encoding") or "",
                                record.http_headers.get("Content-Encoding") or "", max_page_bytes)
    if media_type in UNKNOWN_TYPES and not looks_like_markup(body):
        return None
    return body, charset


def looks_like_markup(data: bytes) -> bool:
    """Whether the bytes start (after a byte-order mark and whitespace) with ``<``."""
    for bom in _BOMS:
        data = data.removeprefix(bom)
    return data[:1024].lstrip()[:1] == b"<"


def decode_http_body(body: bytes, transfer_encoding: str, content_encoding: str,
                     max_bytes: int) -> bytes:
    """Undo chunked transfer coding and gzip/deflate/br content codings.

    A body that turns out not to be encoded as its headers say (the archive stored it decoded)
    is kept as it is. Dropped: truncated_record when a chunked or compressed stream ends early,
    decode_error when it is corrupt, page_too_large when the decoded body exceeds ``max_bytes``.
    """
    if "chunked" in transfer_encoding.lower():
        body = _dechunk(body)
    for coding in reversed([c.strip().lower() for c in content_encoding.split(",")]):
        if coding not in ("", "identity"):
            body = _decompress(body, coding, max_bytes)
    if len(body) > max_bytes:
        raise Dropped(PAGE_TOO_LARGE, f"{len(body)} bytes decoded > {max_bytes}")
    return body


def _dechunk(body: bytes) -> bytes:
    chunks, position = [], 0
    while True:
        line_end = body.find(b"\n", position)
        size_field = body[position:len(body) if line_end < 0 else line_end].split(b";", 1)[0].strip()
        if not _CHUNK_SIZE.fullmatch(size_field):
            if position == 0:
                return body  # not chunked after all: stored de-chunked
            raise Dropped(DECODE_ERROR, f"bad chunk size line at byte {position}")
        if line_end < 0:
            raise Dropped(TRUNCATED_RECORD, "chunked body ends inside a chunk size line")
        size = int(size_field, 16)
        if size == 0:
            return b"".join(chunks)
        start = line_end + 1
        if start + size > len(body):
            raise Dropped(TRUNCATED_RECORD, f"chunked body ends inside a chunk of {len(size_field)} hex digits")
        chunks.append(body[start:start + size])
        position = start + size
        position += 2 if body.startswith(b"\r\n", position) else 1 if body.startswith(b"\n", position) else 0


def _decompress(body: bytes, coding: str, max_bytes: int) -> bytes:
    try:
        if coding in ("gzip", "x-gzip", "deflate"):
            data, complete = _inflate(body, max_bytes)
        elif coding == "br":
            decompressor = brotli.Decompressor()
            data = decompressor.process(body, output_buffer_limit=max_bytes + 1)
            complete = decompressor.is_finished()
        else:
            raise ValueError(f"unsupported Content-Encoding {coding!r}")
    except (zlib.error, brotli.error, ValueError) as error:
        if looks_like_markup(body):
            return body  # stored decoded under its original Content-Encoding
        raise Dropped(DECODE_ERROR, f"{coding}: {error}") from None
    if len(data) > max_bytes:
        raise Dropped(PAGE_TOO_LARGE, f"more than {max_bytes} bytes after {coding}")
    if not complete:
        raise Dropped(TRUNCATED_RECORD, f"{coding} stream ends early")
    return data


def _inflate(body: bytes, max_bytes: int) -> tuple[bytes, bool]:
    """gzip or zlib-wrapped deflate (header detected), else raw deflate as some servers send."""
    try:
        decompressor = zlib.decompressobj(zlib.MAX_WBITS | 32)
        data = decompressor.decompress(body, max_bytes + 1)
    except zlib.error:
        decompressor = zlib.decompressobj(-zlib.MAX_WBITS)
        data = decompressor.decompress(body, max_bytes + 1)
    return data, decompressor.eof


# --- WAT metadata -------------------------------------------------------------------------------

def _wat_records(record: WarcRecord, source: str) -> list[dict]:
    offset = record.stream_pos
    page_url = _target_uri(record)
    try:
        links, base_href, page_url = _wat_links(record, page_url)
    except Dropped as dropped:
        return [_page_reject(source, offset, page_url, dropped.reason, dropped.detail)]
    images = [([link.get("url")], link.get("alt")) for link in links if link.get("path") == WAT_IMAGE_PATH]
    return image_records(images, page_url, document_base(page_url, base_href), f"{source}@{offset}")


def _wat_links(record: WarcRecord, page_url: str | None) -> tuple[list[dict], str | None, str | None]:
    """(Links, Head.Base, page URL) of a WAT record; no links for requests and non-HTML."""
    try:
        metadata = json.loads(_read_block(record))
    except (ValueError, RecursionError) as error:  # bad JSON or bad UTF-8, or nested too deep
        raise Dropped(MALFORMED_RECORD, f"bad JSON: {type(error).__name__}: {str(error)[:200]}") from None
    envelope = _json_get(metadata, "Envelope")
    page_url = page_url or _json_get(envelope, "WARC-Header-Metadata", "WARC-Target-URI")
    html = _json_get(envelope, "Payload-Metadata", "HTTP-Response-Metadata", "HTML-Metadata")
    links = _json_get(html, "Links") or []
    base_href = _json_get(html, "Head", "Base")
    if not isinstance(links, list) or not all(isinstance(link, dict) for link in links):
        raise Dropped(MALFORMED_RECORD, "HTML-Metadata.Links is not a list of objects")
    for link in links:
        if not all(isinstance(link.get(name), (str, type(None))) for name in ("path", "url", "alt")):
            raise Dropped(MALFORMED_RECORD, f"link with non-string fields: {str(link)[:200]}")
    if not isinstance(base_href, (str, type(None))) or not isinstance(page_url, (str, type(None))):
        raise Dropped(MALFORMED_RECORD, "Head.Base or WARC-Target-URI is not a string")
    links = [{name: _without_lone_surrogates(value) for name, value in link.items()} for link in links]
    return links, _without_lone_surrogates(base_href), _without_lone_surrogates(page_url)


def _without_lone_surrogates(value):
    """JSON's ``\ud800`` escapes decode to lone surrogates, which no UTF-8 encoder (Beam's coders,
    parquet) takes: each becomes U+FFFD, as in text decoded with replacement."""
    return _LONE_SURROGATE.sub("\ufffd", value) if isinstance(value, str) else value


def _json_get(value, *path):
    """``value[path[0]][path[1]]...``, None when a key is missing; Dropped when the structure is
    not made of objects where the WAT format has them."""
    for key in path:
        if value is None:
            return None
        if not isinstance(value, dict):
            raise Dropped(MALFORMED_RECORD, f"{key!r} looked up in a {type(value).__name__}, not an object")
        value = value.get(key)
    return value
