"""What a knowledge source says about a name: its hypernym, the entity type and where it came from.

Every source (WordNet, GeoNames, a Wikidata KB) answers ``lookup(name)`` with a ``Hypernym`` or
None, and lists the names it knows (``names()``) for the gazetteer that finds them in captions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Protocol

PERSON, PLACE, ORGANIZATION, THING = "person", "place", "organization", "thing"


@dataclass(frozen=True)
class Hypernym:
    hypernym: str  # "actor", "city": what the name is replaced with
    type: str  # person | place | organization | thing
    source: str  # wordnet | geonames | wikidata
    id: str = ""  # the entry in its source: a synset name, a GeoNames id, a Wikidata Q-id


class KnowledgeSource(Protocol):
    name: str

    def lookup(self, name: str) -> Hypernym | None:
        """The hypernym of ``name`` as written (case matters: "Bath" the city, "bath" no)."""

    def names(self) -> Iterable[str]:
        """Every name the source can look up."""
