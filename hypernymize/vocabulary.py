"""Word knowledge the rewrite rules need: common (lower-case) English words, person nouns, given
names, and the closed word lists (dates, numbers, prepositions, determiners)."""

from __future__ import annotations

import functools
import os
import re

from filters.lexicons import (
    exception_lines,
    noun_index,
    package_dir,
    read_lines,
    regular_plural,
    synset_entries,
    wordnet_dir,
)

MONTHS = ("January February March April May June July August September October November December "
          "Jan Feb Mar Apr Jun Jul Aug Sep Sept Oct Nov Dec").split()
MONTHS += [month.upper() for month in MONTHS]  # "UNIVERSAL CITY, CA - AUGUST 27: ..."
WEEKDAYS = "Monday Tuesday Wednesday Thursday Friday Saturday Sunday".split()
NUMBER_WORDS = set(("one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
                    "fifteen sixteen seventeen eighteen nineteen twenty thirty forty fifty hundred "
                    "thousand dozen").split())
DETERMINERS = {"a", "an", "the", "this", "that", "these", "those", "his", "her", "its", "their", "our",
               "my", "your", "some", "many", "several"}
FUNCTION_WORDS = DETERMINERS | set((
    "and or but nor of in on at to from by with for as into onto over under near outside inside during "
    "since until after before about across around through throughout within without between among "
    "is are was were be been being has have had do does did will would can could may might must shall "
    "should he she it they we you i him them us me who whom which what where when why how not no "
    "there here than then so very all any each every both either neither while if").split())
DATE_PREPOSITIONS = {"on", "in", "at", "during", "since", "from", "until", "to", "by", "of"}
PLACE_PREPOSITIONS = {"in", "at", "from", "near", "outside", "inside", "across", "around", "throughout",
                      "within", "of"}
# Head nouns that make a named thing a place ("Sydney Entertainment Centre"), and their hypernym.
PLACE_HEADS = {"centre": "venue", "center": "venue", "arena": "venue", "stadium": "stadium",
               "theatre": "theater", "theater": "theater", "hall": "venue", "hotel": "hotel",
               "museum": "museum", "park": "park", "airport": "airport", "station": "station",
               "church": "church", "cathedral": "cathedral", "palace": "palace", "castle": "castle",
               "bridge": "bridge", "square": "square", "street": "street", "beach": "beach",
               "university": "university", "college": "college", "school": "school", "gallery": "gallery"}
# Head nouns of names of events, institutions, groups, works and sites: a run of capitalised words
# that ends in one of them ("Pilgrimage Music & Cultural Festival"), or has one right before "of"
# ("Battle of Issus", "National Gallery of Canada"), is that thing. Any other head is no evidence:
# "Savory Tuna Burgers", "Marine Le Pen" and "Moon Pictures" are not burgers, a pen or pictures.
NAMED_HEADS = frozenset(PLACE_HEADS) | frozenset((
    "festival awards award prize championship championships cup tournament games olympics marathon "
    "race grand-prix conference summit expo exhibition fair show parade carnival concert tour "
    "hospital clinic academy institute library zoo aquarium garden gardens inn resort restaurant "
    "cafe pub bar mosque temple chapel abbey monastery tower building mall market company "
    "corporation bank foundation council committee association society party club team band "
    "orchestra choir army navy police department ministry agency magazine newspaper lake river "
    "mountain mountains island islands bay valley forest falls canyon desert battle war siege "
    "revolution").split())
NOT_GIVEN_NAMES = {"First", "Second", "Third", "Saint", "St", "Mount", "Lake", "Fort", "New", "Old", "Great"}

_MONTH = "|".join(sorted(MONTHS, key=len, reverse=True))
DATE = re.compile(
    rf"\b(?:(?:{'|'.join(WEEKDAYS)}),?\s+)?"
    rf"(?:(?:{_MONTH})\.?\s+\d{{1,2}}(?:st|nd|rd|th)?(?:,?\s+\d{{4}})?"  # November 7, 2005
    rf"|\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?(?:{_MONTH})\.?(?:,?\s+\d{{4}})?"  # 5 September 2003
    rf"|(?:{_MONTH})\.?\s+\d{{4}}"  # May 2010
    rf"|\d{{4}}-\d{{2}}-\d{{2}}|\d{{1,2}}/\d{{1,2}}/\d{{2,4}}"  # 2005-11-07, 11/7/2005
    rf"|\b(?:1[89]|20)\d{{2}}\b(?!\s?['’]s\b)"  # a year: 2005; not a decade (1990s, 1930 's)
    rf"|\d{{1,2}}(?::\d{{2}})?\s*(?:a\.?m\.?|p\.?m\.?)"  # 10:30 am
    rf"|(?:{'|'.join(WEEKDAYS)}))\b")
MONTHS_AND_DAYS = frozenset(MONTHS + WEEKDAYS)
# Every date has a digit or a weekday: a cheap test before DATE's many alternatives
DATE_HINT = re.compile(rf"\d|{'|'.join(WEEKDAYS)}")
NUMBER = re.compile(r"^(?:\d+(?:[.,]\d+)*(?:st|nd|rd|th)?|\d+s)$")


# WordNet's lexicographer files whose capitalised nouns are no names: noun.time (Christmas, Easter)
# and noun.food (Brie, Cheddar). Conceptual Captions keeps them: "the christmas season".
ORDINARY_CAPITALISED = frozenset({"28", "13"})


@functools.lru_cache(maxsize=1)
def compound_nouns() -> frozenset[str]:
    """WordNet's nouns of several words that start with a name, in lower case: "american football",
    "german shepherd", "english setter" are things, not a name and a noun."""
    return frozenset(word.replace("_", " ").lower() for entry in synset_entries("noun") if not entry.instance
                     for word in entry.words if "_" in word and word[:1].isupper())


@functools.lru_cache(maxsize=1)
def _word_tables() -> tuple[frozenset, frozenset, frozenset, frozenset, frozenset]:
    """(words WordNet writes in lower case, or capitalises as ordinary nouns, common nouns, verbs,
    person nouns, nouns of any case that are no instances in lower case), from the database files
    directly: asking NLTK cost ~0.5 ms per word."""
    lowercase, nouns, verbs, any_case = set(), set(), set(), set()
    noun_kind: dict[str, tuple[str, bool]] = {}  # offset -> (lexicographer file, is an instance)
    for pos in ("noun", "verb", "adj", "adv"):
        for entry in synset_entries(pos):
            if pos == "noun":
                noun_kind[entry.offset] = (entry.lexfile, entry.instance)
            for word in entry.words:
                if "_" in word:
                    continue
                if pos == "noun" and not entry.instance:
                    any_case.add(word.lower())
                if word != word.lower():
                    if pos == "noun" and not entry.instance and entry.lexfile in ORDINARY_CAPITALISED:
                        lowercase.add(word.lower())  # "Christmas balls", "Pear and Brie Pita"
                    continue
                lowercase.add(word)
                if pos == "noun" and not entry.instance:
                    nouns.add(word)
                elif pos == "verb":
                    verbs.add(word)
    people = {lemma for lemma, offsets in noun_index()  # one of the two most frequent senses is a person
              if lemma in nouns and any(noun_kind.get(offset) == ("18", False) for offset in offsets[:2])}
    return frozenset(lowercase), frozenset(nouns), frozenset(verbs), frozenset(people), frozenset(any_case)


# WordNet's morphy: suffix rules per part of speech, tried when a form is no exception.
SUFFIX_RULES = {"n": (("s", ""), ("ses", "s"), ("ves", "f"), ("xes", "x"), ("zes", "z"), ("ches", "ch"),
                      ("shes", "sh"), ("men", "man"), ("ies", "y")),
                "v": (("s", ""), ("ies", "y"), ("es", "e"), ("es", ""), ("ed", "e"), ("ed", ""), ("ing", "e"),
                      ("ing", "")),
                "a": (("er", ""), ("est", ""), ("er", "e"), ("est", "e")),
                "r": ()}


INDEX_FILES = {"n": "noun", "v": "verb", "a": "adj", "r": "adv"}


@functools.lru_cache(maxsize=1)
def _morphology() -> tuple[dict[str, dict[str, tuple[str, ...]]], dict[str, dict[str, None]]]:
    """Per part of speech: irregular forms -> their lemmas (children -> child, went -> go), and
    every lemma of WordNet's index."""
    exceptions: dict[str, dict[str, tuple[str, ...]]] = {}
    lemmas: dict[str, dict[str, None]] = {}
    for pos, name in INDEX_FILES.items():
        exceptions[pos] = dict(exception_lines(pos))
        lemmas[pos] = dict.fromkeys(line.split(" ", 1)[0] for line in
                                    read_lines(os.path.join(wordnet_dir(), f"index.{name}"))
                                    if line and not line.startswith(" "))
    return exceptions, lemmas


def _base(word: str, pos: str | None = None) -> str:
    """WordNet's morphy, as NLTK's reader does it, without the reader: the word itself, or its
    irregular lemma, or a suffix rule's result, whichever WordNet's index holds first for the
    first part of speech that has one (dogs -> dog, went -> go)."""
    exceptions, lemmas = _morphology()
    for part in (pos,) if pos else tuple(INDEX_FILES):
        irregular = exceptions[part].get(word)
        forms = irregular if irregular is not None else tuple(
            word[:-len(suffix)] + ending for suffix, ending in SUFFIX_RULES[part] if word.endswith(suffix))
        for form in (word, *forms):
            if form in lemmas[part]:
                return form
    return word


@functools.lru_cache(maxsize=262144)
def is_common_word(word: str) -> bool:
    """Whether ``word`` (any case) is an ordinary English word: a function word, or a WordNet
    lemma written in lower case (so "centre" is, "Harrison" and "Pakistani" are not)."""
    lower = word.lower()
    if lower in FUNCTION_WORDS or lower in NUMBER_WORDS:
        return True
    lowercase = _word_tables()[0]
    return lower in lowercase or _base(lower) in lowercase


def is_wordnet_noun(word: str) -> bool:
    """Whether WordNet has a noun that is no named entity written so in any case: "Dutch", "Oscar",
    "English"; not "Katie" or "Joseph"."""
    return word.lower() in _word_tables()[4]


@functools.lru_cache(maxsize=262144)
def noun_and_verb(word: str) -> tuple[bool, bool]:
    """Whether a lower-case ``word`` can be a common noun, and whether it can be a verb."""
    _, nouns, verbs, _, _ = _word_tables()
    return word in nouns or _base(word, "n") in nouns, word in verbs or _base(word, "v") in verbs


@functools.lru_cache(maxsize=65536)
def is_past_verb(word: str) -> bool:
    """A lower-case verb in the past tense or participle: "won", "made", "dined"."""
    base = _base(word, "v")
    return base != word and not word.endswith("s") and base in _word_tables()[2]


@functools.lru_cache(maxsize=65536)
def is_person_noun(word: str) -> bool:
    """Whether ``word`` names a kind of person (musician, artist, actor) in one of its two most
    frequent senses."""
    lower = word.lower()
    return _base(lower, "n") in _word_tables()[3]


# Census frequencies (percent of people) above which a name that is also a word counts as a name.
COMMON_WORD_GIVEN_NAME = 0.01  # Rose, Grace, Will, Tom pass; Diamond, Star, Princess do not
SURNAME = 0.005  # Stone, Swift, Ford, Gates pass; Garden, Mill, Wool do not


@functools.lru_cache(maxsize=4)
def census_names(kind: str) -> dict[str, float]:
    """Name -> percent of people, from the 1990 US Census lists the ``names`` package ships
    (``first``: female and male first names; ``last``: surnames), written "Harrison", "Mcdonald"."""
    files = {"first": ("dist.female.first", "dist.male.first"), "last": ("dist.all.last",)}[kind]
    found: dict[str, float] = {}
    for name in files:
        for line in read_lines(os.path.join(package_dir("names"), name)):
            fields = line.split()
            if len(fields) == 4:
                word = fields[0].capitalize()
                found[word] = max(found.get(word, 0.0), float(fields[1]))
    return found


@functools.lru_cache(maxsize=1)
def _wordnet_people_words() -> tuple[frozenset[str], frozenset[str]]:
    """(first words of WordNet's names of people of several words, last words of all of them),
    from one read of its noun file (lexicographer file 18)."""
    firsts, lasts = set(), set()

    def name_word(word: str) -> bool:
        return word[:1].isupper() and word.isalpha() and len(word) > 1 and word.lower() not in FUNCTION_WORDS

    for entry in synset_entries("noun"):
        if entry.lexfile != "18" or not entry.instance:
            continue
        for lemma in entry.words:
            parts = lemma.split("_")
            if len(parts) >= 2 and name_word(parts[0]):  # not "The Venerable Bede"
                firsts.add(parts[0])
            if name_word(parts[-1]):
                lasts.add(parts[-1])
    return frozenset(firsts), frozenset(lasts)


@functools.lru_cache(maxsize=1)
def given_names() -> frozenset[str]:
    """First names: the Census's, and the first words of WordNet's multi-word names of people
    (Duncan, Jimmy). One that is also a word (Rose, Will) must be a frequent name."""
    census = census_names("first")
    found = {name for name in _wordnet_people_words()[0] | set(census)
             if not is_common_word(name) or census.get(name, 0.0) >= COMMON_WORD_GIVEN_NAME}
    return frozenset(found - NOT_GIVEN_NAMES)


@functools.lru_cache(maxsize=1)
def surnames() -> frozenset[str]:
    """Family names that may be words too: the last words of WordNet's names of people (Ford,
    Swift), and the Census's frequent surnames (Stone, Gates)."""
    census = census_names("last")
    return frozenset(_wordnet_people_words()[1] | {name for name, share in census.items() if share >= SURNAME})


def load_tables() -> None:
    """Read the word tables now (about a second) rather than on the first caption."""
    _word_tables()
    _morphology()
    given_names()
    surnames()
    compound_nouns()


def is_number(word: str) -> bool:
    return bool(NUMBER.match(word)) or word.lower() in NUMBER_WORDS


def is_count(word: str) -> bool:
    """A cardinal number: "2", "two", "6,000"; not "29th" or "1950s"."""
    return word.replace(",", "").isdigit() or word.lower() in NUMBER_WORDS


def is_plural_noun(word: str) -> bool:
    """A lower-case common noun in the plural: "sculptures", "children"."""
    base = _base(word, "n")
    return word.islower() and base != word and base in _word_tables()[1]


def starts_with_vowel_sound(word: str) -> bool:
    lower = word.lower()
    if lower.startswith(("uni", "use", "usu", "eu", "one", "once", "ur")):
        return False
    return lower[:1] in "aeiou" or lower.startswith(("hour", "honest", "honor", "honour", "heir"))


@functools.lru_cache(maxsize=65536)
def singular(word: str) -> str:
    """WordNet's noun lemma of a word: "setters" -> "setter"."""
    return _base(word.lower(), "n")


def plural(noun: str) -> str:
    words = noun.split()
    last = words[-1]
    last = last[:-3] + "men" if last.endswith("man") else regular_plural(last)
    return " ".join([*words[:-1], last])
