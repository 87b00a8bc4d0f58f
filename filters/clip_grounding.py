"""Conceptual Captions' step 3, image-label grounding, with CLIP zero-shot labels in place of the
Google Cloud Vision labels the paper used (Sharma et al. 2018, section 3): each image gets its
top-k labels from a noun vocabulary, and the pair is kept only when a caption word, reduced to
its noun lemma (dogs -> dog, children -> child), is one of them.

The default vocabulary is the 1,000 most frequent WordNet nouns whose main sense a photo can
show (``lexicons.picturable_nouns``); a file with one label per line replaces it.
"""

from __future__ import annotations

import re
from typing import Sequence

import numpy as np

from filters.lexicons import noun_lemmas, picturable_nouns

REASON = "ungrounded"
CLASS_REASON = "class_not_visible"  # a synthetic image whose class is not among its labels
PROMPT = "a photo of a {}."
WORD = re.compile(r"[^\W\d_]+")


class GroundingError(ValueError):
    """The label vocabulary is unusable."""


def label_vocabulary(path: str | None, size: int) -> list[str]:
    """Labels from ``path`` (one per line, '#' comments) or the default noun list of ``size``."""
    if path is None:
        return list(picturable_nouns(size))
    try:
        with open(path, encoding="utf-8") as handle:
            labels = [line.strip().lower() for line in handle]
    except OSError as err:
        raise GroundingError(f"cannot read the grounding vocabulary {path}: {err.strerror}") from err
    labels = list(dict.fromkeys(label for label in labels if label and not label.startswith("#")))
    if not labels:
        raise GroundingError(f"the grounding vocabulary {path} has no labels")
    return labels


def base_form(word: str, lemmas: dict[str, str]) -> str:
    word = word.lower()
    return lemmas.get(word, word)


def caption_words(caption: str, lemmas: dict[str, str]) -> set[str]:
    """The caption's words as noun lemmas."""
    return {base_form(word, lemmas) for word in WORD.findall(caption)}


def top_labels(image_embeddings: np.ndarray, label_embeddings: np.ndarray, labels: Sequence[str],
               k: int) -> list[list[str]]:
    """Each image's ``k`` best labels, best first, by cosine of unit-length embeddings."""
    similarity = image_embeddings.astype(np.float32) @ label_embeddings.astype(np.float32).T
    k = min(k, len(labels))
    best = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
    order = np.take_along_axis(similarity, best, axis=1).argsort(axis=1)[:, ::-1]
    return [[labels[i] for i in row] for row in np.take_along_axis(best, order, axis=1)]


def check_grounding(caption: str, labels: Sequence[str], lemmas: dict[str, str]) -> tuple[str, str] | None:
    """``None`` when a caption word is one of ``labels`` (a label of several words must appear
    whole), else (reason, detail)."""
    words = caption_words(caption, lemmas)
    for label in labels:
        parts = [base_form(part, lemmas) for part in label.split()]
        if all(part in words for part in parts):
            return None
    return REASON, "no caption word among the image's labels: " + ", ".join(labels)


class Grounder:
    """Labels images and judges captions; label embeddings are computed once."""

    def __init__(self, embed_texts, labels: list[str], top_k: int):
        self.labels = labels
        self.top_k = top_k
        self.label_embeddings = embed_texts([PROMPT.format(label) for label in labels])
        self.lemmas = noun_lemmas()

    def label(self, image_embeddings: np.ndarray) -> list[list[str]]:
        return top_labels(image_embeddings, self.label_embeddings, self.labels, self.top_k)

    def check(self, caption: str, labels: Sequence[str]) -> tuple[str, str] | None:
        return check_grounding(caption, labels, self.lemmas)


def check_class(label: str, labels: Sequence[str]) -> tuple[str, str] | None:
    """A synthetic sample's zero-shot check: ``None`` when the class its prompt asked for is one of
    the image's top labels (the vocabulary is the run's classes: ``altcap synth``), else (reason, detail)."""
    if label.lower() in labels:
        return None
    return CLASS_REASON, f"{label} not among the image's labels: " + ", ".join(labels)
