"""URL helpers and <img> extraction: every rule on small hand-written HTML, then real pages."""

from __future__ import annotations

import gc
import gzip
import re
import threading

import pytest

from crawl.html_images import decode_html, extract_image_records, normalise_alt
from crawl.urls import document_base, largest_srcset_url, parse_srcset, resolve_url
from filters.record import Dropped, make_key

PAGE = "http://example.com/dir/page.html"
READABILITY_PAGE = "http://fakehost/test/page.html"  # the page URL Mozilla Readability's tests use


def count_img_tags(html: str) -> int:
    """<img> tags counted with a regex, outside comments and elements whose content is not markup
    (an independent count: it shares no code with the extractor)."""
    skipped = re.compile(r"<!--.*?-->|<(script|style|template|textarea|title|xmp|noembed|noframes|iframe)\b.*?</\1\s*>",
                         re.S | re.I)
    return len(re.findall(r"<img[\s/>]", skipped.sub("", html), re.I))


def outcome(record: dict) -> tuple:
    return record.get("reason"), record["image_url"], record["alt_raw"]


def extract(html: str | bytes, page_url: str | None = PAGE, **kwargs) -> list[dict]:
    return extract_image_records(html, page_url, source="test", **kwargs)


def readability_page(realdata, name: str) -> bytes:
    return gzip.decompress(realdata("html", "mozilla_readability_test_pages", f"{name}.source.html.gz").read_bytes())


def by_alt(records: list[dict], alt: str) -> dict:
    return next(record for record in records if record["alt_raw"] == alt)


# --- URLs ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("raw, base, expected", [
    ("img/a.jpg", PAGE, "http://example.com/dir/img/a.jpg"),
    ("../a.jpg", PAGE, "http://example.com/a.jpg"),
    ("/a.jpg?x=1&y=2", PAGE, "http://example.com/a.jpg?x=1&y=2"),
    ("//cdn.example.org/a.jpg", "https://example.com/", "https://cdn.example.org/a.jpg"),
    ("?page=2", PAGE, "http://example.com/dir/page.html?page=2"),
    ("https://Example.COM:8443/A.jpg", None, "https://example.com:8443/A.jpg"),
    ("HTTP://example.com", None, "http://example.com/"),
    ("a.jpg#zoom", PAGE, "http://example.com/dir/a.jpg"),
    ("  \n http://example.com/a\n/b.jpg \t", None, "http://example.com/a/b.jpg"),
    ("my photo.jpg", PAGE, "http://example.com/dir/my%20photo.jpg"),
    ("café/ü.jpg?q=ä ö", PAGE, "http://example.com/dir/caf%C3%A9/%C3%BC.jpg?q=%C3%A4%20%C3%B6"),
    ("already%20escaped.jpg", PAGE, "http://example.com/dir/already%20escaped.jpg"),
    ("https://bücher.example/x.jpg", None, "https://xn--bcher-kva.example/x.jpg"),
    ("img\\a.jpg", PAGE, "http://example.com/dir/img/a.jpg"),
    ("http://[2001:db8::1]:8080/a.png", None, "http://[2001:db8::1]:8080/a.png"),
])
def test_resolve_url_resolves_and_normalises(raw, base, expected):
    assert resolve_url(raw, base) == expected


@pytest.mark.parametrize("raw, base, reason", [
    ("", PAGE, "no_src"),
    (" \n ", PAGE, "no_src"),
    (None, PAGE, "no_src"),
    ("data:image/gif;base64,R0lGODlhAQABAAAAACw=", PAGE, "data_uri"),
    (" DATA:image/png;base64,iVBOR", PAGE, "data_uri"),
    ("javascript:void(0)", PAGE, "unsupported_scheme"),
    ("blob:https://example.com/5a1d", PAGE, "unsupported_scheme"),
    ("ftp://example.com/a.jpg", PAGE, "unsupported_scheme"),
    ("about:blank", PAGE, "unsupported_scheme"),
    ("a.jpg", None, "bad_url"),
    ("a.jpg", "ftp://example.com/", "bad_url"),
    ("//cdn.example.org/a.jpg", None, "bad_url"),
    ("http://", None, "bad_url"),
    ("http:///a.jpg", None, "bad_url"),
    ("http://[2001:db8::1/a.jpg", None, "bad_url"),
    ("http://example.com:99999/a.jpg", None, "bad_url"),
    ("http://exa mple.com/a.jpg", None, "bad_url"),
])
def test_resolve_url_refuses_what_is_no_web_url(raw, base, reason):
    with pytest.raises(Dropped) as refused:
        resolve_url(raw, base)
    assert refused.value.reason == reason


def test_document_base_prefers_a_usable_base_href():
    assert document_base(PAGE, "/static/") == "http://example.com/static/"
    assert document_base(PAGE, "https://cdn.example.org/x/") == "https://cdn.example.org/x/"
    assert document_base(PAGE, "javascript:void(0)") == PAGE
    assert document_base(PAGE, None) == PAGE
    assert document_base("dns:example.com", "img/") is None
    assert document_base(None, None) is None


# --- srcset -------------------------------------------------------------------------------------

def test_srcset_largest_by_width_and_by_density():
    assert largest_srcset_url("a.jpg 320w, b.jpg 1024w, c.jpg 640w") == "b.jpg"
    assert largest_srcset_url("a.jpg, b.jpg 2x, c.jpg 1.5x") == "b.jpg"
    assert largest_srcset_url("a.jpg 0.5x, b.jpg") == "b.jpg"  # no descriptor counts as 1x
    assert largest_srcset_url("a.jpg 1x, b.jpg 1x") == "a.jpg"  # ties: the first
    assert largest_srcset_url("a.jpg 3x, b.jpg 200w") == "b.jpg"  # widths are explicit pixels
    assert largest_srcset_url("") is None
    assert largest_srcset_url(" , ,") is None


def test_srcset_keeps_commas_inside_urls_as_the_spec_parses_them():
    value = ("https://i.example/c_fill,w_320/a.jpg 320w,https://i.example/c_fill,w_800/a.jpg 800w,"
             "data:image/gif;base64,R0lGOD 1w")
    assert parse_srcset(value) == [("https://i.example/c_fill,w_320/a.jpg", 320, None),
                                   ("https://i.example/c_fill,w_800/a.jpg", 800, None),
                                   ("data:image/gif;base64,R0lGOD", 1, None)]
    # A URL ending in commas ends the candidate; the commas are not part of it.
    assert parse_srcset("a.jpg,, b.jpg 2x") == [("a.jpg", None, None), ("b.jpg", None, 2.0)]


def test_srcset_drops_candidates_with_invalid_descriptors():
    assert parse_srcset("a.jpg 100w 2x, b.jpg 0w, c.jpg -1x, d.jpg 10q, e.jpg 1.5x") == [("e.jpg", None, 1.5)]
    assert parse_srcset("a.jpg 100w 50h, b.jpg 50h") == [("a.jpg", 100, None)]
    assert parse_srcset("a.jpg 100w (ignored, comma) , b.jpg .5x") == [("b.jpg", None, 0.5)]


# --- the rules, one by one ----------------------------------------------------------------------

def test_each_img_gives_one_record_in_document_order():
    html = """<html><head><base href="/static/"></head><body>
      <img src="a.jpg" alt="First">
      <p><img src="//cdn.example.org/b.png" alt="Second"></p>
      <img src="http://other.example/c.gif" alt="Third">
    </body></html>"""
    assert [outcome(r) for r in extract(html)] == [
        (None, "http://example.com/static/a.jpg", "First"),
        (None, "http://cdn.example.org/b.png", "Second"),
        (None, "http://other.example/c.gif", "Third"),
    ]


def test_passed_record_fields():
    [record] = extract('<img src="a.jpg" alt="A cat">')
    assert record == {"key": make_key("http://example.com/dir/a.jpg", "A cat"),
                      "image_url": "http://example.com/dir/a.jpg", "page_url": PAGE,
                      "alt_raw": "A cat", "caption": "A cat", "source": "test"}


def test_relative_urls_without_base_resolve_against_the_page():
    html = '<img src="a.jpg" alt="x"><img src="/b.jpg" alt="y"><img src="../c.jpg" alt="z">'
    assert [r["image_url"] for r in extract(html)] == [
        "http://example.com/dir/a.jpg", "http://example.com/b.jpg", "http://example.com/c.jpg"]


def test_relative_base_href_resolves_against_the_page():
    html = '<base href="../assets/"><img src="a.jpg" alt="x">'
    assert extract(html)[0]["image_url"] == "http://example.com/assets/a.jpg"


def test_protocol_relative_src_takes_the_page_scheme():
    html = '<img src="//cdn.example.org/a.jpg" alt="x">'
    assert extract(html, "https://example.com/")[0]["image_url"] == "https://cdn.example.org/a.jpg"


def test_srcset_largest_wins_over_src():
    html = """<img src="small.jpg" srcset="small.jpg 320w, large.jpg 1280w, medium.jpg 640w" alt="w">
              <img src="one.jpg" srcset="one.jpg, two.jpg 2x, three.jpg 3x" alt="x">"""
    assert [r["image_url"] for r in extract(html)] == ["http://example.com/dir/large.jpg",
                                                       "http://example.com/dir/three.jpg"]


def test_lazy_attributes_replace_placeholders():
    gif = "data:image/gif;base64,R0lGODlhAQABAIAAAP///wAAACH5BAEAAAAALAAAAAABAAEAAAICRAEAOw=="
    html = f"""
      <img src="{gif}" data-src="/real/a.jpg" alt="data-src">
      <img data-srcset="b-400.jpg 400w, b-800.jpg 800w" src="{gif}" alt="data-srcset">
      <img src="/img/grey.gif" data-original="//cdn.example.org/c.jpg" alt="data-original">
      <img src="" data-lazy-src="d.jpg" alt="data-lazy-src">
      <img data-src="e.jpg" alt="no src at all">
      <img src="f.jpg" data-src='{{"default":"//img.example.org/f-big.jpg"}}' alt="JSON in data-src">
    """
    assert [r["image_url"] for r in extract(html)] == [
        "http://example.com/real/a.jpg",
        "http://example.com/dir/b-800.jpg",
        "http://cdn.example.org/c.jpg",
        "http://example.com/dir/d.jpg",
        "http://example.com/dir/e.jpg",
        "http://example.com/dir/f.jpg",
    ]


def test_lazy_attributes_are_configurable():
    html = '<img src="a.jpg" data-hi-res="b.jpg" data-src="c.jpg" alt="x">'
    assert extract(html, lazy_attributes=("data-hi-res",))[0]["image_url"] == "http://example.com/dir/b.jpg"
    assert extract(html, lazy_attributes=())[0]["image_url"] == "http://example.com/dir/a.jpg"


def test_alt_entities_are_decoded():
    html = """<img src="a.jpg" alt="Fish &amp; chips">
              <img src="b.jpg" alt="Rock &#39;n&#39; roll">
              <img src="c.jpg" alt="Caf&eacute; cr&egrave;me &#x263A;">
              <img src="d.jpg" alt="5 &lt; 6 &quot;quoted&quot;">"""
    assert [r["alt_raw"] for r in extract(html)] == [
        "Fish & chips", "Rock 'n' roll", "Café crème ☺", '5 < 6 "quoted"']


def test_alt_whitespace_is_collapsed():
    html = '<img src="a.jpg" alt="  A dog\n\t running&nbsp;&nbsp;on\r\n the  beach  ">'
    assert extract(html)[0]["alt_raw"] == "A dog running on the beach"
    assert normalise_alt("\u00a0a\u2003b\n") == "a b"


def test_src_rejects_keep_the_raw_value_and_reason():
    html = """<img src="data:image/png;base64,iVBORw0KGgo=" alt="pixel">
              <img src="javascript:void(0)" alt="menu">
              <img src="ftp://example.com/a.jpg" alt="ftp">
              <img src="http://exa mple.com/a.jpg" alt="space in host">
              <img src="" alt="empty src">
              <img alt="no src">"""
    records = extract(html)
    assert [outcome(r) for r in records] == [
        ("data_uri", "data:image/png;base64,iVBORw0KGgo=", "pixel"),
        ("unsupported_scheme", "javascript:void(0)", "menu"),
        ("unsupported_scheme", "ftp://example.com/a.jpg", "ftp"),
        ("bad_url", "http://exa mple.com/a.jpg", "space in host"),
        ("no_src", "", "empty src"),
        ("no_src", "", "no src"),
    ]
    assert all(r["stage"] == "source" and r["page_url"] == PAGE for r in records)


def test_a_placeholder_without_lazy_url_is_rejected_for_the_placeholder():
    html = '<img src="data:image/gif;base64,R0lGOD" data-src="javascript:load()" alt="x">'
    assert outcome(extract(html)[0]) == ("unsupported_scheme", "javascript:load()", "x")


def test_huge_data_uri_is_kept_short_in_the_reject():
    record = extract(f'<img src="data:image/png;base64,{"A" * 100_000}" alt="x">')[0]
    assert record["reason"] == "data_uri" and len(record["image_url"]) == 2048


def test_alt_rejects():
    html = """<img src="a.jpg">
              <img src="b.jpg" alt="">
              <img src="c.jpg" alt=" &nbsp;\n ">
              <img src="d.jpg" alt>"""
    assert [outcome(r) for r in extract(html)] == [
        ("no_alt", "http://example.com/dir/a.jpg", ""),
        ("empty_alt", "http://example.com/dir/b.jpg", ""),
        ("empty_alt", "http://example.com/dir/c.jpg", ""),
        ("empty_alt", "http://example.com/dir/d.jpg", ""),
    ]


def test_duplicates_within_a_page():
    html = """<img src="a.jpg" alt="A cat">
              <img src="a.jpg#big" alt=" A  cat ">
              <img src="a.jpg" alt="Another caption">
              <img src="http://example.com/dir/a.jpg" alt="A cat">
              <noscript><img src="b.jpg" alt="B"></noscript><img data-src="b.jpg" alt="B">"""
    assert [outcome(r) for r in extract(html)] == [
        (None, "http://example.com/dir/a.jpg", "A cat"),
        ("duplicate_in_page", "http://example.com/dir/a.jpg", "A cat"),
        (None, "http://example.com/dir/a.jpg", "Another caption"),
        ("duplicate_in_page", "http://example.com/dir/a.jpg", "A cat"),
        (None, "http://example.com/dir/b.jpg", "B"),
        ("duplicate_in_page", "http://example.com/dir/b.jpg", "B"),
    ]


def test_keys_are_distinct_within_a_page_even_for_identical_rejects():
    html = '<img src="spacer.gif"><img src="spacer.gif"><img><img><img src="a.jpg" alt="x"><img src="a.jpg" alt="x">'
    records = extract(html)
    assert len(records) == 6 and len({r["key"] for r in records}) == 6


def test_template_and_comment_images_are_not_in_the_page():
    html = """<template><img src="t.jpg" alt="t"></template><!-- <img src="c.jpg" alt="c"> -->
              <textarea><img src="x.jpg" alt="x"></textarea><image src="legacy.jpg" alt="legacy tag">"""
    assert [outcome(r) for r in extract(html)] == [(None, "http://example.com/dir/legacy.jpg", "legacy tag")]


def test_no_page_url_still_resolves_absolute_srcs():
    html = '<img src="http://example.com/a.jpg" alt="x"><img src="b.jpg" alt="y">'
    assert [r.get("reason") for r in extract(html, None)] == [None, "bad_url"]


def test_extraction_leaves_no_reference_cycles():
    """resiliparse's HTML nodes may only be freed on the thread that made them; nodes caught in a
    reference cycle would be freed by a garbage collection on whatever thread runs it."""
    html = '<img src="data:image/gif;base64,R0lGOD" alt="a"><img src="javascript:x()" alt="b"><img alt="c">' * 3
    gc.collect()
    gc.disable()
    try:
        worker = threading.Thread(target=extract, args=(html,))
        worker.start()
        worker.join()
        assert gc.collect() == 0
    finally:
        gc.enable()


# --- charsets -----------------------------------------------------------------------------------

def test_bytes_use_the_http_charset_first():
    html = '<meta charset="utf-8"><img src="a.jpg" alt="Fußgängerzone">'.encode("iso-8859-1")
    assert extract(html, charset="ISO-8859-1")[0]["alt_raw"] == "Fußgängerzone"


def test_bytes_use_the_meta_charset_without_http_charset():
    html = '<html><head><meta http-equiv="Content-Type" content="text/html; charset=Shift_JIS"></head>' \
           '<body><img src="a.jpg" alt="東京の夜景"></body></html>'
    assert extract(html.encode("shift_jis"))[0]["alt_raw"] == "東京の夜景"
    html = '<meta charset="windows-1251"><img src="a.jpg" alt="Москва">'
    assert extract(html.encode("cp1251"))[0]["alt_raw"] == "Москва"


def test_bytes_without_any_declaration_are_detected():
    html = "<html><body><p>Über die Brücke gehen wir täglich.</p><img src='a.jpg' alt='Straße'></body></html>"
    assert extract(html.encode("utf-8"))[0]["alt_raw"] == "Straße"


def test_byte_order_mark_wins_and_unknown_charset_falls_back():
    html = '<img src="a.jpg" alt="naïve">'
    assert decode_html(b"\xef\xbb\xbf" + html.encode("utf-8"), "iso-8859-1") == html
    assert extract(html.encode("utf-8"), charset="no-such-charset")[0]["alt_raw"] == "naïve"


def test_mislabelled_utf8_falls_back_to_windows_1252():
    html = '<img src="a.jpg" alt="Crème brûlée">'.encode("cp1252")
    assert extract(html, charset="utf-8")[0]["alt_raw"] == "Crème brûlée"


# --- real pages ---------------------------------------------------------------------------------

def test_real_data_srcset_with_commas_in_urls(realdata):
    records = extract(readability_page(realdata, "lazy-image-2"), READABILITY_PAGE)
    record = by_alt(records, "Trump Shocked to Learn 3M Selling Masks Overseas After He Failed to Invoke"
                             " Defense Production Act")
    assert record["image_url"] == ("https://i.kinja-img.com/gawker-media/image/upload/"
                                   "c_fill,f_auto,fl_progressive,g_center,h_264,q_80,w_470/ecojdjwftxntdhnbgdu0.jpg")
    assert not any(r["image_url"].startswith("data:") for r in records)


def test_real_data_src_lazy_pages(realdata):
    records = extract(readability_page(realdata, "medicalnewstoday"), READABILITY_PAGE)
    assert by_alt(records, "hand holding brain lightbulb")["image_url"] == (
        "https://cdn1.medicalnewstoday.com/content/images/articles/318/318674/hand-holding-brain-lightbulb.jpg")
    assert by_alt(records, "Scientists find new mechanism for memory formation")["image_url"] == (
        "http://fakehost/content/images/headlines/315/315184/memory-cogs.jpg")

    records = extract(readability_page(realdata, "lazy-image-3"), READABILITY_PAGE)
    assert [outcome(r) for r in records] == [
        (None, "https://p3-juejin.byteimg.com/tos-cn-i-k3u1fbpfcp/"
               "0579d17015b145a88dd93992c6447d7d~tplv-k3u1fbpfcp-watermark.jpg", "performance.jpg"),
        (None, "https://p3-juejin.byteimg.com/tos-cn-i-k3u1fbpfcp/"
               "0579d17015b145a88dd93992c6447d7d~tplv-k3u1fbpfcp-watermark.png", "performance.jpg"),
    ]


def test_real_data_original_over_a_grey_gif_placeholder(realdata):
    records = extract(readability_page(realdata, "pixnet"), READABILITY_PAGE)
    icons = [r for r in records if "openid-pixnet-icon" in r["image_url"]]
    assert icons and all(r["image_url"] == "http://front.pixfs.net/comment/images/openid-pixnet-icon.gif"
                         for r in icons)
    assert not any(r["image_url"].endswith("jquery.lazyload/grey.gif") for r in records)


def test_real_data_original_padded_with_spaces_and_empty_src(realdata):
    records = extract(readability_page(realdata, "cnet"), READABILITY_PAGE)
    assert outcome(records[1]) == (
        "empty_alt", "https://cnet1.cbsistatic.com/img/nAMdBzIE1ogVw5bOBZBaiJCt3Ro=/570x0/2014/03/21/"
                     "863df5d9-e8b8-4b38-851b-5e3f77f2cf0e/mark-zuckerberg-facebook-home-10671610x407.jpg", "")


def test_real_json_in_data_src_leaves_src(realdata):
    records = extract(readability_page(realdata, "msn"), READABILITY_PAGE)
    assert outcome(records[0]) == (None, "http://img-s-msn-com.akamaized.net/tenant/amp/entityid/"
                                         "BBlfvkM.img?h=100&w=100&m=6&q=60&u=t&o=t&l=f&f=png", "Tech Insider")


def test_real_density_srcset_on_wikipedia(realdata):
    records = extract(readability_page(realdata, "wikipedia"), READABILITY_PAGE)
    assert outcome(records[0]) == (
        None, "http://upload.wikimedia.org/wikipedia/commons/thumb/5/5c/Mozilla_dinosaur_head_logo.png/"
              "400px-Mozilla_dinosaur_head_logo.png", "Mozilla dinosaur head logo.png")


@pytest.mark.parametrize("name, resolved", [
    ("base-url-base-element-relative", ["http://fakehost/test/base/foo/bar/baz.png",
                                        "http://fakehost/test/base/foo/bar/baz.png"]),
    ("base-url-base-element", ["http://fakehost/foo/bar/baz.png", "http://fakehost/foo/bar/baz.png"]),
])
def test_real_base_href_pages(realdata, name, resolved):
    records = extract(readability_page(realdata, name), READABILITY_PAGE)
    assert [outcome(r) for r in records] == [
        ("no_alt", resolved[0], ""), ("no_alt", resolved[1], ""), ("no_alt", "http://fakehost/foo/bar/baz.png", ""),
        ("no_alt", "http://test/foo/bar/baz.png", ""), ("no_alt", "https://test/foo/bar/baz.png", ""),
    ]


def test_real_absolute_base_href_with_upper_case_host_and_entities(realdata):
    page = realdata("html", "trafilatura_cache", "bmjv.de.konsum.html.gz")
    records = extract(gzip.decompress(page.read_bytes()), "https://www.bmjv.de/DE/Verbraucherportal/konsum.html")
    assert outcome(records[0]) == (None, "https://www.bmjv.de/SiteGlobals/Frontend/Images/logo.gif?__blob=normal&v=5",
                                   "Government Site Builder Standardlösung (Link zur Startseite)")
    assert outcome(records[2]) == (
        "no_alt", "https://www.bmjv.de/DE/Verbraucherportal/KonsumImAlltag/KonsumImAlltag_node.png"
                  "?__blob=picture&v=15", "")


def test_every_img_of_every_real_page_gives_exactly_one_record(realdata):
    pages = sorted(realdata("html").glob("*/*.html.gz"))
    assert len(pages) > 100
    total = 0
    for page in pages:
        html = gzip.decompress(page.read_bytes())
        records = extract_image_records(html, READABILITY_PAGE, source=page.name)
        assert len(records) == count_img_tags(html.decode("utf-8", "replace")), page.name
        assert len({r["key"] for r in records}) == len(records), page.name
        total += len(records)
    assert total > 4000
