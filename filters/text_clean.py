"""Alt-text cleaning: entities, Unicode and mojibake, zero-width and bidirectional control
characters, HTML tags, URLs and e-mail addresses, whitespace, and boilerplate prefixes and
suffixes ("click to enlarge picture", "- Stock Image", "photo by ...").

Conceptual Captions (Sharma et al. 2018, section 3) crops boilerplate such as "click to enlarge
picture" and "stock photo", and drops candidates that begin or end with "embedded image
permalink" or "profile photo": ``drop_phrase`` finds those, and other page furniture ("Share on
Facebook", "Image result for ...") and stock-site keyword titles ("... vector image").

Zero-width and bidirectional control characters go (issue 18): the explicit formatting characters
of Unicode TR#9 reorder what a reader sees without showing, as Trojan Source (CVE-2021-42574) did
with source code, and invisible characters make captions that look alike compare apart.
"""

from __future__ import annotations

import html
import re

import ftfy

from filters.english import letter_tokens

# Bare domains only with a lower-case known top-level domain: "beach.It was" is a missing space.
_URL = re.compile(
    r"(?i:(?:\b(?:https?|ftp)://|\bwww\.)\S+|\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b)"
    r"|\b[A-Za-z0-9][A-Za-z0-9-]*(?:\.[A-Za-z0-9-]+)*\.(?:com|net|org|info|biz|io|co|uk|de|fr|ru|jp|cn|au|"
    r"ca|us|edu|gov|nl|it|es|pl|br|in|eu|tv|me)(?:/\S*)?(?![\w.])")
# A whole text that is one address: any top-level domain will do.
_URL_ONLY = re.compile(
    rf"\s*(?:{_URL.pattern}|[a-z0-9][\w-]*(?:\.[\w-]+)*"
    rf"\.(?!(?:jpe?g|png|gif|webp|bmp|tiff?|svg|pdf|heic|avif|ico|jfif)\b)[a-z]{{2,6}}/?)\s*",
    re.IGNORECASE)

# HTML tags by name, so that "<3", "x < 5" and "<Samsung S1050>" stay. Inline tags join their text
# to the words around it, as a browser shows it; the others (and comments) part words.
_INLINE_TAGS = "a|abbr|b|big|cite|code|del|em|font|i|ins|kbd|mark|nobr|q|s|small|span|strike|strong|sub|sup|tt|u|wbr"
_BLOCK_TAGS = ("article|blockquote|br|center|dd|div|dl|dt|figcaption|figure|footer|h[1-6]|header|hr|img|"
               "li|ol|p|pre|section|table|tbody|td|th|thead|tr|ul")
HTML_TAGS = f"{_INLINE_TAGS}|{_BLOCK_TAGS}"
_INLINE_TAG = re.compile(rf"</?(?:{_INLINE_TAGS})(?=[\s/>])[^<>]*>", re.IGNORECASE)
_BLOCK_TAG = re.compile(rf"</?(?:{_BLOCK_TAGS})(?=[\s/>])[^<>]*>|<!--.*?-->", re.IGNORECASE)

_SEPARATORS = " \t-–—|:;,·•/\\_~*=>»«<"
_MEDIA = r"(?:image|picture|photo(?:graph(?:y)?)?|pic|img|illustration|vector|footage|clip ?art)s?"
_CROP_PREFIX = re.compile(
    rf"^(?:(?:click|tap)(?: here)? to (?:enlarge|zoom|view|see)(?: (?:the )?(?:full[- ]size|larger|"
    rf"bigger|full))?(?: {_MEDIA})?"
    rf"|(?:royalty[- ]free )?stock {_MEDIA}(?: of)?"
    rf"|(?:an? |the )?(?:close[- ]up )?{_MEDIA} (?:of|showing|shows)"
    rf"|(?:featured|header|hero|main|product|cover|thumbnail) {_MEDIA}(?=\s*(?:[:|–—-]|$))"
    rf"|{_MEDIA}\s*(?=:))(?![\w'])[{re.escape(_SEPARATORS)}]*",
    re.IGNORECASE)
_SEP = r"[-–—|:;,·•/\\_~*=>»«<.(\[]"
_CROP_SUFFIX = re.compile(
    rf"(?:\s*{_SEP}+\s*|\s+(?=(?:royalty|stock|click|tap|©|\(c\))))(?:"
    rf"(?:click|tap)(?: here)? to (?:enlarge|zoom|view|see)\b.*"
    rf"|(?:royalty[- ]free )?(?:stock )?{_MEDIA}(?: stock)?(?: {_MEDIA})?(?: (?:and|&) {_MEDIA})?"
    rf"(?: (?:no\.? ?|#)?\d+)?"
    rf"|{_MEDIA}\s*(?:credits?\s*)?(?:by|:|©|courtesy(?: of)?)\s.*"
    rf"|(?:(?:credits?|courtesy|source|copyright)\s*:|credits? to\b|courtesy of\b|copyright\b|©|\(c\)).*"
    rf"|via \S+(?: \S+)?"
    rf"|(?:getty images|shutterstock|alamy|istock(?:photo)?|dreamstime|depositphotos|123rf|"
    rf"adobe stock)\b.*"
    rf")[\s.)\]]*$",
    re.IGNORECASE)
_DOT_LETTER = re.compile(r"\.[^\W\d_]")  # with "@" and "://": the text may hold an address
# Not captions at all: page furniture and generated text that some sites put in alt attributes.
_DROP_PREFIX = re.compile(
    r"(?:embedded image permalink|profile (?:photo|picture|pic|image)|"
    r"(?:no )?image (?:not )?(?:available|found)|"
    r"(?:google )?image result for|load image into gallery viewer|img - for|image is loading|"
    r"image may contain|image for post|share (?:on|via|this)|(?:click|tap) (?:here|to)|"
    r"type the characters|fork me on github|get it on google play|download on the app store|"
    r"refer to caption|see adjacent text|content loading|"
    r"\d+ (?:best|top|great|cool|awesome)\b.*\bimages?)\b"
    r"|(?:avatar|placeholder|loading|no image|(?:powered|protected) by \S+(?: \S+)?)[\s.…!]*$",
    re.IGNORECASE)
_DROP_SUFFIX = re.compile(
    r"\b(?:embedded image permalink|profile (?:photo|picture|pic|image)|out of \d stars|"
    r"on pinterest(?: \S+){0,6}|"
    # stock and clip-art sites' keyword titles
    r"vector (?:image|illustration|graphic|art)s?|"
    r"(?:pictures?|photos?|images?) ?& ?(?:pictures?|photos?|images?)|png (?:icon|image|clipart)s?|"
    r"hd wallpapers?|- jpg)[\s.!]*$",
    re.IGNORECASE)
_DROP_FIRST_WORDS = frozenset(  # every _DROP_PREFIX phrase starts with one of these (or digits)
    "embedded profile no image google load img share click tap type fork get download refer see "
    "content avatar placeholder loading powered protected".split())
_DROP_SUFFIX_WORDS = frozenset(
    "permalink profile stars pinterest vector pictures picture photos photo images image png hd "
    "wallpaper wallpapers jpg".split())
# Every crop pattern has one of these words; a caption without them skips the regexes.
_CROP_WORDS = frozenset(
    "stock click tap photo photos photograph photographs image images picture pictures pic pics img "
    "imgs illustration illustrations vector vectors footage clip credit credits courtesy source "
    "copyright c via getty shutterstock alamy istock istockphoto dreamstime depositphotos rf featured "
    "header hero main product cover thumbnail royalty".split())


# Characters with no width that change what a reader sees, or how text compares, without showing:
# zero-width space, non-joiner, joiner, word joiner, byte-order mark; and the bidirectional
# formatting characters of Unicode TR#9 (section 2: embeddings and overrides U+202A-U+202E,
# isolates U+2066-U+2069, marks LRM, RLM, ALM), which reorder displayed text as in Trojan Source
# (CVE-2021-42574, Boucher and Anderson 2021). A caption keeps its characters in logical order
# without them; two captions that look alike then compare alike (dedup, text.max_repeats).
_INVISIBLE = re.compile("[\u200b\u200c\u200d\u2060\ufeff\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")

_CONTROL = re.compile("[\x00-\x08\x0e-\x1f\x7f]")  # C0 controls but whitespace, and DEL


def _fix_encoding(text: str) -> str:
    if "&" in text:
        for _ in range(2):  # "&amp;amp;" is common: pages escape already escaped text
            unescaped = html.unescape(text)
            if unescaped == text:
                break
            text = unescaped
    if not text.isascii():  # mojibake and odd Unicode need non-ASCII characters
        # a regex: 0.3 us per non-ASCII alt-text of img2dataset's test_10000.parquet, str.translate 5 us
        text = _INVISIBLE.sub("", ftfy.fix_text(text, unescape_html=False))
    return text


def _strip_tags(text: str) -> str:
    """The text without its complete HTML tags and comments, keeping what the tags enclose."""
    return _BLOCK_TAG.sub(" ", _INLINE_TAG.sub("", text))


def _crop_boilerplate(text: str) -> tuple[str, list[str] | None]:
    """The text without boilerplate, and its lower-case letter runs if no crop changed them."""
    tokens = letter_tokens(text.lower())
    if _CROP_WORDS.isdisjoint(tokens) and "©" not in text:
        return text.strip(_SEPARATORS), tokens  # separators are not letters: tokens still hold
    for _ in range(3):  # "Stock Photo - click to enlarge" has layers
        before = text
        text = _CROP_PREFIX.sub("", text, count=1)
        text = _CROP_SUFFIX.sub("", text, count=1).strip(_SEPARATORS)
        if text == before:
            break
    return text, None


def clean_with_tokens(text: str) -> tuple[str, list[str] | None]:
    """``clean_caption`` and, when it was cheap to keep, the caption's lower-case letter runs."""
    if "&" in text or not text.isascii():
        text = _fix_encoding(text)
    if "<" in text:  # before URLs: an address in an attribute would take the tag's text with it
        text = _strip_tags(text)
    if "@" in text or "://" in text or "." in text and _DOT_LETTER.search(text):
        text = _URL.sub(" ", text)
    if "  " in text or text[:1] == " " or text[-1:] == " " or not text.isprintable():
        # other whitespace than single spaces is not printable, nor are the controls (NUL, ESC, DEL)
        # that ftfy removes from non-ASCII text only
        text = " ".join(_CONTROL.sub(" ", text).split())
    return _crop_boilerplate(text) if text else (text, [])


def clean_caption(text: str) -> str:
    """The alt-text as a caption: decoded, without HTML tags, URLs, e-mail addresses or
    boilerplate, single spaces. May return "" when nothing but boilerplate was there."""
    return clean_with_tokens(text)[0]


def is_url_only(text: str) -> bool:
    """Whether the raw alt-text is nothing but a URL, a domain or an e-mail address."""
    return bool(_URL_ONLY.fullmatch(text))


def drop_phrase(text: str, tokens: list[str] | None = None) -> str | None:
    """The boilerplate phrase that makes a text no caption at all, if it has one. ``tokens``: the
    text's lower-case letter runs, when the caller has them."""
    tokens = letter_tokens(text.lower()) if tokens is None else tokens
    found = None
    if tokens and tokens[0] in _DROP_FIRST_WORDS or text[:1].isdigit():
        found = _DROP_PREFIX.match(text)
    if found is None:
        if _DROP_SUFFIX_WORDS.isdisjoint(tokens):
            return None
        found = _DROP_SUFFIX.search(text)
    return found.group(0).strip() if found else None
