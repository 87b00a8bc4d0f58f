"""A rewritten caption put together from the caption's tokens: every kept token as written, with
the spaces that stood around it, so that text no rule touched comes out byte for byte ("you 'll",
"a £ 6,000 operation"). Only what the rules changed is adjusted: punctuation their drops left
stranded, an article in front of a replacement, the capital of a sentence whose first word went.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hypernymize.gazetteer import Token
from hypernymize.vocabulary import starts_with_vowel_sound

if TYPE_CHECKING:
    from hypernymize.rewriter import Entity

CLOSING = frozenset(",.;:!?)")
SEPARATORS = frozenset(",;:-–—")  # left alone at either end once the words beside them went
STOPS = CLOSING - {")"}
OPENERS = frozenset("([{\"“‘'")
BRACKETS = {"(": ")", "[": "]", "{": "}"}


@dataclass(slots=True)
class Slot:
    """A token of the caption and what the rules decided for it."""
    token: Token
    drop: bool = False
    text: str | None = None  # replacement text of the first token of an entity
    entity: Entity | None = None
    merged: bool = False  # a coordinated entity whose hypernym now stands in the plural before it
    titled: bool = False  # the token stands in a stretch written in Title Case or in capitals


def splice(caption: str, slots: list[Slot]) -> str:
    """The caption with the rules' changes only; the caption itself when they changed nothing."""
    if not any(slot.drop or slot.text is not None for slot in slots):
        return caption
    _drop_stranded_punctuation(slots)
    kept = [i for i, slot in enumerate(slots) if not slot.drop]
    words = [slots[i].text if slots[i].text is not None else slots[i].token.text for i in kept]
    _agree_articles(slots, kept, words)
    if kept and slots[0].token.text[:1].isupper() and (kept[0] or slots[0].text is not None):
        words[0] = words[0][:1].upper() + words[0][1:]  # the sentence still starts with a capital
    return "".join(_gap(caption, slots, kept[n - 1], i) + words[n] if n else words[n] for n, i in enumerate(kept))


def cc3m_form(text: str) -> str:
    """Conceptual Captions' own form: lower case, a space before punctuation that ends a word."""
    return re.sub(r"\s*([.,;:!?]+)(?=\s|$)", r" \1", text.lower()).strip()


def _agree_articles(slots: list[Slot], kept: list[int], words: list[str]) -> None:
    """"a"/"an" before a word that a rule put there agrees with it; an article before the word it
    stood before stays as written ("at an unit")."""
    for n, i in enumerate(kept[:-1]):
        j = kept[n + 1]
        if words[n].lower() in ("a", "an") and slots[i].text is None and (j != i + 1 or slots[j].text is not None):
            an = starts_with_vowel_sound(words[n + 1]) and words[n + 1][:1].isalpha()
            words[n] = words[n][0] + ("n" if an else "")


def _gap(caption: str, slots: list[Slot], previous: int, current: int) -> str:
    """The space between two kept tokens: as written, or across dropped tokens the space before
    them, none when the next kept token was attached ("debris in Balakot." -> "debris.") or the
    first opens a bracket ("(Leonard Cohen cover" -> "(cover"), else the space after them ("Shore,
    Jonesport, ME Photographic" -> "Shore, ME Photographic")."""
    after_previous = caption[slots[previous].token.end:slots[previous + 1].token.start]
    if previous + 1 == current:
        return after_previous
    before_current = caption[slots[current - 1].token.end:slots[current].token.start]
    if not before_current or slots[previous].token.text in OPENERS:
        return ""
    return after_previous or before_current


def _drop_stranded_punctuation(slots: list[Slot]) -> None:
    """Punctuation next to dropped words that the drop left stranded: a comma, semicolon, colon or
    dash that now starts the caption, follows an opening bracket or stands before other
    punctuation or the end ("debris in Balakot, Pakistan." -> "debris."), a stop after a stop,
    and brackets left empty ("Series 1 & 2 [1990] [DVD]" -> "Series 1 & 2 [DVD]")."""
    changed = True
    while changed:
        changed = False
        kept = [i for i, slot in enumerate(slots) if not slot.drop]
        for n, i in enumerate(kept):
            text = slots[i].token.text
            beside_drop = (i > 0 and slots[i - 1].drop) or (i + 1 < len(slots) and slots[i + 1].drop)
            following = slots[kept[n + 1]].token.text if n + 1 < len(kept) else None
            previous = slots[kept[n - 1]].token.text if n else None
            at_an_end = n == 0 or previous in OPENERS or following is None or following in CLOSING
            stranded = text in SEPARATORS and at_an_end \
                or text in STOPS and previous in STOPS  # "trees. 2008. Oil" -> "trees. Oil"
            empty = following is not None and BRACKETS.get(text) == following
            if beside_drop and (stranded or empty):
                slots[i].drop = changed = True
                if empty:
                    slots[kept[n + 1]].drop = True
                break
