"""The job's tally of what it wrote (``written.json``, dataset.tally): tallies add up to the same
total in any order and stay small, and the launcher of a run on worker processes checks the funnel
from it without reading a shard's parquet or stats (only the files that hold the images the report
shows: the first tars, the review queue's tars, the reject files with the thumbnails shown)."""

from __future__ import annotations

import json

import pyarrow.parquet as pq

from crawl.serve import Route
from dataset import fileio, tally
from dataset.layout import shard_paths
from pipeline.report import SAMPLES_SHOWN
from pipeline.stages import host_spread

from pipeline_helpers import jpeg, reject_rows, run_local, serve, shard_rows

SUMMED = {"tokens": ("captions_truncated",)}


def some_tally(shard_id: int, samples: int, examples: list[tuple[str, str, str]], truncated: int) -> dict:
    found = tally.empty()
    found.update(samples=samples, shards=1, rejects=len(examples), sizes={"0-255": samples},
                 first_shards=[shard_id] if samples else [],
                 steps={"tokens": [shard_id, {"grid": 16 + shard_id, "captions_truncated": truncated}]},
                 langs={"kept": {"en": samples}, "dropped": {"fr": len(examples)}},
                 review=[{"key": f"{shard_id}-{n}", "clip_score": (shard_id * 7 + n) % 10 / 10, "shard": shard_id}
                         for n in range(samples)],
                 rewrites=[{"key": f"{shard_id:02d}-{n}", "shard": shard_id} for n in range(samples)],
                 tokens={"codes": [1] * (shard_id + 1), "text_lengths": {"3": samples}, "text_width": 8,
                         "samples": samples} if samples else {})
    for stage, reason, url in examples:
        found["examples"].setdefault(stage, {}).setdefault(reason, []).append(
            {"key": url[-4:], "url": url, "caption": "c", "detail": ""})
    return found


def test_tallies_add_up_to_one_total_in_any_order_and_stay_bounded():
    parts = [some_tally(i, samples=i % 3, truncated=i,
                        examples=[("download", "http_404", f"http://h/{i}-{j}") for j in range(2)])
             for i in range(40)]
    totals = []
    for order in (parts, parts[::-1], sorted(parts, key=lambda part: (part["samples"], -part["shards"]))):
        total = tally.empty()
        for part in order:
            tally.add(total, json.loads(json.dumps(part)), SUMMED)
        totals.append(total)
    # grouped, as a runner merges accumulators
    halves = [tally.empty(), tally.empty()]
    for index, part in enumerate(parts):
        tally.add(halves[index % 2], json.loads(json.dumps(part)), SUMMED)
    totals.append(tally.add(halves[1], halves[0], SUMMED))
    assert all(total == totals[0] for total in totals)
    total = totals[0]
    assert (total["samples"], total["shards"], total["rejects"]) == (sum(i % 3 for i in range(40)), 40, 80)
    assert total["sizes"] == {"0-255": total["samples"]}
    urls = [row["url"] for row in total["examples"]["download"]["http_404"]]
    assert urls == sorted(f"http://h/{i}-{j}" for i in range(40) for j in range(2))[:tally.REJECT_EXAMPLES]
    assert total["first_shards"] == [i for i in range(40) if i % 3][:tally.FIRST_SHARDS]
    # a step's report: the lowest shard's, with the numbers it sums added up
    assert total["steps"]["tokens"] == [0, {"grid": 16, "captions_truncated": sum(range(40))}]
    assert total["langs"] == {"kept": {"en": total["samples"]}, "dropped": {"fr": 80}}
    everyone = [row for part in parts for row in part["review"]]
    assert total["review"] == sorted(everyone, key=lambda row: (row["clip_score"], row["key"]))[:tally.REVIEW_SHOWN]
    assert [row["key"] for row in total["rewrites"]] == sorted(
        row["key"] for part in parts for row in part["rewrites"])[:tally.REWRITES_SHOWN]
    with_samples = [i for i in range(40) if i % 3]
    assert total["tokens"]["codes"] == [sum(i >= code for i in with_samples) for code in range(max(with_samples) + 1)]
    assert total["tokens"]["text_lengths"] == {"3": total["samples"]} == {"3": total["tokens"]["samples"]}


def test_size_labels_cover_every_side():
    assert [tally.size_label(w, h) for w, h in [(None, 10), (255, 900), (256, 256), (400, 2000), (511, 511),
                                                (512, 600), (2047, 3000), (2048, 2048), (9000, 9000)]] == [
        "0-255", "0-255", "256-400", "256-400", "401-511", "512-1023", "1024-2047", ">=2048", ">=2048"]


def test_the_launcher_checks_the_run_from_the_tally_without_reading_the_shards(tmp_path, monkeypatch):
    routes, lines = {}, []
    for i in range(80):  # 2 in 10 missing (download rejects), 3 too small (image rejects)
        if i % 10 not in (3, 7):
            routes[f"/{i}.jpg"] = Route(jpeg(100 + 29 * i, 110 + 29 * i))
        lines.append(f"photo number {i}\t{{url}}/{i}.jpg")
    read = []
    for name in ("open_read", "read_bytes"):  # the launcher's reads; the workers are other processes
        original = getattr(fileio, name)
        monkeypatch.setattr(fileio, name, lambda path, *a, _original=original, **k: read.append(path) or
                            _original(path, *a, **k))
    with serve(routes) as site:
        listing = tmp_path / "pairs.tsv"
        listing.write_text("\n".join(line.format(url=site.url("")) for line in lines) + "\n")
        stats = run_local([listing], tmp_path / "out", site.connect_to, "shards.samples_per_shard=4",
                          "image.min_side=200", beam_args=["--direct_running_mode=multi_processing",
                                                           "--direct_num_workers=2"])
    out = tmp_path / "out"
    samples, rejects = shard_rows(out), reject_rows(out)
    assert stats["check"] == {"ok": True, "problems": []}
    assert (stats["samples"], stats["rejects"]) == (len(samples), len(rejects)) == (61, 19)
    per_shard = {int(path.stem): pq.ParquetFile(path).metadata.num_rows for path in (out / "shards").glob("*.parquet")}
    assert stats["shards"] == len(per_shard) == host_spread(80, 4, per_host=16) == 16  # one host
    written = json.loads((out / tally.WRITTEN).read_text())
    sizes = {}
    for row in samples:
        label = tally.size_label(row["original_width"], row["original_height"])
        sizes[label] = sizes.get(label, 0) + 1
    assert written["sizes"] == sizes and len(sizes) == len(tally.SIZE_LABELS)
    assert {(stage, reason) for stage, reasons in written["examples"].items() for reason in reasons} == {
        (row["stage"], row["reason"]) for row in rejects}
    assert all(len(rows) <= tally.REJECT_EXAMPLES for reasons in written["examples"].values()
               for rows in reasons.values())

    # The launcher read none of the files the workers tallied, only those with the images the report
    # shows: the first tars, as many as its grid needs, and the reject files holding the thumbnails.
    with_samples = [shard for shard in sorted(per_shard) if per_shard[shard]]
    needed = next(n for n in range(1, len(with_samples) + 1)
                  if sum(per_shard[shard] for shard in with_samples[:n]) >= SAMPLES_SHOWN)
    shown_rejects = sorted({str(out / row["file"]) for reasons in written["examples"].values()
                            for rows in reasons.values() for row in rows if row["thumbnail"]})
    assert written["review"] == []  # no CLIP scores: no review queue to read images for
    assert [path for path in read if "/shards/" in path] == [
        shard_paths(str(out), shard)["tar"] for shard in with_samples[:needed]]
    assert sorted(path for path in read if "/rejects/" in path) == shown_rejects
    assert needed < len(with_samples) and 0 < len(shown_rejects) < len(per_shard)
