"""CLIP scoring inside a shard, after the image rules: scores, embeddings and the cut for a batch
of outcomes. Rejects pass through; order is kept. Beam-free, like ``sample_steps``.

Without weights (offline, no file) the model is random: the step says so once, scores for the
format's sake and drops nothing.
"""

from __future__ import annotations

import logging

import numpy as np

from filters.clip_grounding import Grounder, label_vocabulary
from filters.clip_model import ClipSpec, load_clip
from filters.clip_rules import check_clip_score, default_min_score
from filters.clip_score import ClipScorer
from filters.record import CLIP, is_rejected, reject, sample_batches
from pipeline.config import ClipConfig

log = logging.getLogger("altcap")
EMBEDDINGS = "clip_embeddings"  # record field: (image, text) float16 vectors of a kept sample


def clip_spec(clip: ClipConfig) -> ClipSpec:
    return ClipSpec(clip.model, clip.pretrained, clip.device, clip.precision)


class ClipStep:
    def __init__(self, clip: ClipConfig):
        loaded = load_clip(clip_spec(clip))
        self.scorer = ClipScorer(loaded, clip.batch_size, clip.decoder)
        self.batch_size = clip.batch_size
        filtering = loaded.weights is not None
        min_score = clip.min_score if clip.min_score is not None else default_min_score(clip.model, clip.pretrained)
        self.min_score = min_score if filtering else None
        self.info = {"model": clip.model, "pretrained": clip.pretrained, "weights": loaded.weights,
                     "device": str(loaded.device), "precision": loaded.precision,
                     "decoder": self.scorer.batcher.decoder,
                     "min_score": self.min_score, "filtering": filtering, "problem": loaded.problem}
        self.grounder = None
        if clip.grounding:
            labels = label_vocabulary(clip.grounding_vocabulary, clip.grounding_vocabulary_size)
            self.grounder = Grounder(self.scorer.embed_texts, labels, clip.grounding_top_k)
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
            failure = check_clip_score(record["clip_score"], self.min_score)
            if labels is not None:
                record["clip_labels"] = labels[n]
                if not failure and self.info["filtering"]:  # random labels drop nothing
                    failure = self.grounder.check(record.get("caption") or "", labels[n])
            if failure:
                outcomes[i] = reject(record, CLIP, *failure)
            else:
                record[EMBEDDINGS] = (image_vectors[n], text_vectors[n])
        return outcomes


def scored(outcomes, step: ClipStep | None):
    """The outcomes in their order, samples scored by ``step`` in batches of its size."""
    if step is None:
        yield from outcomes
        return
    for batch in sample_batches(outcomes, step.batch_size):
        yield from step(batch)
