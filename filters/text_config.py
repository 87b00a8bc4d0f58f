"""Settings of the text stage (``text``): a preset of rules (``filters.text_presets``) whose every
rule setting can be overridden, the language model, and the run-wide repeat cut."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

from filters.settings import ConfigError, require
from filters.text_presets import DEFAULT_PRESET, PRESETS, preset
from filters.text_settings import TextRuleSettings

RULE_FIELDS = tuple(f.name for f in dataclasses.fields(TextRuleSettings))


@dataclass
class TextConfig:
    CHOICES: ClassVar[dict] = {"preset": set(PRESETS)}

    preset: str = DEFAULT_PRESET  # cc3m|cc12m|laion|datacomp-basic
    lang_model: str = "auto"  # path to fastText's lid.176.ftz; auto: installed copy, cache, download
    max_repeats: int = 10  # a caption used for more distinct image URLs than this is dropped (COYO); 0: off
    batch_size: int = 4096  # captions per text-filter call; fastText runs once per batch (4096: ~6% faster than 1024)
    # Rule settings: null keeps the preset's value (see filters/text_rules.py for each one).
    min_chars: int | None = None
    max_chars: int | None = None
    min_words: int | None = None
    max_words: int | None = None
    markup: bool | None = None
    file_names: bool | None = None
    max_hashtags: int | None = None
    seo: bool | None = None
    max_word_repetition: float | None = None
    min_unique_words: float | None = None
    all_caps: bool | None = None
    max_capitalized: float | None = None
    first_word_capitalized: bool | None = None
    profanity: bool | None = None
    profanity_lists: list | None = None
    profanity_allow: list | None = None
    required_words: list | None = None
    max_noun_ratio: float | None = None
    min_word_zipf: float | None = None
    rare_words_per_8: int | None = None
    languages: list | None = None
    min_lang_score: float | None = None

    def rules(self) -> TextRuleSettings:
        """The preset's rules with this section's non-null settings applied."""
        changes = {}
        for name in RULE_FIELDS:
            value = getattr(self, name)
            if value is not None:
                changes[name] = tuple(value) if isinstance(value, list) else value
        return preset(self.preset).replace(**changes)

    def check(self) -> None:
        require(self.max_repeats >= 0 and self.batch_size > 0,
                "text.max_repeats must be >= 0 and text.batch_size > 0")
        rules = self.rules()
        if rules.problems():
            raise ConfigError("; ".join(f"text.{problem}" for problem in rules.problems()))
        for name in ("min_chars", "max_chars", "min_words", "max_words", "max_hashtags"):
            require((getattr(rules, name) or 0) >= 0, f"text.{name} must be >= 0")
        for name in ("max_word_repetition", "min_unique_words", "max_capitalized", "max_noun_ratio",
                     "min_lang_score"):
            require(0 <= (getattr(rules, name) or 0) <= 1, f"text.{name} is a share: 0..1")
