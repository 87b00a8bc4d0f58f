"""Caption rules: each has a name, its settings, and a reason it gives when a caption fails.

``TextRules(settings).check(caption, language)`` returns ``None`` for a caption that passes, else
``(reason, detail)`` for the first rule it fails. Rules on the caption's form run first, then the
language, then the rules that look words up, so a file name fails as ``file_name``, not as
``language`` or ``rare_word``. Which rules run and their thresholds are a ``TextRuleSettings``;
``text_presets`` holds the published recipes. Rules lean on set operations and compiled regular
expressions: the whole stage has a budget of ~20 microseconds per caption.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from functools import partial, reduce
from itertools import repeat
from operator import and_, or_
from typing import Any, Callable

from filters import lexicons
from filters.english import (
    ARTICLES,
    CONJUNCTIONS,
    DETERMINERS,
    FUNCTION_WORDS,
    PREPOSITIONS,
    cased_letter_tokens,
    letter_tokens,
)
from filters.text_clean import HTML_TAGS, drop_phrase, is_url_only
from filters.text_settings import TextRuleSettings


class _Caption:
    """One caption cut up once for every rule."""

    __slots__ = ("text", "lowered", "words", "tokens", "_content", "_distinct", "_firsts", "flags", "kinds")

    def __init__(self, text: str, tokens: list[str] | None = None):
        self.text = text
        self.lowered = text.lower()
        self.words = text.split()
        self.tokens = letter_tokens(self.lowered) if tokens is None else tokens  # lower-case letter runs
        self._content: list[str] | None = None
        self._distinct = 0
        self._firsts: str | None = None
        self.flags: list[int] | tuple = ()  # per token, its lexicon bits (set before the word rules)
        self.kinds = 0  # the union of flags

    def look_up(self, lexicon: dict[str, int]) -> None:
        """Each token's bits in ``lexicon``: one lookup per token serves every word rule."""
        self.flags = list(map(lexicon.get, self.tokens, repeat(0)))
        self.kinds = reduce(or_, self.flags, 0)

    @property
    def firsts(self) -> str:
        """The first character of every word."""
        firsts = self._firsts
        if firsts is None:
            firsts = self._firsts = "".join([w[0] for w in self.words])
        return firsts

    @property
    def content(self) -> list[str]:
        """Content words (not function words, not single letters), plurals folded."""
        content = self._content
        if content is None:
            content = self._content = [t[:-1] if t[-1] == "s" else t for t in self.tokens
                                       if len(t) > 1 and t not in FUNCTION_WORDS]
            self._distinct = len(set(content))
        return content

    @property
    def distinct_content(self) -> int:
        """How many different content words."""
        if self._content is None:
            _ = self.content  # counts them too
        return self._distinct


_MEDIA_EXT = re.compile(r"\.(?:jpe?g|png|gif|webp|bmp|tiff?|heic|heif|svg|avif|ico|jfif)\b", re.IGNORECASE)
_CAMERA = re.compile(
    r"(?:img|dsc[nf]?|dcim|pict?|mvimg|pxl|gopr|gh0?|sam|cimg|imag|dji|wp|vid|p|_mg|image|photo|pic|"
    r"picture|scan|untitled(?: design)?|capture|unnamed|download|file|auto draft)"
    r"[\s_\-.]*\(?\d+\)?(?:[\s_\-.]\S*)?"
    r"|screen ?shot[\s_\-]*(?:\(?\d+\)?|\d{4}\D\d\d\D\d\d.*)", re.IGNORECASE)
_SLUG = re.compile(r"[^\W_]+(?:[-_.][^\W_]*)+")  # no spaces: featured-1, my_photo_final
# What is left of HTML once cleaning took the complete tags out: a closing tag's start ("</a"), a
# tag cut off at the end ("<img", "<img src"), an attribute ("href=", 'class="').
_MARKUP = re.compile(
    rf"</[A-Za-z][\w-]*|<(?:{HTML_TAGS})(?:\s+[\w:-]+)*\s*/?$"
    r"|(?<![\w-])(?:href|src|srcset|class|style|alt|title|target|rel|width|height|onclick)\s*="
    r"|(?<![\w-])[A-Za-z][\w:-]*=[\"']",
    re.IGNORECASE)
_HASHTAG = re.compile(r"(?:^|\s)#[^\W\d_]")
_DIGIT = re.compile(r"\d")
_DIGITS = b"0123456789"
_ASCII_UPPER = bytes(range(ord("A"), ord("Z") + 1))
_SEO_SPLIT = re.compile(r"\s*(?:[|,;/•·»>~+]|\s[-–—]\s)\s*")
_SEO_SEPARATOR = re.compile(r"[|,;/•·»>~+–—]")  # and " - "
_ASCII_SEO_SEPARATORS = b"|,;/>~+"


# What the word rules need to know about a word, as bits of its entry in one lexicon dict: a
# single lookup per token instead of one per rule and word list (the lists are large enough that
# each lookup misses the CPU cache). NOT_NOUN is bit 0 so that summing ``flag & NOT_NOUN`` counts.
NOT_NOUN, KNOWN, NOUN, VERB, DETERMINER, PREPOSITION, LINKING, BAD_WORD, BAD_PHRASE_START = (
    1 << bit for bit in range(9))


@functools.lru_cache(maxsize=8)
def _lexicon(min_zipf: float | None, linguistic: bool, bad_words: frozenset, bad_phrase_starts: frozenset
             ) -> dict[str, int]:
    """word -> bits, for the word rules that are on (shared by rules with the same word lists)."""
    lexicon = dict.fromkeys(lexicons.known_words(min_zipf), KNOWN) if min_zipf is not None else {}

    def mark(words, bit: int) -> None:
        for word in words:
            lexicon[word] = lexicon.get(word, 0) | bit

    if linguistic:
        nouns, mostly_verbs, mostly_not_nouns = lexicons.word_classes()
        mark((w for w in nouns if w not in FUNCTION_WORDS), NOUN)
        mark((w for w in mostly_verbs if w not in FUNCTION_WORDS), VERB | LINKING)
        mark(FUNCTION_WORDS, NOT_NOUN)
        mark(mostly_not_nouns, NOT_NOUN)
        mark(DETERMINERS, DETERMINER | LINKING)
        mark(PREPOSITIONS, PREPOSITION | LINKING)
        mark(CONJUNCTIONS, LINKING)
    mark(bad_words, BAD_WORD)
    mark(bad_phrase_starts, BAD_PHRASE_START)
    return lexicon


def _ascii_count(text: str, chars: bytes) -> int:
    """How many of ``chars`` the ASCII ``text`` holds (bytes.translate counts fastest)."""
    return len(text) - len(text.encode().translate(None, chars))


def _count(text: str, ascii_chars: bytes, pattern: re.Pattern) -> int:
    """Matches of the one-character ``pattern``, counted as ``ascii_chars`` in ASCII text."""
    return _ascii_count(text, ascii_chars) if text.isascii() else len(pattern.findall(text))


def _markup(c: _Caption) -> str | None:
    """The first piece of markup; only texts with a '<' or '=' are searched."""
    text = c.text
    if "<" not in text and "=" not in text:
        return None
    found = _MARKUP.search(text)
    return found.group(0) if found else None


def _file_name(c: _Caption) -> str | None:
    text, words = c.text, len(c.words)
    if "." in text and _MEDIA_EXT.search(text) and (words <= 6 or _MEDIA_EXT.search(text[-6:])):
        return "has a file extension"
    if words > 4:
        return None
    if _CAMERA.fullmatch(text):
        return "camera or default file name"
    if words == 1 and _SLUG.fullmatch(text) and (
            any(ch.isdigit() for ch in text) or sum(ch in "-_." for ch in text) >= 2):
        return "a slug"
    if words <= 3 and all(len(t) == 1 for t in c.tokens):
        return "no words"
    return None


# Words of shop and download pages; two of them in a caption without an article mark SEO text.
SEO_WORDS = frozenset(
    "ideas idea design designs photos pictures images wallpaper wallpapers free printable printables "
    "template templates best cheap buy sale wholesale download hd ebay pinterest amazon shipping price "
    "discount online supplier suppliers factory diy inspiration inspirations collection catalog "
    "reviews review clipart png jpg".split())


def _seo(c: _Caption) -> str | None:
    """Keyword lists: 4+ short separated segments with few function words, one keyword making up
    a large share of the words, or shop and download words without any article."""
    tokens, text = c.tokens, c.text
    if _count(text, _ASCII_SEO_SEPARATORS, _SEO_SEPARATOR) + text.count(" - ") >= 3:
        segments = [s for s in _SEO_SPLIT.split(text) if s]
        if len(segments) >= 4 and len(c.words) / len(segments) <= 3 and (
                len(tokens) - len(c.content) < 0.2 * len(tokens)):
            return f"{len(segments)} short segments"
    content = c.content
    if len(content) - c.distinct_content >= 2:
        token, times = Counter(content).most_common(1)[0]
        if times >= 3 and times >= 0.15 * len(tokens):
            return f"{token!r} x{times}"
    if not SEO_WORDS.isdisjoint(tokens) and ARTICLES.isdisjoint(tokens):
        shop = SEO_WORDS.intersection(tokens)
        if len(shop) >= 2:
            return "shop words: " + ", ".join(sorted(shop))
    return None


def word_repetition(c: _Caption) -> float:
    """Share of content words that repeat an earlier one (5+ content words, else 0)."""
    content = c.content
    return 1.0 - c.distinct_content / len(content) if len(content) >= 5 else 0.0


def capitalized_share(firsts: str) -> float:
    """Share of words starting with a capital among words starting with a letter (5+, else 0),
    from the first characters of the words."""
    starts = sum(map(str.isalpha, firsts))
    return sum(map(str.isupper, firsts)) / starts if starts >= 5 else 0.0


def _hashtags(limit: int, c: _Caption) -> str | None:
    found = len(_HASHTAG.findall(c.text)) if "#" in c.text else 0
    return f"{found} hashtags" if found > limit else None


def _title_case(limit: float, c: _Caption) -> str | None:
    if len(c.words) < 5 or c.text.islower():
        return None
    if c.text.isascii() and _ascii_count(c.text, _ASCII_UPPER) <= limit * 5:
        return None  # too few capitals for the share to pass the limit among 5+ words
    share = capitalized_share(c.firsts)
    return f"{share:.2f} of words capitalised" if share > limit else None


def _repetition(limit: float, c: _Caption) -> str | None:
    share = word_repetition(c)
    return f"{share:.2f} repeated" if share > limit else None


def _unique(limit: float, c: _Caption) -> str | None:
    words = c.lowered.split()
    if len(words) < 5:
        return None
    share = len(set(words)) / len(words)
    return f"{share:.2f} unique" if share < limit else None


def _first_word_lowercase(c: _Caption) -> str | None:
    return c.words[0] if c.words and c.words[0][:1].islower() else None


class TextRules:
    """The rules a ``TextRuleSettings`` switches on, ready to check captions."""

    def __init__(self, settings: TextRuleSettings):
        if settings.problems():
            raise ValueError("; ".join(settings.problems()))
        self.settings = settings
        s = settings
        # (reason, function of _Caption returning a detail, a (reason, detail) pair or None):
        # form_checks decide before language ID runs; checks (the ones that look words up) count
        # only for captions whose language passes.
        self.form_checks: list[tuple[str, Callable[[_Caption], Any]]] = []
        self.checks: list[tuple[str, Callable[[_Caption], Any]]] = []
        if s.markup:
            self.form_checks.append(("markup", _markup))
        if s.file_names:
            self.form_checks.append(("file_name", _file_name))
        if any(v is not None for v in (s.min_chars, s.max_chars, s.min_words, s.max_words)):
            self.form_checks.append(("length", self._length))
        if s.max_hashtags is not None:
            self.form_checks.append(("hashtags", partial(_hashtags, s.max_hashtags)))
        if s.all_caps:
            self.form_checks.append(("all_caps", _all_caps))
        if s.first_word_capitalized:
            self.form_checks.append(("first_word_lowercase", _first_word_lowercase))
        if s.max_capitalized is not None:
            self.form_checks.append(("title_case", partial(_title_case, s.max_capitalized)))
        if s.seo:
            self.form_checks.append(("seo_keywords", _seo))
        if s.max_word_repetition is not None:
            self.form_checks.append(("word_repetition", partial(_repetition, s.max_word_repetition)))
        if s.min_unique_words is not None:
            self.form_checks.append(("low_unique_words", partial(_unique, s.min_unique_words)))
        self.digit_terms: re.Pattern[str] | None = None
        self.bad_phrases: dict[str, list[tuple[str, ...]]] = {}
        bad_words: frozenset = frozenset()
        if s.profanity:
            bad_words = self._load_profanity()
            self.checks.append(("profanity", self._profanity))
        linguistic = bool(s.required_words) or s.max_noun_ratio is not None
        if linguistic:
            self.checks.append(("linguistic", self._linguistic))
        if s.min_word_zipf is not None:
            self.checks.append(("rare_word", self._rare))
        self.lexicon = _lexicon(s.min_word_zipf, linguistic, bad_words, frozenset(self.bad_phrases))

    def check(self, caption: str, language: tuple[str | None, float | None] = (None, None)
              ) -> tuple[str, str] | None:
        """``None`` if ``caption`` passes every rule, else (reason, detail) of the first failure.

        ``language`` is the caption's (code, probability) from language ID."""
        failure, prepared = self.check_form(caption)
        return failure or self.check_language(*language) or self.check_words(prepared)

    def check_form(self, caption: str, tokens: list[str] | None = None
                   ) -> tuple[tuple[str, str] | None, _Caption | None]:
        """The rules on the caption's form: (failure or None, the caption cut up for
        ``check_words``). Language ID is only worth running on captions that pass these.
        ``tokens``: the caption's lower-case letter runs, if the caller has them."""
        if not caption:  # only length rules judge an empty caption (img2dataset keeps them)
            return (("empty", "") if self.settings.min_chars or self.settings.min_words else None), None
        c = _Caption(caption, tokens)
        phrase = drop_phrase(caption, c.tokens)
        if phrase:
            return ("boilerplate", phrase), c
        if len(c.words) == 1 and "." in caption and is_url_only(caption):
            return ("url_only", caption), c
        return _first_failure(self.form_checks, c), c

    def check_words(self, c: _Caption | None) -> tuple[str, str] | None:
        """The rules that look words up. A caption that fails ``check_language`` as well fails
        for its language: those rules are English-specific."""
        if c is None or not self.checks:
            return None
        c.look_up(self.lexicon)
        return _first_failure(self.checks, c)

    def check_language(self, lang: str | None, score: float | None) -> tuple[str, str] | None:
        """Language ID's verdict; when it has no evidence (lang None) the other rules judge."""
        s = self.settings
        if lang is None:
            return None
        if s.languages and lang not in s.languages:
            return "language", f"{lang} {score}"
        if s.min_lang_score and (score or 0.0) < s.min_lang_score:
            return "low_language_score", f"{lang} {score}"
        return None

    def _length(self, c: _Caption) -> tuple[str, str] | None:
        s, chars, words = self.settings, len(c.text), len(c.words)
        if s.min_chars is not None and chars < s.min_chars:
            return "too_short", f"{chars} chars"
        if s.max_chars is not None and chars > s.max_chars:
            return "too_long", f"{chars} chars"
        if s.min_words is not None and words < s.min_words:
            return "too_few_words", f"{words} words"
        if s.max_words is not None and words > s.max_words:
            return "too_many_words", f"{words} words"
        return None

    def _load_profanity(self) -> frozenset:
        """The bad single words; phrases and terms with digits are kept on the rules."""
        terms = lexicons.profanity_terms(tuple(self.settings.profanity_lists))
        terms -= {" ".join(t.lower().split()) for t in self.settings.profanity_allow}
        # Terms with digits ("2g1c") cannot match letter runs: a regex looks for them, and only in
        # captions with a digit.
        with_digits = sorted(t for t in terms if _DIGIT.search(t))
        self.digit_terms = re.compile("|".join(rf"\b{re.escape(t)}\b" for t in with_digits)) if with_digits else None
        terms = terms.difference(with_digits)
        for term in terms:
            if " " in term:
                parts = tuple(letter_tokens(term))
                self.bad_phrases.setdefault(parts[0], []).append(parts)
        return frozenset(t for t in terms if " " not in t)

    def _profanity(self, c: _Caption) -> str | None:
        tokens = c.tokens
        if c.kinds & BAD_WORD:
            return min(t for t, bits in zip(tokens, c.flags) if bits & BAD_WORD)
        if self.digit_terms is not None and _count(c.text, _DIGITS, _DIGIT):
            found = self.digit_terms.search(" ".join(c.lowered.split()))
            if found:
                return found.group(0)
        if not c.kinds & BAD_PHRASE_START:
            return None
        for i, token in enumerate(tokens):
            for phrase in self.bad_phrases.get(token, ()):
                if tuple(tokens[i:i + len(phrase)]) == phrase:
                    return " ".join(phrase)
        return None

    def _linguistic(self, c: _Caption):
        s = self.settings
        tokens, kinds = c.tokens, c.kinds
        required = s.required_words
        if required:
            determiner = kinds & DETERMINER or _has_number(c.firsts)
            if "determiner" in required and not determiner:
                return "no_determiner", ""
            if "preposition" in required and not kinds & PREPOSITION:
                return "no_preposition", ""
            if "linking_word" in required and not determiner and not kinds & LINKING:
                return "no_linking_word", "a list of nouns and adjectives"
            if "noun" in required and not kinds & NOUN:
                return "no_noun", ""
        if s.max_noun_ratio is not None and len(tokens) >= 5:
            # words the lexicon does not know count as nouns: names
            nouns = len(tokens) - sum(map(and_, c.flags, repeat(NOT_NOUN)))
            if nouns / len(tokens) > s.max_noun_ratio:
                return "noun_ratio", f"{nouns}/{len(tokens)} nouns"
        return None

    def _rare(self, c: _Caption) -> str | None:
        """Lower-case words wordfreq does not list, beyond the allowance; capitalised words are
        names, which the hypernymizer deals with."""
        if reduce(and_, c.flags, KNOWN):
            return None
        known = self.lexicon
        allowed = self.settings.rare_words_per_8 * len(c.words) // 8
        rare = []
        for token in cased_letter_tokens(c.text):
            if len(token) > 1 and not token[0].isupper() and not known.get(token, 0) & KNOWN:
                rare.append(token)
                if len(rare) > allowed:
                    return ", ".join(rare)
        return None


def _has_number(firsts: str) -> bool:
    """A word starting with a digit: "2 dogs" has a cardinal where a determiner would be."""
    return not firsts.isalpha() and any(map(str.isdigit, firsts))


def _first_failure(checks, c: _Caption) -> tuple[str, str] | None:
    for reason, rule in checks:
        detail = rule(c)
        if detail is not None:
            return detail if detail.__class__ is tuple else (reason, detail)
    return None


def _all_caps(c: _Caption) -> str | None:
    if not c.text.isupper():
        return None
    letters = [ch for ch in c.text if ch.isalpha()]
    if len(letters) >= 8:
        return f"{len(letters)} capital letters"
    return None
