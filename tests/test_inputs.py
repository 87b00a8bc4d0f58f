"""Every input kind, plain and compressed, in one real pipeline run; a list that breaks half-way;
and the list settings (header, column order and names) that a CC3M or LAION list needs."""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import zlib

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from crawl.serve import Route
from dataset import fileio
from pipeline.demo import gallery_html, warc_response
from pipeline.inputs import InputError, kind_from_name

from pipeline_helpers import jpeg, reasons, reject_rows, run_local, serve, shard_rows, wat_metadata_record

CODECS = {
    "": lambda data: data,
    ".gz": lambda data: gzip.compress(data, mtime=0),
    ".bz2": bz2.compress,
    ".xz": lzma.compress,
    ".zst": zstandard.ZstdCompressor().compress,
    ".deflate": zlib.compress,  # a zlib stream, as Beam writes .deflate
}
KINDS = ("tsv", "csv", "jsonl", "txt", "warc", "wat")  # WARC and WAT: plain or .gz, as FastWARC reads them


@pytest.mark.parametrize("extension", list(CODECS))
def test_open_decompressed_reads_text_lines(tmp_path, extension):
    lines = [f"line {n} é\tx" for n in range(5000)]
    path = tmp_path / f"list.tsv{extension}"
    path.write_bytes(CODECS[extension]("\n".join(lines).encode()))
    with fileio.open_decompressed(str(path)) as stream:
        assert io.TextIOWrapper(stream, encoding="utf-8").read().split("\n") == lines


def caption_of(kind: str, codec: str) -> str:
    return f"a photo from the {kind} input{codec.replace('.', ' ')}"


def input_file(kind: str, caption: str, site, n: int) -> bytes:
    """One input of ``kind`` whose one candidate is image ``/n.jpg`` with ``caption``."""
    image = site.url(f"/{n}.jpg")
    if kind == "tsv":
        return f"{caption}\t{image}\n".encode()
    if kind == "csv":
        return f"url,caption\n{image},\"{caption}\"\n".encode()
    if kind == "jsonl":
        return (json.dumps({"url": image, "caption": caption}) + "\n").encode()
    if kind == "txt":  # page URLs to crawl live
        return f"# a page list\n{site.url(f'/page-{n}.html')}\n".encode()
    if kind == "warc":
        return gzip.decompress(warc_response(site.url(f"/page-{n}.html"), gallery_html("g", [(image, caption)])))
    return wat_metadata_record(site.url(f"/page-{n}.html"), [{"path": "IMG@/src", "url": image, "alt": caption}])


def test_every_input_kind_plain_and_compressed_in_one_run(tmp_path):
    cases = [(kind, codec) for kind in KINDS for codec in CODECS if kind not in ("warc", "wat") or codec in ("", ".gz")]
    routes = {}
    for n, (kind, codec) in enumerate(cases):
        caption = caption_of(kind, codec)
        routes[f"/{n}.jpg"] = Route(jpeg(420, 410, (n, 90, 200)))
        routes[f"/page-{n}.html"] = Route(gallery_html("g", [(f"/{n}.jpg", caption)]), content_type="text/html")
    routes["/robots.txt"] = Route(b"User-agent: *\nAllow: /\n", content_type="text/plain")
    with serve(routes) as site:
        inputs = []
        for n, (kind, codec) in enumerate(cases):
            name = {"warc": "crawl.warc", "wat": "crawl.warc.wat"}.get(kind, f"list.{kind}")
            path = tmp_path / "in" / f"{n:02d}-{name}{codec}"
            path.parent.mkdir(exist_ok=True)
            path.write_bytes(CODECS[codec](input_file(kind, caption_of(kind, codec), site, n)))
            assert kind_from_name(str(path)) == {"txt": "pages"}.get(kind, kind)
            inputs.append(path)
        listing = tmp_path / "in" / "laion.parquet"
        pq.write_table(pa.table({"URL": [site.url("/0.jpg")], "TEXT": [caption_of("parquet", "")]}), listing)
        stats = run_local(inputs + [listing], tmp_path / "out", site.connect_to, "dedup.url=none",
                          "dedup.image=false")
    captions = sorted(r["caption"] for r in shard_rows(tmp_path / "out"))
    assert captions == sorted([caption_of(kind, codec) for kind, codec in cases] + [caption_of("parquet", "")])
    assert reject_rows(tmp_path / "out") == [] and stats["funnel"][0]["in"] == len(cases) + 1


@pytest.mark.parametrize("codec", [".bz2", ".xz", ".zst", ".deflate"])
def test_warcs_compressed_other_than_gzip_are_refused_up_front(tmp_path, codec):
    path = tmp_path / f"crawl.warc{codec}"
    path.write_bytes(CODECS[codec](b"WARC/1.0\r\n"))
    with pytest.raises(InputError, match=f"not {codec}: recompress it with gzip"):
        run_local([path], tmp_path / "out")


def test_a_list_that_breaks_half_way_costs_its_rest_and_the_job_goes_on(tmp_path):
    rows = "".join(f"row {n} has no image\t\n" for n in range(3000)).encode()
    whole = gzip.compress(rows, mtime=0)
    (tmp_path / "broken.tsv.gz").write_bytes(whole[: len(whole) * 2 // 3])  # cut in the middle
    with serve({"/a.jpg": Route(jpeg(420, 410))}) as site:
        (tmp_path / "fine.tsv").write_text(f"a red square\t{site.url('/a.jpg')}\n")
        stats = run_local([tmp_path / "broken.tsv.gz", tmp_path / "fine.tsv"], tmp_path / "out", site.connect_to)
    assert [r["caption"] for r in shard_rows(tmp_path / "out")] == ["a red square"]
    source = reasons(stats, "source")
    assert source["unreadable_file"] == 1 and 0 < source["no_url"] < 3000
    broken = next(r for r in reject_rows(tmp_path / "out") if r["reason"] == "unreadable_file")
    assert broken["source"] == f"{tmp_path / 'broken.tsv.gz'}@after-{source['no_url']}"
    assert broken["detail"].startswith("EOFError")


def test_list_settings_header_column_order_and_names(tmp_path):
    with serve({f"/{n}.jpg": Route(jpeg(420 + n, 410)) for n in range(4)}) as site:
        (tmp_path / "noheader.tsv").write_text(f"{site.url('/0.jpg')}\turl first, no header\n")
        (tmp_path / "header.csv").write_text(f"link,alt,words\n{site.url('/1.jpg')},not this,the words column\n")
        (tmp_path / "header_no.csv").write_text(f"caption,url\n{site.url('/2.jpg')},a row that looks like a header\n")
        common = [site.connect_to, "dedup.image=false"]
        by_position = run_local([tmp_path / "noheader.tsv"], tmp_path / "a", *common,
                                "input.headerless_columns=url,caption")
        named = run_local([tmp_path / "header.csv"], tmp_path / "b", *common, "input.caption_column=words")
        forced = run_local([tmp_path / "header_no.csv"], tmp_path / "c", *common, "input.header=no",
                           "input.headerless_columns=url,caption")
    assert [r["caption"] for r in shard_rows(tmp_path / "a")] == ["url first, no header"]
    assert [r["caption"] for r in shard_rows(tmp_path / "b")] == ["the words column"]
    # with input.header=no the first line is a row: "caption" is its URL cell, rejected as no URL
    assert [r["caption"] for r in shard_rows(tmp_path / "c")] == ["a row that looks like a header"]
    assert reasons(forced, "source") == {"bad_url": 1}
    assert by_position["samples"] == named["samples"] == 1
