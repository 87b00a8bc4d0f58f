"""The whole text stage for a batch of alt-texts: clean, identify the language, apply the rules."""

from __future__ import annotations

import contextlib
import gc
from dataclasses import dataclass

from filters.langid import LanguageIdentifier, model_path
from filters.text_clean import clean_with_tokens, is_url_only
from filters.text_rules import TextRules
from filters.text_settings import TextRuleSettings


@contextlib.contextmanager
def _collector_paused():
    """Checking a batch makes ~10 small objects per caption and no reference cycles; CPython's
    cycle collector, run every 700 allocations, cost ~10% of the stage. Reference counting
    frees everything as usual; the collector runs again after the batch."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@dataclass(slots=True)
class TextVerdict:
    caption: str  # cleaned
    lang: str | None
    lang_score: float | None
    reason: str | None = None  # None: passed
    detail: str = ""

    @property
    def passed(self) -> bool:
        return self.reason is None


class TextFilter:
    """Cleaning, ``TextRules`` and fastText language ID (whatever the preset: every caption that
    passes the rules on form gets ``lang`` and ``lang_score``)."""

    def __init__(self, settings: TextRuleSettings, lang_model: str = "auto"):
        self.settings = settings
        self.rules = TextRules(settings)
        self.lid = LanguageIdentifier(model_path(lang_model))

    def check_batch(self, texts: list[str]) -> list[TextVerdict]:
        """One verdict per text. Language ID runs on the captions that pass the rules on form: a
        text rejected as a file name or keyword list has no ``lang``."""
        with _collector_paused():
            return self._check_batch(texts)

    def _check_batch(self, texts: list[str]) -> list[TextVerdict]:
        # Each caption goes through every rule but the language while its pieces are in the CPU's
        # cache; then fastText runs once for the batch, its own tables in cache (between
        # captions, any other work doubled the time of a fastText call). The language is judged
        # before the word rules' verdict, so the reason is the same as in ``TextRules.check``.
        verdicts: list[TextVerdict] = []
        waiting = []  # (verdict, word rules' failure) of the captions that pass the rules on form
        for raw in texts:
            raw = raw or ""
            caption, tokens = clean_with_tokens(raw)
            verdict = TextVerdict(caption, None, None)
            verdicts.append(verdict)
            if not caption and raw.strip():  # cleaning removed everything
                verdict.reason = "url_only" if is_url_only(raw) else "boilerplate"
                verdict.detail = raw.strip()[:80]
                continue
            failure, prepared = self.rules.check_form(caption, tokens)
            if failure:
                verdict.reason, verdict.detail = failure
            else:
                waiting.append((verdict, self.rules.check_words(prepared)))
        languages = self.lid.predict([verdict.caption for verdict, _ in waiting])
        for (verdict, word_failure), (lang, score) in zip(waiting, languages):
            verdict.lang, verdict.lang_score = lang, score
            failure = self.rules.check_language(lang, score) or word_failure
            if failure:
                verdict.reason, verdict.detail = failure
        return verdicts

    def check(self, text: str) -> TextVerdict:
        return self.check_batch([text])[0]
