"""Common Crawl at the source: a crawl's name or its path listing becomes the list of its files.

What ``--input`` takes::

    commoncrawl:CC-MAIN-2024-22                every WARC file of the crawl
    commoncrawl:CC-MAIN-2024-22/wat            every WAT file (the pages' links with alt-text, no HTML)
    commoncrawl:CC-MAIN-2024-22/warc:100       the first 100 files of the listing
    commoncrawl:CC-MAIN-2024-22/warc:100:200   files 100 to 199 (0-based, the end left out, as Python slices)
    LISTING[:COUNT | :START:STOP]              a path listing such as warc.paths.gz, local or remote

A name reads ``{base}crawl-data/{name}/{warc|wat}.paths.gz``; a listing's relative entries are
files under ``base`` (``input.commoncrawl_base``: https://data.commoncrawl.org/, or
s3://commoncrawl/ from AWS us-east-1); an absolute URL in a listing is kept as it is. The files
themselves are only named here (one input item each); the workers stream them.
"""

from __future__ import annotations

import gzip
import re

from crawl.http_stream import HTTPStreamError, ResumableHTTPStream, RetryPolicy, is_http
from dataset import fileio

PREFIX = "commoncrawl:"
KINDS = ("warc", "wat")
CRAWL_NAME = re.compile(r"CC-MAIN-\d{4}-\d{2}")
_NAME = re.compile(r"commoncrawl:(?P<crawl>[^/:]*)(?:/(?P<kind>[^:]*))?(?P<slice>(?::\d*){0,2})")
_LISTING = re.compile(r"(?P<listing>.+\.paths(?:\.gz)?)(?P<slice>(?::\d*){0,2})")
SYNTAX = "commoncrawl:CC-MAIN-YYYY-WW[/warc|/wat][:COUNT|:START:STOP], e.g. commoncrawl:CC-MAIN-2024-22/wat:0:100"
CRAWLS_LIST = "https://index.commoncrawl.org/collinfo.json"
_PUBLISHED = re.compile(r"(^|/)crawl-data/CC-MAIN-\d{4}-\d{2}/")


def is_published(path: str) -> bool:
    """Whether a path is one of Common Crawl's crawl files (wherever mirrored), which are never
    rewritten once published."""
    return _PUBLISHED.search(path) is not None


class ListingError(ValueError):
    """A crawl name or listing that cannot be used; the message says which and why, in one line."""


def is_selection(text: str) -> bool:
    """Whether an ``--input`` names Common Crawl files: a ``commoncrawl:`` name or a path listing."""
    return text.startswith(PREFIX) or _LISTING.fullmatch(text) is not None


def _file_slice(text: str, spec: str) -> slice:
    """``:COUNT`` is ``:0:COUNT``; ``:START:STOP`` selects like a Python slice; nothing is everything."""
    numbers = [int(n) if n else None for n in spec.split(":")[1:]]
    if len(numbers) == 1:
        if numbers[0] is None:
            raise ListingError(f"{text}: give a file count after ':' ({SYNTAX})")
        return slice(0, numbers[0])
    return slice(*numbers) if numbers else slice(None)


def listing_and_slice(text: str, base: str) -> tuple[str, slice]:
    """Where the listing is and which of its files are asked for."""
    if not text.startswith(PREFIX):
        found = _LISTING.fullmatch(text)
        return found["listing"], _file_slice(text, found["slice"])
    found = _NAME.fullmatch(text)
    if not found or not CRAWL_NAME.fullmatch(found["crawl"]):
        raise ListingError(f"{text}: not a Common Crawl crawl name; expected {SYNTAX} (crawls: {CRAWLS_LIST})")
    kind = found["kind"] or "warc"
    if kind not in KINDS:
        raise ListingError(f"{text}: {kind!r} files are not read (WET holds no HTML or image links); "
                           f"use warc or wat: {SYNTAX}")
    return resolve(base, f"crawl-data/{found['crawl']}/{kind}.paths.gz"), _file_slice(text, found["slice"])


def resolve(base: str, entry: str) -> str:
    """A listing entry as a full path: relative entries are under ``base``."""
    if "://" in entry:
        return entry
    return base.rstrip("/") + "/" + entry.lstrip("/")


def _listing_lines(listing: str, policy: RetryPolicy) -> list[str]:
    if is_http(listing):
        with ResumableHTTPStream(listing, policy) as raw:
            data = raw.read()
        data = gzip.decompress(data) if listing.endswith(".gz") else data
    else:
        with fileio.open_decompressed(listing) as stream:
            data = stream.read()
    return [line.strip() for line in data.decode("utf-8").splitlines() if line.strip()]


def expand(text: str, base: str, policy: RetryPolicy = RetryPolicy()) -> list[str]:
    """The full paths of the files a Common Crawl ``--input`` selects, in the listing's order.

    A listing has one short line per file (a monthly crawl has some 90,000 WARC files) and is read
    whole here, in the launcher; one that cannot be read or selects nothing is a ListingError.
    """
    listing, selected = listing_and_slice(text, base)
    try:
        entries = _listing_lines(listing, policy)
    except (HTTPStreamError, OSError, EOFError, UnicodeDecodeError) as err:
        missing = text.startswith(PREFIX) and getattr(err, "status", None) == 404
        hint = f" (is the crawl name right? crawls: {CRAWLS_LIST})" if missing else ""
        raise ListingError(f"{text}: cannot read the path listing: {err}{hint}") from None
    chosen = entries[selected]
    if not chosen:
        raise ListingError(f"{text}: selects none of the listing's {len(entries)} files")
    return [resolve(base, entry) for entry in chosen]
