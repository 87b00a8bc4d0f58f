"""Live crawl of one page: robots.txt, fetch, then the same alt-text extraction as for WARCs."""

from __future__ import annotations

from crawl.fetch import Fetcher
from crawl.html_images import extract_image_records, parse_content_type
from crawl.robots import RobotsPolicy
from crawl.urls import resolve_url
from filters.record import SOURCE, Dropped, is_input_error, make_key, new_record, reject


def crawl_page(page_url: str, *, fetcher: Fetcher, robots: RobotsPolicy | None, source: str,
               lazy_attributes: tuple[str, ...]) -> list[dict]:
    """Image records of a live page, or one source reject saying why the page gave none."""
    where = f"{source}#{page_url}"
    page = new_record(page_url, "", page_url=page_url, source=where,
                      key=make_key(page_url, "\x00page"))
    try:
        url = resolve_url(page_url, None)
        if robots is not None and not robots.allowed(url):
            raise Dropped("robots_txt", "disallowed by the site's robots.txt")
        result = fetcher.fetch(url, accept_html=True)
    except Dropped as dropped:
        reason = dropped.reason if dropped.reason == "robots_txt" else f"page_{dropped.reason}"
        return [reject(page, SOURCE, reason, dropped.detail)]
    try:
        return extract_image_records(result.body, result.final_url, source=where,
                                     charset=parse_content_type(result.content_type or "")[1],
                                     lazy_attributes=lazy_attributes)
    except BaseException as err:  # a parser failure costs this page, not the crawl
        if not is_input_error(err):
            raise
        return [reject(page, SOURCE, "parse_error", f"{type(err).__name__}: {err}"[:500])]
