"""The numbers report.html shows (issue 20): its funnel equals stats.json, which equals the rows in the
shards and reject files on disk; the review queue holds the kept samples with the lowest CLIP scores,
lowest first; histograms and languages count the rows on disk; reject examples show thumbnails of
their images (made by the shard writer and by a whole-run pass); hypernymized captions and token
statistics match the files. One ``altcap demo`` run (shared with the CLI and browser tests)."""

from __future__ import annotations

import io
import json
from collections import Counter
from html.parser import HTMLParser

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from dataset import tally
from dataset.thumbnails import THUMBNAIL_SIDE

from pipeline_helpers import reject_rows, shard_rows


class Rows(HTMLParser):
    """The rows of the report's tables: each <tr>'s attributes and the text of its cells; and every <img>."""

    def __init__(self, page: str):
        super().__init__()
        self.rows: list[tuple[dict, list[str]]] = []
        self.images: list[dict] = []
        self.sections: list[str] = []
        self._section = None
        self._in_cell = False
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "section":
            self._section = attrs.get("id")
            self.sections.append(self._section)
        elif tag == "tr":
            self.rows.append((dict(attrs, section=self._section), []))
        elif tag == "td" and self.rows:
            self.rows[-1][1].append("")
            self._in_cell = True
        elif tag == "img":
            self.images.append(dict(attrs, section=self._section))

    def handle_endtag(self, tag):
        if tag == "td":
            self._in_cell = False

    def handle_data(self, data):
        if self._in_cell:
            self.rows[-1][1][-1] += data

    def with_attribute(self, name: str) -> list[tuple[dict, list[str]]]:
        return [(attrs, cells) for attrs, cells in self.rows if name in attrs]


@pytest.fixture(scope="module")
def demo(demo_run):
    folder = demo_run[1]
    return {"folder": folder, "stats": json.loads((folder / "stats.json").read_text()),
            "written": json.loads((folder / tally.WRITTEN).read_text()),
            "page": Rows((folder / "report.html").read_text(encoding="utf-8")),
            "samples": shard_rows(folder), "rejects": reject_rows(folder)}


def test_the_funnel_shown_equals_stats_json_and_the_rows_on_disk(demo):
    shown = [(attrs["data-stage"], *map(int, cells[1:4])) for attrs, cells in demo["page"].with_attribute("data-stage")]
    funnel = demo["stats"]["funnel"]
    assert shown == [(e["stage"], e["in"], e["passed"], e["rejected"]) for e in funnel]
    on_disk = Counter((row["stage"], row["reason"]) for row in demo["rejects"])
    assert on_disk == Counter({(e["stage"], reason): n for e in funnel for reason, n in e["reasons"].items()})
    assert funnel[-1]["passed"] == demo["stats"]["samples"] == len(demo["samples"]) == 10
    assert all(after["in"] == before["passed"] for before, after in zip(funnel, funnel[1:]))
    assert funnel[0]["in"] == len(demo["samples"]) + len(demo["rejects"])


def test_the_review_queue_holds_the_lowest_clip_scores_lowest_first(demo):
    queue = [(float(attrs["data-score"]), attrs["data-key"]) for attrs, _ in demo["page"].with_attribute("data-score")]
    lowest = sorted((row["clip_score"], row["key"]) for row in demo["samples"])[:tally.REVIEW_SHOWN]
    assert [key for _, key in queue] == [key for _, key in lowest] and len(queue) == 10
    assert [score for score, _ in queue] == pytest.approx([score for score, _ in lowest], abs=1e-6)
    assert [score for score, _ in queue] == sorted(score for score, _ in queue)
    review_images = [image for image in demo["page"].images if image["section"] == "review"]
    assert len(review_images) == len(queue)


def test_histograms_and_languages_count_the_rows_on_disk(demo):
    scores, langs = demo["written"]["scores"], demo["written"]["langs"]
    assert sum(scores["caption_words"]["kept"]) == len(demo["samples"])
    assert sum(scores["caption_words"]["dropped"]) == len(demo["rejects"])
    assert sum(scores["clip_score"]["kept"]) == len(demo["samples"])
    assert sum(scores["clip_score"]["dropped"]) == sum(row["clip_score"] is not None for row in demo["rejects"])
    assert sum(scores["side"]["kept"]) == sum(scores["aspect"]["kept"]) == len(demo["samples"])
    assert sum(scores["side"]["dropped"]) == sum(bool(row["width"] and row["height"]) for row in demo["rejects"])
    assert langs["kept"] == Counter(row["lang"] or "none" for row in demo["samples"])
    assert langs["dropped"] == Counter(row["lang"] or "none" for row in demo["rejects"])
    shown = {column for column in ("clip_score", "side", "aspect", "caption_words", "lang")
             if f"data-column={column}>" in (demo["folder"] / "report.html").read_text()}
    assert len(shown) == 5


def test_reject_examples_show_thumbnails_of_their_images(demo):
    folder = demo["folder"]
    with_thumbnail = {}
    for path in sorted((folder / "rejects").rglob("*.parquet")):
        for row in pq.read_table(path).to_pylist():
            with_thumbnail[(row["stage"], row["reason"], row["key"])] = row["thumbnail"]
    by_reason = Counter((stage, reason) for (stage, reason, _), jpeg in with_thumbnail.items() if jpeg)
    # the image step's rejects (shard writer) and image dedup's (a whole-run pass rewriting the tar)
    assert by_reason == {("image", "too_small"): 3, ("image", "aspect_ratio"): 1, ("image", "format_not_allowed"): 1,
                         ("image_dedup", "duplicate_image"): 1}
    for jpeg in filter(None, with_thumbnail.values()):
        image = Image.open(io.BytesIO(jpeg))
        assert image.format == "JPEG" and max(image.size) <= THUMBNAIL_SIDE
    shown = [image for image in demo["page"].images if image["section"] == "rejects"]
    assert len(shown) == sum(by_reason.values())


def test_hypernymized_captions_show_before_and_after(demo):
    rewritten = [row for row in demo["samples"] if row["caption_hypernymized"] != row["caption"]]
    shown = [cells for attrs, cells in demo["page"].rows if attrs["section"] == "hypernyms" and cells]
    assert [(cells[0], cells[1], cells[3]) for cells in shown] == sorted(
        ((row["caption"], row["caption_hypernymized"], row["key"]) for row in rewritten), key=lambda row: row[2])
    by_key = sorted(rewritten, key=lambda row: row["key"])
    assert shown and all(entity["text"] in cells[2] for cells, row in zip(shown, by_key) for entity in row["entities"])


def test_token_statistics_count_the_token_files(demo):
    files = sorted((demo["folder"] / "tokens").glob("*.npy"))
    codes = np.concatenate([np.load(path)["image_codes"].ravel() for path in files])
    page = (demo["folder"] / "report.html").read_text()
    codebook = demo["stats"]["tokens"]["codebook_size"]
    assert f"{len(np.unique(codes))} of {codebook} image codes used" in page
    assert demo["written"]["tokens"]["samples"] == len(demo["samples"])


def test_the_report_is_small_and_its_images_are_inline_jpeg_thumbnails(demo):
    assert (demo["folder"] / "report.html").stat().st_size < 600_000
    images = demo["page"].images
    assert images and all(image["src"].startswith("data:image/jpeg;base64,") for image in images)
    sections = {"funnel", "histograms", "accepted", "review", "rejects", "hypernyms", "tokens"}
    assert sections <= set(demo["page"].sections)
