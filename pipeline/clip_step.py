"""CLIP scoring inside a shard, after the image step: scores, embeddings and the cut for a batch
of outcomes. Rejects pass through; order is kept. Beam-free; torch and open_clip load only when
the step is built.

Without weights (offline, no file) the model is random: the step says so once, scores for the
format's sake and drops nothing.
"""

from __future__ import annotations

import logging
from typing import ClassVar

import numpy as np

from dataset.layout import EMBEDDINGS
from filters import clip_grounding, clip_rules
from filters.clip_config import ClipConfig
from filters.record import is_rejected, reject
from pipeline.shard_step import ShardStep

log = logging.getLogger("altcap")

RANDOM_WEIGHTS = "clip_random_weights"  # set on the samples a model without weights embedded (not written)


class ClipStep(ShardStep):
    stage = "clip"
    reasons = (clip_rules.REASON, clip_grounding.REASON, clip_grounding.CLASS_REASON)
    settings: ClassVar[dict] = {"clip": ClipConfig}
    side_file = EMBEDDINGS

    @classmethod
    def enabled(cls, config) -> bool:
        return config.clip.enabled

    @classmethod
    def preflight(cls, config) -> None:
        from filters.clip_model import check_clip_model, load_clip

        if check_clip_model(config.clip)[1] == "auto":  # a wrong name fails here, not in every worker
            load_clip(config.clip)  # measures which precision is fastest here, once: the workers find it cached
        if config.clip.grounding:
            clip_grounding.label_vocabulary(config.clip.grounding_vocabulary, config.clip.grounding_vocabulary_size)

    def __init__(self, clip: ClipConfig):
        from filters.clip_model import load_clip
        from filters.clip_score import ClipScorer

        loaded = load_clip(clip)
        self.scorer = ClipScorer(loaded, clip.batch_size, clip.decoder)
        self.batch_size = clip.batch_size
        filtering = loaded.weights is not None
        min_score = clip.min_score
        if min_score is None:
            min_score = clip_rules.default_min_score(clip.model, clip.pretrained)
        self.min_score = min_score if filtering else None
        self.info = {"model": clip.model, "pretrained": clip.pretrained, "weights": loaded.weights,
                     "device": str(loaded.device), "precision": loaded.precision,
                     "decoder": self.scorer.batcher.decoder,
                     "min_score": self.min_score, "filtering": filtering, "problem": loaded.problem}
        self.grounder = None
        if clip.grounding:
            labels = clip_grounding.label_vocabulary(clip.grounding_vocabulary, clip.grounding_vocabulary_size)
            self.grounder = clip_grounding.Grounder(self.scorer.embed_texts, labels, clip.grounding_top_k)
            self.info["grounding"] = {"labels": len(labels), "top_k": clip.grounding_top_k,
                                      "vocabulary": clip.grounding_vocabulary or "wordnet"}
        if not filtering:
            log.warning("CLIP %s has no weights (%s): scores are random and nothing is dropped",
                        clip.model, loaded.problem)

    def __call__(self, outcomes: list[dict]) -> list[dict]:
        """``outcomes`` with every sample scored (and labelled, when grounding): kept ones gain
        ``clip_score`` and embeddings, the others become ``clip`` rejects."""
        at = [i for i, outcome in enumerate(outcomes) if not is_rejected(outcome)]
        if not at:
            return outcomes
        found = self.scorer.score_encoded([outcomes[i]["image_bytes"] for i in at],
                                          [outcomes[i].get("caption") or "" for i in at])
        image_vectors = found.image_embeddings.astype(np.float16)
        text_vectors = found.text_embeddings.astype(np.float16)
        labels = self.grounder.label(found.image_embeddings) if self.grounder else None
        for n, i in enumerate(at):
            record = outcomes[i]
            record["clip_score"] = float(found.scores[n])
            failure = clip_rules.check_clip_score(record["clip_score"], self.min_score)
            if labels is not None:
                record["clip_labels"] = labels[n]
                if not failure and self.info["filtering"]:  # random labels drop nothing
                    failure = (clip_grounding.check_class(record["label"], labels[n]) if record.get("label")
                               else self.grounder.check(record.get("caption") or "", labels[n]))
            if failure:
                outcomes[i] = reject(record, self.stage, *failure)
            else:
                record[EMBEDDINGS.field] = (image_vectors[n], text_vectors[n])
                if not self.info["filtering"]:
                    record[RANDOM_WEIGHTS] = True
        return outcomes
