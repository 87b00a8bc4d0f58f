"""Image-label grounding as pure functions: the default label vocabulary, noun lemmas for the
caption words, zero-shot top-k labels, and the keep/drop decision."""

from __future__ import annotations

import numpy as np
import pytest

from filters.clip_grounding import (
    REASON,
    GroundingError,
    caption_words,
    check_grounding,
    label_vocabulary,
    top_labels,
)
from filters.lexicons import noun_lemmas, picturable_nouns


def test_the_default_vocabulary_is_common_things_a_photo_can_show():
    labels = picturable_nouns(1000)
    assert len(labels) == len(set(labels)) == 1000
    for thing in ("dog", "car", "woman", "house", "tree", "water", "bicycle", "banana"):
        assert thing in labels
    for not_a_label in ("london", "paris", "david", "love", "idea", "the", "quickly", "beautiful"):
        assert not_a_label not in labels  # names, abstractions, function words, other parts of speech
    assert labels.index("car") < labels.index("bicycle")  # by frequency
    assert picturable_nouns(10) == labels[:10]


def test_noun_lemmas_reduce_plurals_and_irregular_forms():
    lemmas = noun_lemmas()
    assert (lemmas["dogs"], lemmas["children"], lemmas["mice"], lemmas["cities"]) == ("dog", "child", "mouse", "city")
    assert "glass" not in lemmas  # a lemma is never cut down ("glas")
    words = caption_words("Two Dogs and 3 children, with mice!", lemmas)
    assert words == {"two", "dog", "and", "child", "with", "mouse"}


def test_top_labels_are_the_nearest_labels_best_first():
    labels = ["dog", "cat", "car", "tree"]
    label_vectors = np.eye(4, dtype=np.float32)
    images = np.array([[0.1, 0.7, 0.0, 0.6], [0.9, 0.0, 0.4, 0.1]], np.float32)
    assert top_labels(images, label_vectors, labels, 2) == [["cat", "tree"], ["dog", "car"]]
    assert top_labels(images, label_vectors, labels, 9)[1] == ["dog", "car", "tree", "cat"]


def test_a_pair_is_kept_when_a_caption_word_is_a_label():
    lemmas = noun_lemmas()
    assert check_grounding("Two dogs playing in the park", ["grass", "dog"], lemmas) is None
    assert check_grounding("a bowl of ice cream", ["ice cream", "bowl"], lemmas) is None
    assert check_grounding("cream cheese", ["ice cream"], lemmas)[0] == REASON  # every word of a label
    reason, detail = check_grounding("a puppy on a sofa", ["dog", "couch"], lemmas)
    assert reason == REASON and detail.endswith("dog, couch")


def test_a_vocabulary_file_replaces_the_default(tmp_path):
    path = tmp_path / "labels.txt"
    path.write_text("# my labels\nDog\n\ncat\ndog\nice cream\n")
    assert label_vocabulary(str(path), 1000) == ["dog", "cat", "ice cream"]
    assert label_vocabulary(None, 5) == list(picturable_nouns(5))
    (tmp_path / "empty.txt").write_text("# nothing\n")
    with pytest.raises(GroundingError, match="has no labels"):
        label_vocabulary(str(tmp_path / "empty.txt"), 10)
    with pytest.raises(GroundingError, match="cannot read"):
        label_vocabulary(str(tmp_path / "missing.txt"), 10)
