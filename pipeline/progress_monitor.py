"""Live progress of a run, the launcher's side: ``Monitor``, around ``pipeline.run()``, receives what the
workers send (``pipeline.progress``) and shows it: a live table on a terminal, else a ``progress:`` log
line every ``ALTCAP_PROGRESS_EVERY`` seconds (30) and one with the counts as they ended. A job whose
workers cannot reach it (Dataflow: ``run()`` returns while the job runs) gets the same line from the
job's metrics (``Monitor.wait``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import socket
import sys
import threading
import time
from collections import Counter, deque
from typing import Mapping

from pipeline.progress import ENV, IN, INPUTS_DONE, PASSED, SEND_EVERY_S, reset, shows

log = logging.getLogger("altcap")

EVERY_ENV = "ALTCAP_PROGRESS_EVERY"  # seconds between log lines when stderr is no terminal
DEFAULT_EVERY_S = 30.0
RATE_WINDOW_S = 10.0  # the live table's rates: records per second over the last seconds


@dataclasses.dataclass(frozen=True)
class Row:
    stage: str
    count: int  # records in
    passed: int | None
    rate: float | None  # records in per second, lately
    total: int | None = None  # the records it will take in, when known
    inputs: tuple[int, int] | None = None  # the source's input items: read to their end, of all

    def left_s(self) -> float | None:
        """Seconds until ``total`` at ``rate`` (none from the input items: they differ in size)."""
        if self.total is None or not self.rate or self.count >= self.total:
            return None
        return (self.total - self.count) / self.rate

    def bar(self) -> tuple[int, int, str] | None:
        """(done, of, what) where the end is known."""
        if self.inputs:
            return self.inputs[0], self.inputs[1], "inputs"
        return (self.count, self.total, "") if self.total else None


def rows(counts: Mapping[str, int], inputs: int | None = None, rates: Mapping[str, float] | None = None) -> list[Row]:
    """A row per stage seen, in funnel order. The records of the first shard step are known once it has
    begun: the stages before it are done then (shards wait for all of them; each bundle sends its counts
    as it ends), and their last one's passed went in. The source's input items are known from the start."""
    from filters.record import SOURCE
    from pipeline.funnel import stage_order
    from pipeline.steps import SHARD_STEPS

    entered = {name[:-len(IN)]: n for name, n in counts.items() if name.endswith(IN) and shows(name)}
    known = stage_order()
    order = [stage for stage in known if stage in entered] + sorted(set(entered) - set(known))
    first_step = next((stage for stage in order if stage in {step.stage for step in SHARD_STEPS}), None)
    rates = rates or {}
    found = []
    for index, stage in enumerate(order):
        row = Row(stage, entered[stage], counts.get(stage + PASSED), rates.get(stage + IN))
        if stage == SOURCE and inputs:
            row = dataclasses.replace(row, inputs=(counts.get(INPUTS_DONE, 0), inputs))
        elif stage == first_step and index and (before := counts.get(order[index - 1] + PASSED)):
            row = dataclasses.replace(row, total=before)
        found.append(row)
    return found


def _rate(rate: float) -> str:
    return f"{rate:.1f}/s" if rate < 100 else f"{rate:.0f}/s"


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


def progress_line(found: list[Row]) -> str:
    """``progress: source 26 read (1/1 inputs), text 24, download 12/19 (3.1/s, ~2 s left), ...``"""
    parts = []
    for row in found:
        if row.inputs:
            part = f"{row.stage} {row.count} read ({row.inputs[0]}/{row.inputs[1]} inputs)"
        else:
            part = f"{row.stage} {row.count}" + (f"/{row.total}" if row.total else "")
        details = [_rate(row.rate)] if row.rate else []
        if (left := row.left_s()) is not None:
            details.append(f"~{_duration(left)} left")
        parts.append(part + (f" ({', '.join(details)})" if details else ""))
    return "progress: " + ", ".join(parts)


def progress_table(found: list[Row], title: str):
    """The live table: stage, in, passed, rate, a bar where the end is known, and the time left."""
    from rich.progress_bar import ProgressBar
    from rich.table import Table

    table = Table(title=title, title_justify="left", box=None, padding=(0, 1),
                  caption=None if found else "the workers start...", caption_justify="left")
    for header in ("stage", "in", "passed", "rate", "", "", "left"):
        table.add_column(header, justify="left" if header in ("stage", "") else "right")
    for row in found:
        bar, left = row.bar(), row.left_s()
        table.add_row(row.stage, str(row.count), "" if row.passed is None else str(row.passed),
                      _rate(row.rate) if row.rate else "",
                      ProgressBar(total=bar[1], completed=min(bar[0], bar[1]), width=24) if bar else "",
                      f"{bar[0]}/{bar[1]} {bar[2]}".rstrip() if bar else "",
                      "" if left is None else _duration(left))
    return table


def metrics_line(query: Mapping) -> str | None:
    """The progress line from a job's metrics query (``result.metrics().query()``), by the attempted
    values of its ``STAGE|in`` and ``STAGE|passed`` counters; None when it holds none."""
    from pipeline.metrics import NAMESPACE

    counts: Counter = Counter()
    for item in query.get("counters", ()):
        if item.key.metric.namespace == NAMESPACE and shows(item.key.metric.name):
            counts[item.key.metric.name] += item.attempted or 0
    found = rows(counts)
    return progress_line(found) if found else None


class Rates:
    """Per counter, what it went up by per second over the last ``window_s`` seconds; only for the
    counters that moved in the last ``recent_s`` (a stage that is done has no rate)."""

    def __init__(self, window_s: float, recent_s: float | None = None):
        self.window_s = window_s
        self.recent_s = window_s if recent_s is None else recent_s
        self.samples: deque[tuple[float, dict]] = deque()
        self.moved: dict[str, float] = {}

    def add(self, now: float, counts: Mapping[str, int]) -> dict[str, float]:
        last = self.samples[-1][1] if self.samples else {}
        self.moved.update({name: now for name, n in counts.items() if n != last.get(name, 0)})
        self.samples.append((now, dict(counts)))
        while len(self.samples) > 2 and self.samples[1][0] <= now - self.window_s:
            self.samples.popleft()
        (then, before), (now, after) = self.samples[0], self.samples[-1]
        if now <= then:
            return {}
        return {name: (n - before.get(name, 0)) / (now - then) for name, n in after.items()
                if now - self.moved.get(name, now) <= self.recent_s}


class Monitor:
    """The run's progress as its workers send it, shown while ``pipeline.run()`` runs inside it: on a
    terminal (``stream``) a live table, with log lines printed above it; otherwise a line every
    ``every_s`` seconds (``ALTCAP_PROGRESS_EVERY``, else 30) and the counts as they ended."""

    def __init__(self, inputs: int, *, every_s: float | None = None, stream=None):
        self.inputs = inputs
        self.every_s = every_s if every_s is not None else float(os.environ.get(EVERY_ENV) or DEFAULT_EVERY_S)
        self.stream = stream if stream is not None else sys.stderr
        self.counts: Counter = Counter()
        self.logged: dict[str, int] = {}  # the counts of the last line
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.started = time.monotonic()
        self.socket: socket.socket | None = None
        self.live = None
        self.threads: list[threading.Thread] = []
        self.rerouted: list[logging.StreamHandler] = []

    def __enter__(self) -> Monitor:
        try:
            self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.socket.bind(("127.0.0.1", 0))
        except OSError as err:  # no loopback here: the run goes on without a display
            log.debug("no progress display: %s", err)
            self.socket = None
            return self
        self.socket.settimeout(0.2)
        self.previous = os.environ.get(ENV)
        os.environ[ENV] = f"127.0.0.1:{self.socket.getsockname()[1]}"
        reset()  # in-process workers (in_memory, LOOPBACK) send there too
        self.threads.append(threading.Thread(target=self._receive, name="altcap-progress-in", daemon=True))
        if getattr(self.stream, "isatty", lambda: False)():
            self._start_live()
        else:
            self.threads.append(threading.Thread(target=self._log_every, name="altcap-progress-log", daemon=True))
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, failed, *_) -> None:
        if self.socket is None:
            return
        reset()
        if self.previous is None:
            os.environ.pop(ENV, None)
        else:
            os.environ[ENV] = self.previous
        self.stopped.set()
        for thread in self.threads:
            thread.join()
        self._drain()  # the workers have ended: what they sent is in the socket's buffer
        self.socket.close()
        if self.live is not None:
            self.live.refresh()
            self.live.stop()
            for handler in self.rerouted:
                handler.setStream(self.stream)
        elif failed is None and self.counts and self.counts != self.logged:
            log.info(progress_line(rows(self.snapshot(), self.inputs)))

    def snapshot(self) -> dict[str, int]:
        with self.lock:
            return dict(self.counts)

    def wait(self, result):
        """``result.wait_until_finish()``; for a job that runs elsewhere and sends nothing here, a line
        from its metrics every ``every_s`` seconds while it runs (best effort: none if they cannot be read)."""
        from apache_beam.runners.portability.portable_runner import PipelineResult as PortableResult
        from apache_beam.runners.runner import PipelineState

        # a portable job's metrics are read once and kept: reading them early would lose the funnel
        if PipelineState.is_terminal(result.state) or isinstance(result, PortableResult):
            return result.wait_until_finish()
        while True:
            try:
                state = result.wait_until_finish(duration=int(self.every_s * 1000))
            except NotImplementedError:  # a runner that cannot wait a while
                return result.wait_until_finish()
            if state is None or PipelineState.is_terminal(state):
                return state
            if not self.snapshot() and (line := self._job_line(result)):
                log.info(line)

    @staticmethod
    def _job_line(result) -> str | None:
        try:
            return metrics_line(result.metrics().query())
        except Exception as err:  # noqa: BLE001 - any runner's failure to tell mid-run means: say nothing
            log.debug("no progress from the job's metrics: %s", err)
            return None

    def _add(self, datagram: bytes) -> None:
        try:
            deltas = json.loads(datagram)
            with self.lock:
                for name, n in deltas.items():
                    if isinstance(name, str) and isinstance(n, int):
                        self.counts[name] += n
        except (ValueError, AttributeError):  # not ours: ignored
            pass

    def _receive(self) -> None:
        while not self.stopped.is_set():
            try:
                self._add(self.socket.recv(65536))
            except (TimeoutError, socket.timeout):
                continue
            except OSError:
                return

    def _drain(self) -> None:
        self.socket.setblocking(False)
        with contextlib.suppress(BlockingIOError, OSError):
            while True:
                self._add(self.socket.recv(65536))

    def _log_every(self) -> None:
        rates = Rates(self.every_s)
        while not self.stopped.wait(self.every_s):
            counts = self.snapshot()
            moving = rates.add(time.monotonic(), counts)
            if counts != self.logged:  # a run that waits says so once
                self.logged = counts
                log.info(progress_line(rows(counts, self.inputs, moving)))

    def _start_live(self) -> None:
        from rich.console import Console
        from rich.file_proxy import FileProxy
        from rich.live import Live

        rates = Rates(RATE_WINDOW_S, recent_s=2 * SEND_EVERY_S)

        def render():
            counts, elapsed = self.snapshot(), _duration(time.monotonic() - self.started)
            if self.stopped.is_set():  # the counts as they ended
                return progress_table(rows(counts, self.inputs), f"altcap run, {elapsed}: done")
            return progress_table(rows(counts, self.inputs, rates.add(time.monotonic(), counts)),
                                  f"altcap run, {elapsed}")

        console = Console(file=self.stream)
        self.live = Live(get_renderable=render, console=console, refresh_per_second=4, redirect_stdout=False,
                         redirect_stderr=self.stream is sys.stderr)
        self.live.start()
        # log lines print above the table: the handlers that write to the terminal write through the console
        proxy = FileProxy(console, self.stream)
        self.rerouted = [handler for handler in logging.getLogger().handlers
                         if type(handler) is logging.StreamHandler and handler.stream is self.stream]
        for handler in self.rerouted:
            handler.setStream(proxy)
