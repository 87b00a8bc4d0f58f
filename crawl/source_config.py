"""Settings of the sources: list columns (``input``), HTML extraction (``extract``) and the live
crawl (``crawl``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from crawl.http_stream import RetryPolicy
from filters.settings import require


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
    # Common Crawl: where commoncrawl: names and listing entries live (s3://commoncrawl/ from AWS us-east-1)
    commoncrawl_base: str = "https://data.commoncrawl.org/"
    http_retries: int = 10  # WARC/WAT over HTTP(S): failures in a row before a file becomes a reject
    http_backoff_s: float = 1.0  # first wait between tries, then doubled (crawl/http_stream.py: CC's advice)

    def check(self) -> None:
        require(self.http_retries >= 0, "input.http_retries must be >= 0")
        require(self.http_backoff_s >= 0, "input.http_backoff_s must be >= 0")
        require(bool(self.commoncrawl_base.strip()), "input.commoncrawl_base must name a folder or URL")

    def http_policy(self) -> RetryPolicy:
        return RetryPolicy(retries=self.http_retries, backoff_s=self.http_backoff_s)


@dataclass
class ExtractConfig:
    lazy_attributes: list = field(default_factory=lambda: [
        "data-srcset", "data-src", "data-lazy-srcset", "data-lazy-src", "data-original"])
    max_page_bytes: int = 8 * 1024 * 1024


@dataclass
class CrawlConfig:
    respect_robots_txt: bool = True
