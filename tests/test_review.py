"""``altcap review OUT_DIR --reject KEY ...`` (issue 21): the samples a person rejects move to the rejects
with reason ``human_review`` and the accounting stays true (records in = samples + rejects, the funnel
checked with a ``review`` stage last, written.json and report.html agree); the decisions survive a
resume of the run and ``--retry-failed``; a key that is no sample is refused with nothing changed."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

from crawl.serve import Route
from dataset.layout import shard_ids
from pipeline.cli import main
from pipeline.funnel import check_funnel
from pipeline.review import with_review
from pipeline.semantic_dedup import shard_vectors

from pipeline_helpers import (
    IN_MEMORY,
    PERMISSIVE,
    jpeg,
    reject_rows,
    run_local,
    serve,
    shard_rows,
    stats_of,
    tar_samples,
)
from test_clip_stage import CAPTIONS, clip_settings, embeddings_of, photo_jpegs, tiny_model  # noqa: F401

NOTE = "the caption names another thing"


@pytest.fixture(scope="module")
def finished(tmp_path_factory, tiny_model):  # noqa: F811
    """A run with CLIP scores (so a review queue), SemDeDup, 3 shards, rejects of three reasons (a
    503 that a retry recovers, a 404, an image too small); the server stays up for resumes."""
    root = tmp_path_factory.mktemp("review")
    routes = {f"/{n}.jpg": Route(data) for n, data in enumerate(photo_jpegs())}
    routes["/tiny.jpg"] = Route(jpeg(8, 8))
    routes["/flaky.jpg"] = [Route(status=503), Route(jpeg(320, 240, (20, 160, 60)))]
    captions = {**{f"/{n}.jpg": caption for n, caption in enumerate(CAPTIONS)}, "/tiny.jpg": "a dot",
                "/flaky.jpg": "a green square", "/gone.jpg": "a lost photo"}
    settings = [*PERMISSIVE, "image.min_side=100", *clip_settings(tiny_model, "clip.min_score=-1"),
                "dedup.semantic_eps=0.005", "dedup.semantic_clusters=2", "shards.samples_per_shard=4"]
    with serve(routes) as site:
        listing = root / "list.tsv"
        listing.write_text("".join(f"{caption}\t{site.url(path)}\n" for path, caption in captions.items()))
        settings.append(site.connect_to)
        run_local([listing], root / "out", *settings)
        yield SimpleNamespace(out=root / "out", listing=listing, settings=settings, server=site.server)


def copy_of(finished, tmp_path: Path) -> Path:
    shutil.copytree(finished.out, tmp_path / "out")
    return tmp_path / "out"


def comparable(out: Path) -> dict:
    """What a review or a resume must leave alike: the bytes of the shards (their stats markers too:
    a shard written again has another), side files and reject files, the tally, and the funnel."""
    found = {path.relative_to(out).as_posix(): path.read_bytes() for folder in ("shards", "embeddings", "rejects")
             for path in sorted((out / folder).glob("*")) if path.is_file()}
    found["written.json"] = json.loads((out / "written.json").read_text())
    stats = stats_of(out)
    found["stats.json"] = {name: stats[name] for name in ("funnel", "check", "samples", "shards", "rejects")}
    return found


def queue_keys(out: Path) -> list[str]:
    """The keys report.html's review queue lists."""
    queue = (out / "report.html").read_text().split("id=review-queue", 1)
    return re.findall(r"data-key='([0-9a-f]+)'", queue[1].split("</table>", 1)[0]) if len(queue) == 2 else []


def two_keys(out: Path) -> list[str]:
    """The lowest CLIP score of the review queue, and the lowest in another shard."""
    queue = json.loads((out / "written.json").read_text())["review"]
    other = next(row for row in queue if row["shard"] != queue[0]["shard"])
    return [queue[0]["key"], other["key"]]


def test_reviewed_samples_move_to_the_rejects_and_a_resume_keeps_them_out(finished, tmp_path, capsys):
    out = copy_of(finished, tmp_path)
    before = stats_of(out)
    samples = before["samples"]
    keys = two_keys(out)
    assert set(keys) <= set(queue_keys(out))
    vectors = {shard: sorted(shard_vectors(str(out), "semantic", shard)[0]) for shard in shard_ids(str(out))}
    pasted = tmp_path / "rejected.txt"  # as pasted from the report or altcap ls: a key first on a line
    pasted.write_text(f"# from the review queue\n\n{keys[1]}\tclip 0.01  a cup of coffee\n")

    assert main(["review", str(out), "--reject", keys[0], "--reject-file", str(pasted), "--note", NOTE]) == 0
    printed = capsys.readouterr().out
    assert f"2 samples moved to rejects (human_review); {samples - 2} samples left" in printed
    assert f"report for a person: {out}/report.html" in printed
    assert not set(keys) & (set(tar_samples(out)) | {row["key"] for row in shard_rows(out)} | set(embeddings_of(out)))
    human = [row for row in reject_rows(out) if row["stage"] == "review"]
    assert sorted((row["key"], row["reason"], row["detail"]) for row in human) == sorted(
        (key, "human_review", NOTE) for key in keys)
    assert len(list((out / "rejects").glob("review-*.parquet"))) == 2
    assert json.loads((out / "review.json").read_text()) == {"rejected": {key: NOTE for key in sorted(keys)}}

    stats = stats_of(out)
    assert stats["funnel"][:-1] == before["funnel"]
    assert stats["funnel"][-1] == {"stage": "review", "in": samples, "passed": samples - 2, "rejected": 2,
                                   "reasons": {"human_review": 2}}
    assert stats["check"] == {"ok": True, "problems": []}
    assert stats["samples"] == samples - 2 and stats["samples"] + stats["rejects"] == stats["funnel"][0]["in"]
    written = json.loads((out / "written.json").read_text())
    assert (written["samples"], written["rejects"]) == (stats["samples"], stats["rejects"])
    report = (out / "report.html").read_text()
    assert (f"<tr data-stage='review'><td>review</td><td class=n>{samples}</td><td class=n>{samples - 2}</td>"
            "<td class=n>2</td>") in report and "id='reason-review-human_review'" in report
    assert queue_keys(out) == [row["key"] for row in written["review"]] and not set(keys) & set(queue_keys(out))
    # SemDeDup re-reads on a resume the embeddings of every sample that reached it: the rejected ones too
    assert {shard: sorted(shard_vectors(str(out), "semantic", shard)[0]) for shard in vectors} == vectors

    reviewed = comparable(out)
    assert main(["review", str(out), "--reject", *keys]) == 0  # again: nothing to do
    printed = capsys.readouterr().out
    assert "2 sample(s) rejected by a person before" in printed and "0 samples moved" in printed
    assert comparable(out) == reviewed

    fetched = dict(finished.server.requests)
    resumed = run_local([finished.listing], out, *finished.settings)
    assert finished.server.requests == fetched  # every shard reused: no image fetched
    assert comparable(out) == reviewed and resumed["funnel"] == stats["funnel"]


def test_a_retry_of_the_failed_downloads_keeps_the_rejections(finished, tmp_path, capsys):
    """SemDeDup is a cut over the run, so the retry fetches the passes' drops again, the reviewed
    samples too; the decisions drop them again."""
    out = copy_of(finished, tmp_path)
    keys = two_keys(out)
    assert main(["review", str(out), "--reject", *keys]) == 0
    reviewed = stats_of(out)
    assert main(["run", "--retry-failed", str(out), *IN_MEMORY]) == 0
    capsys.readouterr()
    stats = stats_of(out)
    assert (stats["retry"]["recovered"], stats["retry"]["refetched"]) == (1, 2) and stats["check"]["ok"]
    assert stats["funnel"][-1] == {"stage": "review", "in": reviewed["samples"] + 3,  # the 2 reviewed, fetched again
                                   "passed": reviewed["samples"] + 1, "rejected": 2, "reasons": {"human_review": 2}}
    assert stats["samples"] == reviewed["samples"] + 1
    assert not set(keys) & {row["key"] for row in shard_rows(out)}
    assert sorted(row["key"] for row in reject_rows(out) if row["reason"] == "human_review") == sorted(keys)


def test_a_key_that_is_no_sample_is_refused_and_nothing_changes(finished, tmp_path, capsys):
    out = copy_of(finished, tmp_path)
    untouched = comparable(out)
    sample = shard_rows(out)[0]["key"]
    small = next(row["key"] for row in reject_rows(out) if row["reason"] == "too_small")
    assert main(["review", str(out), "--reject", sample, "0" * 20]) == 2
    assert f"nothing rejected: {'0' * 20} is no sample or reject of {out}" in capsys.readouterr().err
    assert main(["review", str(out), "--reject", sample, small]) == 2
    assert f"{small} is a reject already (stage image, reason too_small)" in capsys.readouterr().err
    assert comparable(out) == untouched and not (out / "review.json").exists()
    (tmp_path / "empty").mkdir()
    refused = {("review", str(out)): "no key given",
               ("review", str(out), "--reject-file", str(tmp_path / "missing.txt")): "cannot read",
               ("review", str(tmp_path / "nothing"), "--reject", sample): "no such folder",
               ("review", str(tmp_path / "empty"), "--reject", sample): "no finished run (no stats.json)"}
    for command, message in refused.items():
        assert main(list(command)) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.splitlines()) == 1


def test_a_review_after_altcap_score_counts_its_rejections_last():
    """``altcap score`` appends its stages after a review; the next review counts what it adds at the
    end, and each review stage what it rejected."""
    funnel = [{"stage": "source", "in": 10, "passed": 8, "rejected": 2, "reasons": {"http_404": 2}},
              {"stage": "review", "in": 8, "passed": 7, "rejected": 1, "reasons": {"human_review": 1}},
              {"stage": "clip", "in": 7, "passed": 6, "rejected": 1, "reasons": {"low_clip_score": 1}}]
    once = with_review(funnel, 3)
    assert once[:3] == funnel and once[3] == {"stage": "review", "in": 6, "passed": 4, "rejected": 2,
                                              "reasons": {"human_review": 2}}
    twice = with_review(once, 4)
    assert twice[:3] == funnel and twice[3]["rejected"] == 3
    assert check_funnel(twice, samples_written=3, rejects_written=7) == []
