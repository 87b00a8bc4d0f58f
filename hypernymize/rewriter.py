"""Rewrite a caption the way Conceptual Captions did (Sharma et al. 2018, section 3): named
entities become their hypernyms, and dates, proper-noun modifiers and place phrases go.

    Harrison Ford and Calista Flockhart attend the premiere of 'Hollywood Homicide' at the 29th
    American Film Festival September 5, 2003 in Deauville, France.
    -> actors attend the premiere at the festival.

The rules, in order, on the caption's tokens:
1. dates, times and years are dropped, with a preposition that leads them ("on September 23");
   decades stay ("the 1950s", "1930 's");
2. quoted titles are dropped, with a preposition that leads them ("of 'Hollywood Homicide'");
3. runs of capitalised words are found. Capitals mark names only in running text: a common word
   at a sentence's start, in a stretch written in Title Case ("Quick and Savory Tuna Burgers") or
   in capitals, and a short acronym no source knows ("USB") are no names;
4. a run named in a knowledge source, or a given name and a surname (a person), becomes its
   hypernym; a run whose head names a kind of event, institution or site becomes that head
   ("Pilgrimage Music & Cultural Festival" -> "festival", "Battle of Issus" -> "battle"); a run
   followed by a common noun modifies it and is dropped ("British Airways aircraft" -> "aircraft",
   "Big Ben clock" -> "clock"); a run followed by ", Place" is a place. A one-word name that is
   also a common word ("Gold", "Rock") is a name only where a place preposition says so ("in
   Bath"), and a one-word name in Title Case ("Breakfast on Pluto") is too ambiguous to rewrite;
5. a place after a place preposition is dropped with it ("in Balakot, Pakistan"), except a named
   site after "at" ("at the Sydney Entertainment Centre" -> "at the venue");
6. a person noun before a person ("musician Justin Timberlake") and a number that modifies a
   removed entity ("the 29th American Film Festival") are dropped; counts, amounts and ordinals
   of ordinary words stay ("a dozen people", "£ 6,000", "the 86th floor"). With ``drop_counts``,
   a bare count before a plural noun goes too, as in the paper's "Two sculptures" -> "sculptures";
7. coordinated entities with one hypernym merge into its plural ("actor and actor" -> "actors");
8. an article in front of a replaced span agrees with it ("a aircraft" -> "an aircraft").
Every token no rule touched is copied as written, with the spaces around it ("you 'll", "it 's").
A caption with an unresolved proper noun, or too few words left, is rejected with the reason: a
wrong caption trains a wrong model.
With a spaCy tagger (``spacy_tagger``), its dates and times are dropped too, its amounts only where
they modify a removed entity, its named entities join the capitalisation runs, and its label is
the hypernym of last resort (PERSON -> person, GPE -> place, ORG -> organization; source "spacy").
``mode="person-mask"`` (CC12M) only replaces people's names with ``<PERSON>``.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field

from hypernymize.config import HypernymizeConfig
from hypernymize.gazetteer import Gazetteer, tokenize
from hypernymize.knowledge import PERSON, PLACE, THING, Hypernym, KnowledgeSource
from hypernymize.spacy_tagger import AMOUNT_LABELS, DATE_LABELS, SpacyTagger, TaggedSpan
from hypernymize.spacy_tagger import HYPERNYMS as TAGGED_HYPERNYMS
from hypernymize.splice import Slot, cc3m_form, splice
from hypernymize.vocabulary import (
    DATE,
    DATE_HINT,
    DATE_PREPOSITIONS,
    DETERMINERS,
    FUNCTION_WORDS,
    MONTHS_AND_DAYS,
    NAMED_HEADS,
    PLACE_HEADS,
    PLACE_PREPOSITIONS,
    compound_nouns,
    given_names,
    is_common_word,
    is_count,
    is_number,
    is_past_verb,
    is_person_noun,
    is_plural_noun,
    is_wordnet_noun,
    load_tables,
    noun_and_verb,
    plural,
    singular,
    surnames,
)

# A quoted title after a preposition: "the premiere of 'Hollywood Homicide'"; a quote that opens a
# caption or follows a verb ("Named 'Nemo'") stays.
QUOTED = re.compile(r"\b(?:of|in|from|at|on) ['\"‘“]([A-Z][^'\"’”]{0,80}(?<!\s))['\"’”](?![\w'\"’”])")
CONNECTORS = {"&", "of", "de", "da", "van", "von", "del", "la", "le"}
TITLE_CONNECTORS = {"Of", "For", "And", "The", "In", "On", "At", "To", "With", "OF", "AND", "THE"}  # "Rock Of Ages"
JOINERS = frozenset(CONNECTORS | TITLE_CONNECTORS)
# Tokens that end a stretch of text whose case is judged on its own: "Picasso Stone Earrings - handmade
# designer earrings" is a title, then running text.
SEGMENT_BREAKS = frozenset("-–—|:;,.!?()[]{}\"“”")
SENTENCE_OPENERS = ".!?:;\"'“‘(-–"
BE = frozenset("is are was were be been being".split())
TIME_WORDS = frozenset("today tonight tomorrow yesterday last next".split())  # "Joseph today is", "Korea last year"
CONTRACTED = re.compile(r"(?:['’](?:[sS]|ll|LL|re|RE|ve|VE|[dDmM])?|n['’]t|N['’]T)$")
POSSESSIVE = re.compile(r"['’]s$")
TOO_FEW_WORDS = "too_few_words"
UNRESOLVED = "unresolved_proper_noun"
PERSON_MASK = "<PERSON>"
SPACY = "spacy"  # the source of what the optional spaCy tagger found
SITES = frozenset(PLACE_HEADS.values())  # named buildings and sites: "at the venue" says where a photo is
BROAD_PLACES = frozenset({"continent", "country", "state"})  # "China", "Georgia": places even in Title Case
CURATED = frozenset({"wikidata", "pattern", SPACY})  # sources that know which sense a name has


@dataclass
class Entity:
    start: int  # character span in the caption
    end: int
    text: str
    type: str
    hypernym: str | None  # None: dropped, not replaced
    source: str  # wordnet, geonames, wikidata, pattern (a rule, no knowledge source)
    kept: bool = False  # whether the hypernym stands in the rewrite (a place phrase is dropped whole)


@dataclass
class Rewrite:
    caption: str
    rewritten: str
    entities: list[Entity] = field(default_factory=list)
    rejected: bool = False
    reason: str | None = None

    @property
    def concepts(self) -> list[str]:
        """The hypernyms that stand in the rewrite, once per mention ("actors" from two actors)."""
        return [entity.hypernym for entity in self.entities if entity.kept and entity.hypernym]


def _within(slots: list[Slot], start: int, end: int) -> list[int]:
    """The indices of the tokens inside the character span [start, end)."""
    return [i for i, slot in enumerate(slots) if slot.token.start >= start and slot.token.end <= end]


def _inside_a_name(caption: str, match: re.Match) -> bool:
    """Whether a year stands between two words, the first no function word, as a model number in a
    name does ("HON 1870 Series", "fox 2000 pictures"; not "the 2017 festival", "since 1953 t-shirt")."""
    before = caption[:match.start()].split()
    after = caption[match.end():].split()
    return bool(before and after) and before[-1].isalpha() and before[-1].lower() not in FUNCTION_WORDS \
        and before[-1] not in MONTHS_AND_DAYS and after[0][:1].isalpha()


def _ends_clause(word: str, coordinated: bool) -> bool:
    """Whether the word after a name ends its noun phrase: punctuation, the end, a function word or
    a verb that is no noun, or is inflected, or follows coordinated names ("Katie is", "Kourtney
    made", "Evan in a car", "Nance and Robyn make"; not "Lexie audiobook", "Bella wax plant")."""
    if not word or not word[:1].isalnum() or word.lower() in FUNCTION_WORDS or word in TIME_WORDS:
        return True
    noun, verb = noun_and_verb(word) if word.islower() else (False, False)
    return verb and (not noun or coordinated or is_past_verb(word) or word.endswith("s"))


def _bare(word: str) -> str:
    """The word without a possessive or contracted ending: "Women's" -> "Women", "You'll" -> "You"."""
    return CONTRACTED.sub("", word) or word


@functools.lru_cache(maxsize=262144)
def _common(word: str) -> bool:
    """An ordinary word, also with a possessive or as a hyphenated compound ("Lace-Up")."""
    return all(is_common_word(part) for part in _bare(word).split("-") if part)


def _initial(slots: list[Slot], i: int) -> bool:
    """An initial inside a name: "F" followed by "."."""
    word = slots[i].token.text
    return len(word) == 1 and word.isupper() and i + 1 < len(slots) and slots[i + 1].token.text == "."


def _content(word: str) -> bool:
    return word[:1].isalpha() and len(word) > 1 and word.lower() not in FUNCTION_WORDS


def _mark_titled(slots: list[Slot]) -> None:
    """Flags the stretches (between punctuation) whose every content word starts with a capital,
    when there are two or a function word is capitalised too: capitals there mark a title, not names."""
    start, capitals, function_capital, lower = 0, 0, False, False
    for i, slot in enumerate([*slots, None]):
        word = slot.token.text if slot is not None else ""
        if slot is not None and word not in SEGMENT_BREAKS:
            if word[:1].isalpha() and len(word) > 1:
                if word.lower() in FUNCTION_WORDS:
                    function_capital |= i > start and word[0].isupper()  # "20l Jerry Can"
                elif word[0].isupper():
                    capitals += 1
                else:
                    lower = True
            continue
        if capitals and not lower and (capitals >= 2 or function_capital):
            for member in slots[start:i]:
                member.titled = True
        start, capitals, function_capital, lower = i + 1, 0, False, False


class Hypernymizer:
    """``rewrite(caption)``; ``sources`` in priority order; ``gazetteer``: name -> the source that
    knows it (``gazetteer.merged``), over the sources held in memory; ``tagger``: optional spaCy NER."""

    def __init__(self, sources: list[KnowledgeSource], gazetteer: Gazetteer, *, mode: str = HypernymizeConfig.mode,
                 style: str = HypernymizeConfig.style, min_words: int = HypernymizeConfig.min_words,
                 reject_unresolved: bool = HypernymizeConfig.reject_unresolved,
                 drop_counts: bool = HypernymizeConfig.drop_counts, tagger: SpacyTagger | None = None):
        if mode not in HypernymizeConfig.CHOICES["mode"]:
            raise ValueError(f"unknown hypernymization mode {mode!r}")
        if style not in HypernymizeConfig.CHOICES["style"]:
            raise ValueError(f"unknown caption style {style!r}")
        self.sources = sources
        self.gazetteer = gazetteer
        self.mode, self.style = mode, style
        self.min_words, self.reject_unresolved, self.drop_counts = min_words, reject_unresolved, drop_counts
        self.tagger = tagger
        load_tables()
        self.given_names, self.surnames = given_names(), surnames()
        listed = {id(source) for source in gazetteer.entries.values()}
        self._unlisted = [source for source in sources if id(source) not in listed]  # e.g. the Wikidata KB

    # -- knowledge ---------------------------------------------------------------------------
    def _lookup(self, name: str) -> Hypernym | None:
        for source in self.sources:
            found = source.lookup(name)
            if found is not None:
                return found
        return None

    # -- detection ---------------------------------------------------------------------------
    def _proper(self, slots: list[Slot], i: int, known: dict[int, int]) -> bool:
        word = slots[i].token.text
        if slots[i].drop or not word[:1].isupper() or len(word) == 1:
            return False  # "A", "I", "Y connector"
        if i > 0 and slots[i - 1].token.text in self.given_names and word in self.surnames:
            return True  # "Harrison Ford", "Theresa May"
        sentence_start = i == 0 or slots[i - 1].token.text in SENTENCE_OPENERS \
            and not (i > 1 and _initial(slots, i - 2))  # "David F. Wright"
        if word.lower() in FUNCTION_WORDS and not sentence_start:
            return False  # title case's "For", "The", "AND" (inside a known name the gazetteer says so)
        if (sentence_start or slots[i].titled or word.isupper()) and _common(word):
            followed = i + 1 < len(slots) and slots[i + 1].token.text[:1].isupper()
            if not (word in self.given_names and followed) and not self._name_at(slots, i, known):
                return False  # "Side view", "Savory Tuna Burgers", "WALL PLAQUES"; "New York" is a name
        return True

    def _name_at(self, slots: list[Slot], i: int, known: dict[int, int]) -> bool:
        """Whether a known name of several words starts at token ``i`` (``known``: the gazetteer's
        names of several words in the caption, first token -> end)."""
        if i in known:
            return True
        words = [slot.token.text for slot in slots[i:i + 4]]  # the gazetteer knows the other sources' names
        return any(source.lookup(" ".join(words[:n])) for source in self._unlisted for n in range(2, len(words) + 1))

    def _runs(self, slots: list[Slot]) -> list[tuple[int, int]]:
        known = {match.first: match.last for match in self.gazetteer.find([slot.token for slot in slots])
                 if match.last - match.first > 1}
        proper = [slot.token.text[:1].isupper() and self._proper(slots, i, known) for i, slot in enumerate(slots)]
        for first, last in known.items():  # "Hoi An", "Trinidad and Tobago"
            if proper[first] and not any(slot.drop for slot in slots[first:last]):
                proper[first:last] = [True] * (last - first)
        runs, i = [], 0
        while i < len(slots):
            if not proper[i]:
                i += 1
                continue
            j = i + 1
            while j < len(slots):
                if proper[j]:
                    j += 1
                elif _initial(slots, j) and j + 2 < len(slots) and proper[j + 2]:
                    j += 3  # "David F. Wright"
                elif slots[j].token.text in JOINERS and j + 1 < len(slots) and proper[j + 1] \
                        and not self._person([slot.token.text for slot in slots[i:j]]):
                    j += 2  # "Trinidad and Tobago", "Bank of Montreal"; not "Jack Lund of Kyoto ..."
                else:
                    break
            runs.append((i, j))
            i = j
        return runs

    def _person(self, words: list[str], titled: bool = False) -> bool:
        """A given name and capitalised names that are no common words, or known surnames
        ("Harrison Ford": "ford" is a word, Ford a surname), initials allowed ("David F. Wright");
        "Victoria Park" is a park, "Alberta Cana" no person, "Raleigh NC" neither. In a title, a
        first name and a surname that are both words are words ("Angel Fish Throw Pillow")."""
        names = [word for word in words if word != "."]
        if not (2 <= len(names) <= 4 and names[0] in self.given_names and names[-1].lower() not in PLACE_HEADS):
            return False
        first = self._lookup(names[0])
        if first is not None and first.type != PERSON and first.hypernym != "city":
            return False  # "Alberta Cana": a province; towns are named after people ("David")
        words_only = titled and is_common_word(names[0])
        return all(len(w) == 1 and w.isupper() or len(w) > 2 and w[:1].isupper() and not w.isupper()
                   and (w in self.surnames and not words_only or not is_common_word(w)) for w in names[1:])

    def _resolve(self, words: list[str], titled: bool) -> Hypernym | None:
        """The run's hypernym from a source (a name in capitals also as written in title case:
        GERMANY), or from the person pattern (source "pattern"): a given name and a surname, or a
        given name alone in running text that is no noun too ("daughter Ava"; not "Dutch", "Oscar")."""
        name = " ".join(words)
        found = self._lookup(name)
        if found is None and name.isupper() and len(name) > 3:
            found = self._lookup(name.title())
        alone = len(words) == 1 and not titled and name in self.given_names and not is_wordnet_noun(name)
        if found is None and (self._person(words, titled) or alone) \
                or found is not None and found.source == "wordnet" and found.type == PERSON and alone:
            found = Hypernym("person", PERSON, "pattern")  # WordNet's one Joseph is not every Joseph
        return found

    # -- the rewrite -------------------------------------------------------------------------
    def rewrite(self, caption: str, tags: list[TaggedSpan] | None = None) -> Rewrite:
        """``tags``: the spaCy tagger's spans, when the caller tagged a batch; else it tags here."""
        if tags is None and self.tagger is not None:
            tags = self.tagger.tag(caption)
        slots = [Slot(token) for token in tokenize(caption)]
        if not caption[1:].islower():  # a title needs two capitals
            _mark_titled(slots)
        entities: list[Entity] = []
        unresolved: list[str] = []
        if self.mode == "hypernym":
            self._drop_dates(caption, slots, entities)
            self._drop_titles(caption, slots, entities)
            self._drop_tagged_dates(slots, tags or (), entities)
        runs, labels = self._with_tags(slots, self._runs(slots), tags or ())
        for first, last in runs:
            self._handle_run(caption, slots, first, last, entities, unresolved, labels.get((first, last)))
        if self.mode == "hypernym" and (entities or self.drop_counts):
            self._drop_person_nouns(slots)
            self._drop_numbers(slots, entities, tags or ())
            self._merge_coordination(slots)
        for slot in slots:
            if slot.entity is not None and slot.text is not None:
                slot.entity.kept = not slot.drop or slot.merged
        text = splice(caption, slots)
        if self.style == "cc3m":
            text = cc3m_form(text)
        result = Rewrite(caption, text, sorted(entities, key=lambda e: e.start))
        if unresolved and self.reject_unresolved:
            result.rejected, result.reason = True, UNRESOLVED
        elif len(re.findall(r"\w+|<PERSON>", text)) < self.min_words:
            result.rejected, result.reason = True, TOO_FEW_WORDS
        return result

    def _drop_span(self, slots, start: int, end: int, with_preposition: set[str]) -> list[int]:
        inside = _within(slots, start, end)
        for i in inside:
            slots[i].drop = True
        if inside:
            before = inside[0] - 1
            if before >= 0 and slots[before].token.text.lower() in with_preposition and not slots[before].drop:
                slots[before].drop = True
        return inside

    def _drop_dates(self, caption, slots, entities) -> None:
        if not DATE_HINT.search(caption):
            return
        for match in DATE.finditer(caption):
            if match.group().isdigit() and _inside_a_name(caption, match):
                continue  # "HON 1870 Series Bookcase", "postage stamp gdr 1967 peregrine falcon"
            inside = self._drop_span(slots, match.start(), match.end(), DATE_PREPOSITIONS)
            if inside:
                entities.append(Entity(match.start(), match.end(), match.group(), "date", None, "pattern"))
                if inside[0] > 1 and slots[inside[0] - 1].drop and slots[inside[0] - 1].token.text == "of" \
                        and slots[inside[0] - 2].token.text.lower() == "as":
                    slots[inside[0] - 2].drop = True  # "as of March 24"

    def _drop_titles(self, caption, slots, entities) -> None:
        for match in QUOTED.finditer(caption):
            start = match.start(1) - 1  # the opening quote; its preposition goes with it
            if self._drop_span(slots, start, match.end(), {"of", "in", "from", "at", "on"}):
                entities.append(Entity(start, match.end(), caption[start:match.end()], "title", None, "pattern"))

    def _drop_tagged_dates(self, slots, tags, entities) -> None:
        """Dates and times the tagger found ("last summer", "this morning")."""
        for tag in tags:
            if tag.label in DATE_LABELS and self._drop_span(slots, tag.start, tag.end, DATE_PREPOSITIONS):
                entities.append(Entity(tag.start, tag.end, tag.text, tag.label.lower(), None, SPACY))

    @staticmethod
    def _with_tags(slots, runs, tags) -> tuple[list[tuple[int, int]], dict[tuple[int, int], str]]:
        """The capitalisation runs with the tagger's named entities: a tagged span that covers runs
        replaces them ("Harrison Ford" at a sentence's start), one over no run is added, and a run
        the tagger found exactly gets its label."""
        labels: dict[tuple[int, int], str] = {}
        for tag in tags:
            if tag.label not in TAGGED_HYPERNYMS:
                continue
            inside = _within(slots, tag.start, tag.end)
            if not inside or any(slots[i].drop for i in inside):
                continue
            span = (inside[0], inside[-1] + 1)
            overlapping = [run for run in runs if run[0] < span[1] and span[0] < run[1]]
            if all(span[0] <= run[0] and run[1] <= span[1] for run in overlapping):
                runs = [run for run in runs if run not in overlapping] + [span]
                labels[span] = tag.label
        return sorted(runs), labels

    def _handle_run(self, caption, slots, first, last, entities, unresolved, label: str | None = None) -> None:
        first = self._with_head_before(slots, first)
        words = [s.token.text for s in slots[first:last]]
        start, end = slots[first].token.start, slots[last - 1].token.end
        following = slots[last].token.text if last < len(slots) else ""
        titled = slots[first].titled
        tagged = TAGGED_HYPERNYMS.get(label) if label else None
        possessive = POSSESSIVE.search(words[-1])  # "Stanley Kubrick's The Shining" -> "person's The Shining"
        found = self._resolve([*words[:-1], POSSESSIVE.sub("", words[-1])] if possessive else words, titled)
        if found is None and label == "PERSON":
            found = Hypernym("person", PERSON, SPACY)

        def unknown() -> None:
            unresolved.append(caption[start:end])
            entities.append(Entity(start, end, caption[start:end], "unknown", None, ""))

        if self.mode == "person-mask":
            if found is not None and found.type == PERSON:
                entity = Entity(start, end, caption[start:end], PERSON, PERSON_MASK, found.source)
                entities.append(entity)
                self._replace(slots, first, last, PERSON_MASK, entity)
            return
        if label is None and (self._compound(words, following) or
                              found is None and self._no_name(words)):
            return  # "American football", "USB", "Tuna Burgers"
        if found is not None and self._head_before(slots, first, found):
            first -= 2  # "the city of Dresden" -> "the city"
            start = slots[first].token.start
        elif found is not None and self._ambiguous(words, found, slots, first, last):
            if not _common(words[0]):  # "Breakfast on Pluto": the film, the planet or the dog?
                unknown()
            return  # "Gold", "Rock": words
        if self._continues(slots, last, found):
            return unknown()  # "Taipei 101", "the San Rafael Swell"
        if found is not None and found.source == "pattern" and len(words) == 1 and not possessive \
                and not _ends_clause(following, coordinated=first > 0 and slots[first - 1].token.text in ("and", "&")):
            return unknown()  # a first name before a noun: "Hoya Bella wax plant", "Mastering Lexie audiobook"
        if found is not None and found.type != PLACE and len(words) == 1 and self._place_by_context(slots, last):
            found = Hypernym("place", PLACE, "pattern")  # "Chocolate Town... Hershey, Pennsylvania"
        before = slots[first - 1].token.text.lower() if first else ""
        if titled and found is not None and found.type == PERSON:
            following = following.lower()  # "Kate Beckett Canvas Print"
        if not possessive and (found is not None or not _common(words[0])) and self._modifies(following, found, before):
            if found is not None and found.source == "pattern" and found.type == PERSON and not titled:
                return unknown()  # a name that only looks like a person's: "Blue Merle Australian Shepherd puppy"
            for slot in slots[first:last]:  # a modifier of the common noun that follows
                slot.drop = True
            entities.append(Entity(start, end, caption[start:end], found.type if found else THING, None,
                                   found.source if found else "pattern"))
            return
        if found is None:
            found = self._named_head(words)
            if found is not None and first and slots[first - 1].token.text[:1].isupper() \
                    and not slots[first - 1].drop and _content(slots[first - 1].token.text):
                first -= 1  # "Vista Ridge High School": the sentence's first word is part of it
                start = slots[first].token.start
        if found is None and tagged is not None:
            found = Hypernym(tagged[0], tagged[1], SPACY)
        if found is None and label in TAGGED_HYPERNYMS and tagged is None:  # NORP: "the French"
            self._drop_span(slots, start, end, set())
            entities.append(Entity(start, end, caption[start:end], label.lower(), None, SPACY))
            return
        if found is None:
            found = self._place_by_context(slots, last)
        if found is None:
            for match in self.gazetteer.find([s.token for s in slots[first:last]]):
                if match.last - match.first == len(words):
                    found = match.value.lookup(match.name)
        if found is None:
            return unknown()
        entity = Entity(start, end, caption[start:end], found.type, found.hypernym, found.source)
        entities.append(entity)
        self._replace(slots, first, last, found.hypernym + (possessive.group() if possessive else ""), entity)

    @staticmethod
    def _compound(words: list[str], following: str) -> bool:
        """"American football", "English setters": a WordNet noun that starts with a name."""
        name = " ".join(words).lower()
        return f"{name} {following.lower()}" in compound_nouns() or f"{name} {singular(following)}" in compound_nouns()

    @staticmethod
    def _with_head_before(slots, first: int) -> int:
        """Where a name starts that a capitalised head and "of" lead: "Bank of Montreal", "the
        Church of the Holy Sepulcher", "Battle of Issus"."""
        for lead in (2, 3):
            if first < lead or slots[first - 1].drop:
                continue
            between = [slot.token.text for slot in slots[first - lead + 1:first]]
            head = slots[first - lead].token.text
            if between in (["of"], ["of", "the"]) and head[:1].isupper() and head.lower() in NAMED_HEADS \
                    and not slots[first - lead].drop:
                return first - lead
        return first

    def _no_name(self, words: list[str]) -> bool:
        """An unknown run that names nothing: an acronym ("USB", "LED"), or ordinary words in
        capitals that name no event, institution or site ("Tuna Burgers", "Video Footage")."""
        if len(words) == 1 and words[0].isupper() and len(words[0]) <= 5:
            return True
        return all(_common(word) for word in words) and self._named_head(words) is None

    def _ambiguous(self, words: list[str], found: Hypernym, slots, first: int, last: int) -> bool:
        """A one-word name from WordNet or GeoNames that stands in a title ("Breakfast on Pluto") or
        is a common word too ("Gold", "Rock", a town called Sale); WordNet's one-word names of things
        and titles ("Mensa", "the Buddha") have too many senses. A place is one where a place
        preposition or a following ", Place" says so ("in Bath"; not "the Juno for Album of the
        Year"); a country or a state is one anywhere but in a title, where it may be a name ("2003
        GMC Envoy Washington")."""
        word, titled = words[0], slots[first].titled
        named = word in self.given_names or word in self.surnames  # "Adam", "Hamilton": towns too
        if len(words) > 1 or found.source in CURATED:
            return False
        head_after_the = first > 0 and slots[first - 1].token.text.lower() == "the" \
            and not (last < len(slots) and slots[last].token.text[:1].islower())  # not "the Hubble deep field"
        if found.source == "wordnet" and (found.type == THING or head_after_the):
            return True  # "a member of Mensa" (the society, not the constellation), "The Buddha"
        if not (titled or _common(word) or found.type == PLACE and named):
            return False
        if found.type != PLACE:
            return True
        before = slots[first - 1].token.text.lower() if first else ""
        after = slots[last].token.text if last < len(slots) else ""
        if before in PLACE_PREPOSITIONS and not (titled and before == "of") or after == ",":
            return False
        return found.hypernym not in BROAD_PLACES or titled and named

    @staticmethod
    def _continues(slots, last: int, found: Hypernym | None) -> bool:
        """Whether the name goes on past the run: a number ("Taipei 101", "Windows 8"), or, in a
        title, a capitalised word ("Marietta College Pictures"; a person's name may modify one)."""
        if last >= len(slots) or slots[last].drop:
            return False
        word = slots[last].token.text
        if word[:1].isdigit():
            return True  # "Taipei 101", "Albany 6Pc Sectional"
        return slots[last].titled and _content(word) and word[:1].isupper() and (found is None or found.type != PERSON)

    @staticmethod
    def _head_before(slots, first: int, found: Hypernym) -> bool:
        """"the city of Dresden": the name is an instance of the noun written before it with "of"."""
        if first < 2 or slots[first - 1].token.text != "of" or slots[first - 2].drop:
            return False
        head = found.hypernym.split()[-1]
        return slots[first - 2].token.text.lower() in (head, plural(head))

    @staticmethod
    def _modifies(following: str, found: Hypernym | None, before: str) -> bool:
        """Whether a run modifies the common noun that follows ("British Airways aircraft",
        "Einstein portrait"): the word is a noun and cannot be a verb, or repeats the run's hypernym
        ("Big Ben clock"), or a determiner leads the phrase ("her Glassheart tour"), or the run is a
        known name and the word no verb of a subject in the third person ("Eiffel tower"; "Madonna
        sings", "Einstein and Bohr talk", "Roseanne Barr running", "Kathy Riley won" are verbs). A
        noun that may be a verb after an unknown run ("Volen Siderov meets") is left to the other
        rules."""
        if not (following[:1].islower() and following.isalpha() and len(following) > 2) \
                or following in FUNCTION_WORDS or following in TIME_WORDS:
            return False
        if found is not None and following in (found.hypernym.split()[-1], plural(found.hypernym.split()[-1])):
            return True
        noun, verb = noun_and_verb(following)
        if not noun or (following.endswith("ing") or is_past_verb(following)) and before not in DETERMINERS:
            return False
        return not verb or before in DETERMINERS or (
            found is not None and not following.endswith("s") and before not in ("and", "&"))

    @staticmethod
    def _named_head(words: list[str]) -> Hypernym | None:
        """"Pilgrimage Music & Cultural Festival" -> festival, "National Gallery of Canada" -> gallery."""
        if len(words) < 2:
            return None
        head = words[-1].lower()
        if head not in NAMED_HEADS and "of" in words:
            head = words[words.index("of") - 1].lower()  # "University of Oxford", "National Gallery of Canada"
        if head not in NAMED_HEADS:
            return None
        return Hypernym(PLACE_HEADS.get(head, head), PLACE if head in PLACE_HEADS else THING, "pattern")

    def _place_by_context(self, slots, last) -> Hypernym | None:
        """"Balakot, Pakistan": a name followed by a comma and a known place is a place (not "Longman,
        Green and Company")."""
        if last + 1 < len(slots) and slots[last].token.text == "," and self._place_at(slots, last + 1):
            found = self._lookup(slots[last + 1].token.text)
            if found is not None and found.type == PLACE:
                return Hypernym("place", PLACE, "pattern")
        return None

    def _replace(self, slots, first, last, text, entity) -> None:
        slots[first].text, slots[first].entity = text, entity
        for slot in slots[first + 1:last]:
            slot.drop = True
        self._drop_place_phrase(slots, first, last, entity)

    def _drop_place_phrase(self, slots, first, last, entity) -> None:
        """"in Balakot, Pakistan", "from the Taj Mahal Hotel", ", Phuket, Thailand": a place
        preposition or a comma, and the place with the places that qualify it; a place elsewhere
        keeps its hypernym without them ("Ryde, Sydney, Australia" -> "city")."""
        if entity.type != PLACE or self.mode != "hypernym" or slots[first].drop or POSSESSIVE.search(entity.text):
            return  # "in Tokyo's foothills": the place says whose foothills
        i = first - 1
        while i >= 0 and (slots[i].drop or slots[i].token.text.lower() in DETERMINERS):
            i -= 1
        lead = slots[i].token.text.lower() if i >= 0 else ""
        if lead == "at" and entity.source == "pattern" and entity.hypernym in SITES:
            if i == first - 1:  # "at Bondi Beach" -> "at the beach"
                slots[first].text = f"the {slots[first].text}"
            return  # "performs at the Sydney Entertainment Centre" -> "performs at the venue"
        j = last
        while j + 1 < len(slots) and slots[j].token.text == "," and (slots[j + 1].entity or slots[j + 1].drop
                                                                     or self._place_at(slots, j + 1)):
            j += 2  # ", France" and further places of the chain
            while j < len(slots) and slots[j].drop:
                j += 1
        if lead == "of" and entity.source == "pattern" or i > 0 and slots[i - 1].token.text.lower() in BE:
            return  # "the Dome of the Church of the Holy Sepulcher", "is in the palace": what, not where
        after = next((slot.token.text for slot in slots[j:] if not slot.drop), "")
        clause_ends = not after[:1].isalnum()  # ", Phuket, Thailand" ends it; ", England's soccer star" not
        if lead in PLACE_PREPOSITIONS or lead == "," and i == first - 1 and clause_ends \
                or lead == "(" and j < len(slots) and slots[j].token.text == ")":
            first = i if lead != "(" else first
        else:
            first = last  # the qualifiers only
        for slot in slots[first:j]:
            slot.drop = True

    def _place_at(self, slots, i: int) -> bool:
        """Whether a place's name starts at token ``i`` (", France", ", New Mexico"; not ", Compiled")."""
        words = [slot.token.text for slot in slots[i:i + 3]]
        if not words[0][:1].isupper():
            return False
        return not _common(words[0]) or any(self._lookup(" ".join(words[:n])) for n in (2, 3))

    @staticmethod
    def _next_kept(slots) -> list[Slot | None]:
        """For each slot, the first slot after it that is not dropped."""
        following: list[Slot | None] = [None] * len(slots)
        for i in range(len(slots) - 2, -1, -1):
            after = slots[i + 1]
            following[i] = following[i + 1] if after.drop else after
        return following

    def _drop_person_nouns(self, slots) -> None:
        following = self._next_kept(slots)  # only the current slot changes: later ones stay valid
        for i, slot in enumerate(slots[:-1]):
            after = following[i]
            if after is not None and after.entity and after.entity.type == PERSON and not slot.drop \
                    and slot.entity is None and is_person_noun(slot.token.text):
                slot.drop = True

    def _drop_numbers(self, slots, entities, tags) -> None:
        """A number, or an amount the tagger found, right before an entity that was removed or
        replaced modifies it ("the 29th American Film Festival"); with ``drop_counts``, a bare
        count before a plural noun goes too ("Two sculptures")."""
        starts = {entity.start for entity in entities if entity.type not in ("unknown", PERSON)}  # not "1 Raphael"
        if not starts and not self.drop_counts:
            return
        amounts = [tag for tag in tags if tag.label in AMOUNT_LABELS]
        for tag in amounts:
            inside = _within(slots, tag.start, tag.end)
            if inside and inside[-1] + 1 < len(slots) and slots[inside[-1] + 1].token.start in starts:
                for i in inside:
                    slots[i].drop = True
        for i, slot in enumerate(slots[:-1]):
            if slot.drop or slot.entity or not is_number(slot.token.text):
                continue
            after = slots[i + 1]
            if after.token.start in starts and (after.drop or after.entity):
                slot.drop = True
            elif self.drop_counts and is_count(slot.token.text) and is_plural_noun(after.token.text) \
                    and (i == 0 or slots[i - 1].token.text.lower() not in DETERMINERS):
                slot.drop = True

    def _merge_coordination(self, slots) -> None:
        """"actor and actor" -> "actors"; "film actor and actor" share the head: "actors" too."""
        live = [s for s in slots if not s.drop]
        for a, conj, b in zip(live, live[1:], live[2:]):
            if not (a.entity and b.entity and a.text and b.text and not a.drop and not b.drop
                    and conj.token.text.lower() in ("and", "&") and PERSON_MASK not in (a.text, b.text)):
                continue
            if a.text == b.text or a.text.split()[-1] == b.text.split()[-1]:
                a.text = plural(min(a.text, b.text, key=len))
                conj.drop = b.drop = b.merged = True
