"""Rewrite a caption the way Conceptual Captions did (Sharma et al. 2018, section 3): named
entities become their hypernyms, and dates, counts, proper-noun modifiers and place phrases go.

    Harrison Ford and Calista Flockhart attend the premiere of 'Hollywood Homicide' at the 29th
    American Film Festival September 5, 2003 in Deauville, France.
    -> actors attend the premiere at the festival.

The rules, in order, on the caption's tokens:
1. dates, times and years are dropped, with a preposition that leads them ("on September 23");
2. quoted titles are dropped, with a preposition that leads them ("of 'Hollywood Homicide'");
3. runs of capitalised words are found (a sentence's first word only when it is no common word);
   a run followed by a common noun modifies it and is dropped ("British Airways Airbus A319
   aircraft" -> "aircraft"); a run named in a knowledge source, or a given name and a surname
   (a person), becomes its hypernym; a run whose last word is a common noun becomes that noun
   ("Pilgrimage Music & Cultural Festival" -> "festival"); a run followed by ", Place" is a place;
4. a place after a place preposition is dropped with it ("in Balakot, Pakistan"), except a named
   site after "at" ("at the Sydney Entertainment Centre" -> "at the venue");
5. a person noun before a person ("musician Justin Timberlake") and numbers that modify a noun
   ("two sculptures", "the 29th festival") are dropped;
6. coordinated entities with one hypernym merge into its plural ("actor and actor" -> "actors");
7. articles agree with the next word ("a aircraft" -> "an aircraft").
A caption with an unresolved proper noun, or too few words left, is rejected with the reason.
With a spaCy tagger (``spacy_tagger``), its dates and amounts are dropped too, its named entities
join the capitalisation runs, and its label is the hypernym of last resort (PERSON -> person,
GPE -> place, ORG -> organization; source "spacy").
``mode="person-mask"`` (CC12M) only replaces people's names with ``<PERSON>``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from hypernymize.config import HypernymizeConfig
from hypernymize.gazetteer import Gazetteer, Token, tokenize
from hypernymize.knowledge import PERSON, PLACE, THING, Hypernym, KnowledgeSource
from hypernymize.spacy_tagger import DROPPED_LABELS, SpacyTagger, TaggedSpan
from hypernymize.spacy_tagger import HYPERNYMS as TAGGED_HYPERNYMS
from hypernymize.vocabulary import (
    DATE,
    DATE_PREPOSITIONS,
    DETERMINERS,
    FUNCTION_WORDS,
    PLACE_HEADS,
    PLACE_PREPOSITIONS,
    given_names,
    is_common_word,
    is_number,
    is_person_noun,
    load_tables,
    noun_and_verb,
    plural,
    starts_with_vowel_sound,
    surnames,
)

QUOTED = re.compile(r"(?<!\w)['\"‘“]([A-Z][^'\"’”]{0,80})['\"’”](?!\w)")
CONNECTORS = {"&", "of", "de", "da", "van", "von", "del", "la", "le"}
TITLE_CONNECTORS = {"Of", "For", "And", "The", "In", "On", "At", "To", "With", "OF", "AND", "THE"}  # "Rock Of Ages"
TOO_FEW_WORDS = "too_few_words"
UNRESOLVED = "unresolved_proper_noun"
PERSON_MASK = "<PERSON>"
SPACY = "spacy"  # the source of what the optional spaCy tagger found
SITES = frozenset(PLACE_HEADS.values())  # named buildings and sites: "at the venue" says where a photo is


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


@dataclass
class _Slot:
    token: Token
    drop: bool = False
    text: str | None = None  # replacement text of the first token of an entity
    entity: Entity | None = None
    merged: bool = False  # a coordinated entity whose hypernym now stands in the plural before it


class Hypernymizer:
    """``rewrite(caption)``; ``sources`` in priority order; ``gazetteer``: name -> the source that
    knows it (``gazetteer.merged``), over the sources held in memory; ``tagger``: optional spaCy NER."""

    def __init__(self, sources: list[KnowledgeSource], gazetteer: Gazetteer, *, mode: str = HypernymizeConfig.mode,
                 style: str = HypernymizeConfig.style, min_words: int = HypernymizeConfig.min_words,
                 reject_unresolved: bool = HypernymizeConfig.reject_unresolved, tagger: SpacyTagger | None = None):
        if mode not in HypernymizeConfig.CHOICES["mode"]:
            raise ValueError(f"unknown hypernymization mode {mode!r}")
        if style not in HypernymizeConfig.CHOICES["style"]:
            raise ValueError(f"unknown caption style {style!r}")
        self.sources = sources
        self.gazetteer = gazetteer
        self.mode, self.style = mode, style
        self.min_words, self.reject_unresolved = min_words, reject_unresolved
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
    def _proper(self, slots: list[_Slot], i: int, known: dict[int, int]) -> bool:
        word = slots[i].token.text
        if slots[i].drop or not word[:1].isupper():
            return False
        sentence_start = i == 0 or slots[i - 1].token.text in ".!?:;\"'“‘(-–"
        if word.lower() in FUNCTION_WORDS and not sentence_start:
            return False  # title case's "For", "The", "AND" (inside a known name the gazetteer says so)
        if sentence_start and is_common_word(word):
            followed = i + 1 < len(slots) and slots[i + 1].token.text[:1].isupper()
            if not (word in self.given_names and followed) and not self._name_at(slots, i, known):
                return False  # "Side view", "Musician Justin", "Will you": a common first word; "New York" is a name
        return not (len(word) == 1 and word in "AI")

    def _name_at(self, slots: list[_Slot], i: int, known: dict[int, int]) -> bool:
        """Whether a known name of several words starts at token ``i`` (``known``: the gazetteer's
        names of several words in the caption, first token -> end)."""
        if i in known:
            return True
        words = [slot.token.text for slot in slots[i:i + 4]]  # the gazetteer knows the other sources' names
        return any(source.lookup(" ".join(words[:n])) for source in self._unlisted for n in range(2, len(words) + 1))

    def _runs(self, slots: list[_Slot]) -> list[tuple[int, int]]:
        known = {match.first: match.last for match in self.gazetteer.find([slot.token for slot in slots])
                 if match.last - match.first > 1}
        proper = [self._proper(slots, i, known) for i in range(len(slots))]
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
                elif (slots[j].token.text in CONNECTORS or slots[j].token.text in TITLE_CONNECTORS) \
                        and j + 1 < len(slots) and proper[j + 1]:
                    j += 2
                else:
                    break
            runs.append((i, j))
            i = j
        return runs

    def _person(self, words: list[str]) -> bool:
        """A given name and capitalised names that are no common words, or known surnames
        ("Harrison Ford": "ford" is a word, Ford a surname); "Victoria Park" is a park."""
        return 2 <= len(words) <= 4 and words[0] in self.given_names and words[-1].lower() not in PLACE_HEADS \
            and all(w[:1].isupper() and (w in self.surnames or not is_common_word(w)) for w in words[1:])

    def _resolve(self, words: list[str]) -> Hypernym | None:
        """The run's hypernym from a source (a name in capitals also as written in title case:
        GERMANY), or from the person pattern (source "pattern")."""
        name = " ".join(words)
        found = self._lookup(name)
        if found is None and name.isupper() and len(name) > 3:
            found = self._lookup(name.title())
        if found is None and self._person(words):
            found = Hypernym("person", PERSON, "pattern")
        return found

    # -- the rewrite -------------------------------------------------------------------------
    def rewrite(self, caption: str, tags: list[TaggedSpan] | None = None) -> Rewrite:
        """``tags``: the spaCy tagger's spans, when the caller tagged a batch; else it tags here."""
        if tags is None and self.tagger is not None:
            tags = self.tagger.tag(caption)
        slots = [_Slot(token) for token in tokenize(caption)]
        entities: list[Entity] = []
        unresolved: list[str] = []
        if self.mode == "hypernym":
            self._drop_dates(caption, slots, entities)
            self._drop_titles(caption, slots, entities)
            self._drop_tagged_amounts(slots, tags or (), entities)
        runs, labels = self._with_tags(slots, self._runs(slots), tags or ())
        for first, last in runs:
            self._handle_run(caption, slots, first, last, entities, unresolved, labels.get((first, last)))
        if self.mode == "hypernym":
            self._drop_person_nouns(slots)
            self._drop_numbers(slots)
            self._merge_coordination(slots)
        for slot in slots:
            if slot.entity is not None and slot.text is not None:
                slot.entity.kept = not slot.drop or slot.merged
        text = self._assemble(slots)
        result = Rewrite(caption, text, sorted(entities, key=lambda e: e.start))
        if unresolved and self.reject_unresolved:
            result.rejected, result.reason = True, UNRESOLVED
        elif len(re.findall(r"\w+|<PERSON>", text)) < self.min_words:
            result.rejected, result.reason = True, TOO_FEW_WORDS
        return result

    def _drop_span(self, slots, start: int, end: int, with_preposition: set[str]) -> list[int]:
        inside = [i for i, s in enumerate(slots) if s.token.start >= start and s.token.end <= end]
        for i in inside:
            slots[i].drop = True
        if inside:
            before = inside[0] - 1
            if before >= 0 and slots[before].token.text.lower() in with_preposition and not slots[before].drop:
                slots[before].drop = True
        return inside

    def _drop_dates(self, caption, slots, entities) -> None:
        for match in DATE.finditer(caption):
            if self._drop_span(slots, match.start(), match.end(), DATE_PREPOSITIONS):
                entities.append(Entity(match.start(), match.end(), match.group(), "date", None, "pattern"))

    def _drop_titles(self, caption, slots, entities) -> None:
        for match in QUOTED.finditer(caption):
            if self._drop_span(slots, match.start(), match.end(), {"of", "in", "from", "at", "on"}):
                entities.append(Entity(match.start(), match.end(), match.group(), "title", None, "pattern"))

    def _drop_tagged_amounts(self, slots, tags, entities) -> None:
        """Dates, times and amounts the tagger found ("last summer", "five kilometres")."""
        for tag in tags:
            if tag.label in DROPPED_LABELS:
                with_preposition = DATE_PREPOSITIONS if tag.label in ("DATE", "TIME") else set()
                if self._drop_span(slots, tag.start, tag.end, with_preposition):
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
            inside = [i for i, s in enumerate(slots) if s.token.start >= tag.start and s.token.end <= tag.end]
            if not inside or any(slots[i].drop for i in inside):
                continue
            span = (inside[0], inside[-1] + 1)
            overlapping = [run for run in runs if run[0] < span[1] and span[0] < run[1]]
            if all(span[0] <= run[0] and run[1] <= span[1] for run in overlapping):
                runs = [run for run in runs if run not in overlapping] + [span]
                labels[span] = tag.label
        return sorted(runs), labels

    def _handle_run(self, caption, slots, first, last, entities, unresolved, label: str | None = None) -> None:
        words = [s.token.text for s in slots[first:last]]
        start, end = slots[first].token.start, slots[last - 1].token.end
        following = slots[last].token.text if last < len(slots) else ""
        tagged = TAGGED_HYPERNYMS.get(label) if label else None
        found = self._resolve(words)
        if found is None and label == "PERSON":
            found = Hypernym("person", PERSON, SPACY)
        if self.mode == "person-mask":
            if found is not None and found.type == PERSON:
                entity = Entity(start, end, caption[start:end], PERSON, PERSON_MASK, found.source)
                entities.append(entity)
                self._replace(slots, first, last, PERSON_MASK, entity)
            return
        noun, verb = (noun_and_verb(following) if following[:1].islower() and following.isalpha()
                      and following not in FUNCTION_WORDS else (False, False))
        if noun and following not in DETERMINERS and (not verb or found is None):
            for slot in slots[first:last]:  # a modifier of the common noun that follows
                slot.drop = True
            entities.append(Entity(start, end, caption[start:end], found.type if found else THING, None,
                                   found.source if found else "pattern"))
            return
        if found is None and len(words) == 1 and is_common_word(words[0]) and label is None:
            return  # a common word in title case ("Vintage Posters"), not a name
        if found is None and len(words) > 1:
            head = words[-1].lower()
            if is_common_word(head):  # "Pilgrimage Music & Cultural Festival" -> festival
                kind = PLACE if head in PLACE_HEADS else THING
                found = Hypernym(PLACE_HEADS.get(head, head), kind, "pattern")
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
            unresolved.append(caption[start:end])
            entities.append(Entity(start, end, caption[start:end], "unknown", None, ""))
            return
        entity = Entity(start, end, caption[start:end], found.type, found.hypernym, found.source)
        entities.append(entity)
        self._replace(slots, first, last, found.hypernym, entity)

    def _place_by_context(self, slots, last) -> Hypernym | None:
        """"Balakot, Pakistan": an unknown name followed by a comma and a known place is a place."""
        if last + 1 < len(slots) and slots[last].token.text == "," and slots[last + 1].token.text[:1].isupper():
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
        """"in Balakot, Pakistan", "from the Taj Mahal Hotel": a place preposition and its place."""
        if entity.type != PLACE or self.mode != "hypernym":
            return
        i = first - 1
        while i >= 0 and (slots[i].drop or slots[i].token.text.lower() in DETERMINERS):
            i -= 1
        if i < 0 or slots[i].token.text.lower() not in PLACE_PREPOSITIONS:
            return
        if slots[i].token.text.lower() == "at" and entity.source == "pattern" and entity.hypernym in SITES:
            if i == first - 1:  # "at Bondi Beach" -> "at the beach"
                slots[first].text = f"the {slots[first].text}"
            return  # "performs at the Sydney Entertainment Centre" -> "performs at the venue"
        j = last
        while j + 1 < len(slots) and slots[j].token.text == "," and (slots[j + 1].entity or slots[j + 1].drop
                                                                     or slots[j + 1].token.text[:1].isupper()):
            j += 2  # ", France" and further places of the chain
            while j < len(slots) and slots[j].drop:
                j += 1
        for slot in slots[i:j]:
            slot.drop = True

    @staticmethod
    def _next_kept(slots) -> list[_Slot | None]:
        """For each slot, the first slot after it that is not dropped."""
        following: list[_Slot | None] = [None] * len(slots)
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

    def _drop_numbers(self, slots) -> None:
        following = self._next_kept(slots)
        for i, slot in enumerate(slots[:-1]):
            if slot.drop or slot.entity or not is_number(slot.token.text):
                continue
            after = following[i]
            if after is not None and (after.entity or after.token.text[:1].isalpha()):
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

    def _assemble(self, slots) -> str:
        words: list[str] = []
        for slot in slots:
            if slot.drop:
                continue
            words.append(slot.text if slot.text is not None else slot.token.text)
        text = " ".join(words)
        text = re.sub(r"\s+([.,;:!?)])", r"\1", text)
        text = re.sub(r"([(])\s+", r"\1", text)
        text = re.sub(r"(,\s*)+([.;:!?]|$)", r"\2", text)  # a comma left before the end
        text = re.sub(r"^[\s,;:]+", "", text)
        text = re.sub(r"\b([Aa])n? (\S+)", lambda m: self._article(m.group(1), m.group(2)), text)
        text = re.sub(r"\s{2,}", " ", text).strip()
        if self.style == "cc3m":
            return re.sub(r"\s*([.,;:!?])", r" \1", text.lower()).strip()
        if slots and slots[0].token.text[:1].isupper():
            text = text[:1].upper() + text[1:]  # the sentence still starts with a capital
        return text

    @staticmethod
    def _article(article: str, word: str) -> str:
        an = starts_with_vowel_sound(word) and word[:1].isalpha()
        return f"{article}{'n' if an else ''} {word}"
