"""URL helpers for image sources: resolve against the page, normalise, classify, parse ``srcset``.

Only absolute ``http``/``https`` URLs with a host come out. Everything else is refused with
:class:`filters.record.Dropped` and one of the reasons ``no_src``, ``data_uri``,
``unsupported_scheme`` or ``bad_url``.
"""

from __future__ import annotations

import re
from urllib.parse import quote, urljoin, urlsplit

from filters.record import Dropped

NO_SRC = "no_src"
DATA_URI = "data_uri"
UNSUPPORTED_SCHEME = "unsupported_scheme"
BAD_URL = "bad_url"

WEB_SCHEMES = ("http", "https")

_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")
_TAB_OR_NEWLINE = re.compile(r"[\t\n\r]")
_EDGE_JUNK = "".join(map(chr, range(0x21)))  # C0 controls and space, stripped at both ends
_HOST_FORBIDDEN = re.compile(r"[\s<>\"{}|\\^`]")
# Characters kept as they are when percent-encoding: RFC 3986 reserved + unreserved, and "%" so
# existing escapes are not encoded twice.
_URL_SAFE = "!#$%&'()*+,/:;=?@[]~-._"


def clean_attribute_url(raw: str) -> str:
    """What a browser reads from a URL attribute: trimmed, with tabs and newlines removed."""
    return _TAB_OR_NEWLINE.sub("", raw.strip(_EDGE_JUNK))


def url_scheme(url: str) -> str | None:
    """The lower-cased scheme of ``url`` (already cleaned), or None for a relative reference."""
    match = _SCHEME.match(url)
    return match.group(1).lower() if match else None


def document_base(page_url: str | None, base_href: str | None) -> str | None:
    """The URL relative references resolve against: ``<base href>`` (itself resolved against
    the page URL) when it gives a web URL, else the page URL when that is one, else None."""
    page = _web_url_or_none(page_url, None)
    return _web_url_or_none(base_href, page) or page


def _web_url_or_none(raw: str | None, base: str | None) -> str | None:
    try:
        return resolve_url(raw, base)
    except Dropped:
        return None


def resolve_url(raw: str | None, base: str | None) -> str:
    """Resolve ``raw`` against ``base`` and normalise it; raise Dropped when it is no web URL.

    Normalising removes tabs/newlines and surrounding whitespace, treats backslashes as slashes
    (as browsers do for http), lower-cases scheme and host, IDNA-encodes a non-ASCII host,
    percent-encodes spaces and non-ASCII characters (UTF-8) in path and query, and drops the
    ``#fragment``.
    """
    url = clean_attribute_url(raw or "")
    if not url:
        raise Dropped(NO_SRC)
    scheme = url_scheme(url)
    if scheme == "data":
        raise Dropped(DATA_URI, url[:64])
    if scheme is not None and scheme not in WEB_SCHEMES:
        raise Dropped(UNSUPPORTED_SCHEME, f"{scheme}:")
    url = url.replace("\\", "/")
    if scheme is None or not url[len(scheme) + 1:].startswith("//"):
        if base is None:
            raise Dropped(BAD_URL, f"relative URL without a web base URL: {url[:200]}")
        url = urljoin(base, url)
    return _normalise_absolute(url)


def _normalise_absolute(url: str) -> str:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise Dropped(BAD_URL, f"{error}: {url[:200]}") from None
    scheme = parts.scheme.lower()
    host = parts.hostname or ""
    if scheme not in WEB_SCHEMES or not host or _HOST_FORBIDDEN.search(host):
        raise Dropped(BAD_URL, url[:200])
    try:
        host = host.encode("idna").decode("ascii") if not host.isascii() else host
        path = quote(parts.path or "/", safe=_URL_SAFE)
        query = quote(parts.query, safe=_URL_SAFE)
    except UnicodeError as error:
        raise Dropped(BAD_URL, f"{error}: {url[:200]}") from None
    if ":" in host:
        host = f"[{host}]"
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = f"{quote(userinfo, safe=_URL_SAFE)}@{host}" if userinfo else host
    if port is not None:
        netloc = f"{netloc}:{port}"
    return f"{scheme}://{netloc}{path}" + (f"?{query}" if query else "")


# --- srcset -------------------------------------------------------------------------------------

_SPACE = " \t\n\r\f"
_FLOAT = re.compile(r"-?(?:\d+(?:\.\d+)?|\.\d+)(?:[eE][+-]?\d+)?")


def parse_srcset(value: str) -> list[tuple[str, int | None, float | None]]:
    """Image candidates of a ``srcset`` as (url, width, density), following the HTML spec's
    "parse a srcset attribute" algorithm: a URL is a run of non-space characters (so commas
    inside it stay), trailing commas end it, and a candidate with invalid descriptors is dropped.
    """
    candidates = []
    position, end = 0, len(value)
    while True:
        while position < end and (value[position] in _SPACE or value[position] == ","):
            position += 1
        if position >= end:
            return candidates
        start = position
        while position < end and value[position] not in _SPACE:
            position += 1
        url = value[start:position]
        descriptors: list[str] = []
        if url.endswith(","):
            url = url.rstrip(",")
        else:
            descriptors, position = _tokenize_descriptors(value, position)
        parsed = _parse_descriptors(descriptors)
        if parsed is not None and url:
            candidates.append((url, *parsed))


def _tokenize_descriptors(value: str, position: int) -> tuple[list[str], int]:
    """The spec's descriptor tokenizer: returns the descriptors and the position after them."""
    descriptors, current, state = [], "", "start"
    end = len(value)
    while True:
        char = value[position] if position < end else None
        if state == "start":
            if char is None:
                return descriptors, position
            if char == ",":
                return descriptors, position + 1
            if char not in _SPACE:
                state = "descriptor"
                continue
        elif state == "descriptor":
            if char is None or char == ",":
                if current:
                    descriptors.append(current)
                return descriptors, position if char is None else position + 1
            if char in _SPACE:
                if current:
                    descriptors.append(current)
                current, state = "", "after"
            else:
                current += char
                if char == "(":
                    state = "parens"
        elif state == "parens":
            if char is None:
                descriptors.append(current)
                return descriptors, position
            current += char
            if char == ")":
                state = "descriptor"
        elif state == "after":
            if char is None:
                return descriptors, position
            if char not in _SPACE:
                state = "descriptor"
                continue
        position += 1


def _parse_descriptors(descriptors: list[str]) -> tuple[int | None, float | None] | None:
    """(width, density) from a candidate's descriptors, or None when they are invalid."""
    width = height = density = None
    for descriptor in descriptors:
        number, kind = descriptor[:-1], descriptor[-1:]
        if kind == "w" and width is None and density is None and number.isdigit() and number.isascii():
            width = int(number)
            if width == 0:
                return None
        elif kind == "x" and width is None and density is None and height is None and _FLOAT.fullmatch(number):
            density = float(number)
            if density < 0:
                return None
        elif kind == "h" and height is None and density is None and number.isdigit() and number.isascii():
            height = int(number)
            if height == 0:
                return None
        else:
            return None
    if height is not None and width is None:
        return None
    return width, density


def largest_srcset_url(value: str) -> str | None:
    """The URL of the largest ``srcset`` candidate: the widest when any has a ``w`` descriptor,
    else the highest density (no descriptor counts as 1x); the first one wins ties."""
    candidates = parse_srcset(value)
    if not candidates:
        return None
    with_width = [c for c in candidates if c[1] is not None]
    if with_width:
        return max(with_width, key=lambda c: c[1])[0]
    return max(candidates, key=lambda c: 1.0 if c[2] is None else c[2])[0]
