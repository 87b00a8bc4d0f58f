"""Hypernymization inside a shard, after CLIP: each sample's caption rewritten as Conceptual
Captions did, with its entities; a caption the rules reject becomes a ``hypernymize`` reject.
With a spaCy tagger, captions are tagged a batch at a time. Beam-free; the knowledge sources load
only when the step is built."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from filters.record import is_rejected, reject
from hypernymize.config import HypernymizeConfig
from hypernymize.rewriter import TOO_FEW_WORDS, UNRESOLVED
from hypernymize.spacy_tagger import resolve_spacy_model
from pipeline.shard_step import ShardStep


class HypernymizeStep(ShardStep):
    stage = "hypernymize"
    reasons = (UNRESOLVED, TOO_FEW_WORDS)
    settings: ClassVar[dict] = {"hypernymize": HypernymizeConfig}
    batch_size = 64  # captions the spaCy tagger takes at a time

    @classmethod
    def enabled(cls, config) -> bool:
        return config.hypernymize.enabled

    @classmethod
    def preflight(cls, config) -> None:
        from hypernymize.spacy_tagger import load_spacy_tagger
        from hypernymize.wikidata_kb import WikidataKb
        from hypernymize.wordnet_source import instance_table

        settings = config.hypernymize
        instance_table()  # compiled once here (~10 s the first time), not by every local worker at once
        if settings.kb:
            WikidataKb(settings.kb)  # an unusable KB fails here, not in every worker
        if settings.spacy_model not in ("auto", "off"):
            load_spacy_tagger(settings.spacy_model)  # so does a model that will not load

    @classmethod
    def resolved(cls, config) -> dict[str, str]:
        return {"hypernymize.spacy_model": resolve_spacy_model(config.hypernymize.spacy_model)}

    def __init__(self, hypernymize: HypernymizeConfig):
        from hypernymize.loading import load_hypernymizer

        self.hypernymizer = load_hypernymizer(
            kb=hypernymize.kb, min_population=hypernymize.min_population, mode=hypernymize.mode,
            style=hypernymize.style, min_words=hypernymize.min_words,
            reject_unresolved=hypernymize.reject_unresolved, drop_counts=hypernymize.drop_counts,
            spacy_model=hypernymize.spacy_model)
        tagger = self.hypernymizer.tagger
        self.info = {"spacy_model": tagger.description if tagger else resolve_spacy_model(hypernymize.spacy_model)}

    def __call__(self, outcomes: list[dict]) -> list[dict]:
        live = [outcome for outcome in outcomes if not is_rejected(outcome)]
        tagger = self.hypernymizer.tagger
        tags = tagger.tag_many([outcome.get("caption") or "" for outcome in live]) if tagger else [None] * len(live)
        found = dict(zip(map(id, live), tags))
        return [outcome if is_rejected(outcome) else self.rewrite(outcome, found[id(outcome)]) for outcome in outcomes]

    def rewrite(self, outcome: dict, tags=None) -> dict:
        result = self.hypernymizer.rewrite(outcome.get("caption") or "", tags)
        outcome["caption_hypernymized"] = result.rewritten
        outcome["entities"] = [dataclasses.asdict(entity) for entity in result.entities]
        if result.rejected:
            unknown = [e.text for e in result.entities if e.type == "unknown"]
            detail = ", ".join(unknown) if unknown else f"left: {result.rewritten!r}"
            return reject(outcome, self.stage, result.reason, detail)
        return outcome
