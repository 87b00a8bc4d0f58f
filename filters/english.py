"""English closed-class words (grammar, not data) and the tokenizers the text rules share.

Open-class knowledge (nouns, word frequencies, bad words) comes from packages: see ``lexicons``.
"""

from __future__ import annotations

import re

ARTICLES = frozenset("a an the".split())
DETERMINERS = ARTICLES | frozenset(
    "this that these those my your his her its our their some any no every each either neither "
    "many much more most few fewer several all both another other such what which whose enough "
    "half one two three four five six seven eight nine ten eleven twelve twenty thirty hundred "
    "hundreds dozen dozens thousands lots numerous various".split())
PREPOSITIONS = frozenset(
    "about above across after against along amid amidst among around as at atop before behind "
    "below beneath beside besides between beyond by despite down during except for from in inside "
    "into like near next of off on onto opposite out outside over past per through throughout "
    "till to toward towards under underneath unlike until up upon via with within without".split())
CONJUNCTIONS = frozenset("and or but nor so yet while when where because although though if".split())
PRONOUNS = frozenset(
    "i me you he him she it we us they them myself yourself himself herself itself ourselves "
    "themselves who whom someone somebody something anyone anything everyone everybody everything "
    "nobody nothing there here".split())
AUXILIARIES = frozenset(
    "is are was were be been being am has have had having do does did can could will would shall "
    "should may might must not".split())
FUNCTION_WORDS = DETERMINERS | PREPOSITIONS | CONJUNCTIONS | PRONOUNS | AUXILIARIES

_LETTER_RUNS = re.compile(r"[^\W\d_]+")
_ASCII_LOWER_RUNS = re.compile(r"[a-z]+")
_ASCII_RUNS = re.compile(r"[A-Za-z]+")


def letter_tokens(lowered: str) -> list[str]:
    """Runs of letters in already lower-cased text: "a319's" -> ["a", "s"]; digits split words."""
    return (_ASCII_LOWER_RUNS if lowered.isascii() else _LETTER_RUNS).findall(lowered)


def cased_letter_tokens(text: str) -> list[str]:
    """Runs of letters, case kept."""
    return (_ASCII_RUNS if text.isascii() else _LETTER_RUNS).findall(text)
