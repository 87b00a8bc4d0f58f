"""Settings of the sources: list columns (``input``), HTML extraction (``extract``) and the live
crawl (``crawl``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar


@dataclass
class InputConfig:
    CHOICES: ClassVar[dict] = {
        "format": {"auto", "warc", "wat", "pages", "tsv", "csv", "jsonl", "parquet", "img2dataset"},
        "header": {"auto", "yes", "no"},
    }

    format: str = "auto"  # auto|warc|wat|pages|tsv|csv|jsonl|parquet|img2dataset
    url_column: str = "auto"  # auto tries url, URL, image_url, link
    caption_column: str = "auto"  # auto tries caption, TEXT, text, alt, title
    header: str = "auto"  # tsv/csv: auto|yes|no
    headerless_columns: list = field(default_factory=lambda: ["caption", "url"])  # CC3M TSV order


@dataclass
class ExtractConfig:
    lazy_attributes: list = field(default_factory=lambda: [
        "data-srcset", "data-src", "data-lazy-srcset", "data-lazy-src", "data-original"])
    max_page_bytes: int = 8 * 1024 * 1024


@dataclass
class CrawlConfig:
    respect_robots_txt: bool = True
