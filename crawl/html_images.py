"""Alt-text candidates from one HTML page: exactly one record per ``<img>``, passed or rejected.

The image URL is the one the page shows once its lazy-loading script has run: a lazy attribute
(``data-srcset``, ``data-src``, ...) stands in for ``srcset``/``src``, and from a ``srcset`` the
largest candidate is taken. Candidates are tried in the order lazy srcsets, ``srcset``, lazy
srcs, ``src``; the first that gives a web URL wins. When none does, the reject carries the reason
and raw value of the first one that was present.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from resiliparse.parse.encoding import bytes_to_str, detect_encoding, map_encoding_to_html5
from resiliparse.parse.html import HTMLTree

from crawl.urls import NO_SRC, clean_attribute_url, document_base, largest_srcset_url, resolve_url
from filters.record import SOURCE, Dropped, make_key, new_record

NO_ALT = "no_alt"
EMPTY_ALT = "empty_alt"
DUPLICATE_IN_PAGE = "duplicate_in_page"

DEFAULT_LAZY_ATTRIBUTES = ("data-srcset", "data-src", "data-lazy-srcset", "data-lazy-src", "data-original")
MAX_KEPT_RAW_URL_CHARS = 2048  # a rejected data: URI can be megabytes; the reject row keeps its start

_BOMS = ((b"\xef\xbb\xbf", "utf-8"), (b"\xfe\xff", "utf-16-be"), (b"\xff\xfe", "utf-16-le"))


def parse_content_type(value: str) -> tuple[str, str | None]:
    """(media type, charset or None) of a Content-Type header value."""
    media_type, _, parameters = value.partition(";")
    charset = None
    for parameter in parameters.split(";"):
        name, _, parameter_value = parameter.partition("=")
        if name.strip().lower() == "charset":
            charset = parameter_value.strip().strip("\"'") or None
    return media_type.strip(), charset


def decode_html(data: bytes, charset: str | None = None) -> str:
    """Bytes to text the way a browser picks the encoding: byte-order mark, then the HTTP
    charset, then ``<meta charset>`` / ``<meta http-equiv>``, then detection. Undecodable bytes
    become U+FFFD (after trying UTF-8 and windows-1252 when the chosen encoding fails)."""
    encoding = (next((name for bom, name in _BOMS if data.startswith(bom)), None)
                or (charset and map_encoding_to_html5(charset, fallback_utf8=False))
                or detect_encoding(data, from_html_meta=True)
                or "utf-8")
    return bytes_to_str(data, encoding, errors="replace")


def normalise_alt(alt: str) -> str:
    """Collapse every run of whitespace (newlines, tabs, no-break spaces, ...) to one space."""
    return " ".join(alt.split())


def extract_image_records(html: bytes | str, page_url: str | None, *, source: str,
                          charset: str | None = None,
                          lazy_attributes: tuple[str, ...] = DEFAULT_LAZY_ATTRIBUTES) -> list[dict]:
    """One record per ``<img>`` of the page, in document order.

    ``html`` given as bytes is decoded with ``charset`` (from the HTTP header) when known, else as
    the page declares or as detected. Relative URLs resolve against ``<base href>`` and
    ``page_url``.
    """
    text = html if isinstance(html, str) else decode_html(html, charset)
    document = HTMLTree.parse(text).document
    if document is None:
        return []
    base_element = document.query_selector("base[href]")
    base = document_base(page_url, base_element.getattr("href") if base_element else None)
    # .values(): iterating the node list itself is quadratic in resiliparse 2.0.1
    images = ((_raw_urls(img, lazy_attributes), img.getattr("alt"))
              for img in document.query_selector_all("img").values())
    return image_records(images, page_url, base, str(source))


def image_records(images: Iterable[tuple[Iterable[str | None], str | None]], page_url: str | None,
                  base: str | None, source: str) -> list[dict]:
    """One record per image of a page, each given as (raw URL values in order of preference,
    alt attribute or None when absent); ``base`` is what relative URLs resolve against.

    Rejects have stage "source" and reason no_src, data_uri, unsupported_scheme, bad_url (image
    URL), no_alt, empty_alt (alt-text) or duplicate_in_page (same URL and alt-text as an earlier
    image of the page). They are keyed by the image's position in the page, so keys stay distinct.
    """
    emitted: set[tuple[str, str]] = set()
    records = []
    for index, (raw_urls, alt) in enumerate(images):
        position_key = make_key(f"{page_url}#img{index}", source)
        caption = normalise_alt(alt) if alt is not None else ""
        image_url = _first_web_url(raw_urls, base)
        if isinstance(image_url, Dropped):
            record = new_record("", caption, page_url=page_url, source=source, key=position_key)
            records.append(image_url.reject(record, SOURCE))
            continue
        record = new_record(image_url, caption, page_url=page_url, source=source)
        reason = (NO_ALT if alt is None else EMPTY_ALT if not caption
                  else DUPLICATE_IN_PAGE if (image_url, caption) in emitted else None)
        if reason:
            record["key"] = position_key
            records.append(Dropped(reason).reject(record, SOURCE))
        else:
            emitted.add((image_url, caption))
            records.append(record)
    return records


def _first_web_url(raw_urls: Iterable[str | None], base: str | None) -> str | Dropped:
    """The first value that resolves to a web URL; else a Dropped for the first value present
    (carrying its raw value as ``image_url``), or no_src when none is.

    The Dropped is returned, not raised: a raised one would keep this frame, and through it the
    HTML nodes, in a reference cycle, and resiliparse's nodes must not be freed by a garbage
    collection on another thread."""
    first_failure = None
    for raw in raw_urls:
        try:
            return resolve_url(raw, base)
        except Dropped as dropped:
            if dropped.reason != NO_SRC and first_failure is None:
                kept = clean_attribute_url(raw)[:MAX_KEPT_RAW_URL_CHARS]
                first_failure = Dropped(dropped.reason, dropped.detail, image_url=kept)
    return first_failure or Dropped(NO_SRC)


def _raw_urls(img, lazy_attributes: tuple[str, ...]) -> Iterator[str]:
    """Raw URL values in the order they are tried; a srcset gives its largest candidate."""
    lazy = [(name, img.getattr(name)) for name in lazy_attributes]
    # Some sites keep JSON in data-src for their own script (MSN: {"default": "//img..."}).
    lazy = [(name, value) for name, value in lazy if value and not value.lstrip().startswith(("{", "["))]
    for value in [value for name, value in lazy if name.endswith("srcset")] + [img.getattr("srcset")]:
        largest = largest_srcset_url(value) if value else None
        if largest:
            yield largest
    for value in [value for name, value in lazy if not name.endswith("srcset")] + [img.getattr("src")]:
        if value:
            yield value
