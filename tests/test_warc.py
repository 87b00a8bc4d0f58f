"""WARC and WAT readers on real archives: what they extract, what they reject, that they never crash."""

from __future__ import annotations

import gzip
import io
import random
import re
from collections import Counter
from pathlib import Path

import pytest
from fastwarc.warc import ArchiveIterator, WarcRecordType
from warcio.archiveiterator import ArchiveIterator as WarcioIterator

from crawl.warc import HTML_TYPES, decode_http_body, read_warc, read_wat
from filters.record import Dropped, make_key
from pipeline.demo import warc_response

from test_html_images import count_img_tags

DATA = Path(__file__).parent / "data" / "warc"

BOOK_TITLES = [
    "A Light in the Attic", "Tipping the Velvet", "Soumission", "Sharp Objects",
    "Sapiens: A Brief History of Humankind", "The Requiem Red",
    "The Dirty Little Secrets of Getting Your Dream Job",
    "The Coming Woman: A Novel Based on the Life of the Infamous Feminist, Victoria Woodhull",
    "The Boys in the Boat: Nine Americans and Their Epic Quest for Gold at the 1936 Berlin Olympics",
    "The Black Maria", "Starving Hearts (Triangular Trade Trilogy, #1)", "Shakespeare's Sonnets", "Set Me Free",
    "Scott Pilgrim's Precious Little Life (Scott Pilgrim #1)", "Rip it Up and Start Again",
    "Our Band Could Be Your Life: Scenes from the American Indie Underground, 1981-1991", "Olio",
    "Mesaerion: The Best Science Fiction Stories 1800-1849", "Libertarianism for Beginners",
    "It's Only the Himalayas",
]
PAGE_REASONS = {"truncated_record", "malformed_record", "decode_error", "page_too_large", "not_a_warc",
                "parse_error"}
IMAGE_REASONS = {"no_alt", "empty_alt", "no_src", "data_uri", "unsupported_scheme", "bad_url", "duplicate_in_page"}


def warc(realdata, *parts: str, **kwargs) -> list[dict]:
    path = realdata("warc", *parts)
    with path.open("rb") as stream:
        return list(read_warc(stream, source=path.name, **kwargs))


def outcome(record: dict) -> tuple:
    return record.get("reason"), record["image_url"], record["alt_raw"]


def offset_of(record: dict) -> int:
    return int(record["source"].rsplit("@", 1)[1])


def html_response(path: Path) -> tuple[bytes, str, str]:
    """(raw HTTP body, Transfer-Encoding, Content-Encoding) of the first HTML response, via FastWARC."""
    with path.open("rb") as stream:
        for record in ArchiveIterator(stream, record_types=WarcRecordType.response, quirks_mode=True):
            if record.http_content_type in HTML_TYPES:
                headers = record.http_headers
                return (record.reader.read(), headers.get("Transfer-Encoding") or "",
                        headers.get("Content-Encoding") or "")
    raise AssertionError(f"no HTML response in {path}")


# --- what real archives give --------------------------------------------------------------------

def test_books_toscrape_gives_the_20_book_covers(realdata):
    records = warc(realdata, "node-warc", "books.toscrape.warc")
    assert [r["alt_raw"] for r in records] == BOOK_TITLES
    assert not any("reason" in r for r in records)
    assert all(r["page_url"] == "http://books.toscrape.com/" and r["source"] == "books.toscrape.warc@446"
               and r["caption"] == r["alt_raw"] and r["key"] == make_key(r["image_url"], r["alt_raw"])
               for r in records)
    assert records[0]["image_url"] == "http://books.toscrape.com/media/cache/2c/da/2cdad67c44b002e7ead0cc35693c0e8b.jpg"
    # Every cover was archived in the same file: the URLs are the ones the crawler fetched.
    with realdata("warc", "node-warc", "books.toscrape.warc").open("rb") as stream:
        responses = ArchiveIterator(stream, record_types=WarcRecordType.response)
        archived_jpegs = {r.headers.get("WARC-Target-URI") for r in responses if r.http_content_type == "image/jpeg"}
    assert {r["image_url"] for r in records} == archived_jpegs


def test_link_extraction_test_base_href_and_relative_srcs(realdata):
    records = warc(realdata, "ia-web-commons", "link-extraction-test.warc")
    assert [(outcome(r), r["page_url"], offset_of(r)) for r in records] == [
        ((None, "http://www.example.com/image.png", "IMG@/src"), "http://www.example.com/html4.html", 258),
        ((None, "http://www.example.com/image.gif", "IMG@/longdesc"), "http://www.example.com/html4.html", 258),
        ((None, "http://www.example.com/jackbox/img/thumbs/4.jpg", "responsive lightbox"),
         "http://www.example.com/data-href.examples.html", 5121),
        ((None, "https://img.example.org/view?id=867&res=10x16", 'image URL containing escaped ampersand ("&amp;")'),
         "http://www.example.com/link-extraction-test-unescaped-entities.xhtml", 12064),
    ]


def test_iana_revisits_are_skipped_and_charsets_decoded(realdata):
    path = realdata("warc", "pywb", "iana.warc.gz")
    with path.open("rb") as stream:
        kinds = {r.stream_pos: str(r.record_type) for r in ArchiveIterator(stream)}
    assert Counter(kinds.values())["revisit"] == 123
    records = warc(realdata, "pywb", "iana.warc.gz")
    assert {kinds[offset_of(r)] for r in records} == {"response"}
    assert len({offset_of(r) for r in records}) == 16  # the other 4 HTML responses are redirects
    logo = (None, "http://www.iana.org/_img/2013.1/iana-logo-header.svg", "Homepage")
    assert Counter(outcome(r) for r in records)[logo] == 14
    assert not any("\ufffd" in r["alt_raw"] for r in records)


def test_transfer_compression_gzip_brotli_none_decode_to_the_same_page(realdata):
    pages = []
    for name in ("none", "gzip", "brotli"):
        path = realdata("warc", "ukwa-webarchive-discovery", f"transfer_compression_{name}.warc.gz")
        body, transfer, content = html_response(path)
        pages.append(decode_http_body(body, transfer, content, 1 << 20))
        with path.open("rb") as stream:
            assert list(read_warc(stream, source=name)) == []  # the page has no <img>: nothing, no reject
    assert pages[0] == pages[1] == pages[2]
    assert b"Extremely simple webpage used for testing GZip and Brotli transmission compression." in pages[0]


def test_clipped_archive_gives_one_truncated_record_reject(realdata):
    [record] = warc(realdata, "resiliparse", "clipped.warc.gz")
    assert record == {
        "key": make_key("clipped.warc.gz@0", "truncated_record"), "image_url": "", "alt_raw": "", "caption": "",
        "page_url": "http://www.houstonpress.com/music/"
                    "a-humble-chance-the-rapper-leads-a-spiritual-awakening-at-revention-8866723",
        "source": "clipped.warc.gz@0", "stage": "source", "reason": "truncated_record",
        "detail": "74970 of 88038 bytes present"}


def test_warcio_truncated_gzip_body_is_a_truncated_record(realdata):
    [record] = warc(realdata, "warcio", "example-trunc.warc")
    assert (record["reason"], record["page_url"], record["source"], record["detail"]) == (
        "truncated_record", "http://example.com/", "example-trunc.warc@1197", "gzip stream ends early")


@pytest.mark.parametrize("name", ["example-bad-non-chunked.warc.gz", "example-wrong-chunks.warc.gz"])
def test_warcio_oddly_gzipped_archives_are_read(realdata, name):
    # One gzip member for the whole file / members cut across records: FastWARC reads both; their
    # example.com page has no <img>, so nothing comes out and nothing is rejected.
    assert warc(realdata, "warcio", name) == []
    body, transfer, content = html_response(realdata("warc", "warcio", name))
    assert b"<title>Example Domain</title>" in decode_http_body(body, transfer, content, 1 << 20)


def test_clueweb_warc_018_with_japanese_charset(realdata):
    path = realdata("warc", "resiliparse", "clueweb-quirk.warc.gz")
    assert gzip.open(path).read(10) == b"WARC/0.18\r"
    records = warc(realdata, "resiliparse", "clueweb-quirk.warc.gz")
    assert len({offset_of(r) for r in records}) == 29
    first_page = [outcome(r) for r in records if offset_of(r) == 317 and "reason" not in r]
    assert first_page[8:12] == [
        (None, "http://www.uraharajuku.st/design/porter/navi/navi-wallet.jpg", "当店一番人気、ヘッドポーター財布"),
        (None, "http://www.uraharajuku.st/design/porter/navi/newitem.gif", "新しくアップされたアイテム"),
        (None, "http://www.uraharajuku.st/design/porter/navi/popitem.gif", "人気のシリーズ"),
        (None, "http://www.uraharajuku.st/design/porter/index-image/QR_Code.jpg", "e-brand QRコード"),
    ]
    assert not any("\ufffd" in r["alt_raw"] for r in records)


def test_mona_lisa_page_two_captures(realdata):
    records = warc(realdata, "ukwa-webarchive-discovery", "flashfrozen-jwat-recompressed.warc.gz")
    assert Counter(offset_of(r) for r in records) == {53068: 24, 424957: 24}
    assert {r["page_url"] for r in records} == {"http://en.wikipedia.org/wiki/Mona_Lisa"}
    passed = [outcome(r) for r in records if "reason" not in r]
    assert passed[:2] == [
        (None, "http://upload.wikimedia.org/wikipedia/commons/thumb/f/fc/Padlock-silver.svg/"
               "40px-Padlock-silver.svg.png", "Page semi-protected"),
        (None, "http://upload.wikimedia.org/wikipedia/commons/thumb/f/f9/"
               "Mona_Lisa%2C_by_Leonardo_da_Vinci%2C_from_C2RMF_natural_color.jpg/"
               "500px-Mona_Lisa%2C_by_Leonardo_da_Vinci%2C_from_C2RMF_natural_color.jpg", "See adjacent text."),
    ]
    assert len(passed) == 14 and passed[:7] == passed[7:]


def test_common_crawl_whirlwind_warc(realdata):
    records = warc(realdata, "commoncrawl_whirlwind", "whirlwind.warc.gz")
    assert {r["source"] for r in records} == {"whirlwind.warc.gz@1023"}
    assert [r.get("reason") for r in records] == [
        "empty_alt", None, None, "no_alt", None, "no_alt", "no_alt", "no_alt", None, None, "empty_alt", None, None]
    assert [r["alt_raw"] for r in records if "reason" not in r] == [
        "Biquipedia", "A enciclopedia libre", "Escudo d'armas", "Escopete ubicada en Castiella-La Mancha",
        "Escopete", "Wikimedia Foundation", "Powered by MediaWiki"]


# --- rejects and robustness ---------------------------------------------------------------------

@pytest.mark.parametrize("parts", [("commoncrawl_whirlwind", "CC-MAIN-2024-22.warc.paths.gz"),
                                   ("warcio", "example.arc.gz")])
def test_a_file_that_is_no_warc_gives_one_reject(realdata, parts):
    [record] = warc(realdata, *parts)
    assert (record["reason"], record["source"], record["stage"]) == ("not_a_warc", f"{parts[1]}@0", "source")


def test_an_empty_stream_gives_nothing():
    assert list(read_warc(io.BytesIO(b""), source="empty")) == []
    assert list(read_wat(io.BytesIO(b""), source="empty")) == []


def test_pages_over_the_size_limit_are_rejected(realdata):
    records = warc(realdata, "node-warc", "books.toscrape.warc", max_page_bytes=50_000)
    assert [(r["reason"], r["source"], r["detail"]) for r in records] == [
        ("page_too_large", "books.toscrape.warc@446", "51296 bytes > 50000")]
    # The limit also holds after decompression: 158 gzip bytes become a 246-byte page.
    records = warc(realdata, "ukwa-webarchive-discovery", "transfer_compression_gzip.warc.gz", max_page_bytes=200)
    assert [r["reason"] for r in records] == ["page_too_large"]


def test_cutting_a_real_archive_anywhere_never_crashes(realdata):
    data = realdata("warc", "node-warc", "books.toscrape.warc").read_bytes()
    inside_the_page = list(read_warc(io.BytesIO(data[:20_000]), source="cut"))
    assert [(r["reason"], r["source"], r["page_url"]) for r in inside_the_page] == [
        ("truncated_record", "cut@446", "http://books.toscrape.com/")]
    after_the_page = list(read_warc(io.BytesIO(data[:300_000]), source="cut"))
    assert [r["alt_raw"] for r in after_the_page] == BOOK_TITLES
    for cut in range(0, len(data), 7919):
        records = list(read_warc(io.BytesIO(data[:cut]), source="cut"))
        assert all(r.get("reason") in PAGE_REASONS | IMAGE_REASONS | {None} for r in records)


@pytest.mark.parametrize("parts", [("node-warc", "books.toscrape.warc"), ("pywb", "iana.warc.gz"),
                                   ("resiliparse", "clueweb-quirk.warc.gz"),
                                   ("ukwa-webarchive-discovery", "transfer_compression_brotli.warc.gz")])
def test_damaged_real_archives_never_crash(realdata, parts):
    data = realdata("warc", *parts).read_bytes()
    rng = random.Random(20240531)
    reasons = Counter()
    for _ in range(40):
        damaged = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            damaged[rng.randrange(len(damaged))] = rng.randrange(256)
        start = rng.randrange(len(damaged))
        del damaged[start:start + rng.randint(0, 3000)]
        records = list(read_warc(io.BytesIO(bytes(damaged)), source="damaged"))
        reasons.update(r.get("reason") for r in records)
    assert set(reasons) <= PAGE_REASONS | IMAGE_REASONS | {None}


def test_a_failing_stream_read_propagates_instead_of_becoming_a_reject(realdata):
    class ReadFailsAt(io.BytesIO):
        """A stream whose connection drops after ``limit`` bytes."""

        def __init__(self, data: bytes, limit: int):
            super().__init__(data)
            self.limit = limit

        def read(self, size: int = -1) -> bytes:
            if self.tell() >= self.limit:
                raise ConnectionResetError("connection reset by peer")
            room = self.limit - self.tell()
            return super().read(room if size < 0 else min(size, room))

    data = realdata("warc", "pywb", "iana.warc.gz").read_bytes()
    for limit in (0, 5_000, 700_000):
        with pytest.raises(ConnectionResetError):
            list(read_warc(ReadFailsAt(data, limit), source="flaky"))


PAGE = b'<html><body><img src="/red.jpg" alt="a red square on white"></body></html>'
FIRST, LAST = "http://site.test/first.html", "http://site.test/last.html"


def two_pages(cut_last_at: str | None = None, offset: int = 0, compressed: bool = True,
              declared: str | None = None) -> bytes:
    """Two one-image pages made as the demo makes them; the last one cut ``offset`` bytes after the
    first ``cut_last_at`` in its record, or with its WARC Content-Length replaced by ``declared``."""
    last = gzip.decompress(warc_response(LAST, PAGE))
    if declared is not None:
        last = re.sub(rb"Content-Length: \d+", b"Content-Length: " + declared.encode(), last, count=1)
    if cut_last_at is not None:
        last = last[:last.index(cut_last_at.encode()) + offset]
    first = warc_response(FIRST, PAGE)
    return first + gzip.compress(last, mtime=0) if compressed else gzip.decompress(first) + last


def page_outcomes(data: bytes) -> list[tuple]:
    return [(r.get("reason"), r["page_url"], r["stage"] if "reason" in r else r["image_url"])
            for r in read_warc(io.BytesIO(data), source="cut")]


FIRST_PAGE = (None, FIRST, "http://site.test/red.jpg")
LAST_PAGE_CUT = ("truncated_record", LAST, "source")


@pytest.mark.parametrize("compressed", [True, False], ids=["gzip", "plain"])
@pytest.mark.parametrize("cut_at, offset", [
    ("Content-Type: application/http", 0),  # just after the WARC-Target-URI line
    ("Content-Length:", 0),  # after the WARC Content-Type
    ("Content-Length:", 17),  # inside the length: "1" of "142" is declared
    ("\r\n\r\nHTTP/1.1", 4),  # the WARC header is whole, the block is missing
    ("\r\n\r\nHTTP/1.1", 14),  # inside the HTTP status line
    ("Content-Type: text/html", 0),  # inside the HTTP headers
], ids=["after-target-uri", "before-length", "inside-length", "no-block", "in-status-line", "in-http-headers"])
def test_a_file_cut_inside_the_last_record_header_gives_a_truncated_record_reject(cut_at, offset, compressed):
    # Issue 18: cut after WARC-Target-URI, FastWARC gives a record without Content-Length or
    # Content-Type; it was skipped as "not HTML" and the page vanished without a reject.
    data = two_pages(cut_at, offset, compressed)
    assert page_outcomes(data) == [FIRST_PAGE, LAST_PAGE_CUT]
    first, cut = list(read_warc(io.BytesIO(data), source="cut"))
    assert offset_of(first) == 0 < offset_of(cut)


def test_a_real_archive_cut_after_the_target_uri_gives_a_truncated_record_reject(realdata):
    data = realdata("warc", "node-warc", "books.toscrape.warc").read_bytes()
    cut = data.index(b"\r\n", data.index(b"WARC-Target-URI: ", 446)) + 2  # in the page's record
    assert data[cut:].startswith(b"Content-Length: 51537\r\n")
    records = list(read_warc(io.BytesIO(data[:cut]), source="cut"))
    assert [(r["reason"], r["source"], r["page_url"]) for r in records] == [
        ("truncated_record", "cut@446", "http://books.toscrape.com/")]


@pytest.mark.parametrize("compressed", [True, False], ids=["gzip", "plain"])
@pytest.mark.parametrize("extra", [10, 100_000])
def test_a_content_length_longer_than_the_file_gives_a_truncated_record_reject(compressed, extra):
    declared = str(len(gzip.decompress(warc_response(LAST, PAGE)).split(b"\r\n\r\n", 1)[1]) - 4 + extra)
    assert page_outcomes(two_pages(declared=declared, compressed=compressed)) == [FIRST_PAGE, LAST_PAGE_CUT]


@pytest.mark.parametrize("declared", [None, "abc", "-5"], ids=["missing", "not-a-number", "negative"])
def test_a_record_without_a_valid_content_length_is_malformed_and_the_next_one_is_read(declared):
    last = gzip.decompress(warc_response(LAST, PAGE))
    length = re.search(rb"Content-Length: \d+\r\n", last).group(0)
    last = last.replace(length, b"" if declared is None else b"Content-Length: " + declared.encode() + b"\r\n", 1)
    data = gzip.compress(last, mtime=0) + warc_response(FIRST, PAGE)
    assert page_outcomes(data) == [("malformed_record", LAST, "source"), FIRST_PAGE]
    assert "Content-Length" in next(read_warc(io.BytesIO(data), source="bad"))["detail"]


# --- HTTP body decoding -------------------------------------------------------------------------

def test_decode_http_body_on_real_encoded_bodies(realdata):
    samples = ("warc", "ukwa-webarchive-discovery")
    gzipped, _, _ = html_response(realdata(*samples, "transfer_compression_gzip.warc.gz"))
    brotli_body, _, _ = html_response(realdata(*samples, "transfer_compression_brotli.warc.gz"))
    page = decode_http_body(gzipped, "", "gzip", 1 << 20)

    def dropped(body: bytes, transfer: str, content: str, limit: int = 1 << 20) -> str:
        with pytest.raises(Dropped) as refused:
            decode_http_body(body, transfer, content, limit)
        return refused.value.reason

    assert decode_http_body(page, "", "gzip", 1 << 20) == page  # stored decoded under its Content-Encoding
    assert decode_http_body(page, "chunked", "br", 1 << 20) == page  # stored de-chunked and decoded
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in (gzipped[:50], gzipped[50:])) + b"0\r\n\r\n"
    assert decode_http_body(chunked, "chunked", "x-gzip", 1 << 20) == page
    assert dropped(gzipped[:100], "", "gzip") == "truncated_record"
    assert dropped(brotli_body[:60], "", "br") == "truncated_record"
    assert dropped(chunked[:120], "chunked", "gzip") == "truncated_record"
    assert dropped(chunked[:60] + b"zz\r\n" + chunked[60:], "chunked", "gzip") == "decode_error"
    assert dropped(gzipped[:20] + bytes(40) + gzipped[60:], "", "gzip") == "decode_error"
    assert dropped(gzipped, "", "zstd") == "decode_error"
    assert dropped(gzipped, "", "gzip", limit=200) == "page_too_large"


# --- accounting: every <img> of every HTML response comes out once ------------------------------

ACCOUNTED_WARCS = [
    ("commoncrawl_whirlwind", "whirlwind.warc.gz"), ("dolma", "sample-0000.warc.gz"), ("dolma", "sample-0001.warc.gz"),
    ("ia-web-commons", "IAH-urls-wget.warc.gz"), ("ia-web-commons", "link-extraction-test.warc"),
    ("ia-web-commons", "text-extraction-test.warc"), ("node-warc", "books.toscrape.warc"),
    ("node-warc", "parseMe.warc.gz"), ("pywb", "iana.warc.gz"), ("resiliparse", "clipped.warc.gz"),
    ("resiliparse", "clueweb-quirk.warc.gz"), ("resiliparse", "warcfile.warc.gz"),
    ("ukwa-webarchive-discovery", "BL-20140325121225068-00000-32090_opera_8443.warc.gz"),
    ("ukwa-webarchive-discovery", "BL-20140325122341434-00000-32090_opera_8443.warc.gz"),
    ("ukwa-webarchive-discovery", "IAH-20080430204825-00000-blackbook-truncated.warc.gz"),
    ("ukwa-webarchive-discovery", "flashfrozen-jwat-recompressed.warc.gz"),
    ("ukwa-webarchive-discovery", "transfer_compression_gzip.warc.gz"),
    ("ukwa-webarchive-discovery", "transfer_compression_none.warc.gz"),
    ("ukwa-webarchive-discovery", "truncated_datetime.warc"), ("warcio", "example-iana.org-chunked.warc"),
    ("warcio", "example-resource.warc.gz"), ("warcio", "example-trunc.warc"), ("warcio", "example.warc.gz"),
]  # warcio itself cannot read the brotli sample (with brotli 1.2) nor the two oddly gzipped warcio files


@pytest.mark.parametrize("parts", ACCOUNTED_WARCS, ids=[name for _, name in ACCOUNTED_WARCS])
def test_every_img_in_html_responses_is_passed_or_rejected(realdata, parts):
    """<img> tags counted per HTML response with warcio and a regex (no code shared with the reader)
    equal that page's passed + rejected records; a page rejected as a whole gives one record."""
    path = realdata("warc", *parts)
    expected = {}
    with path.open("rb") as stream:
        records = WarcioIterator(stream)
        for record in records:
            headers = record.http_headers or record.rec_headers
            media_type = (headers.get_header("Content-Type") or "").split(";")[0].strip().lower()
            if record.rec_type in ("response", "resource") and media_type in HTML_TYPES:
                body = record.content_stream().read()
                expected[records.get_record_offset()] = count_img_tags(body.decode("utf-8", "replace"))
    found: dict[int, int | str] = {}
    with path.open("rb") as stream:
        for record in read_warc(stream, source=path.name):
            offset = offset_of(record)
            found[offset] = "page rejected" if record.get("reason") in PAGE_REASONS else found.get(offset, 0) + 1
    expected = {offset: "page rejected" if found.get(offset) == "page rejected" else count
                for offset, count in expected.items()}
    assert found == {offset: count for offset, count in expected.items() if count}


# --- WAT ----------------------------------------------------------------------------------------

def test_real_common_crawl_wat_with_only_a_request_gives_nothing(realdata):
    path = realdata("warc", "commoncrawl_whirlwind", "whirlwind.warc.wat.gz")
    with path.open("rb") as stream:
        kinds = [str(r.record_type) for r in ArchiveIterator(stream)]
    assert kinds == ["warcinfo", "metadata"]
    with path.open("rb") as stream:
        assert list(read_wat(stream, source="whirlwind.warc.wat.gz")) == []


def test_wat_links_follow_the_html_rules():
    with (DATA / "links.warc.wat").open("rb") as stream:
        records = list(read_wat(stream, source="links.wat"))
    gallery = "https://www.example.org/gallery/index.html"
    assert [(outcome(r), r["page_url"], r["source"]) for r in records] == [
        ((None, "https://www.example.org/gallery/photos/red-fox.jpg", "A red fox in the snow"),
         gallery, "links.wat@2154"),
        ((None, "https://cdn.example.org/img/owl.png", "Barn owl at dusk"), gallery, "links.wat@2154"),
        (("no_alt", "https://www.example.org/logo.gif", ""), gallery, "links.wat@2154"),
        (("empty_alt", "https://www.example.org/gallery/photos/spacer.gif", ""), gallery, "links.wat@2154"),
        (("data_uri", "data:image/gif;base64,R0lGODlhAQABAAAAACw=", "pixel"), gallery, "links.wat@2154"),
        (("unsupported_scheme", "javascript:void(0)", "menu"), gallery, "links.wat@2154"),
        (("bad_url", "http://exa mple.org/x.jpg", "broken host"), gallery, "links.wat@2154"),
        (("duplicate_in_page", "https://www.example.org/gallery/photos/red-fox.jpg", "A red fox in the snow"),
         gallery, "links.wat@2154"),
        ((None, "https://www.example.org/gallery/photos/Caf%C3%A9%20cr%C3%A8me.jpg", "Café & crème"),
         gallery, "links.wat@2154"),
        ((None, "http://blog.example.net/media/path.jpg", "Forest path"),
         "http://blog.example.net/2024/05/walk.html", "links.wat@4912"),
        (("malformed_record", "", ""), "http://broken.example.com/", "links.wat@8315"),
    ]
    assert records[0]["key"] == make_key("https://www.example.org/gallery/photos/red-fox.jpg", "A red fox in the snow")
    assert len({r["key"] for r in records}) == len(records)
    assert records[-1]["detail"].startswith("bad JSON")
