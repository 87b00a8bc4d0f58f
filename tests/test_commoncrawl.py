"""Common Crawl at the source: crawl names and path listings expand into one item per file, and the
workers stream each WARC/WAT over HTTP from a real local server, resuming a cut transfer with a
Range request; a file that keeps failing becomes one reject and the job finishes."""

from __future__ import annotations

import gzip
import http.client

import pytest

from crawl import warc
from crawl.http_stream import HTTPStreamError, ResumableHTTPStream, RetryPolicy
from crawl.serve import Directory, LocalServer, Route
from crawl.source_config import InputConfig
from pipeline.inputs import InputError, expand_inputs
from pipeline.run import input_sizes

from conftest import realdata_path
from pipeline_helpers import reasons, reject_rows, run_local

CRAWL = "CC-MAIN-2024-22"
SEGMENT = f"crawl-data/{CRAWL}/segments/1715971057216.39"
WHIRLWIND = f"{SEGMENT}/warc/CC-MAIN-20240517233122-20240518023122-00000.warc.gz"
CUT = f"{SEGMENT}/warc/CC-MAIN-20240517233122-20240518023122-00001.warc.gz"  # cut once, then resumed
DEAD = f"{SEGMENT}/warc/CC-MAIN-20240517233122-20240518023122-00002.warc.gz"  # 503 on every try
UNSERVED = f"{SEGMENT}/warc/CC-MAIN-20240517233122-20240518023122-00003.warc.gz"  # left out by the slice
WAT = f"{SEGMENT}/wat/CC-MAIN-20240517233122-20240518023122-00000.warc.wat.gz"
CUT_AT = 50_000  # bytes of the first response before the connection closes
RETRIES = 2
QUICK_RETRIES = [f"input.http_retries={RETRIES}", "input.http_backoff_s=0.01"]


def listing(*entries: str) -> bytes:
    return gzip.compress("".join(f"{entry}\n" for entry in entries).encode(), mtime=0)


def real(*parts: str) -> bytes:
    return realdata_path("warc", *parts).read_bytes()


LISTINGS = {
    f"/crawl-data/{CRAWL}/warc.paths.gz": Route(listing(WHIRLWIND, CUT, DEAD, UNSERVED)),
    f"/crawl-data/{CRAWL}/wat.paths.gz": Route(listing(WAT)),
}


@pytest.fixture
def listing_site():
    """A local data host laid out like data.commoncrawl.org, with the listings only."""
    with LocalServer(LISTINGS) as server:
        yield server


@pytest.fixture
def crawl_site():
    """The same with real Common Crawl files behind the listings."""
    cut_file = real("resiliparse", "warcfile.warc.gz")  # a Common Crawl 2020 excerpt, 136 kB
    routes = {
        **LISTINGS,
        f"/{WHIRLWIND}": Route(real("commoncrawl_whirlwind", "whirlwind.warc.gz"), ranges=True),
        f"/{CUT}": [Route(cut_file, ranges=True, cut_after=CUT_AT), Route(cut_file, ranges=True)],
        f"/{DEAD}": Route(b"Slow Down\n", status=503, content_type="text/plain"),
        f"/{WAT}": Route(real("commoncrawl_whirlwind", "whirlwind.warc.wat.gz"), ranges=True),
    }
    with LocalServer(routes) as server:
        yield server


def local_records(kind: str, source: str, *parts: str) -> list[dict]:
    """What reading the local copy gives, labelled with the URL the run read it from."""
    with realdata_path("warc", *parts).open("rb") as stream:
        read = warc.read_warc if kind == "warc" else warc.read_wat
        return list(read(stream, source=source))


def test_a_crawl_streamed_over_http_gives_the_records_of_its_local_files(tmp_path, crawl_site):
    base = crawl_site.url("/")
    stats = run_local([f"commoncrawl:{CRAWL}/warc:0:3", f"commoncrawl:{CRAWL}/wat"], tmp_path / "out",
                      f"input.commoncrawl_base={base}", "text.min_chars=100000", *QUICK_RETRIES)
    expected = (local_records("warc", base + WHIRLWIND, "commoncrawl_whirlwind", "whirlwind.warc.gz")
                + local_records("warc", base + CUT, "resiliparse", "warcfile.warc.gz")
                + local_records("wat", base + WAT, "commoncrawl_whirlwind", "whirlwind.warc.wat.gz"))
    assert len(expected) == 13 + 153  # whirlwind's WAT holds the request's metadata only: no links
    rows = reject_rows(tmp_path / "out")  # every record: text.min_chars drops all that pass the source
    broken = [r for r in rows if r["reason"] == "unreadable_file"]
    assert sorted(r["key"] for r in rows if r not in broken) == sorted(r["key"] for r in expected)
    assert [(r["source"], r["stage"]) for r in broken] == [(f"{base}{DEAD}@after-0", "source")]
    assert broken[0]["detail"] == (f"HTTPStreamError: {base}{DEAD}: gave up after {RETRIES + 1} failed attempts "
                                   "at byte 0: HTTP 503")
    assert crawl_site.requests[f"/{CUT}"] == 2 and crawl_site.last_headers[f"/{CUT}"]["range"] == f"bytes={CUT_AT}-"
    assert crawl_site.requests[f"/{DEAD}"] == RETRIES + 1 and crawl_site.requests[f"/{UNSERVED}"] == 0
    assert crawl_site.requests[f"/{WHIRLWIND}"] == crawl_site.requests[f"/{WAT}"] == 1
    source = stats["funnel"][0]
    assert source["stage"] == "source" and source["in"] == len(expected) + 1
    assert reasons(stats, "source")["unreadable_file"] == 1
    assert stats["check"]["ok"] and stats["samples"] == 0
    assert [kind for kind, _ in stats["inputs"]] == ["warc", "warc", "warc", "wat"]


@pytest.mark.parametrize("ranges", [True, False], ids=["ranged", "range-ignored"])
def test_a_cut_transfer_resumes_from_the_byte_reached(ranges):
    body = real("resiliparse", "warcfile.warc.gz")
    policy = RetryPolicy(retries=1, backoff_s=0.01)
    with LocalServer({"/once.warc.gz": [Route(body, ranges=ranges, cut_after=CUT_AT), Route(body, ranges=ranges)],
                      "/always.warc.gz": Route(body, ranges=ranges, cut_after=CUT_AT)}) as server:
        with ResumableHTTPStream(server.url("/once.warc.gz"), policy) as stream:
            assert stream.read() == body and (stream.resumes, stream.size) == (1, len(body))
        assert server.last_headers["/once.warc.gz"]["range"] == f"bytes={CUT_AT}-"
        with ResumableHTTPStream(server.url("/always.warc.gz"), policy) as stream:
            if ranges:  # every answer brings CUT_AT more bytes: progress, so no try counts as failed twice
                assert stream.read() == body and stream.resumes == 2
            else:  # the whole file again, cut at the same byte: no progress, given up after the retries
                with pytest.raises(HTTPStreamError, match=f"gave up after 2 failed attempts at byte {CUT_AT}"):
                    stream.read()


def test_the_local_server_answers_ranges_of_its_files(tmp_path):
    (tmp_path / "f.warc.gz").write_bytes(b"0123456789")
    with LocalServer({"/data": Directory(str(tmp_path))}) as server:
        answers = {}
        for asked in ("bytes=4-", "bytes=2-5", "bytes=10-"):
            connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
            connection.request("GET", "/data/f.warc.gz", headers={"Range": asked})
            response = connection.getresponse()
            answers[asked] = (response.status, response.getheader("Content-Range"), response.read())
            connection.close()
    assert answers == {"bytes=4-": (206, "bytes 4-9/10", b"456789"), "bytes=2-5": (206, "bytes 2-5/10", b"2345"),
                       "bytes=10-": (416, "bytes */10", b"")}


def test_listings_and_urls_expand_to_one_item_per_file(tmp_path, listing_site):
    base = listing_site.url("/")
    settings = InputConfig(commoncrawl_base=base)
    (tmp_path / "warc.paths.gz").write_bytes(listing(WHIRLWIND, CUT, DEAD))
    assert expand_inputs([f"{tmp_path}/warc.paths.gz:1"], settings=settings) == [("warc", base + WHIRLWIND)]
    assert expand_inputs([f"{tmp_path}/warc.paths.gz:1:"], settings=settings) == [
        ("warc", base + CUT), ("warc", base + DEAD)]
    wat_listing = listing_site.url(f"/crawl-data/{CRAWL}/wat.paths.gz")
    assert expand_inputs([wat_listing], settings=settings) == [("wat", base + WAT)]
    single = "https://data.commoncrawl.org/" + WHIRLWIND
    assert expand_inputs([single]) == [("warc", single)]
    assert listing_site.requests[f"/{WHIRLWIND}"] == 0  # files are only named in the launcher, not read
    mirrored = "s3://commoncrawl/" + WHIRLWIND  # never rewritten: not sized, so no request per file
    assert input_sizes([("warc", mirrored), ("warc", single)]) == [["warc", mirrored, None], ["warc", single, None]]


@pytest.mark.parametrize("pattern, message", [
    ("commoncrawl:CC-MAIN-24", "not a Common Crawl crawl name; expected commoncrawl:CC-MAIN-YYYY-WW"),
    (f"commoncrawl:{CRAWL}/wet", "'wet' files are not read"),
    (f"commoncrawl:{CRAWL}/warc:", "give a file count after ':'"),
    (f"commoncrawl:{CRAWL}/warc:10:20", "selects none of the listing's 4 files"),
    ("commoncrawl:CC-MAIN-2099-01", "cannot read the path listing: .*HTTP 404 Not Found .is the crawl name right"),
    ("/HOST/list.tsv", "list.tsv is not a WARC or WAT file"),
])
def test_a_bad_crawl_name_or_listing_is_one_clear_input_error(tmp_path, listing_site, pattern, message):
    pattern = pattern.replace("/HOST/", listing_site.url("/"))
    with pytest.raises(InputError, match=message):
        run_local([pattern], tmp_path / "out", f"input.commoncrawl_base={listing_site.url('/')}", *QUICK_RETRIES)


def test_a_listing_of_other_files_is_refused(tmp_path):
    """whirlwind's CC-MAIN-2024-22.warc.paths.gz lists the columnar index (parquet), not WARCs."""
    path = realdata_path("warc", "commoncrawl_whirlwind", "CC-MAIN-2024-22.warc.paths.gz")
    with pytest.raises(InputError, match=r"part-00000-.*\.c000\.gz\.parquet is not a WARC or WAT file"):
        expand_inputs([str(path)])
