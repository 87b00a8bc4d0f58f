"""Hypernymization inside a shard, after CLIP: each sample's caption rewritten as Conceptual
Captions did, with its entities; a caption the rules reject becomes a ``hypernymize`` reject.
With a spaCy tagger, captions are tagged a batch at a time. Beam-free, like ``clip_step``."""

from __future__ import annotations

import dataclasses
from typing import Iterable, Iterator

from filters.record import HYPERNYMIZE, is_rejected, reject, sample_batches
from hypernymize.loading import load_hypernymizer
from pipeline.config import HypernymizeConfig

TAG_BATCH = 64


class HypernymizeStep:
    """Outcomes in, outcomes out (in order)."""

    def __init__(self, settings: HypernymizeConfig):
        self.hypernymizer = load_hypernymizer(kb=settings.kb, min_population=settings.min_population,
                                              mode=settings.mode, style=settings.style,
                                              min_words=settings.min_words,
                                              reject_unresolved=settings.reject_unresolved,
                                              spacy_model=settings.spacy_model)

    def __call__(self, outcomes: Iterable[dict]) -> Iterator[dict]:
        tagger = self.hypernymizer.tagger
        if tagger is None:
            yield from map(self.rewrite, outcomes)
            return
        for batch in sample_batches(outcomes, TAG_BATCH):
            live = [outcome for outcome in batch if not is_rejected(outcome)]
            tags = dict(zip(map(id, live), tagger.tag_many([outcome.get("caption") or "" for outcome in live])))
            yield from (self.rewrite(outcome, tags.get(id(outcome))) for outcome in batch)

    def rewrite(self, outcome: dict, tags=None) -> dict:
        if is_rejected(outcome):
            return outcome
        result = self.hypernymizer.rewrite(outcome.get("caption") or "", tags)
        outcome["caption_hypernymized"] = result.rewritten
        outcome["entities"] = [dataclasses.asdict(entity) for entity in result.entities]
        if result.rejected:
            unknown = [e.text for e in result.entities if e.type == "unknown"]
            detail = ", ".join(unknown) if unknown else f"left: {result.rewritten!r}"
            return reject(outcome, HYPERNYMIZE, result.reason, detail)
        return outcome
