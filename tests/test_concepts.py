"""The concept-frequency cut's pure rules: mentions are the hypernyms left in a rewrite, counted
over the run; a caption with a concept under the threshold is rejected with the counts."""

from __future__ import annotations

from hypernymize.concepts import check_concepts, concept_counts, mentions


def entity(hypernym, kept=True):
    return {"start": 0, "end": 1, "text": "X", "type": "person", "hypernym": hypernym, "source": "wikidata",
            "kept": kept}


def test_only_hypernyms_left_in_the_rewrite_are_mentions():
    assert mentions([entity("actor"), entity("actor"), entity("city", kept=False), entity(None, kept=False)]) == \
        ["actor", "actor"]
    assert mentions(None) == [] and mentions([]) == []


def test_counts_add_up_over_captions():
    counts = concept_counts([[entity("actor")], None, [entity("actor"), entity("city")], [entity("city", False)]])
    assert counts == {"actor": 2, "city": 1}


def test_a_caption_with_a_rare_concept_is_rejected_with_its_counts():
    counts = {"actor": 150, "city": 101, "lute player": 3}
    assert check_concepts([entity("actor"), entity("city")], counts, 101) is None
    assert check_concepts([entity("actor"), entity("lute player")], counts, 101) == \
        ("rare_concept", "lute player: 3 mention(s), fewer than 101")
    assert check_concepts([entity("lute player", kept=False)], counts, 101) is None  # not in the caption
    assert check_concepts([], counts, 101) is None
