"""FastWARC vs warcio on real archives: reading records, and full alt-text extraction.

Builds a WARC of about ``--size-mb`` MB (gzip per record) by repeating the records of the real
WARCs under ../shared/realdata/warc, then times, in alternating runs:

  (a) iterating the records and reading every payload: FastWARC vs warcio;
  (b) alt-text extraction: altcap's ``read_warc`` (FastWARC + resiliparse/lexbor HTML) vs what a
      warcio user would write (warcio + Python's ``html.parser``), and warcio feeding altcap's
      extractor (to tell the container's share from the HTML parser's).

Run:  .venv/bin/python benchmarks/warc_parsers.py [--size-mb 64] [--runs 3]
"""

from __future__ import annotations

import argparse
import gzip
import io
import statistics
import tempfile
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin

from fastwarc.warc import ArchiveIterator
from warcio.archiveiterator import ArchiveIterator as WarcioIterator

from crawl.html_images import extract_image_records, normalise_alt
from crawl.warc import HTML_TYPES, read_warc

ROOT = Path(__file__).resolve().parent.parent
# Real WARCs both libraries read (warcio fails on the brotli sample and the oddly gzipped warcio files).
SOURCES = [
    "commoncrawl_whirlwind/whirlwind.warc.gz", "dolma/sample-0000.warc.gz", "dolma/sample-0001.warc.gz",
    "ia-web-commons/IAH-urls-wget.warc.gz", "ia-web-commons/link-extraction-test.warc",
    "node-warc/books.toscrape.warc", "node-warc/parseMe.warc.gz", "pywb/iana.warc.gz",
    "resiliparse/clueweb-quirk.warc.gz", "resiliparse/warcfile.warc.gz",
    "ukwa-webarchive-discovery/BL-20140325121225068-00000-32090_opera_8443.warc.gz",
    "ukwa-webarchive-discovery/BL-20140325122341434-00000-32090_opera_8443.warc.gz",
    "ukwa-webarchive-discovery/flashfrozen-jwat-recompressed.warc.gz",
    "ukwa-webarchive-discovery/transfer_compression_gzip.warc.gz",
]


def build_archive(realdata: Path, target: Path, size_mb: float) -> int:
    """Write the real records again and again, each in its own gzip member; return the count."""
    members = []
    for name in SOURCES:
        with (realdata / "warc" / name).open("rb") as stream:
            for record in ArchiveIterator(stream, parse_http=False, quirks_mode=True):
                raw = io.BytesIO()
                record.write(raw)
                members.append(gzip.compress(raw.getvalue(), compresslevel=6))
    written = count = 0
    with target.open("wb") as out:
        while written < size_mb * 1e6:
            for member in members:
                out.write(member)
                written += len(member)
                count += 1
    return count


# --- (a) read every record's payload ------------------------------------------------------------

def fastwarc_payloads(path: Path) -> int:
    count = 0
    with path.open("rb") as stream:
        for record in ArchiveIterator(stream):
            record.reader.read()
            count += 1
    return count


def warcio_payloads(path: Path) -> int:
    count = 0
    with path.open("rb") as stream:
        for record in WarcioIterator(stream):
            record.raw_stream.read()
            count += 1
    return count


# --- (b) alt-text extraction --------------------------------------------------------------------

def altcap_read_warc(path: Path) -> int:
    with path.open("rb") as stream:
        return sum(1 for _ in read_warc(stream, source=path.name))


class _ImgCollector(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.images: list[tuple[str | None, str | None]] = []
        self.base: str | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            values = dict(attrs)
            self.images.append((values.get("src"), values.get("alt")))
        elif tag == "base" and self.base is None:
            self.base = dict(attrs).get("href")


def _warcio_html_pages(path: Path):
    """(page URL, decoded body bytes, charset) of each HTML response, the warcio way."""
    with path.open("rb") as stream:
        for record in WarcioIterator(stream):
            if record.rec_type != "response" or record.http_headers is None:
                continue
            content_type = record.http_headers.get_header("Content-Type") or ""
            media_type, _, parameters = content_type.partition(";")
            if media_type.strip().lower() not in HTML_TYPES:
                continue
            charset = parameters.partition("charset=")[2].strip().strip("\"'") or None
            yield record.rec_headers.get_header("WARC-Target-URI"), record.content_stream().read(), charset


def warcio_html_parser(path: Path) -> int:
    count = 0
    for page_url, body, charset in _warcio_html_pages(path):
        try:
            text = body.decode(charset or "utf-8", "replace")
        except LookupError:
            text = body.decode("utf-8", "replace")
        parser = _ImgCollector()
        parser.feed(text)
        parser.close()
        base = urljoin(page_url, parser.base) if parser.base else page_url
        for src, alt in parser.images:
            if src and alt and normalise_alt(alt):
                urljoin(base, src.strip())
                count += 1
    return count


def warcio_altcap_extractor(path: Path) -> int:
    return sum(len(extract_image_records(body, page_url, source=path.name, charset=charset))
               for page_url, body, charset in _warcio_html_pages(path))


# --- timing -------------------------------------------------------------------------------------

def measure(contenders: dict, path: Path, runs: int) -> dict[str, tuple[list[float], int]]:
    """Median-ready timings: every run times each contender once, in turn (alternating)."""
    times: dict[str, list[float]] = {name: [] for name in contenders}
    outputs: dict[str, int] = {}
    for _ in range(runs):
        for name, run in contenders.items():
            start = time.perf_counter()
            outputs[name] = run(path)
            times[name].append(time.perf_counter() - start)
    return {name: (times[name], outputs[name]) for name in contenders}


def print_table(title: str, results: dict, records: int, megabytes: float, output_label: str) -> None:
    baseline = max(statistics.median(times) for times, _ in results.values())
    print(f"\n{title}")
    header = (f"{'contender':<46} {'median s':>9} {'runs (s)':>22} {'records/s':>11} {'MB/s':>8} "
              f"{output_label:>12} {'speed-up':>9}")
    print(header)
    print("-" * len(header))
    for name, (times, output) in results.items():
        median = statistics.median(times)
        runs = " ".join(f"{t:.2f}" for t in times)
        print(f"{name:<46} {median:>9.2f} {runs:>22} {records / median:>11,.0f} {megabytes / median:>8.1f} "
              f"{output:>12,} {baseline / median:>8.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--realdata", type=Path, default=ROOT.parent / "shared" / "realdata")
    parser.add_argument("--size-mb", type=float, default=64, help="size of the generated .warc.gz")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.warc.gz"
        records = build_archive(args.realdata, path, args.size_mb)
        megabytes = path.stat().st_size / 1e6
        print(f"archive: {megabytes:.1f} MB gzip, {records:,} records, from {len(SOURCES)} real WARCs; "
              f"{args.runs} alternating runs each;\n  records/s = WARC records read per second, "
              "MB/s = compressed MB per second, speed-up = against the slowest")

        print_table("(a) iterate + read every payload", measure({
            "FastWARC  ArchiveIterator + reader.read()": fastwarc_payloads,
            "warcio    ArchiveIterator + raw_stream.read()": warcio_payloads,
        }, path, args.runs), records, megabytes, "records")

        print_table("(b) alt-text extraction from HTML responses", measure({
            "altcap read_warc (FastWARC + lexbor)": altcap_read_warc,
            "warcio + html.parser": warcio_html_parser,
            "warcio + altcap extractor (lexbor)": warcio_altcap_extractor,
        }, path, args.runs), records, megabytes, "img records")


if __name__ == "__main__":
    main()
