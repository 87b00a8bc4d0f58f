"""Published text-filter recipes as ``TextRuleSettings``, each next to the source it follows.

Where a paper states a rule without a number (CC 2018's "high noun ratio", "too high
capitalized-word ratio", "high rate of token repetition") the number here is ours, chosen on the
labelled captions under ``tests/data/text``; where a published rule rejects most real clean
captions it is left off and said so.

Word frequencies: CC kept tokens seen >= 5 times in English Wikipedia, CC12M >= 20 times. With
~3 billion Wikipedia tokens those are 1.7 and 6.7 per billion words (Zipf 0.2 and 0.8); wordfreq's
English list stops at Zipf 1.0, so both presets keep every word wordfreq lists (Zipf >= 1.0).
"""

from __future__ import annotations

from filters.text_settings import TextRuleSettings

# Words and phrases of datatrove's bad-word lists whose everyday sense is common in captions.
INNOCENT_SENSES = ("cock", "tit", "hooker", "kinky", "scat", "skeet", "shrimping", "fingering",
                   "pegging", "stroking", "sucking", "swinger", "eunuch", "santorum", "big black",
                   "tight white", "hot chick", "jelly donut", "tainted love", "tongue in a")

# Conceptual Captions 3M: Sharma, Ding, Goodman, Soricut, ACL 2018, section 3 ("Text-based
# Filtering"): needs a determiner, a noun and a preposition, no high noun ratio, no high token
# repetition, first word capitalised and not too many capitalised words, every token in the
# Wikipedia vocabulary, no pornography/profanity; English only; boilerplate cropped or dropped.
# Left off: the capitalised first word (CC's published captions are lower case) and the polarity
# rule (needs a sentiment model). The preposition rule is on. Added: ``markup``, HTML that cleaning
# could not take out (the paper does not say how it dealt with markup).
CC3M = TextRuleSettings(
    min_words=3, max_words=256, markup=True, file_names=True, max_hashtags=0, seo=True,
    max_word_repetition=0.3, all_caps=True, max_capitalized=0.8,
    profanity=True, profanity_allow=INNOCENT_SENSES,
    required_words=("noun", "linking_word"), max_noun_ratio=0.8, min_word_zipf=1.0, rare_words_per_8=1,
    languages=("en",), min_lang_score=0.3)

# Conceptual 12M: Changpinyo, Sharma, Ding, Soricut, CVPR 2021, section 3.1: CC's pipeline
# relaxed: 3 to 256 words, word repetition <= 0.2, a determiner and a noun (no preposition, no
# noun-ratio or capitalisation rules), Wikipedia tokens seen >= 20 times, no profanity, English;
# ``markup`` added as for CC3M.
CC12M = TextRuleSettings(
    min_words=3, max_words=256, markup=True, file_names=True, max_hashtags=2, max_word_repetition=0.2,
    profanity=True, profanity_allow=INNOCENT_SENSES,
    required_words=("noun", "linking_word"), min_word_zipf=1.0, languages=("en",),
    min_lang_score=0.3)

# LAION-400M / LAION-5B: Schuhmann et al. 2021/2022: alt-texts shorter than 5 characters dropped;
# all languages kept (LAION-5B tags language per sample; the lang column here does that).
LAION = TextRuleSettings(min_chars=5)

# DataComp "basic" filtering: Gadre et al., NeurIPS 2023, section 3.3 / appendix: English by a
# fastText language model, caption longer than 2 words and longer than 5 characters.
DATACOMP_BASIC = TextRuleSettings(min_chars=6, min_words=3, languages=("en",))

PRESETS = {"cc3m": CC3M, "cc12m": CC12M, "laion": LAION, "datacomp-basic": DATACOMP_BASIC}
DEFAULT_PRESET = "cc3m"


def preset(name: str) -> TextRuleSettings:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown text preset {name!r} (known: {', '.join(PRESETS)})") from None
