"""Find known names in a caption: multi-word patterns over tokens, longest match wins.

Names and captions are tokenised the same way, and a table maps each first token to the token
counts of the names that start with it, so a caption costs one dict lookup per token plus one per
candidate length. Matching is case-sensitive: "Bath" is a city, "bath" is not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Generic, Iterable, TypeVar

V = TypeVar("V")
# An amount with thousands separators is one token ("6,000", "1,735.37"), as is a word with inner
# hyphens, apostrophes, dots or ampersands; any other character is a token of its own.
TOKEN = re.compile(r"\w+(?:[-'’.&]\w+|(?<=\d),\d{3}(?!\w))*|[^\w\s]")


@dataclass(frozen=True, slots=True)
class Token:
    text: str
    start: int
    end: int


@dataclass(frozen=True)
class Match(Generic[V]):
    first: int  # token index of the first token
    last: int  # token index after the last token
    name: str
    value: V


def tokenize(text: str) -> list[Token]:
    return [Token(m.group(), m.start(), m.end()) for m in TOKEN.finditer(text)]


def name_key(tokens: Iterable[str]) -> str:
    return " ".join(tokens)


class Gazetteer(Generic[V]):
    """name -> value; ``find`` returns the non-overlapping longest matches, left to right."""

    def __init__(self, entries: dict[str, V]):
        self.entries: dict[str, V] = {}
        lengths: dict[str, set[int]] = {}
        for name, value in entries.items():
            tokens = [t.text for t in tokenize(name)]
            if not tokens:
                continue
            self.entries[name_key(tokens)] = value
            lengths.setdefault(tokens[0], set()).add(len(tokens))
        self.lengths = {first: sorted(found, reverse=True) for first, found in lengths.items()}

    def find(self, tokens: list[Token]) -> list[Match[V]]:
        words = [t.text for t in tokens]
        found: list[Match[V]] = []
        i = 0
        while i < len(words):
            step = 1
            for length in self.lengths.get(words[i], ()):
                if i + length <= len(words):
                    key = name_key(words[i:i + length])
                    value = self.entries.get(key)
                    if value is not None:
                        found.append(Match(i, i + length, key, value))
                        step = length
                        break
            i += step
        return found


def merged(sources: list) -> dict:
    """name -> the first source (in priority order) that knows it; a match asks that source."""
    table: dict = {}
    for source in sources:
        for name in source.names():
            table.setdefault(name, source)
    return table
