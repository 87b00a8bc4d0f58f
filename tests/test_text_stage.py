"""The text stage inside real Beam pipelines: before any fetch, counted, and in the metadata."""

from __future__ import annotations

import json

from crawl.serve import LocalServer, Route
from pipeline.demo import warc_response

from pipeline_helpers import PERMISSIVE, jpeg, reasons, reject_rows, run_local, shard_rows, tar_samples

# The default preset (cc3m) and the repeat cut, on top of the test defaults that switch them off.
TEXT_RULES_ON = ["text.preset=cc3m", "text.min_chars=null", "text.max_repeats=10"]
GOOD = ["A red barn in a green field.", "Two dogs playing in the snow.",
        "A man riding a wave on top of a surfboard."]
JUNK = {"IMG_2345.jpg": "file_name",
        "Cheap shoes, nike shoes, buy shoes, shoes online, best shoes": "seo_keywords",
        "Un chien noir dort sur le canapé du salon": "language",
        "Embedded image permalink": "boilerplate",
        "http://example.com/photo.jpg": "url_only",
        "#sunset #beach #love #summer": "hashtags"}


def test_rejected_texts_are_never_fetched(tmp_path):
    captions = GOOD + list(JUNK)
    routes = {f"/{i}.jpg": Route(jpeg(640, 480, (i * 20, 90, 90))) for i in range(len(captions))}
    with LocalServer(routes) as server:
        listing = tmp_path / "list.tsv"
        listing.write_text("".join(f"{c}\t{server.url(f'/{i}.jpg')}\n" for i, c in enumerate(captions)))
        stats = run_local([listing], tmp_path / "out", *PERMISSIVE, *TEXT_RULES_ON)
        fetched = set(server.requests)
    assert fetched == {f"/{i}.jpg" for i in range(len(GOOD))}
    assert reasons(stats, "text") == {reason: 1 for reason in JUNK.values()}
    text = next(e for e in stats["funnel"] if e["stage"] == "text")
    assert (text["in"], text["passed"]) == (len(captions), len(GOOD))
    assert [e["stage"] for e in stats["funnel"]][:3] == ["source", "text", "url_dedup"]
    rejected = {r["alt_raw"]: r for r in reject_rows(tmp_path / "out") if r["stage"] == "text"}
    assert {alt: r["reason"] for alt, r in rejected.items()} == JUNK
    assert rejected["Un chien noir dort sur le canapé du salon"]["lang"] == "fr"
    rows = shard_rows(tmp_path / "out")
    assert sorted(r["caption"] for r in rows) == sorted(GOOD)
    assert all(r["lang"] == "en" and 0.3 <= r["lang_score"] <= 1 for r in rows)
    for row in rows:
        meta = json.loads(tar_samples(tmp_path / "out")[row["key"]]["json"])
        assert meta["lang"] == "en" and abs(meta["lang_score"] - row["lang_score"]) < 1e-4


def test_captions_are_cleaned_before_the_rules_and_kept_cleaned(tmp_path):
    raw = "Side view of a British Airways Airbus A319 aircraft on approach to land - Stock Image"
    with LocalServer({"/a.jpg": Route(jpeg(640, 480))}) as server:
        listing = tmp_path / "list.tsv"
        listing.write_text(f"{raw}\t{server.url('/a.jpg')}\n")
        run_local([listing], tmp_path / "out", *PERMISSIVE, *TEXT_RULES_ON)
    [row] = shard_rows(tmp_path / "out")
    assert row["caption"] == "Side view of a British Airways Airbus A319 aircraft on approach to land"
    assert row["alt_raw"] == raw


def test_a_caption_used_for_too_many_images_is_dropped_everywhere(tmp_path):
    """COYO's rule: a text on more than N distinct images is boilerplate. The same image and
    text found again (one pair crawled twice) counts once and is left to URL dedup."""
    routes = {f"/{i}.jpg": Route(jpeg(640, 480, (i * 9, 20, 20))) for i in range(20)}
    overused, fine = "A photo from our beautiful gallery.", "A red barn in a green field."
    with LocalServer(routes) as server:
        lines = [f"{overused}\t{server.url(f'/{i}.jpg')}" for i in range(4)]
        lines += [f"{fine}\t{server.url(f'/{i}.jpg')}" for i in range(4, 7)]
        lines += [f"{fine}\t{server.url('/4.jpg')}"] * 5  # the same pair again and again
        (tmp_path / "list.tsv").write_text("\n".join(lines) + "\n")
        stats = run_local([tmp_path / "list.tsv"], tmp_path / "out", *PERMISSIVE, *TEXT_RULES_ON,
                          "text.max_repeats=3", "dedup.url=url")
        fetched = set(server.requests)
    assert reasons(stats, "text") == {"repeated_text": 4}
    assert reasons(stats, "url_dedup") == {"duplicate_url": 5}
    assert fetched == {"/4.jpg", "/5.jpg", "/6.jpg"}
    repeated = [r for r in reject_rows(tmp_path / "out") if r["reason"] == "repeated_text"]
    assert {r["caption"] for r in repeated} == {overused}
    assert all("used for 4 images (limit 3)" == r["detail"] for r in repeated)
    assert stats["samples"] == 3


def test_warc_alt_texts_go_through_the_text_stage_before_download(tmp_path):
    page = ("<html><body>"
            '<img src="/a.jpg" alt="A red barn in a green field.">'
            '<img src="/b.jpg" alt="DSC_0042">'
            '<img src="/c.jpg" alt="Share on Facebook">'
            "</body></html>").encode()
    warc = tmp_path / "crawl.warc.gz"
    warc.write_bytes(warc_response("http://site.test/index.html", page))
    routes = {p: Route(jpeg(640, 480)) for p in ("/a.jpg", "/b.jpg", "/c.jpg")}
    with LocalServer(routes) as server:
        stats = run_local([warc], tmp_path / "out", *PERMISSIVE, *TEXT_RULES_ON,
                          f'download.connect_to=["site.test:80:127.0.0.1:{server.port}"]')
        fetched = set(server.requests)
    assert fetched == {"/a.jpg"}
    assert reasons(stats, "text") == {"file_name": 1, "boilerplate": 1}
    assert [r["caption"] for r in shard_rows(tmp_path / "out")] == ["A red barn in a green field."]
