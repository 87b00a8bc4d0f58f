"""The spaCy NER plug-in, on a tiny NER pipeline the fixture trains and saves (no model download)."""

import json
import random
import re
import shutil
import subprocess
import sys

import pytest

spacy = pytest.importorskip("spacy")

from spacy.training import Example  # noqa: E402
from spacy.util import fix_random_seed, is_package, minibatch  # noqa: E402

from hypernymize.knowledge import ORGANIZATION, PERSON, PLACE, THING  # noqa: E402
from hypernymize.spacy_tagger import (  # noqa: E402
    AMOUNT_LABELS,
    AUTO_MODEL,
    DATE_LABELS,
    HYPERNYMS,
    NONE_INSTALLED,
    SpacyModelError,
    TaggedSpan,
    load_spacy_tagger,
    resolve_spacy_model,
)
from pipeline.config import load_config  # noqa: E402
from pipeline.run import OutputFolderError, prepare_output  # noqa: E402

CAPTIONS = [
    ("Taylor Swift performs at the stadium.", [("Taylor Swift", "PERSON")]),
    ("Tourists walk in Lisbon during summer.", [("Lisbon", "GPE"), ("summer", "DATE")]),
    ("Workers of Acme Corp build a bridge in 2019.", [("Acme Corp", "ORG"), ("2019", "DATE")]),
    ("Barack Obama waves to the crowd in Chicago.", [("Barack Obama", "PERSON"), ("Chicago", "GPE")]),
    ("A red tram passes through Prague in winter.", [("Prague", "GPE"), ("winter", "DATE")]),
    ("Serena Williams holds the trophy.", [("Serena Williams", "PERSON")]),
    ("The new Google office in Zurich at night.", [("Google", "ORG"), ("Zurich", "GPE")]),
    ("Sunset over Kyoto on 12 May 2021.", [("Kyoto", "GPE"), ("12 May 2021", "DATE")]),
    ("Fans of Real Madrid celebrate in the street.", [("Real Madrid", "ORG")]),
    ("Portrait of Frida Kahlo with flowers.", [("Frida Kahlo", "PERSON")]),
    ("Engineers at Siemens test a train in 2017.", [("Siemens", "ORG"), ("2017", "DATE")]),
    ("Children play on a beach near Sydney.", [("Sydney", "GPE")]),
    ("Lionel Messi scores a goal on Sunday.", [("Lionel Messi", "PERSON"), ("Sunday", "DATE")]),
    ("A wooden house in Norway.", [("Norway", "GPE")]),
    ("Volunteers from the Red Cross hand out food.", [("the Red Cross", "ORG")]),
    ("Marie Curie in her laboratory in Paris.", [("Marie Curie", "PERSON"), ("Paris", "GPE")]),
    ("Snow covers the streets of Toronto in January.", [("Toronto", "GPE"), ("January", "DATE")]),
    ("The Netflix logo on a screen.", [("Netflix", "ORG")]),
    ("A cat sleeps on a sofa.", []),
    ("Fresh bread on a kitchen table.", []),
    ("Emma Watson smiles at the premiere in London.", [("Emma Watson", "PERSON"), ("London", "GPE")]),
    ("Staff of Boeing inspect a plane last year.", [("Boeing", "ORG"), ("last year", "DATE")]),
]
TEXTS = [text for text, _ in CAPTIONS]


def gold_spans(text: str, entities: list[tuple[str, str]]) -> list[TaggedSpan]:
    spans = []
    for name, label in entities:
        start = text.index(name)
        spans.append(TaggedSpan(start, start + len(name), name, label))
    return spans


GOLD = [gold_spans(text, entities) for text, entities in CAPTIONS]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """ner listening to a shared tok2vec (as in spaCy's transformer pipelines), and a sentencizer
    the tagger must switch off; trained until it reproduces its annotations (~25 epochs, ~3 s)."""
    fix_random_seed(0)
    nlp = spacy.blank("en")
    nlp.add_pipe("tok2vec")
    nlp.add_pipe("ner", config={"model": {
        "@architectures": "spacy.TransitionBasedParser.v2", "state_type": "ner", "extra_state_tokens": False,
        "hidden_width": 64, "maxout_pieces": 2, "use_upper": True,
        "tok2vec": {"@architectures": "spacy.Tok2VecListener.v1", "width": 96, "upstream": "*"}}})
    nlp.add_pipe("sentencizer")
    examples = [Example.from_dict(nlp.make_doc(text), {"entities": [(s.start, s.end, s.label) for s in gold]})
                for text, gold in zip(TEXTS, GOLD)]
    optimizer = nlp.initialize(lambda: examples)
    rng = random.Random(0)
    for _ in range(150):
        rng.shuffle(examples)
        for batch in minibatch(examples, 8):
            nlp.update(batch, sgd=optimizer, drop=0.1)
        predicted = [[(e.start_char, e.end_char, e.label_) for e in doc.ents] for doc in nlp.pipe(TEXTS)]
        if predicted == [[(s.start, s.end, s.label) for s in gold] for gold in GOLD]:
            break
    else:
        pytest.fail("the tiny NER model did not learn its training captions")
    path = tmp_path_factory.mktemp("spacy") / "tiny_ner"
    nlp.to_disk(path)
    return path


@pytest.fixture(scope="module")
def tagger(model_dir):
    return load_spacy_tagger(str(model_dir))


def test_saved_pipeline_tags_offsets_text_and_labels(tagger):
    assert tagger.tag("Workers of Acme Corp build a bridge in 2019.") == [
        TaggedSpan(11, 20, "Acme Corp", "ORG"), TaggedSpan(39, 43, "2019", "DATE")]
    assert [tagger.tag(text) for text in TEXTS] == GOLD
    for text, spans in zip(TEXTS, GOLD):
        assert all(text[s.start:s.end] == s.text for s in spans)


def test_only_ner_and_the_tok2vec_it_listens_to_run(tagger):
    assert tagger.nlp.pipe_names == ["tok2vec", "ner"]
    assert tagger.nlp.disabled == ["sentencizer"]


def test_tag_many_equals_tag(tagger):
    captions = TEXTS * 3 + ["", "Nothing to see here."]
    assert tagger.tag_many(captions, batch_size=7) == [tagger.tag(c) for c in captions]
    assert tagger.tag_many([]) == []


def test_off_and_none_give_no_tagger():
    assert load_spacy_tagger(None) is None
    assert load_spacy_tagger("off") is None


def test_auto_without_en_core_web_sm_gives_no_tagger():
    if is_package("en_core_web_sm"):
        pytest.skip("en_core_web_sm is installed")
    assert load_spacy_tagger("auto") is None


def test_missing_model_name_says_how_to_download():
    with pytest.raises(SpacyModelError, match="python -m spacy download xx_no_such_model_sm"):
        load_spacy_tagger("xx_no_such_model_sm")


def test_bad_paths_say_what_is_wrong(tmp_path):
    with pytest.raises(SpacyModelError, match="does not exist"):
        load_spacy_tagger(str(tmp_path / "missing"))
    with pytest.raises(SpacyModelError, match="nlp.to_disk"):  # a folder, but no pipeline in it
        load_spacy_tagger(str(tmp_path))


def test_without_spacy_auto_is_off_and_a_name_says_pip_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "spacy", None)  # import spacy now raises ImportError
    monkeypatch.setitem(sys.modules, "spacy.util", None)
    assert load_spacy_tagger("auto") is None
    with pytest.raises(SpacyModelError, match="pip install spacy"):
        load_spacy_tagger("en_core_web_sm")


def test_a_setting_resolves_to_the_model_it_loads(model_dir, tagger, tmp_path):
    assert resolve_spacy_model(None) == resolve_spacy_model("off") == "off"
    if not is_package(AUTO_MODEL):
        assert resolve_spacy_model("auto") == NONE_INSTALLED
    assert resolve_spacy_model(str(model_dir)) == tagger.description == "en_pipeline 0.0.0"  # from meta.json
    with pytest.raises(SpacyModelError, match="neither an installed package nor a folder"):
        resolve_spacy_model(str(tmp_path / "missing"))


def claimed_model(out) -> str:
    return json.loads((out / "run.json").read_text())["resolved"]["hypernymize.spacy_model"]


def test_a_resume_needs_the_same_model_in_the_folder(model_dir, tmp_path):
    folder = shutil.copytree(model_dir, tmp_path / "model")
    config = load_config(None, ["hypernymize.enabled=true", f"hypernymize.spacy_model={folder}"])
    prepare_output(str(tmp_path / "out"), [], config, overwrite=False)
    prepare_output(str(tmp_path / "out"), [], config, overwrite=False)  # the same model: resumes
    assert claimed_model(tmp_path / "out") == "en_pipeline 0.0.0"
    meta = json.loads((folder / "meta.json").read_text())
    (folder / "meta.json").write_text(json.dumps({**meta, "version": "0.0.1"}))
    changed = f"hypernymize.spacy_model ({folder}: was en_pipeline 0.0.0, now en_pipeline 0.0.1)"
    with pytest.raises(OutputFolderError, match=re.escape(changed)):
        prepare_output(str(tmp_path / "out"), [], config, overwrite=False)


@pytest.fixture
def en_core_web_sm_site(model_dir, tmp_path):
    """A folder where pip installed the tiny pipeline as the package en_core_web_sm 3.8.0 (not
    yet on sys.path)."""
    from spacy.cli.package import package

    if is_package(AUTO_MODEL):
        pytest.skip(f"{AUTO_MODEL} is installed")
    package(model_dir, tmp_path, name="core_web_sm", version="3.8.0", create_sdist=False)
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
                    "--no-build-isolation", "--target", str(site), str(tmp_path / "en_core_web_sm-3.8.0")],
                   check=True)
    yield site
    sys.modules.pop(AUTO_MODEL, None)


def test_auto_finding_a_newly_installed_model_refuses_the_resume(en_core_web_sm_site, tmp_path, monkeypatch):
    config = load_config(None, ["hypernymize.enabled=true", "hypernymize.spacy_model=auto"])
    prepare_output(str(tmp_path / "out"), [], config, overwrite=False)
    assert claimed_model(tmp_path / "out") == NONE_INSTALLED
    monkeypatch.syspath_prepend(en_core_web_sm_site)  # now en_core_web_sm is installed
    assert resolve_spacy_model("auto") == load_spacy_tagger("auto").description == "en_core_web_sm 3.8.0"
    changed = "hypernymize.spacy_model (auto: was none installed, now en_core_web_sm 3.8.0)"
    with pytest.raises(OutputFolderError, match=re.escape(changed)):
        prepare_output(str(tmp_path / "out"), [], config, overwrite=False)
    prepare_output(str(tmp_path / "out"), [], config, overwrite=True)
    assert claimed_model(tmp_path / "out") == "en_core_web_sm 3.8.0"


def test_pipeline_without_ner_is_refused(tmp_path):
    spacy.blank("en").to_disk(tmp_path / "blank")
    with pytest.raises(SpacyModelError, match="no ner component"):
        load_spacy_tagger(str(tmp_path / "blank"))


def test_every_label_has_one_treatment():
    assert not set(HYPERNYMS) & (DATE_LABELS | AMOUNT_LABELS) and not DATE_LABELS & AMOUNT_LABELS
    assert {entry[1] for entry in HYPERNYMS.values() if entry} <= {PERSON, PLACE, ORGANIZATION, THING}
    assert HYPERNYMS["PERSON"] == ("person", PERSON) and HYPERNYMS["NORP"] is None


@pytest.fixture(scope="module")
def hypernymizers(model_dir):
    from hypernymize.loading import load_hypernymizer

    with_spacy = load_hypernymizer(spacy_model=str(model_dir))
    return with_spacy, type(with_spacy)(with_spacy.sources, with_spacy.gazetteer)


def test_the_hypernymizer_uses_what_the_tagger_finds(hypernymizers):
    with_spacy, without = hypernymizers
    assert without.rewrite("Fans of Real Madrid celebrate in the street.").reason == "unresolved_proper_noun"
    result = with_spacy.rewrite("Fans of Real Madrid celebrate in the street.")
    assert (result.rewritten, result.rejected) == ("Fans of organization celebrate in the street.", False)
    assert [(e.text, e.type, e.hypernym, e.source) for e in result.entities] == [
        ("Real Madrid", ORGANIZATION, "organization", "spacy")]
    dated = with_spacy.rewrite("Staff of Boeing inspect a plane last year.")
    assert dated.rewritten == "Staff of organization inspect a plane."
    assert [(e.text, e.type, e.source) for e in dated.entities] == [
        ("Boeing", ORGANIZATION, "spacy"), ("last year", "date", "spacy")]
    # the knowledge sources answer first: Sydney is GeoNames' city, dropped with its preposition
    near = with_spacy.rewrite("Children play on a beach near Sydney.")
    assert near.rewritten == "Children play on a beach." and near.entities[0].source == "geonames"
    tags = with_spacy.tagger.tag("Fans of Real Madrid celebrate in the street.")
    assert with_spacy.rewrite("Fans of Real Madrid celebrate in the street.", tags) == result


def test_the_cli_and_the_pipeline_take_a_spacy_model(model_dir, tmp_path, capsys):
    from pipeline.cli import main

    captions = tmp_path / "captions.txt"
    captions.write_text("Fans of Real Madrid celebrate in the street.\nA cat sleeps on a sofa.\n")
    assert main(["hypernymize", "--spacy-model", str(model_dir), str(captions)]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["rewritten"] for line in lines] == ["Fans of organization celebrate in the street.",
                                                     "A cat sleeps on a sofa."]
    assert main(["hypernymize", "--spacy-model", str(tmp_path / "nowhere"), str(captions)]) == 2
    assert "does not exist" in capsys.readouterr().err
    listing = tmp_path / "l.tsv"
    listing.write_text("A cat sleeps on a sofa.\thttp://127.0.0.1:9/cat.jpg\n")
    assert main(["run", "--input", str(listing), "--output", str(tmp_path / "out"), "--set", "hypernymize.enabled=true",
                 "--set", f"hypernymize.spacy_model={tmp_path / 'nowhere'}"]) == 2
    assert "spaCy pipeline folder" in capsys.readouterr().err


def test_the_pipeline_stage_tags_in_batches_with_the_model(model_dir, tmp_path, monkeypatch):
    from crawl.serve import Route
    from hypernymize.spacy_tagger import SpacyTagger
    from pipeline.hypernymize_step import HypernymizeStep

    from pipeline_helpers import PERMISSIVE, jpeg, run_local, serve, shard_rows

    calls = []
    tag_many = SpacyTagger.tag_many

    def counted(self, captions, *args, **kwargs):
        calls.append(len(captions))
        return tag_many(self, captions, *args, **kwargs)

    monkeypatch.setattr(SpacyTagger, "tag_many", counted)  # the in-memory runner runs in this process
    monkeypatch.setattr(SpacyTagger, "tag", lambda self, caption: pytest.fail("tagged one caption alone"))
    monkeypatch.setattr(HypernymizeStep, "batch_size", 2)
    captions = {"Fans of Real Madrid celebrate in the street.": "Fans of organization celebrate in the street.",
                "Staff of Boeing inspect a plane last year.": "Staff of organization inspect a plane.",
                "A cat sleeps on a sofa.": "A cat sleeps on a sofa."}
    routes = {f"/{i}.jpg": Route(jpeg(500 + i, 450)) for i in range(len(captions))}
    with serve(routes) as site:
        listing = tmp_path / "l.tsv"
        listing.write_text("".join(f"{c}\t{site.url(f'/{i}.jpg')}\n" for i, c in enumerate(captions)))
        run_local([listing], tmp_path / "out", *PERMISSIVE, site.connect_to, "hypernymize.enabled=true",
                  f"hypernymize.spacy_model={model_dir}")
    assert {r["caption"]: r["caption_hypernymized"] for r in shard_rows(tmp_path / "out")} == captions
    assert json.loads((tmp_path / "out" / "stats.json").read_text())["hypernymize"] == {
        "spacy_model": "en_pipeline 0.0.0"}
    assert calls == [2, 1]  # three captions, two to a batch
