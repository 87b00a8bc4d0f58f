"""report.html as a person sees it: a finished run's report opened from disk in Debian's headless chromium with
the network off, every request it makes recorded, its charts, grids and review queue checked as rendered, and a
full-page screenshot kept (issue 20).

Needs the apt package ``chromium`` (.ci/run installs it) and ``playwright`` (the test extras); playwright's own
browsers are never downloaded. One chromium and one page load serve the module.
"""

from __future__ import annotations

import json
import os
import shutil
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

# Without these, chromium on a closed machine keeps trying Google's hosts (updates, sync, QUIC, field trials);
# playwright gives every launch a fresh temporary profile of its own.
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SECTIONS = ("funnel", "histograms", "accepted", "rejects", "hypernyms", "review")
HISTOGRAM_COLUMNS = {"clip_score", "side", "aspect", "caption_words", "lang"}
EXTERNAL = {"http://example.com/x.png": '<img src="http://example.com/x.png">',
            "https://example.com/s.css": '<link rel="stylesheet" href="https://example.com/s.css">',
            "http://example.com/s.js": '<script src="http://example.com/s.js"></script>'}
# what a chart draws with: an svg holding none of these shows nothing
MARKS = "path, rect, line, polyline, polygon, circle, ellipse, use"


@pytest.fixture(scope="module")
def browser():
    """Debian's headless chromium, driven by playwright."""
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="playwright is not installed: pip install -e '.[test]' (make test does)")
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("chromium is not on PATH: apt-get install chromium (.ci/run does)")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        yield launched
        launched.close()


@dataclass
class Opened:
    page: Page
    requests: list[str] = field(default_factory=list)  # every URL asked for besides the report and data: URIs
    errors: list[str] = field(default_factory=list)  # console errors and uncaught exceptions


@contextmanager
def opened(browser: Browser, report: Path):
    """The report loaded from file:// in an offline browser context whose every request meets a recorder: the
    report's own URL and data: URIs go through, anything else is recorded and aborted."""
    url = report.resolve().as_uri()
    context = browser.new_context(offline=True)
    try:
        page = context.new_page()
        shown = Opened(page)

        def recorder(route):
            if route.request.url == url or route.request.url.startswith("data:"):
                route.continue_()
            else:
                shown.requests.append(route.request.url)
                route.abort()

        def console(message):
            if message.type == "error":
                shown.errors.append(message.text)

        context.route("**/*", recorder)
        page.on("websocket", lambda socket: shown.requests.append(socket.url))  # not routed, so recorded here
        page.on("console", console)
        page.on("pageerror", lambda error: shown.errors.append(str(error)))
        page.goto(url, wait_until="load")
        yield shown
    finally:
        context.close()


@pytest.fixture(scope="module")
def stats(demo_run) -> dict:
    return json.loads((demo_run[1] / "stats.json").read_text())


@pytest.fixture(scope="module")
def rendered(browser, demo_run):
    with opened(browser, demo_run[1] / "report.html") as shown:
        yield shown


def test_no_request_leaves_the_report(rendered):
    assert rendered.requests == []


def test_an_external_reference_is_caught(browser, demo_run, tmp_path):
    """The recorder above is shown able to fail: a copy of the report that loads from the web is caught."""
    page = (demo_run[1] / "report.html").read_text(encoding="utf-8")
    assert "</body>" in page
    copy = tmp_path / "report.html"
    copy.write_text(page.replace("</body>", "".join(EXTERNAL.values()) + "</body>", 1), encoding="utf-8")
    with opened(browser, copy) as shown:
        assert sorted(shown.requests) == sorted(EXTERNAL)


def test_no_console_errors(rendered):
    assert rendered.errors == []


def test_every_section_is_shown(rendered, stats):
    wanted = SECTIONS + (("tokens",) if stats.get("tokens") else ())
    assert [name for name in wanted if not rendered.page.locator(f"section#{name}").is_visible()] == []


def test_the_funnel_has_its_chart_and_a_row_per_stage(rendered, stats):
    page = rendered.page
    assert page.locator("section#funnel figure.chart#funnel-chart svg").count() == 1
    stages = page.eval_on_selector_all("section#funnel table#funnel-table tr[data-stage]",
                                       "rows => rows.map(row => row.dataset.stage)")
    assert stages == [entry["stage"] for entry in stats["funnel"]]


def test_every_chart_draws_at_a_visible_size(rendered):
    charts = rendered.page.eval_on_selector_all("figure.chart", f"""figures => figures.map(figure => {{
        const svg = figure.querySelector('svg'), box = svg ? svg.getBoundingClientRect() : {{width: 0, height: 0}};
        return {{name: figure.id || figure.dataset.column || '?', width: box.width, height: box.height,
                 marks: svg ? svg.querySelectorAll('{MARKS}').length : 0}};
    }})""")
    assert charts, "no figure.chart in the report"
    assert [chart for chart in charts if not (chart["width"] > 0 and chart["height"] > 0 and chart["marks"])] == []
    columns = rendered.page.eval_on_selector_all("section#histograms figure.chart[data-column]",
                                                 "figures => figures.map(figure => figure.dataset.column)")
    assert HISTOGRAM_COLUMNS <= set(columns), f"histograms shown: {columns}"


def test_every_image_is_inline_and_loaded(rendered):
    images = rendered.page.evaluate("""[...document.images].map(image => ({
        section: image.closest('section') ? image.closest('section').id : null, src: image.src.slice(0, 40),
        loading: image.loading, complete: image.complete, width: image.naturalWidth}))""")
    assert images, "no <img> in the report"
    assert [image for image in images if not image["src"].startswith("data:")] == []
    assert [image for image in images if not (image["complete"] and image["width"] > 0)] == [], \
        "images not loaded (loading=lazy ones below the fold never load in a headless page)"


def test_accepted_samples_show_jpeg_thumbnails(rendered):
    sources = rendered.page.eval_on_selector_all("section#accepted figure.sample",
                                                 "figures => figures.map(figure => figure.querySelector('img')?.src)")
    assert sources, "no figure.sample in section#accepted"
    assert [src[:40] for src in sources if not (src or "").startswith("data:image/jpeg;base64,")] == []


def test_rejects_have_one_group_per_reason_with_examples(rendered, stats):
    groups = rendered.page.eval_on_selector_all("section#rejects div.reason", """groups => groups.map(group =>
        [group.dataset.stage, group.dataset.reason, group.querySelectorAll('figure.reject, tr.reject').length])""")
    expected = {(entry["stage"], reason) for entry in stats["funnel"] for reason in entry["reasons"]}
    assert {(stage, reason) for stage, reason, _ in groups} == expected
    assert len(groups) == len(expected), "a reason shown twice"
    assert [group for group in groups if not group[2]] == [], "reasons without an example"


def test_hypernyms_show_a_table_or_say_none(rendered):
    section = rendered.page.locator("section#hypernyms")
    assert section.locator("table").count() or "none" in section.inner_text().lower()


def test_the_review_queue_is_in_ascending_score_order(rendered):
    rows = rendered.page.eval_on_selector_all("section#review table#review-queue tr[data-score]", """rows =>
        rows.map(row => [parseFloat(row.dataset.score), row.dataset.key, row.querySelectorAll('img').length])""")
    assert rows, "no rows in the review queue"
    assert [row for row in rows if not (row[1] and row[2])] == [], "rows without a key or an image"
    scores = [score for score, _, _ in rows]
    assert scores == sorted(scores)


def test_a_full_page_screenshot_is_kept(rendered, tmp_path):
    """For a person to look at: under pytest's tmp dir, and copied into $ALTCAP_SCREENSHOTS when set."""
    shot = tmp_path / "report.png"
    rendered.page.screenshot(path=shot, full_page=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    keep = os.environ.get("ALTCAP_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shot = Path(shutil.copy(shot, Path(keep) / shot.name))
    print(f"report screenshot: {shot}")
