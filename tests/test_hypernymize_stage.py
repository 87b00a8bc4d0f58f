"""Hypernymization as a pipeline stage, in a real Beam pipeline against 127.0.0.1: each sample's
.txt holds the rewritten caption, the parquet keeps the cleaned caption beside it with the entity
list, and a caption the rules reject is a ``hypernymize`` reject with its reason. The
concept-frequency cut counts hypernyms over the whole run and drops captions with rare ones."""

from __future__ import annotations

import json

from crawl.serve import LocalServer, Route
from hypernymize.spacy_tagger import resolve_spacy_model

from pipeline_helpers import PERMISSIVE, jpeg, reject_rows, run_local, serve, shard_rows, tar_samples

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
                         "hypernym": "physicist", "source": "wordnet", "kept": True}]
    assert rows["A red barn in a green field"]["entities"] == []
    rejected = [r for r in reject_rows(tmp_path / "out") if r["stage"] == "hypernymize"]
    assert [(r["caption"], r["reason"], r["detail"]) for r in rejected] == [
        ("A bowl of soup from Zorblax Quinterfeld.", "unresolved_proper_noun", "Zorblax Quinterfeld")]
    funnel = [e["stage"] for e in stats["funnel"]]
    assert funnel.index("image") < funnel.index("hypernymize")
    stage = next(e for e in stats["funnel"] if e["stage"] == "hypernymize")
    assert (stage["in"], stage["passed"], stage["rejected"]) == (4, 3, 1)
    recorded = json.loads((tmp_path / "out" / "stats.json").read_text())["hypernymize"]
    assert recorded == {"spacy_model": resolve_spacy_model("auto")}  # the default: none installed here


CONCEPT_CAPTIONS = {
    "Albert Einstein smiles at the camera": "physicist",
    "Albert Einstein writes on a blackboard": "physicist",
    "Albert Einstein and Niels Bohr talk in a garden": "physicist physicist",  # -> "physicists"
    "Shakespeare reads a book by the window": "poet",  # the one mention of poet: cut
    "A dog runs on a beach in Paris.": "",  # "in Paris" went: city is no mention
    "A red barn in a green field": "",
    "A bowl of soup from Zorblax Quinterfeld.": None,  # rejected before the cut
}


def test_the_concept_cut_drops_captions_with_rare_hypernyms_across_shards(tmp_path):
    routes = {f"/{i}.jpg": Route(jpeg(500 + i, 450, (30 * i, 90, 20))) for i in range(len(CONCEPT_CAPTIONS))}
    settings = [*PERMISSIVE, "hypernymize.enabled=true", "hypernymize.min_concept_mentions=2",
                "shards.samples_per_shard=2"]
    with LocalServer(routes) as server:
        listing = tmp_path / "l.tsv"
        listing.write_text("".join(f"{c}\t{server.url(f'/{i}.jpg')}\n" for i, c in enumerate(CONCEPT_CAPTIONS)))
        stats = run_local([listing], tmp_path / "out", *settings)
        again = run_local([listing], tmp_path / "out", *settings)  # a resume: nothing changes
    kept = sorted(r["caption"] for r in shard_rows(tmp_path / "out"))
    assert kept == sorted(c for c, concepts in CONCEPT_CAPTIONS.items()
                          if concepts is not None and "poet" not in concepts)
    assert len(list((tmp_path / "out" / "shards").glob("*.tar"))) > 1  # the counts crossed shards
    cut = [r for r in reject_rows(tmp_path / "out") if r["stage"] == "concepts"]
    assert [(r["caption"], r["reason"], r["detail"]) for r in cut] == [
        ("Shakespeare reads a book by the window", "rare_concept", "poet: 1 mention(s), fewer than 2")]
    texts = sorted(files["txt"].decode() for files in tar_samples(tmp_path / "out").values())
    assert "Physicists talk in a garden" in texts and len(texts) == len(kept)
    concepts = json.loads((tmp_path / "out" / "concepts.json").read_text())
    assert concepts["counts"] == {"physicist": 4, "poet": 1} and concepts["concepts_kept"] == 1
    for run in (stats, again):
        stage = next(e for e in run["funnel"] if e["stage"] == "concepts")
        assert (stage["in"], stage["passed"], stage["rejected"]) == (6, 5, 1)
        assert run["concepts"]["most_mentioned"] == {"physicist": 4, "poet": 1}
    order = [e["stage"] for e in stats["funnel"]]
    assert order.index("hypernymize") + 1 == order.index("concepts")


def test_the_settings_reach_the_stage(tmp_path):
    """hypernymize.kb, style, reject_unresolved and mode in a run give what the hypernymizer itself
    gives with those settings."""
    from test_wikidata_kb import ENTITIES, HUMAN, item, statement, write_dump

    from hypernymize.loading import load_hypernymizer
    from hypernymize.wikidata_kb import build_kb

    actor = {**HUMAN, "P106": [statement("P106", "Q33999")]}
    people = [item("Q229254", "Calista Flockhart", sitelinks=60, claims=actor)]
    kb = str(tmp_path / "kb")
    build_kb(write_dump(tmp_path / "dump.json", people + ENTITIES), kb)
    captions = ["Calista Flockhart attends the premiere.", "A bowl of soup from Zorblax Quinterfeld.",
                "Albert Einstein smiles at the camera"]
    routes = {f"/{i}.jpg": Route(jpeg(500 + i, 450)) for i in range(len(captions))}
    runs = {"kb": ["hypernymize.kb=" + kb, "hypernymize.style=cc3m", "hypernymize.reject_unresolved=false"],
            "mask": ["hypernymize.mode=person-mask"]}
    with serve(routes) as site:
        listing = tmp_path / "l.tsv"
        listing.write_text("".join(f"{c}\t{site.url(f'/{i}.jpg')}\n" for i, c in enumerate(captions)))
        for name, settings in runs.items():
            run_local([listing], tmp_path / name, *PERMISSIVE, site.connect_to, "hypernymize.enabled=true",
                      "hypernymize.spacy_model=off", *settings)
    expected = {
        "kb": load_hypernymizer(kb=kb, style="cc3m", reject_unresolved=False),
        "mask": load_hypernymizer(mode="person-mask"),
    }
    for name, hypernymizer in expected.items():
        outcomes = {c: hypernymizer.rewrite(c) for c in captions}
        rows = {r["caption"]: r["caption_hypernymized"] for r in shard_rows(tmp_path / name)}
        assert rows == {c: o.rewritten for c, o in outcomes.items() if not o.rejected}, name
    assert rows["Albert Einstein smiles at the camera"] == "<PERSON> smiles at the camera"
    kb_rows = {r["caption"]: r for r in shard_rows(tmp_path / "kb")}
    assert len(kb_rows) == 3  # the unknown name stays: reject_unresolved=false
    assert kb_rows["Calista Flockhart attends the premiere."]["entities"][0]["source"] == "wikidata"
