"""The rewrite rules of hypernymization, one by one, with the real offline sources (WordNet,
GeoNames) and a Wikidata KB built from a small dump in Wikidata's format; and the Conceptual
Captions paper's five published examples."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest
from test_wikidata_kb import ENTITIES, HUMAN, item, statement, write_dump

from hypernymize.loading import load_hypernymizer
from hypernymize.rewriter import Hypernymizer
from hypernymize.spacy_tagger import TaggedSpan
from hypernymize.wikidata_kb import build_kb

PEOPLE = [  # as Wikidata has them: human, with an occupation
    item("Q229254", "Calista Flockhart", sitelinks=60, claims={**HUMAN, "P106": [statement("P106", "Q33999")]}),
    item("Q43432", "Justin Timberlake", sitelinks=150, claims={**HUMAN, "P106": [statement("P106", "Q177220")]}),
]


@pytest.fixture(scope="module")
def kb(tmp_path_factory):
    folder = tmp_path_factory.mktemp("kb")
    build_kb(write_dump(folder / "dump.json", PEOPLE + ENTITIES), str(folder / "kb"))
    return str(folder / "kb")


@pytest.fixture(scope="module")
def hypernymizer(kb, tmp_path_factory):
    return load_hypernymizer(kb=kb, wordnet_root=str(tmp_path_factory.mktemp("nltk_data")))


def rewritten(hypernymizer, caption: str) -> str:
    return hypernymizer.rewrite(caption).rewritten


def same_text(a: str, b: str) -> bool:
    return re.sub(r"\s+([.,])", r"\1", a.lower()).strip() == re.sub(r"\s+([.,])", r"\1", b.lower()).strip()


def test_entities_become_hypernyms_with_their_source(hypernymizer):
    result = hypernymizer.rewrite("Madonna sings with Harrison Ford on a stage")
    assert result.rewritten == "Singer sings with film actor on a stage" and not result.rejected
    assert [(e.text, e.hypernym, e.source, e.type) for e in result.entities] == [
        ("Madonna", "singer", "wikidata", "person"), ("Harrison Ford", "film actor", "wikidata", "person")]


def test_wordnet_and_a_person_pattern_answer_when_the_kb_does_not(hypernymizer):
    result = hypernymizer.rewrite("a portrait of Einstein next to a portrait of Duncan McKellar")
    assert result.rewritten == "a portrait of physicist next to a portrait of person"
    assert [e.source for e in result.entities] == ["wordnet", "pattern"]


def test_article_agrees_with_the_hypernym(hypernymizer):
    assert rewritten(hypernymizer, "a British Airways aircraft lands") == "an aircraft lands"
    assert rewritten(hypernymizer, "an Einstein portrait on a wall") == "a portrait on a wall"


def test_dates_times_and_years_are_dropped_with_their_preposition(hypernymizer):
    assert rewritten(hypernymizer, "the crowd on September 23, 2017 at the stadium") == "the crowd at the stadium"
    assert rewritten(hypernymizer, "children play in the snow in January 2010") == "children play in the snow"
    assert rewritten(hypernymizer, "a market at 10:30 am on Monday") == "a market"


def test_place_phrases_are_dropped(hypernymizer):
    assert rewritten(hypernymizer, "a worker clears debris in Balakot, Pakistan.") == "a worker clears debris."
    assert rewritten(hypernymizer, "the bridge in Los Angeles at night") == "the bridge at night"
    # a named site after "at" says where the photo is (the paper's Figure 3 alt-text)
    assert rewritten(hypernymizer, "Jimmy Barnes performs at the Sydney Entertainment Centre") == \
        "Person performs at the venue"


def test_proper_noun_modifiers_and_the_numbers_of_removed_entities_are_dropped(hypernymizer):
    assert rewritten(hypernymizer, "Italian cuisine on a table") == "Cuisine on a table"
    assert rewritten(hypernymizer, "fans at the 2017 Pilgrimage Music Festival") == "fans at the festival"
    assert rewritten(hypernymizer, "crowds at the 29th American Film Festival") == "crowds at the festival"
    # a count of ordinary things stays; the paper's object-count rule drops it on request
    assert rewritten(hypernymizer, "two sculptures outside the Norwich Union offices") == \
        "two sculptures outside the offices"
    counting = Hypernymizer(hypernymizer.sources, hypernymizer.gazetteer, drop_counts=True)
    assert counting.rewrite("two sculptures outside the Norwich Union offices").rewritten == \
        "sculptures outside the offices"
    assert counting.rewrite("a dozen people helped at the Sydney Entertainment Centre").rewritten == \
        "a dozen people helped at the venue"  # "a dozen" is no bare count


def test_coordinated_identical_hypernyms_merge_into_a_plural(hypernymizer):
    result = hypernymizer.rewrite("Harrison Ford and Calista Flockhart attend the premiere")
    assert result.rewritten == "Actors attend the premiere"  # film actor + actor share the head
    assert [e.hypernym for e in result.entities] == ["film actor", "actor"]
    assert result.concepts == ["film actor", "actor"]  # two mentions stand in the plural


def test_concepts_are_the_hypernyms_left_in_the_rewrite(hypernymizer):
    result = hypernymizer.rewrite("Einstein lectures at the Sydney Entertainment Centre in Balakot, Pakistan")
    kept = {e.text: (e.hypernym, e.kept) for e in result.entities}
    assert kept["Einstein"] == ("physicist", True) and kept["Pakistan"] == ("country", False)
    assert result.concepts == ["physicist", "venue"]  # the place phrase went with its hypernyms
    assert hypernymizer.rewrite("a dog runs on the beach").concepts == []


def test_a_given_name_and_a_surname_that_is_a_word_make_a_person(hypernymizer):
    assert rewritten(hypernymizer, "Emma Stone waves to fans at the airport") == "Person waves to fans at the airport"
    assert rewritten(hypernymizer, "a portrait of Kate Moss on a wall") == "a portrait of person on a wall"
    assert rewritten(hypernymizer, "ducks swim in a pond at Victoria Park") == "ducks swim in a pond at the park"


def test_title_case_words_and_capitals_are_not_names_unless_known(hypernymizer):
    for caption in ("a box of Chocolates on a table", "I love apples AND coffee in the morning"):
        result = hypernymizer.rewrite(caption)
        assert (result.rewritten, result.rejected, result.entities) == (caption, False, [])
    shouted = hypernymizer.rewrite("a stamp printed in GERMANY shows a bird")
    assert shouted.rewritten == "a stamp printed shows a bird" and shouted.entities[0].hypernym == "country"
    # names with function words inside, as the gazetteer knows them
    assert rewritten(hypernymizer, "a street market in Hoi An, Vietnam") == "a street market"
    assert rewritten(hypernymizer, "boats on the river in Trinidad and Tobago at dusk") == "boats on the river at dusk"


UNCHANGED = Path(__file__).parent / "data" / "hypernymize_unchanged.txt"


def ordinary_captions() -> list[str]:
    return [line for line in UNCHANGED.read_text(encoding="utf-8").splitlines() if line and not line.startswith("## ")]


def test_ordinary_captions_come_out_exactly_as_written(hypernymizer):
    """Counts, amounts, ordinals, decades, articles, contractions and punctuation spacing, in
    Conceptual Captions' own style and as the web writes them: no rule may touch them."""
    captions = ordinary_captions()
    assert len(captions) > 100
    results = [hypernymizer.rewrite(caption) for caption in captions]
    assert [(r.caption, r.rewritten, r.reason) for r in results if r.rewritten != r.caption or r.rejected] == []
    styled = Hypernymizer(hypernymizer.sources, hypernymizer.gazetteer, style="cc3m")  # its form is already cc3m's
    lower = [c for c in captions if c == c.lower()]
    assert [c for c in lower if styled.rewrite(c).rewritten != c] == [] and len(lower) > 60


def test_untouched_tokens_keep_their_spaces_and_articles(hypernymizer):
    assert rewritten(hypernymizer, "the dog 's toy , with Madonna 's ball") == "the dog 's toy , with singer 's ball"
    assert rewritten(hypernymizer, "a £ 6,000 gift from Einstein  to  the city") == \
        "a £ 6,000 gift from physicist  to  the city"
    # an article agrees only with a word a rule put after it
    assert rewritten(hypernymizer, "an urban view and an Einstein portrait next to an unit") == \
        "an urban view and a portrait next to an unit"
    assert rewritten(hypernymizer, "Autumn trees. 2008. Oil on canvas") == "Autumn trees. Oil on canvas"
    assert rewritten(hypernymizer, "Boxed set - Series 1 & 2 [1990] [DVD]") == "Boxed set - Series 1 & 2 [DVD]"
    assert rewritten(hypernymizer, "It's Taylor Swift's birthday!") == "It's person's birthday!"


SAME = "as written"


@pytest.mark.parametrize(("caption", "expected"), [
    # the hypernym would repeat the noun
    ("a map of the Battle of Issus", "a map of the battle"),
    ("Big Ben clock against autumn leaves", "Clock against autumn leaves"),
    ("The ancient city of Dresden, Germany.", "The ancient city."),
    # Title Case and capitals of ordinary words are no names
    ("Quick and Savory Tuna Burgers", SAME),
    ("Unauthorized Immigrant Populations Rose or Fell in 21 States", SAME),
    ("Transformers: Dark of the Moon Pictures", SAME),
    ("Women's leather jacket with laces", SAME),
    ("Deluxe 8GB USB notebook with stylus pen", SAME),
    ("American football and soccer ball on grunge background", SAME),
    # a part of a name alone, or a name in a title that may be anything: rejected
    ("Attack (political party) - Volen Siderov meets Front National President Marine Le Pen in Paris, May 2011", None),
    ("Breakfast on Pluto", None),
    ("Taipei 101 dominates the city skyline.", None),
    ("Mastering Lexie audiobook cover art", None),
    # one-word names that are words too need a place preposition
    ("a ring of Gold on a table", SAME),
    ("a walk in Bath at dusk", "a walk at dusk"),
    # verbs after names, initials, a surname that is a modal verb
    ("Roseanne Barr running for president", "Person running for president"),
    ("Theresa May wants to keep the pension", "Person wants to keep the pension"),
    ("Essays in Social Ethics, David F. Wright, editor", "Essays in Social Ethics, person, editor"),
    ("Russia – Ukraine war updates: daily briefings as of March 24, 2018", "Country – war updates: daily briefings"),
])
def test_web_alt_text_is_rewritten_right_or_rejected(hypernymizer, caption, expected):
    result = hypernymizer.rewrite(caption)
    assert (result.rewritten if not result.rejected else None) == (caption if expected == SAME else expected)


WEB_CHECK = Path(__file__).parent / "data" / "hypernymize_web_check.tsv"


def test_the_hand_checked_web_rewrites_still_read_as_checked(hypernymizer):
    """200 rewrites of real alt-texts, each judged by hand (the table's header says how): a rule
    that changes one must have the row checked again; 90% or more must be right."""
    lines = [line for line in WEB_CHECK.read_text(encoding="utf-8").splitlines() if not line.startswith("#")]
    rows = list(csv.DictReader(lines, delimiter="\t"))
    without_kb = Hypernymizer([s for s in hypernymizer.sources if s.name != "wikidata"], hypernymizer.gazetteer)
    results = [without_kb.rewrite(row["caption"]) for row in rows]
    assert [(row["row"], result.rewritten) for row, result in zip(rows, results)
            if result.rejected or result.rewritten != row["rewritten"]] == []
    assert len(rows) == 200 and {row["verdict"] for row in rows} == {"right", "wrong"}
    assert sum(row["verdict"] == "right" for row in rows) >= 180


def test_alternate_names_that_are_words_make_no_places(hypernymizer):
    geonames = next(source for source in hypernymizer.sources if source.name == "geonames")
    assert [geonames.lookup(name) for name in ("Gold", "Off", "PDF", "Bella")] == [None] * 4
    assert geonames.lookup("Paris").hypernym == "city" and geonames.lookup("Bath").hypernym == "city"


def test_a_taggers_amounts_go_only_with_the_entity_they_modify(hypernymizer):
    assert hypernymizer.rewrite("a dozen people helped", [TaggedSpan(2, 7, "dozen", "CARDINAL")]).rewritten == \
        "a dozen people helped"
    caption = "crowds at the 29th Cannes Festival last summer"
    tags = [TaggedSpan(14, 18, "29th", "ORDINAL"), TaggedSpan(35, 46, "last summer", "DATE")]
    assert hypernymizer.rewrite(caption, tags).rewritten == "crowds at the festival"


def test_quoted_titles_are_dropped(hypernymizer):
    assert rewritten(hypernymizer, "the premiere of 'Hollywood Homicide' in a cinema") == "the premiere in a cinema"


def test_captions_without_entities_and_hypernymized_ones_stay_as_they_are(hypernymizer):
    for caption in ("actor attends the premiere of the film", "a dog runs on the beach with a ball",
                    "person walks through a field of sunflowers", "Side view of an aircraft on approach",
                    "The kitchen has a large window and a wooden table."):
        result = hypernymizer.rewrite(caption)
        assert (result.rewritten, result.rejected, result.entities) == (caption, False, [])


def test_rejections_say_why(hypernymizer):
    unresolved = hypernymizer.rewrite("a bowl of Zorblax Quinterfeld on the table")
    assert unresolved.rejected and unresolved.reason == "unresolved_proper_noun"
    assert [e.type for e in unresolved.entities] == ["unknown"]
    short = hypernymizer.rewrite("Madonna in Paris")
    assert short.rejected and short.reason == "too_few_words"


def test_person_mask_and_cc3m_style(hypernymizer):
    masked = Hypernymizer(hypernymizer.sources, hypernymizer.gazetteer, mode="person-mask")
    assert masked.rewrite("Harrison Ford and Calista Flockhart attend the premiere in Paris").rewritten == \
        "<PERSON> and <PERSON> attend the premiere in Paris"
    styled = Hypernymizer(hypernymizer.sources, hypernymizer.gazetteer, style="cc3m")
    assert styled.rewrite("Harrison Ford attends the premiere, smiling.").rewritten == \
        "film actor attends the premiere , smiling ."


def test_the_papers_examples(hypernymizer, realdata):
    examples = json.loads(realdata("captions", "hypernymization", "cc_paper_examples.json").read_text())["examples"]
    alt_texts = [e["alt_text"].replace(" - Stock Image", "") for e in examples]
    counting = Hypernymizer(hypernymizer.sources, hypernymizer.gazetteer, drop_counts=True)
    for rewriter, word_for_word in ((counting, [True, False, False, True, True]),
                                    (hypernymizer, [True, False, False, True, False])):
        outputs = [rewriter.rewrite(alt_text) for alt_text in alt_texts]
        assert not any(o.rejected for o in outputs)
        exact = [same_text(o.rewritten, e["conceptual_caption"]) for o, e in zip(outputs, examples)]
        assert exact == word_for_word  # 1, 4, 5 as the paper's with its object-count rule
        # 3: the same hypernym and dropped parts; the paper also drops "the" before "festival"
        assert same_text(outputs[2].rewritten, "actors attend the premiere at the festival.")
        # 2: the KB's occupation is "singer", the paper's KG said "pop artist" and kept "in a city"
        assert same_text(outputs[1].rewritten, "singer performs at the festival.")
    # without the object-count rule, 5 keeps its count and nothing else differs
    assert same_text(outputs[4].rewritten, "two " + examples[4]["conceptual_caption"])


def test_cli_writes_one_json_line_per_caption(kb, tmp_path, capsys, monkeypatch):
    from pipeline.cli import main

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # WordNet's normalised copy goes there
    captions = tmp_path / "captions.txt"
    captions.write_text("Harrison Ford and Calista Flockhart attend the premiere\na dog runs on the beach\n"
                        "Madonna in Paris\n")
    assert main(["hypernymize", "--kb", kb, str(captions)]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["rewritten"] for line in lines] == ["Actors attend the premiere", "a dog runs on the beach",
                                                     "Singer"]
    assert [line["reason"] for line in lines] == [None, None, "too_few_words"] and lines[2]["rejected"]
    assert lines[0]["entities"][0] == {"start": 0, "end": 13, "text": "Harrison Ford", "type": "person",
                                       "hypernym": "film actor", "source": "wikidata", "kept": True}
    assert main(["hypernymize", str(tmp_path / "missing.txt")]) == 2
