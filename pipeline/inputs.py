"""Find the input files and tell what kind each is, before the pipeline starts.

Problems a user can cause (nothing matches, an unknown kind, a list without the named columns)
are found here and reported in one sentence, instead of failing inside a worker.
"""

from __future__ import annotations

import os
import re

from crawl import commoncrawl
from crawl.http_stream import is_http
from crawl.lists import ListFormatError
from crawl.source_config import InputConfig
from dataset import fileio
from pipeline.config import Config

COMPRESSION = re.compile("(" + "|".join(map(re.escape, fileio.DECOMPRESSORS)) + ")$")
KINDS_BY_EXTENSION = [
    (re.compile(r"\.wat$"), "wat"),
    (re.compile(r"\.warc$"), "warc"),
    (re.compile(r"\.tsv$"), "tsv"),
    (re.compile(r"\.csv$"), "csv"),
    (re.compile(r"\.(jsonl|ndjson|json)$"), "jsonl"),
    (re.compile(r"\.parquet$"), "parquet"),
    (re.compile(r"\.(txt|urls)$"), "pages"),
]
IMAGE_FILE = re.compile(r"\.(jpe?g|png|webp|gif|bmp|tiff?|avif)$", re.IGNORECASE)
STREAMED_KINDS = ("warc", "wat")  # what is read over HTTP(S) and named by Common Crawl listings


class InputError(ValueError):
    """The inputs cannot be used; the message says which and why."""


def kind_from_name(path: str) -> str | None:
    name = COMPRESSION.sub("", path.lower())
    if name.endswith(".arc"):
        raise InputError(f"{path}: ARC files are not supported; convert them to WARC (e.g. warcio)")
    for pattern, kind in KINDS_BY_EXTENSION:
        if pattern.search(name):
            codec = path.lower()[len(name):]
            if kind in ("warc", "wat") and codec not in ("", ".gz"):
                raise InputError(f"{path}: WARC and WAT files are read plain or gzip-compressed (.warc.gz, as "
                                 f"Common Crawl publishes them), not {codec}: recompress it with gzip")
            return kind
    return None


def _is_local_dir(path: str) -> bool:
    return "://" not in path and os.path.isdir(path)


def img2dataset_items(folder: str) -> list[tuple[str, str]]:
    """One item per tar (webdataset layout) or per sub-folder (files layout)."""
    tars = fileio.match(fileio.join(folder, "*.tar"))
    if tars:
        return [("img2dataset_tar", tar) for tar in tars]
    parents = sorted({p.rsplit("/", 1)[0] for p in fileio.match(fileio.join(folder, "*", "*"))
                      if IMAGE_FILE.search(p)})
    if not parents:
        raise InputError(f"{folder}: not an img2dataset output folder (no .tar shards and no "
                         "sub-folders of images)")
    return [("img2dataset_files", parent) for parent in parents]


def _listed_paths(pattern: str, settings: InputConfig) -> list[str]:
    """The files a Common Crawl name or path listing selects (crawl/commoncrawl.py)."""
    try:
        return commoncrawl.expand(pattern, settings.commoncrawl_base, settings.http_policy())
    except commoncrawl.ListingError as err:
        raise InputError(str(err)) from None


def expand_inputs(patterns: list[str], forced_format: str = "auto",
                  settings: InputConfig = InputConfig()) -> list[tuple[str, str]]:
    """Sorted (kind, path) items for every input pattern; raises InputError with a clear message."""
    items: list[tuple[str, str]] = []
    for pattern in patterns:
        if _is_local_dir(pattern) or (forced_format == "img2dataset" and pattern.endswith("/")):
            items.extend(img2dataset_items(pattern.rstrip("/")))
            continue
        listed = commoncrawl.is_selection(pattern)
        paths = (_listed_paths(pattern, settings) if listed else [pattern] if is_http(pattern)
                 else fileio.match(pattern))
        if not paths:
            raise InputError(f"no input file matches {pattern!r}")
        for path in paths:
            kind = forced_format if forced_format != "auto" else kind_from_name(path)
            if (listed or is_http(path)) and kind not in STREAMED_KINDS:
                raise InputError(f"{pattern}: {path} is not a WARC or WAT file (.warc.gz, .warc.wat.gz): "
                                 "listings and http(s) URLs name those only")
            if kind is None:
                raise InputError(f"{path}: cannot tell the input kind from the name; pass "
                                 "--input-format (warc, wat, tsv, csv, jsonl, parquet, pages, "
                                 "img2dataset)")
            if kind == "img2dataset":
                items.extend(img2dataset_items(path))
            else:
                items.append((kind, path))
    return sorted(set(items))


def preflight(items: list[tuple[str, str]], config: Config) -> None:
    """Read the head of every list so a wrong column setting fails before the run starts."""
    from pipeline.sources import iter_source  # the readers themselves

    for kind, path in items:
        if kind not in ("tsv", "csv", "jsonl", "parquet"):
            continue
        try:
            next(iter(iter_source(kind, path, config)), None)
        except ListFormatError as err:
            raise InputError(str(err)) from None
        except OSError as err:
            raise InputError(f"{path}: cannot read ({err})") from None
