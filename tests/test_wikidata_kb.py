"""The Wikidata KB builder on a small dump written in Wikidata's real JSON dump format (one entity
per line inside a JSON array, statements with ranks and wikibase-entityid values), plain, gzip
and bzip2; and the memory-mapped lookup over what it builds."""

from __future__ import annotations

import bz2
import gzip
import json

import pytest

from hypernymize.wikidata_kb import KbError, WikidataKb, build_kb
from pipeline.cli import main


def statement(prop: str, target: str, rank: str = "normal") -> dict:
    return {"mainsnak": {"snaktype": "value", "property": prop, "hash": "0" * 40,
                         "datavalue": {"value": {"entity-type": "item", "numeric-id": int(target[1:]),
                                                 "id": target}, "type": "wikibase-entityid"},
                         "datatype": "wikibase-item"},
            "type": "statement", "id": f"{prop}$0", "rank": rank}


def coordinates() -> dict:
    return {"mainsnak": {"snaktype": "value", "property": "P625", "datatype": "globe-coordinate",
                         "datavalue": {"value": {"latitude": 49.36, "longitude": 0.07, "precision": 0.0001,
                                                 "globe": "http://www.wikidata.org/entity/Q2"},
                                       "type": "globecoordinate"}},
            "type": "statement", "id": "P625$0", "rank": "normal"}


def item(qid: str, label: str, *, aliases=(), claims=None, sitelinks=0, fr_label=None) -> dict:
    labels = {"en": {"language": "en", "value": label}}
    if fr_label:
        labels["fr"] = {"language": "fr", "value": fr_label}
    return {"type": "item", "id": qid, "labels": labels,
            "descriptions": {"en": {"language": "en", "value": "test entity"}},
            "aliases": {"en": [{"language": "en", "value": a} for a in aliases]} if aliases else {},
            "claims": claims or {},
            "sitelinks": {f"wiki{i}": {"site": f"wiki{i}", "title": label, "badges": []} for i in range(sitelinks)},
            "lastrevid": 1}


HUMAN = {"P31": [statement("P31", "Q5")]}
ENTITIES = [
    item("Q81328", "Harrison Ford", sitelinks=120, claims={**HUMAN, "P106": [
        statement("P106", "Q33999"), statement("P106", "Q10800557", "preferred"),
        statement("P106", "Q3282637", "deprecated")]}),
    item("Q1744", "Madonna", aliases=["Madonna Louise Ciccone"], sitelinks=200,
         claims={**HUMAN, "P106": [statement("P106", "Q177220")]}),
    item("Q190086", "Deauville", sitelinks=40, fr_label="Deauville",
         claims={"P31": [statement("P31", "Q484170")], "P625": [coordinates()]}),
    item("Q810", "Jordan", aliases=["Hashemite Kingdom of Jordan"], sitelinks=300,
         claims={"P31": [statement("P31", "Q6256")], "P625": [coordinates()]}),
    item("Q999001", "Jordan", sitelinks=2, claims={**HUMAN, "P106": [statement("P106", "Q33999")]}),
    item("Q999002", "Nobody Known", claims={**HUMAN}),  # no occupation, no other class: no hypernym
    # the classes and occupations come after the items that use them, as they can in a real dump
    item("Q33999", "actor"), item("Q10800557", "film actor"), item("Q177220", "singer"),
    item("Q484170", "commune of France"), item("Q6256", "country"), item("Q3282637", "film producer"),
    item("Q5", "human"),
]


def write_dump(path, entities, opener=open, broken_line=False):
    lines = ["[", *(json.dumps(e) + "," for e in entities[:-1]), json.dumps(entities[-1]), "]"]
    if broken_line:
        lines.insert(3, '{"type": "item", "id": "Q1", "labels": {')
    with opener(path, "wt", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    return str(path)


@pytest.fixture(scope="module")
def kb(tmp_path_factory):
    folder = tmp_path_factory.mktemp("kb")
    dump = write_dump(folder / "dump.json", ENTITIES, broken_line=True)
    manifest = build_kb(dump, str(folder / "kb"))
    return WikidataKb(str(folder / "kb")), manifest


def test_people_get_their_occupation_preferred_first(kb):
    found = kb[0].lookup("Harrison Ford")
    assert (found.hypernym, found.type, found.source, found.id) == ("film actor", "person", "wikidata", "Q81328")
    assert kb[0].lookup("Madonna Louise Ciccone").hypernym == "singer"  # aliases name it too


def test_other_items_get_their_class_and_places_their_type(kb):
    found = kb[0].lookup("Deauville")
    assert (found.hypernym, found.type) == ("commune of France", "place")
    assert kb[0].lookup("actor") is None  # an item with no class of its own has no hypernym


def test_a_shared_name_goes_to_the_best_known_item(kb):
    assert kb[0].lookup("Jordan").id == "Q810" and kb[0].lookup("Jordan").hypernym == "country"
    assert kb[0].lookup("Hashemite Kingdom of Jordan").id == "Q810"


def test_unknown_names_and_items_without_hypernym(kb):
    assert kb[0].lookup("Nobody Known") is None and kb[0].lookup("harrison ford") is None
    assert kb[1]["bad_lines"] == 1 and "not JSON" in kb[1]["problems"][0]
    assert kb[1]["items"] == len(ENTITIES)
    assert "Harrison Ford" in set(kb[0].names())


def test_compressed_dumps_build_the_same_kb(tmp_path, kb):
    for suffix, opener in ((".json.gz", gzip.open), (".json.bz2", bz2.open)):
        dump = write_dump(tmp_path / f"dump{suffix}", ENTITIES, opener)
        build_kb(dump, str(tmp_path / suffix))
        other = WikidataKb(str(tmp_path / suffix))
        assert sorted(other.names()) == sorted(kb[0].names())
        assert other.lookup("Madonna") == kb[0].lookup("Madonna")


def test_languages_and_notability_filters(tmp_path):
    dump = write_dump(tmp_path / "dump.json", ENTITIES)
    manifest = build_kb(dump, str(tmp_path / "kb"), languages=("fr",), min_sitelinks=100)
    fr = WikidataKb(str(tmp_path / "kb"))
    assert manifest["names"] == 0 and fr.lookup("Deauville") is None  # 40 sitelinks < 100
    build_kb(dump, str(tmp_path / "kb2"), languages=("fr", "en"), min_sitelinks=10)
    assert WikidataKb(str(tmp_path / "kb2")).lookup("Jordan").id == "Q810"


def test_cli_builds_and_refuses_bad_input(tmp_path, capsys):
    dump = write_dump(tmp_path / "dump.json", ENTITIES)
    assert main(["kb", "build", "--wikidata", dump, "--output", str(tmp_path / "kb")]) == 0
    assert "names" in capsys.readouterr().out
    assert WikidataKb(str(tmp_path / "kb")).lookup("Madonna").hypernym == "singer"
    assert main(["kb", "build", "--wikidata", str(tmp_path / "missing.json"), "--output", str(tmp_path / "x")]) == 2
    assert "cannot read the Wikidata dump" in capsys.readouterr().err
    with pytest.raises(KbError, match="cannot load"):
        WikidataKb(str(tmp_path / "nowhere"))
