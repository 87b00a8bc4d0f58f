"""Hypernymization inside a shard, after CLIP: each sample's caption rewritten as Conceptual
Captions did, with its entities; a caption the rules reject becomes a ``hypernymize`` reject.
Beam-free, like ``clip_step``."""

from __future__ import annotations

import dataclasses

from filters.record import HYPERNYMIZE, is_rejected, reject
from hypernymize.loading import load_hypernymizer
from pipeline.config import HypernymizeConfig


class HypernymizeStep:
    def __init__(self, settings: HypernymizeConfig):
        self.hypernymizer = load_hypernymizer(kb=settings.kb, min_population=settings.min_population,
                                              mode=settings.mode, style=settings.style,
                                              min_words=settings.min_words,
                                              reject_unresolved=settings.reject_unresolved,
                                              spacy_model=settings.spacy_model)

    def __call__(self, outcome: dict) -> dict:
        if is_rejected(outcome):
            return outcome
        result = self.hypernymizer.rewrite(outcome.get("caption") or "")
        outcome["caption_hypernymized"] = result.rewritten
        outcome["entities"] = [dataclasses.asdict(entity) for entity in result.entities]
        if result.rejected:
            unknown = [e.text for e in result.entities if e.type == "unknown"]
            detail = ", ".join(unknown) if unknown else f"left: {result.rewritten!r}"
            return reject(outcome, HYPERNYMIZE, result.reason, detail)
        return outcome
