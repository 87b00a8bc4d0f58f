"""Which caption rules run and their thresholds: ``TextRuleSettings``. The rules themselves are
in ``text_rules``; ``text_presets`` holds the published recipes."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from filters import lexicons

REQUIRED_WORDS = ("noun", "determiner", "preposition", "linking_word")


@dataclass(frozen=True)
class TextRuleSettings:
    """Every rule's switch and threshold. ``None`` or ``False`` switches a rule off."""

    min_chars: int | None = None  # shortest caption in characters
    max_chars: int | None = None
    min_words: int | None = None  # words are whitespace-separated
    max_words: int | None = None
    markup: bool = False  # HTML that cleaning left: href=, class="x", </a, <img cut off at the end
    file_names: bool = False  # IMG_2345.jpg, DSC0001, featured-1, 1, screenshot-2020-...
    max_hashtags: int | None = None  # more #hashtags than this fail
    seo: bool = False  # keyword lists: many short separated segments, one keyword many times
    max_word_repetition: float | None = None  # share of repeated content words (CC12M: 0.2)
    min_unique_words: float | None = None  # distinct words / words, for captions of 5+ words
    all_caps: bool = False  # SHOUTED TEXT
    max_capitalized: float | None = None  # share of Capitalised words, for 5+ words (title lists)
    first_word_capitalized: bool = False  # CC 2018 required it; CC's own captions are lower case
    profanity: bool = False
    profanity_lists: tuple = ("banned_words", "banned_subwords")  # datatrove's lists
    profanity_allow: tuple = ()  # entries of those lists with an innocent sense to let through
    # Words a caption must have (Conceptual Captions' linguistic rule): any of "noun", "determiner",
    # "preposition", "linking_word" (a determiner, preposition, conjunction or verb: more than a
    # list of nouns and adjectives). CC 2018: noun, determiner, preposition.
    required_words: tuple = ()
    max_noun_ratio: float | None = None  # share of nouns among words, for 5+ words (CC 2018)
    min_word_zipf: float | None = None  # every word at least this frequent in wordfreq (Zipf)
    rare_words_per_8: int = 0  # rare words let through per 8 words (typos in long human captions)
    languages: tuple = ()  # fastText language codes that pass; empty: any
    min_lang_score: float = 0.0

    def problems(self) -> list[str]:
        """What is wrong with these settings, one line per problem; empty when none."""
        found = []
        for name, value, known in (("required_words", self.required_words, REQUIRED_WORDS),
                                   ("profanity_lists", self.profanity_lists, lexicons.PROFANITY_LISTS)):
            unknown = set(value) - set(known)
            if unknown:
                found.append(f"{name}: unknown {', '.join(sorted(unknown))} (known: {', '.join(known)})")
        return found

    def replace(self, **changes) -> TextRuleSettings:
        return dataclasses.replace(self, **changes)
