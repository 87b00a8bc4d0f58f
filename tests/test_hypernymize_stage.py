"""Hypernymization as a pipeline stage, in a real Beam pipeline against 127.0.0.1: each sample's
.txt holds the rewritten caption, the parquet keeps the cleaned caption beside it with the entity
list, and a caption the rules reject is a ``hypernymize`` reject with its reason."""

from __future__ import annotations

from crawl.serve import LocalServer, Route

from pipeline_helpers import PERMISSIVE, jpeg, reject_rows, run_local, shard_rows, tar_samples

CAPTIONS = {
    "A dog runs on a beach in Paris.": "A dog runs on a beach.",
    "Albert Einstein smiles at the camera": "Physicist smiles at the camera",
    "A red barn in a green field": "A red barn in a green field",
    "A bowl of soup from Zorblax Quinterfeld.": None,  # unresolved proper noun: rejected
}


def test_the_stage_rewrites_captions_and_rejects_with_reasons(tmp_path):
    routes = {f"/{i}.jpg": Route(jpeg(500 + i, 450, (40 * i, 90, 20))) for i in range(len(CAPTIONS))}
    with LocalServer(routes) as server:
        listing = tmp_path / "l.tsv"
        listing.write_text("".join(f"{c}\t{server.url(f'/{i}.jpg')}\n" for i, c in enumerate(CAPTIONS)))
        stats = run_local([listing], tmp_path / "out", *PERMISSIVE, "hypernymize.enabled=true")
    rows = {r["caption"]: r for r in shard_rows(tmp_path / "out")}
    assert {c: r["caption_hypernymized"] for c, r in rows.items()} == \
        {c: h for c, h in CAPTIONS.items() if h is not None}
    texts = {key: files["txt"].decode() for key, files in tar_samples(tmp_path / "out").items()}
    assert sorted(texts.values()) == sorted(h for h in CAPTIONS.values() if h is not None)
    einstein = rows["Albert Einstein smiles at the camera"]["entities"]
    assert einstein == [{"start": 0, "end": 15, "text": "Albert Einstein", "type": "person",
                         "hypernym": "physicist", "source": "wordnet"}]
    assert rows["A red barn in a green field"]["entities"] == []
    rejected = [r for r in reject_rows(tmp_path / "out") if r["stage"] == "hypernymize"]
    assert [(r["caption"], r["reason"], r["detail"]) for r in rejected] == [
        ("A bowl of soup from Zorblax Quinterfeld.", "unresolved_proper_noun", "Zorblax Quinterfeld")]
    funnel = [e["stage"] for e in stats["funnel"]]
    assert funnel.index("image") < funnel.index("hypernymize")
    stage = next(e for e in stats["funnel"] if e["stage"] == "hypernymize")
    assert (stage["in"], stage["passed"], stage["rejected"]) == (4, 3, 1) and stats["check"]["ok"]
