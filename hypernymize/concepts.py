"""Conceptual Captions' concept-frequency cut: after hypernymization, count how often each
hypernym stands in the rewritten captions of the whole run, and drop the captions that hold a rare
one (CC kept the hypernyms with more than 100 mentions, about 16K of them). Pure functions; the
Beam pass is ``pipeline/concept_cut.py``.

A mention is an entity whose hypernym is left in the rewrite (``kept``): "Harrison Ford and
Calista Flockhart" -> "actors" is two mentions of actor; the places of a dropped "in Balakot,
Pakistan" are none.
"""

from __future__ import annotations

from collections import Counter
from typing import Iterable

RARE_REASON = "rare_concept"


def mentions(entities: Iterable[dict] | None) -> list[str]:
    """The concepts a caption mentions, once per mention, from its entity rows."""
    return [entity["hypernym"] for entity in entities or () if entity.get("kept") and entity.get("hypernym")]


def concept_counts(entity_lists: Iterable[Iterable[dict] | None]) -> Counter:
    counts: Counter = Counter()
    for entities in entity_lists:
        counts.update(mentions(entities))
    return counts


def check_concepts(entities: Iterable[dict] | None, counts: dict[str, int],
                   min_mentions: int) -> tuple[str, str] | None:
    """(reason, detail) when a concept of the caption has fewer than ``min_mentions`` in the run."""
    rare = sorted({concept for concept in mentions(entities) if counts.get(concept, 0) < min_mentions})
    if not rare:
        return None
    detail = ", ".join(f"{concept}: {counts.get(concept, 0)}" for concept in rare)
    return RARE_REASON, f"{detail} mention(s), fewer than {min_mentions}"
