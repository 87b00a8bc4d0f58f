"""A run's live progress (issue 20): workers tick the funnel's counts to the launcher over UDP, which logs a
``progress:`` line every ALTCAP_PROGRESS_EVERY seconds when stderr is no terminal and one as the counts
ended, equal to the funnel's; a job that runs elsewhere gets the line from its metrics. Runs are quiet by
default: the per-shard lines come with --verbose, from worker processes too."""

from __future__ import annotations

import logging
import os
import re
import subprocess

import apache_beam as beam
from apache_beam.portability.api import beam_fn_api_pb2
from rich.console import Console

from crawl.serve import Route
from filters.record import SOURCE, new_record, reject
from pipeline import progress
from pipeline.cli import RELAY, WorkerLines
from pipeline.metrics import count, count_stage, count_verdict
from pipeline.progress_monitor import EVERY_ENV, Monitor, Rates, metrics_line, progress_line, progress_table, rows
from pipeline.shard_builder import reached

from conftest import ALTCAP
from pipeline_helpers import PERMISSIVE, jpeg, run_local, serve, stats_of

PROGRESS = re.compile(r"progress: (.*)$", re.MULTILINE)


def counts_of(line: str) -> dict[str, int]:
    """``{stage: records in}`` of a progress line."""
    return {stage: int(n) for stage, n in re.findall(r"(?:^|, )([a-z_]+) (\d+)", line.removeprefix("progress: "))}


def funnel_in(stats: dict) -> dict[str, int]:
    """The funnel's records in by stage (a stage nothing entered ticks nothing)."""
    return {entry["stage"]: entry["in"] for entry in stats["funnel"] if entry["in"]}


def site_routes() -> dict:
    routes = {f"/{n}.jpg": Route(jpeg(300 + n, 240, (30 * n, 90, 160))) for n in range(6)}
    routes["/slow.jpg"] = Route(jpeg(320, 250), delay=1.0)  # the run waits on it: progress lines come meanwhile
    routes["/tiny.jpg"] = Route(jpeg(8, 8))  # rejected by the image stage
    return routes


def listing(path, site) -> None:
    """Records every stage before the whole-run passes rejects some of: a file name for a caption (text),
    a line twice (url_dedup), a missing image (download), a tiny one (image)."""
    lines = [f"a photo of colour number {n}\t{site.url(f'/{n}.jpg')}" for n in range(6)]
    lines += [f"a photo that loads slowly\t{site.url('/slow.jpg')}", f"a very small photo\t{site.url('/tiny.jpg')}",
              f"a photo of colour number 0\t{site.url('/0.jpg')}", f"a photo that is gone\t{site.url('/gone.jpg')}",
              f"IMG_2345.jpg\t{site.url('/1.jpg')}"]
    path.write_text("".join(line + "\n" for line in lines))


def altcap_run(tmp_path, *flags: str) -> tuple[subprocess.CompletedProcess, dict]:
    """``altcap run`` as a user runs it (two worker processes), stderr no terminal, a progress line every 0.1 s."""
    with serve(site_routes()) as site:
        listing(tmp_path / "l.tsv", site)
        settings = ["download.allow_private_addresses=true", "download.retries=0", "shards.samples_per_shard=3",
                    *PERMISSIVE, "image.min_side=100", site.connect_to]
        done = subprocess.run([ALTCAP, "run", "--input", str(tmp_path / "l.tsv"), "--output", str(tmp_path / "out"),
                               *(arg for setting in settings for arg in ("--set", setting)),
                               "--direct_num_workers=2", *flags],
                              capture_output=True, text=True, timeout=300, env={**os.environ, EVERY_ENV: "0.1"})
    assert done.returncode == 0, done.stderr
    return done, stats_of(tmp_path / "out")


def test_a_run_logs_progress_lines_that_end_at_the_funnel_and_no_shard_lines(tmp_path):
    done, stats = altcap_run(tmp_path)
    lines = [counts_of(line) for line in PROGRESS.findall(done.stderr)]
    assert len(lines) >= 2, done.stderr  # while the slow image loads, and as the counts ended
    for before, after in zip(lines, lines[1:]):
        assert all(after.get(stage, 0) >= n for stage, n in before.items()), (before, after)
    assert lines[-1] == funnel_in(stats)
    assert funnel_in(stats) == {
        "source": 11, "text": 11, "url_dedup": 10, "download": 9, "image": 8, "image_dedup": 7}
    assert "shard 0" not in done.stderr and "candidates so far" not in done.stderr
    assert "funnel and check:" in done.stdout and "report for a person:" in done.stdout


def test_verbose_shows_the_worker_processes_shard_lines(tmp_path):
    done, stats = altcap_run(tmp_path, "--verbose")
    shard_lines = re.findall(r"^DEBUG worker: shard (\d+) done", done.stderr, re.MULTILINE)
    assert sorted(shard_lines) == [f"{n:05d}" for n in range(stats["shards"])], done.stderr
    assert counts_of(PROGRESS.findall(done.stderr)[-1]) == funnel_in(stats)


def test_in_process_workers_progress_ends_at_the_funnel(tmp_path, caplog, monkeypatch):
    monkeypatch.setenv(EVERY_ENV, "3600")  # only the line as the counts ended
    with serve(site_routes()) as site:
        listing(tmp_path / "l.tsv", site)
        with caplog.at_level(logging.INFO, logger="altcap"):
            stats = run_local([tmp_path / "l.tsv"], tmp_path / "out", *PERMISSIVE, "image.min_side=100",
                              "shards.samples_per_shard=3", site.connect_to)
    lines = [record.getMessage() for record in caplog.records if record.getMessage().startswith("progress:")]
    assert len(lines) == 1 and counts_of(lines[0]) == funnel_in(stats)
    assert os.environ.get(progress.ENV) is None


def test_counts_shown_ahead_are_not_shown_again_when_counted():
    with Monitor(inputs=1, every_s=3600) as monitor:
        progress.tick_ahead(("download|in", "download|passed"))
        progress.tick_ahead(("download|in",))
        progress.tick("download|in", 5)  # the shard's count: 2 of them were shown
        progress.tick("download|passed", 3)
        progress.tick(progress.INPUTS_DONE)
    assert monitor.snapshot() == {"download|in": 5, "download|passed": 3, progress.INPUTS_DONE: 1}


def test_without_a_monitor_ticks_go_nowhere():
    progress.reset()
    count("text|in", 4)
    progress.tick_ahead(("text|in",))
    progress.flush()
    assert progress._sender is None


def test_an_outcome_goes_through_the_steps_up_to_the_one_that_rejected_it():
    went_through = reached(("download", "image", "clip"))
    record = new_record("http://x/a.jpg", "a cat")
    assert went_through(record) == ("download|in", "download|passed", "image|in", "image|passed", "clip|in",
                                    "clip|passed")
    assert went_through(reject(dict(record), "image", "too_small")) == ("download|in", "download|passed", "image|in")
    assert went_through(reject(dict(record), "download", "http_404")) == ("download|in",)


def test_the_line_has_counts_in_funnel_order_with_the_ends_known():
    counts = {"download|in": 12, "download|passed": 10, "text|in": 24, "text|passed": 20, "source|in": 26,
              "source|passed": 24, "url_dedup|in": 20, "url_dedup|passed": 19, "image|in": 10, progress.INPUTS_DONE: 1}
    found = rows(counts, inputs=2, rates={"download|in": 3.5, "image|in": 0.5})
    assert progress_line(found) == ("progress: source 26 read (1/2 inputs), text 24, url_dedup 20, "
                                    "download 12/19 (3.5/s, ~2 s left), image 10 (0.5/s)")
    assert progress_line(rows({"text|in": 3, "download|in": 1})) == "progress: text 3, download 1"  # no end known
    assert progress_line(rows({"download|in": 1})) == "progress: download 1"


def test_the_live_table_shows_each_stage_with_its_bar_and_time_left():
    counts = {"source|in": 26, "source|passed": 24, progress.INPUTS_DONE: 1, "text|in": 24, "text|passed": 20,
              "download|in": 12}
    console = Console(record=True, width=100, color_system=None)
    console.print(progress_table(rows(counts, inputs=1, rates={"download|in": 2.0}), "altcap run, 3 s"))
    text = console.export_text()
    assert "altcap run, 3 s" in text and "1/1 inputs" in text
    assert re.search(r"download\s+12\s+2.0/s .* 12/20\s+4 s", text), text


def test_rates_are_for_counts_that_move():
    rates = Rates(window_s=10, recent_s=2)
    assert rates.add(0, {"a": 0, "b": 0}) == {}
    assert rates.add(1, {"a": 5, "b": 2}) == {"a": 5.0, "b": 2.0}
    assert rates.add(4, {"a": 20, "b": 2}) == {"a": 5.0}  # b has not moved for 3 s


def test_the_line_from_a_jobs_metrics():
    pipeline = beam.Pipeline(runner="DirectRunner")
    _ = (pipeline
         | beam.Create([new_record("http://x/a.jpg", "a cat"), new_record("http://x/b.jpg", "a dog"),
                        reject(new_record("", ""), SOURCE, "empty_url")])
         | beam.Map(lambda record: count_verdict(SOURCE, record))
         | beam.Filter(lambda record: "reason" not in record)
         | beam.combiners.Count.Globally()
         | beam.Map(lambda n: count_stage("text", n, {"too_short": 1})))
    result = pipeline.run()
    result.wait_until_finish()
    assert metrics_line(result.metrics().query()) == "progress: source 3, text 2"
    assert metrics_line({"counters": [], "distributions": []}) is None


def test_a_worker_process_line_is_shown_as_it_was_logged():
    def relayed(severity, message: str, location: str) -> logging.LogRecord:
        entry = beam_fn_api_pb2.LogEntry(severity=severity, message=message, log_location=location, thread="MainThread")
        entry.timestamp.seconds = 1
        return logging.getLogger(RELAY).makeRecord(RELAY, logging.INFO, __file__, 1, "Worker: %s",
                                                   (str(entry).replace("\n", " "),), None)

    shard = relayed(beam_fn_api_pb2.LogEntry.Severity.DEBUG, 'shard 00001 done: "café" 3 samples',
                    "/src/pipeline/shard_builder.py:141")
    assert WorkerLines(verbose=False).filter(shard)
    assert (shard.name, shard.getMessage()) == ("worker", 'shard 00001 done: "café" 3 samples')
    beams = relayed(beam_fn_api_pb2.LogEntry.Severity.WARN, "No semi_persistent_directory found",
                    "/venv/apache_beam/runners/worker/sdk_worker_main.py:421")
    beams.levelno = logging.WARNING
    assert not WorkerLines(verbose=False).filter(beams)
    assert WorkerLines(verbose=True).filter(beams)
    assert beams.getMessage() == "No semi_persistent_directory found"
