"""The spine end to end: real Beam pipelines on the DirectRunner, images from 127.0.0.1."""

from __future__ import annotations

import json
import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastwarc.warc import ArchiveIterator, WarcRecordType

from crawl.serve import Directory, LocalServer, Route
from pipeline.demo import warc_response
from pipeline.stages import host_spread, shard_count, shard_of

from pipeline_helpers import (
    HOST,
    PERMISSIVE,
    jpeg,
    reasons,
    reject_rows,
    run_local,
    serve,
    shard_rows,
    tar_samples,
    wat_metadata_record,
)
from test_warc import BOOK_TITLES


def warc_images(path) -> dict[str, bytes]:
    """URL path -> body of every JPEG response stored in a WARC (stored de-chunked, although
    the recorded headers still say chunked)."""
    images = {}
    with open(path, "rb") as stream:
        for record in ArchiveIterator(stream, record_types=WarcRecordType.response):
            if (record.http_content_type or "").startswith("image/"):
                url = record.headers.get("WARC-Target-URI")
                body = record.reader.read()
                assert body[:2] == b"\xff\xd8"
                images["/" + url.split("/", 3)[3]] = body
    return images


def test_books_toscrape_warc_end_to_end(realdata, tmp_path):
    warc = realdata("warc", "node-warc", "books.toscrape.warc")
    routes = {path: Route(body, content_type="image/jpeg") for path, body in warc_images(warc).items()}
    assert len(routes) == 20
    with LocalServer(routes) as server:
        stats = run_local([warc], tmp_path / "out", *PERMISSIVE,
                          f'download.connect_to=["books.toscrape.com:80:127.0.0.1:{server.port}"]')
        assert sum(server.requests.values()) == 20
    rows = shard_rows(tmp_path / "out")
    assert sorted(r["caption"] for r in rows) == sorted(BOOK_TITLES)
    assert all(r["url"].startswith("http://books.toscrape.com/media/cache/") for r in rows)
    assert all(r["page_url"] == "http://books.toscrape.com/" for r in rows)
    samples = tar_samples(tmp_path / "out")
    assert len(samples) == 20
    for row in rows:
        sample = samples[row["key"]]
        assert sample["txt"].decode() == row["caption"]
        assert json.loads(sample["json"])["url"] == row["url"]
        assert sample["jpg"][:2] == b"\xff\xd8"
    assert stats["samples"] == 20


def img2dataset_fixture(folder, count=5, disallowed=3):
    """img2dataset's own test list: 'caption i' (the first one empty) under /allowed/ and
    /disallowed/, the latter served with X-Robots-Tag: noai, noimageai, noindex, ..."""
    names = sorted(p.name for p in folder.iterdir())
    rows = []
    for prefix, n in (("allowed", count), ("disallowed", disallowed)):
        for i in range(n):
            rows.append({"caption": f"caption {i}" if i else "",
                         "url": f"/{prefix}/{names[i % len(names)]}"})
    return rows


def test_img2dataset_fixture_semantics(realdata, tmp_path):
    folder = realdata("img2dataset_tests", "tests", "resize_test_image")
    robots = "noai, noimageai, noindex, noimageindex, nofollow"
    routes = {"/allowed": Directory(str(folder)),
              "/disallowed": Directory(str(folder), headers={"X-Robots-Tag": robots})}
    rows = img2dataset_fixture(folder)
    with LocalServer(routes) as server:
        listing = tmp_path / "list.parquet"
        pq.write_table(pa.Table.from_pylist(
            [{"caption": r["caption"], "url": server.url(r["url"])} for r in rows]), listing)
        stats = run_local([listing], tmp_path / "out", *PERMISSIVE, "dedup.url=none",
                          "dedup.image=false")
    samples = shard_rows(tmp_path / "out")
    assert sorted(s["caption"] for s in samples) == sorted(
        r["caption"] for r in rows if r["url"].startswith("/allowed"))
    assert "" in {s["caption"] for s in samples}
    refused = [r for r in reject_rows(tmp_path / "out") if r["stage"] == "download"]
    assert len(refused) == 3 and {r["reason"] for r in refused} == {"x_robots_tag"}
    assert {r["caption"] for r in refused} == {"", "caption 1", "caption 2"}
    assert all("/disallowed/" in r["url"] for r in refused)
    assert reasons(stats, "download") == {"x_robots_tag": 3}
    for key, sample in tar_samples(tmp_path / "out").items():
        meta = json.loads(sample["json"])
        assert sample["txt"].decode() == meta["caption"]


def test_list_sources_tsv_csv_jsonl_parquet(tmp_path):
    routes = {f"/{i}.jpg": Route(jpeg(500 + i, 450), content_type="image/jpeg") for i in range(4)}
    with LocalServer(routes) as server:
        url = server.url
        (tmp_path / "cc3m.tsv").write_text(f"a red square\t{url('/0.jpg')}\n")
        (tmp_path / "list.csv").write_text(f"url,caption\n{url('/1.jpg')},\"red, square\"\n")
        (tmp_path / "list.jsonl").write_text(json.dumps({"url": url("/2.jpg"), "caption": "j"}) + "\n")
        pq.write_table(pa.table({"URL": [url("/3.jpg")], "TEXT": ["laion"]}), tmp_path / "l.parquet")
        inputs = [tmp_path / n for n in ("cc3m.tsv", "list.csv", "list.jsonl", "l.parquet")]
        stats = run_local(inputs, tmp_path / "out", "dedup.image=false")
    captions = {r["caption"]: r for r in shard_rows(tmp_path / "out")}
    assert set(captions) == {"a red square", "red, square", "j", "laion"}
    assert captions["red, square"]["width"] == 256 and captions["red, square"]["original_width"] == 501
    assert stats["funnel"][0] == {"stage": "source", "in": 4, "passed": 4, "rejected": 0,
                                  "reasons": {}}


def test_image_rules_defaults_and_accounting(tmp_path):
    routes = {
        "/big.jpg": Route(jpeg(640, 480), content_type="image/jpeg"),
        "/small.jpg": Route(jpeg(400, 400), content_type="image/jpeg"),
        "/wide.jpg": Route(jpeg(1300, 500), content_type="image/jpeg"),
        "/copy.jpg": Route(jpeg(640, 480), content_type="image/jpeg"),
        "/broken.jpg": Route(jpeg(640, 480)[:200], content_type="image/jpeg"),
        "/noai.jpg": Route(jpeg(640, 480, (1, 2, 3)), headers={"X-Robots-Tag": "noimageai"}),
    }
    with serve(routes) as site:
        lines = [f"{name} photo\t{site.url('/' + name + '.jpg')}"
                 for name in ("big", "small", "wide", "copy", "broken", "noai", "missing")]
        lines.append(f"big photo again\t{site.url('/big.jpg')}")  # same URL: url dedup
        (tmp_path / "list.tsv").write_text("\n".join(lines) + "\n")
        stats = run_local([tmp_path / "list.tsv"], tmp_path / "out", site.connect_to)
    assert reasons(stats, "url_dedup") == {"duplicate_url": 1}
    assert reasons(stats, "download") == {"http_404": 1, "x_robots_tag": 1}
    assert reasons(stats, "image") == {"too_small": 1, "aspect_ratio": 1, "unreadable": 1}
    assert reasons(stats, "image_dedup") == {"duplicate_image": 1}
    samples = shard_rows(tmp_path / "out")
    assert len(samples) == 1 and stats["samples"] == 1
    rejects = reject_rows(tmp_path / "out")
    assert len(rejects) == 7 == stats["rejects"]
    assert all(r["stage"] and r["reason"] for r in rejects)
    report = (tmp_path / "out" / "report.html").read_text()
    assert report.count("<figure class=sample>") == 1 and "duplicate_image" in report and "x_robots_tag" in report
    dup = next(r for r in rejects if r["reason"] == "duplicate_image")
    assert dup["detail"] == f"same image as {samples[0]['key']}"
    assert set(tar_samples(tmp_path / "out")) == {samples[0]["key"]}


def test_private_addresses_are_refused_unless_allowed(tmp_path):
    with LocalServer({"/a.jpg": Route(jpeg(500, 500))}) as server:
        (tmp_path / "l.tsv").write_text(f"a\t{server.url('/a.jpg')}\n")
        stats = run_local([tmp_path / "l.tsv"], tmp_path / "out",
                          "download.allow_private_addresses=false")
        assert sum(server.requests.values()) == 0
    assert reasons(stats, "download") == {"private_address": 1}


def test_warc_and_wat_sources_and_rejected_text_is_not_fetched(tmp_path):
    with LocalServer({f"/p{i}.jpg": Route(jpeg(480 + i, 420)) for i in range(3)}) as server:
        page = (f'<html><body><img src="/p0.jpg" alt="first &amp; best">'
                f'<img src="p1.jpg" alt="">'
                f'<img src="//127.0.0.1:{server.port}/p2.jpg" alt="  third\n photo ">'
                f'<img src="data:image/png;base64,AAAA" alt="inline"></body></html>').encode()
        warc = tmp_path / "crawl.warc.gz"
        warc.write_bytes(warc_response(f"http://127.0.0.1:{server.port}/gallery/", page))
        stats = run_local([warc], tmp_path / "out")
        assert server.requests["/p1.jpg"] == 0  # an empty alt-text costs no fetch
    captions = sorted(r["caption"] for r in shard_rows(tmp_path / "out"))
    assert captions == ["first & best", "third photo"]
    assert reasons(stats, "source") == {"data_uri": 1, "empty_alt": 1}


def test_img2dataset_output_folder_is_reused_without_download(realdata, tmp_path):
    from img2dataset import download

    folder = realdata("img2dataset_tests", "tests", "resize_test_image")
    with LocalServer({"/allowed": Directory(str(folder))}) as server:
        rows = img2dataset_fixture(folder, count=7, disallowed=0)
        listing = tmp_path / "list.parquet"
        pq.write_table(pa.Table.from_pylist(
            [{"caption": r["caption"], "url": server.url(r["url"])} for r in rows]), listing)
        download(url_list=str(listing), input_format="parquet", url_col="url",
                 caption_col="caption", output_folder=str(tmp_path / "i2d"),
                 output_format="webdataset", image_size=256, resize_mode="border",
                 processes_count=1, thread_count=4, number_sample_per_shard=4)
        served = sum(server.requests.values())
        stats = run_local([tmp_path / "i2d"], tmp_path / "out", *PERMISSIVE, "dedup.url=none",
                          "dedup.image=false", "resize.resize_mode=no")
        assert sum(server.requests.values()) == served  # nothing fetched again
    samples = shard_rows(tmp_path / "out")
    assert sorted(s["caption"] for s in samples) == sorted(r["caption"] for r in rows)
    assert all(s["width"] == 256 and s["height"] == 256 for s in samples)
    assert stats["funnel"][0]["in"] == 7


def test_live_page_crawl_respects_robots_txt(tmp_path):
    page = b'<html><body><img src="/img/a.jpg" alt="a photo"></body></html>'
    routes = {"/robots.txt": Route(b"User-agent: *\nDisallow: /private/\n", content_type="text/plain"),
              "/gallery.html": Route(page, content_type="text/html; charset=utf-8"),
              "/private/secret.html": Route(page, content_type="text/html"),
              "/img/a.jpg": Route(jpeg(600, 500), content_type="image/jpeg")}
    with LocalServer(routes) as server:
        (tmp_path / "pages.txt").write_text(
            f"{server.url('/gallery.html')}\n{server.url('/private/secret.html')}\n"
            f"{server.url('/gone.html')}\n")
        stats = run_local([tmp_path / "pages.txt"], tmp_path / "out")
        assert server.requests["/private/secret.html"] == 0
    assert [r["caption"] for r in shard_rows(tmp_path / "out")] == ["a photo"]
    assert reasons(stats, "source") == {"robots_txt": 1, "page_http_404": 1}


def test_same_keys_and_shards_whatever_the_parallelism(tmp_path):
    routes = {f"/{i}.jpg": Route(jpeg(420 + i, 430, (i, 2 * i, 3 * i))) for i in range(30)}
    with serve(routes) as site:
        (tmp_path / "l.tsv").write_text("".join(f"red square {i}\t{site.url(f'/{i}.jpg')}\n"
                                                for i in range(30)))
        args = ("shards.samples_per_shard=7", "download.timeout=60", site.connect_to)  # a loaded machine is no failure
        one = run_local([tmp_path / "l.tsv"], tmp_path / "a", *args)
        two = run_local([tmp_path / "l.tsv"], tmp_path / "b", *args,
                        beam_args=["--direct_running_mode=multi_processing", "--direct_num_workers=2"])
    assert reasons(one, "download") == reasons(two, "download") == {}
    assert {r["key"] for r in shard_rows(tmp_path / "a")} == {r["key"] for r in shard_rows(tmp_path / "b")}
    names = sorted(p.name for p in (tmp_path / "a" / "shards").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "b" / "shards").iterdir())
    # 5 shards for 30 records, all filled: the one host's records spread over 5 shards
    assert host_spread(30, 7, per_host=16) == shard_count(30, 7) == 5
    filled = {shard_of(r["key"], 5, HOST, spread=5) for r in shard_rows(tmp_path / "a")}
    assert filled == {0, 1, 2, 3, 4}
    assert [n for n in names if n.endswith(".tar")] == [f"{shard:05d}.tar" for shard in range(5)]
    for name in names:
        if name.endswith(".tar"):
            assert (tmp_path / "a/shards" / name).read_bytes() == (tmp_path / "b/shards" / name).read_bytes()


def test_resume_after_a_crash_redoes_only_missing_shards(tmp_path):
    routes = {f"/{i}.jpg": Route(jpeg(420 + i, 430, (i, 0, 0))) for i in range(20)}
    with serve(routes) as site:
        server = site.server
        (tmp_path / "l.tsv").write_text("".join(f"red square {i}\t{site.url(f'/{i}.jpg')}\n"
                                                for i in range(20)))
        out = tmp_path / "out"
        first = run_local([tmp_path / "l.tsv"], out, "shards.samples_per_shard=5", site.connect_to)
        assert sum(server.requests.values()) == 20
        complete = {p.name: p.read_bytes() for p in (out / "shards").iterdir()
                    if p.suffix in (".tar", ".parquet")}
        # A crash while shard 00002 was written: no marker, a half tar under a temporary name.
        lost = {r["key"] for r in pq.read_table(out / "shards" / "00002.parquet").to_pylist()}
        (out / "shards" / "00002_stats.json").unlink()
        (out / "shards" / "00002.parquet").unlink()
        shutil.move(out / "shards" / "00002.tar", out / "shards" / "00002.tar.tmp-abc")
        (out / "stats.json").unlink()
        server.requests.clear()
        second = run_local([tmp_path / "l.tsv"], out, "shards.samples_per_shard=5", site.connect_to)
        assert len(lost) == 3 and sum(server.requests.values()) == len(lost)  # only the lost shard was fetched
    assert {p.name: p.read_bytes() for p in (out / "shards").iterdir()
            if p.suffix in (".tar", ".parquet")} == complete
    assert second["samples"] == first["samples"] == 20
    assert len({r["key"] for r in shard_rows(out)}) == 20


def test_resume_refuses_another_config(tmp_path):
    from pipeline.run import OutputFolderError

    (tmp_path / "l.tsv").write_text("a\thttp://127.0.0.1:9/a.jpg\n")
    run_local([tmp_path / "l.tsv"], tmp_path / "out")
    with pytest.raises(OutputFolderError, match="resize.image_size"):
        run_local([tmp_path / "l.tsv"], tmp_path / "out", "resize.image_size=128")
    run_local([tmp_path / "l.tsv"], tmp_path / "out", "resize.image_size=128", overwrite=True)
    # a folder made before a setting existed (run.json without it) resumes while the setting keeps its default
    claim = json.loads((tmp_path / "out" / "run.json").read_text())
    del claim["config"]["dedup"]["image"]
    claim["fingerprint"] = "made by an older altcap"
    (tmp_path / "out" / "run.json").write_text(json.dumps(claim))
    run_local([tmp_path / "l.tsv"], tmp_path / "out", "resize.image_size=128")
    with pytest.raises(OutputFolderError, match="dedup.image"):
        run_local([tmp_path / "l.tsv"], tmp_path / "out", "resize.image_size=128", "dedup.image=false")
    (tmp_path / "l.tsv").write_text("a\thttp://127.0.0.1:9/a.jpg\nb\thttp://127.0.0.1:9/b.jpg\n")
    with pytest.raises(OutputFolderError, match="the input files"):
        run_local([tmp_path / "l.tsv"], tmp_path / "out", "resize.image_size=128")


BOMBS = {"sharp/65536-uint32-limit.png", "sharp/giant-image.jpg", "pillow/decompression_bomb.gif",
         "pillow/png_decompression_dos.png"}


def test_every_real_image_file_passes_or_is_rejected_with_a_reason(realdata, tmp_path):
    folder = realdata("images")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() not in
                   (".txt", ".tsv", ".md", ".ijg") and p.name != "LICENSE")
    relative = [str(p.relative_to(folder)) for p in files]
    assert BOMBS <= set(relative)
    with LocalServer({"/img": Directory(str(folder))}) as server:
        lines = [f"file {name}\t{server.url('/img/' + name)}" for name in relative]
        (tmp_path / "l.tsv").write_text("\n".join(lines) + "\n")
        stats = run_local([tmp_path / "l.tsv"], tmp_path / "out", *PERMISSIVE, "dedup.url=none",
                          "dedup.image=false")
    passed = {r["caption"][5:] for r in shard_rows(tmp_path / "out")}
    rejected = {r["caption"][5:]: r for r in reject_rows(tmp_path / "out")}
    assert passed | set(rejected) == set(relative) and not passed & set(rejected)
    assert all(r["stage"] == "image" and r["reason"] for r in rejected.values())
    for bomb in BOMBS:  # refused from the header, before any decode
        assert rejected[bomb]["reason"] in ("too_many_pixels", "decompression_bomb"), bomb
    assert {"pillow/truncated_jpeg.jpg", "sharp/truncated.jpg", "pillow/broken.png"} <= set(rejected)
    assert {"sharp/Landscape_6.jpg", "pillow/pil_sample_cmyk.jpg", "skimage_wheel/astronaut.png"} <= passed
    assert stats["samples"] == len(passed)


def test_wat_source_through_the_pipeline(tmp_path):
    links = [{"path": "IMG@/src", "url": "fox.jpg", "alt": "a red fox"},
             {"path": "IMG@/src", "url": "/owl.jpg", "alt": "an owl at night"},
             {"path": "IMG@/src", "url": "spacer.gif"},
             {"path": "A@/href", "url": "/about.html", "text": "about"}]
    wat = tmp_path / "crawl.warc.wat"
    wat.write_bytes(wat_metadata_record("http://wat.altcap.test/gallery/page.html", links))
    routes = {"/gallery/fox.jpg": Route(jpeg(640, 480)), "/owl.jpg": Route(jpeg(500, 600, (9, 9, 9)))}
    with LocalServer(routes) as server:
        stats = run_local([wat], tmp_path / "out",
                          f'download.connect_to=["wat.altcap.test:80:127.0.0.1:{server.port}"]')
    rows = {r["caption"]: r for r in shard_rows(tmp_path / "out")}
    assert set(rows) == {"a red fox", "an owl at night"}
    assert rows["a red fox"]["url"] == "http://wat.altcap.test/gallery/fox.jpg"
    assert reasons(stats, "source") == {"no_alt": 1}


def test_resume_onto_shards_of_other_records_is_a_user_error(tmp_path):
    from pipeline.shard_builder import StaleShardError

    with serve({"/a.jpg": Route(jpeg(500, 450))}) as site:
        (tmp_path / "l.tsv").write_text(f"a big photo\t{site.url('/a.jpg')}\n")
        run_local([tmp_path / "l.tsv"], tmp_path / "out", site.connect_to)
        (tmp_path / "l.tsv").write_text(f"a bog photo\t{site.url('/a.jpg')}\n")  # same size, other record
        with pytest.raises(StaleShardError) as caught:
            run_local([tmp_path / "l.tsv"], tmp_path / "out", site.connect_to)
    assert str(caught.value) == (f"{tmp_path / 'out' / 'shards' / '00000_stats.json'} was written for other input "
                                 "records; the output folder holds a different run (use a new --output or --overwrite)")


def test_an_error_inside_one_sample_costs_that_sample_only(tmp_path, monkeypatch):
    import pipeline.image_step as image_step

    transform = image_step.transform_image

    def buggy(data, info, *args, **kwargs):
        if info.width == 501:
            raise ValueError("a bug only this image hits")
        return transform(data, info, *args, **kwargs)

    monkeypatch.setattr(image_step, "transform_image", buggy)  # the in-memory runner runs in this process
    with serve({"/a.jpg": Route(jpeg(500, 450)), "/b.jpg": Route(jpeg(501, 450))}) as site:
        (tmp_path / "l.tsv").write_text(f"photo a\t{site.url('/a.jpg')}\nphoto b\t{site.url('/b.jpg')}\n")
        stats = run_local([tmp_path / "l.tsv"], tmp_path / "out", site.connect_to)
    assert [r["caption"] for r in shard_rows(tmp_path / "out")] == ["photo a"]
    [rejected] = reject_rows(tmp_path / "out")
    assert (rejected["stage"], rejected["reason"], rejected["caption"]) == ("image", "internal_error", "photo b")
    assert rejected["detail"].startswith("ValueError: a bug only this image hits (at test_pipeline.py:")
    assert (rejected["url"], rejected["width"], rejected["http_status"]) == (site.url("/b.jpg"), 501, 200)
    assert reasons(stats, "image") == {"internal_error": 1}


def test_url_dedup_by_pair_keeps_each_caption_of_an_image(tmp_path):
    with serve({"/a.jpg": Route(jpeg(500, 450))}) as site:
        lines = [f"{caption}\t{site.url('/a.jpg')}\n" for caption in ("the first caption", "a second caption",
                                                                        "the first caption")]
        (tmp_path / "l.tsv").write_text("".join(lines))
        runs = {mode: run_local([tmp_path / "l.tsv"], tmp_path / mode, site.connect_to, f"dedup.url={mode}",
                                "dedup.image=false") for mode in ("url", "pair")}
    assert sorted(r["caption"] for r in shard_rows(tmp_path / "pair")) == ["a second caption", "the first caption"]
    assert len(shard_rows(tmp_path / "url")) == 1
    assert reasons(runs["pair"], "url_dedup") == {"duplicate_url": 1}
    assert reasons(runs["url"], "url_dedup") == {"duplicate_url": 2}


def test_live_page_crawl_can_ignore_robots_txt(tmp_path):
    page = b'<html><body><img src="/img/a.jpg" alt="a photo"></body></html>'
    routes = {"/robots.txt": Route(b"User-agent: *\nDisallow: /private/\n", content_type="text/plain"),
              "/private/secret.html": Route(page, content_type="text/html"),
              "/img/a.jpg": Route(jpeg(600, 500), content_type="image/jpeg")}
    with serve(routes) as site:
        (tmp_path / "pages.txt").write_text(site.url("/private/secret.html") + "\n")
        stats = run_local([tmp_path / "pages.txt"], tmp_path / "out", site.connect_to, "crawl.respect_robots_txt=false")
        assert site.server.requests["/robots.txt"] == 0 and site.server.requests["/private/secret.html"] == 1
    assert [r["caption"] for r in shard_rows(tmp_path / "out")] == ["a photo"]
    assert reasons(stats, "source") == {}


def test_img2dataset_files_layout_is_an_input_too(tmp_path):
    from img2dataset import download

    routes = {f"/{i}.jpg": Route(jpeg(450 + 10 * i, 420, (30 * i, 60, 90))) for i in range(3)}
    with serve(routes) as site:
        listing = tmp_path / "list.parquet"
        # img2dataset fetches by itself: the server's own address, not the fixed host name
        pq.write_table(pa.Table.from_pylist([{"caption": f"photo {i}", "url": site.server.url(f"/{i}.jpg")}
                                             for i in range(3)]), listing)
        download(url_list=str(listing), input_format="parquet", url_col="url", caption_col="caption",
                 output_folder=str(tmp_path / "i2d"), output_format="files", image_size=64,
                 resize_mode="border", processes_count=1, thread_count=2, number_sample_per_shard=2)
        served = sum(site.server.requests.values())
        stats = run_local([tmp_path / "i2d"], tmp_path / "out", *PERMISSIVE, "resize.resize_mode=no")
        assert served == 3 and sum(site.server.requests.values()) == served  # nothing fetched again
    assert sorted(p.name for p in (tmp_path / "i2d").iterdir() if p.is_dir()) == ["00000", "00001"]
    samples = shard_rows(tmp_path / "out")
    assert sorted(s["caption"] for s in samples) == ["photo 0", "photo 1", "photo 2"]
    assert all((s["width"], s["height"]) == (64, 64) for s in samples)
    assert stats["funnel"][0]["in"] == 3
