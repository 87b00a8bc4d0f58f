"""url+caption list readers: CC3M TSV, CSV, JSONL, LAION parquet, img2dataset tar."""

from __future__ import annotations

import io
import tarfile

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from crawl.img2dataset_folder import read_webdataset_tar
from crawl.lists import ListFormatError, read_delimited, read_jsonl, read_parquet
from filters.record import is_rejected, make_key


def stream(text: str) -> io.BytesIO:
    return io.BytesIO(text.encode("utf-8"))


def test_cc3m_tsv_without_header_is_caption_then_url():
    data = ("a very typical bus station\thttp://example.com/a.jpg\n"
            "sierra looked stunning in this top and this skirt\thttps://example.com/b%20c.jpg\n")
    records = list(read_delimited(stream(data), delimiter="\t", source="cc3m.tsv"))
    assert [r["caption"] for r in records] == [
        "a very typical bus station", "sierra looked stunning in this top and this skirt"]
    assert [r["image_url"] for r in records] == [
        "http://example.com/a.jpg", "https://example.com/b%20c.jpg"]
    assert records[0]["key"] == make_key("http://example.com/a.jpg", "a very typical bus station")
    assert records[1]["source"] == "cc3m.tsv#1"


def test_tsv_keeps_quotes_and_empty_captions():
    data = 'caption\turl\n\thttp://x.org/1.jpg\nsaid "hi" there\thttp://x.org/2.jpg\n'
    records = list(read_delimited(stream(data), delimiter="\t", source="l.tsv"))
    assert [r["caption"] for r in records] == ["", 'said "hi" there']
    assert not any(is_rejected(r) for r in records)


def test_csv_with_header_and_quoted_commas():
    data = 'url,caption\nhttp://x.org/1.jpg,"a dog, a cat"\n,missing url\nftp://x.org/f.jpg,ftp\n'
    records = list(read_delimited(stream(data), delimiter=",", source="l.csv"))
    assert records[0]["caption"] == "a dog, a cat" and not is_rejected(records[0])
    assert (records[1]["stage"], records[1]["reason"]) == ("source", "no_url")
    assert records[2]["reason"] == "unsupported_scheme"
    assert len({r["key"] for r in records}) == 3


def test_named_columns_that_do_not_exist_fail_clearly():
    data = "link,words\nhttp://x.org/1.jpg,hello\n"
    with pytest.raises(ListFormatError, match="no image URL column 'src'"):
        list(read_delimited(stream(data), delimiter=",", source="l.csv", url_column="src"))
    records = list(read_delimited(stream(data), delimiter=",", source="l.csv",
                                  caption_column="words"))
    assert records[0]["caption"] == "hello" and records[0]["image_url"] == "http://x.org/1.jpg"


def test_jsonl_rows_and_broken_lines():
    data = ('{"url": "http://x.org/1.jpg", "caption": "one"}\n'
            'not json\n'
            '\n'
            '{"url": "http://x.org/2.jpg", "caption": null}\n')
    records = list(read_jsonl(stream(data), source="l.jsonl"))
    assert len(records) == 3
    assert records[0]["caption"] == "one"
    assert records[1]["reason"] == "malformed_row"
    assert records[2]["caption"] == ""


def test_laion_parquet_url_text_columns_in_batches(tmp_path):
    path = tmp_path / "laion.parquet"
    rows = {"SAMPLE_ID": list(range(5)),
            "URL": [f"http://x.org/{i}.jpg" for i in range(5)],
            "TEXT": [f"caption {i}" for i in range(5)],
            "similarity": [0.3] * 5}
    pq.write_table(pa.table(rows), path, row_group_size=2)
    with open(path, "rb") as handle:
        records = list(read_parquet(handle, source=str(path), batch_rows=2))
    assert [r["caption"] for r in records] == [f"caption {i}" for i in range(5)]
    assert records[4]["source"] == f"{path}#4"


def test_real_img2dataset_laion_sample_parquet(realdata):
    path = realdata("img2dataset_tests", "tests", "test_files", "test_1000.parquet")
    with open(path, "rb") as handle:
        records = list(read_parquet(handle, source="test_1000.parquet"))
    assert len(records) == 1000
    passed = [r for r in records if not is_rejected(r)]
    assert len(passed) >= 990
    assert all(r["image_url"].startswith(("http://", "https://")) for r in passed)


def _tar(members: dict[str, bytes]) -> io.BytesIO:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    buffer.seek(0)
    return buffer


def test_img2dataset_tar_samples_reference_their_images():
    jpeg = b"\xff\xd8fake-jpeg-bytes\xff\xd9"
    data = _tar({
        "000000000.jpg": jpeg,
        "000000000.txt": "caption 0".encode(),
        "000000000.json": b'{"url": "http://x.org/0.jpg", "key": "000000000"}',
        "000000001.txt": b"no image",
        "000000001.json": b'{"url": "http://x.org/1.jpg"}',
    })
    records = list(read_webdataset_tar(data, tar_path="shard.tar"))
    assert records[0]["caption"] == "caption 0" and records[0]["image_url"] == "http://x.org/0.jpg"
    ref = records[0]["image_ref"]
    assert data.getvalue()[ref["offset"]:ref["offset"] + ref["size"]] == jpeg
    assert records[1]["reason"] == "no_image"
