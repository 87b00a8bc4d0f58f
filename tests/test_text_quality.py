"""The whole text stage (cleaning, rules, language ID) on labelled real alt-texts: how many clean
captions each preset keeps and how much junk it rejects, per kind of junk. See
tests/data/text/SOURCES.md for where every line comes from. Run with -s to see the rates."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from filters.text_clean import drop_phrase, is_url_only
from filters.text_filter import TextFilter, TextVerdict
from filters.text_presets import PRESETS

DATA = Path(__file__).resolve().parent / "data" / "text"
CC_EXAMPLES = ("captions", "hypernymization", "cc_paper_examples.json")
KINDS = ("filename", "number", "url", "seo", "hashtag", "other")
# Real non-English alt-texts from img2dataset's test parquet (lid.176 is sure of each, > 0.9).
NON_ENGLISH = {
    "fr": "Le funiculaire de Lookout Mountain à Chattanooga",
    "de": "Hotel Kubrat an der Spree Berlin",
    "es": "¿Por qué Apple pagaría 3.2 billones por Beats Audio?",
    "nl": "Topper voor arbiter Makkelie in Champions League",
    "ru": "Demolition Squad играть на деньги в Эльдорадо",
}


def read_lines(name: str) -> list[str]:
    return (DATA / name).read_text(encoding="utf-8").splitlines()


CLEAN = read_lines("clean_captions.txt")
JUNK = read_lines("junk_alt_texts.txt")
JUNK_KINDS = [tuple(line.split("\t", 1)) for line in read_lines("junk_kinds.tsv")]


class Runs:
    """One TextFilter per preset and one run per (preset, file), made when first asked for."""

    def __init__(self):
        self.filters: dict[str, TextFilter] = {}
        self.verdicts: dict[tuple[str, str], list[TextVerdict]] = {}

    def filter(self, preset: str) -> TextFilter:
        if preset not in self.filters:
            self.filters[preset] = TextFilter(PRESETS[preset])
        return self.filters[preset]

    def run(self, preset: str, which: str) -> list[TextVerdict]:
        if (preset, which) not in self.verdicts:
            texts = {"clean": CLEAN, "junk": JUNK}[which]
            self.verdicts[preset, which] = self.filter(preset).check_batch(texts)
        return self.verdicts[preset, which]


@pytest.fixture(scope="module")
def runs():
    return Runs()


def pass_rate(verdicts: list[TextVerdict]) -> float:
    return sum(v.passed for v in verdicts) / len(verdicts)


def test_labelled_files_match_sources_md():
    assert len(CLEAN) == 567 and len(JUNK) == 929
    assert [text for _, text in JUNK_KINDS] == JUNK
    assert Counter(kind for kind, _ in JUNK_KINDS) == {"filename": 395, "seo": 391, "other": 89, "url": 27,
                                                       "hashtag": 15, "number": 12}
    assert not set(CLEAN) & set(JUNK)
    assert all(line and line == line.strip() for line in CLEAN + JUNK)


def test_cc3m_keeps_clean_captions(runs):
    verdicts = runs.run("cc3m", "clean")
    rate = pass_rate(verdicts)
    print(f"\ncc3m: {rate:.1%} of {len(CLEAN)} clean captions pass; rejected: "
          f"{dict(Counter(v.reason for v in verdicts if not v.passed))}")
    assert rate >= 0.95


def test_cc3m_rejects_junk_overall_and_per_kind(runs):
    verdicts = runs.run("cc3m", "junk")
    rejected = defaultdict(list)
    for (kind, _), verdict in zip(JUNK_KINDS, verdicts):
        rejected[kind].append(not verdict.passed)
    overall = 1 - pass_rate(verdicts)
    rates = {kind: sum(flags) / len(flags) for kind, flags in rejected.items()}
    print(f"\ncc3m: {overall:.1%} of {len(JUNK)} junk alt-texts rejected; per kind: "
          + ", ".join(f"{kind} {rates[kind]:.1%} of {len(rejected[kind])}" for kind in KINDS))
    assert overall >= 0.90
    assert rates["filename"] >= 0.90
    assert len(rejected["number"]) - sum(rejected["number"]) <= 1
    assert rates["seo"] >= 0.85


def test_cc3m_junk_file_names_fail_as_file_names(runs):
    verdicts = runs.run("cc3m", "junk")
    reasons = Counter(v.reason for (kind, _), v in zip(JUNK_KINDS, verdicts) if kind == "filename")
    assert reasons["file_name"] >= 0.8 * sum(reasons.values())


def test_cc3m_clean_passes_are_english(runs):
    """A caption that passes cc3m is English, or one language ID has no evidence on (a few short
    titles such as "Cast iron gates": lid.176.ftz answers its prior), which the other rules judged."""
    verdicts = runs.run("cc3m", "clean")
    passed = [v for v in verdicts if v.passed]
    langs = Counter(v.lang for v in passed)
    print(f"\ncc3m: languages of the clean captions that pass: {dict(langs)}")
    assert set(langs) <= {"en", None}
    assert langs["en"] >= 0.98 * len(passed)
    unknown = [v.caption for v in passed if v.lang is None]
    assert runs.filter("cc3m").lid.predict(unknown) == [(None, None)] * len(unknown)
    assert all(v.lang_score >= PRESETS["cc3m"].min_lang_score for v in passed if v.lang == "en")


def test_cc12m_keeps_clean_captions(runs):
    rate = pass_rate(runs.run("cc12m", "clean"))
    junk = 1 - pass_rate(runs.run("cc12m", "junk"))
    print(f"\ncc12m: {rate:.1%} of clean captions pass, {junk:.1%} of junk rejected")
    assert rate >= 0.95


@pytest.mark.parametrize("which", ["clean", "junk"])
def test_laion_keeps_everything_of_5_chars_whatever_its_language(runs, which):
    """LAION's one rule: 5 characters or more. The stage's cleaning still drops what is no caption
    at all (URLs, page furniture), for every preset."""
    verdicts = runs.run("laion", which)
    print(f"\nlaion: {pass_rate(verdicts):.1%} of {which} pass; rejected: "
          f"{dict(Counter(v.reason for v in verdicts if not v.passed))}")
    for verdict in verdicts:
        if len(verdict.caption) >= 5 and drop_phrase(verdict.caption) is None and not is_url_only(verdict.caption):
            assert verdict.passed, verdict
        else:
            assert verdict.reason in {"too_short", "boilerplate", "url_only"}, verdict
    if which == "clean":
        assert pass_rate(verdicts) == 1.0
    else:
        assert any(v.passed and v.lang not in ("en", None) for v in verdicts)


def test_laion_and_datacomp_on_non_english(runs):
    texts = list(NON_ENGLISH.values())
    laion = runs.filter("laion").check_batch(texts)
    datacomp = runs.filter("datacomp-basic").check_batch(texts)
    assert [v.lang for v in laion] == list(NON_ENGLISH)
    assert all(v.passed for v in laion)
    assert [v.reason for v in datacomp] == ["language"] * len(texts)
    assert [v.lang for v in datacomp] == list(NON_ENGLISH)


@pytest.mark.parametrize("which", ["clean", "junk"])
def test_datacomp_basic_passes_only_english(runs, which):
    verdicts = runs.run("datacomp-basic", which)
    print(f"\ndatacomp-basic: {pass_rate(verdicts):.1%} of {which} pass")
    assert {v.lang for v in verdicts if v.passed} <= {"en", None}
    for verdict in verdicts:
        if verdict.lang not in ("en", None):
            assert verdict.reason == "language", verdict
    if which == "clean":
        assert pass_rate(verdicts) >= 0.95


def test_cc_paper_examples_pass_cc3m(runs, realdata):
    paper = json.loads(realdata(*CC_EXAMPLES).read_text(encoding="utf-8"))
    captions = [e["conceptual_caption"] for e in paper["examples"]]
    figure1 = [e["alt_text"] for e in paper["examples"] if e["origin"] == "Figure 1"]
    assert len(captions) == 5 and len(figure1) == 2
    verdicts = runs.filter("cc3m").check_batch(captions + figure1)
    for verdict in verdicts:
        assert verdict.passed, verdict
        assert verdict.lang == "en"
    assert [v.caption for v in verdicts] == captions + figure1  # nothing to clean in them
