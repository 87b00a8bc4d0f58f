"""Beam Metrics counters for the funnel (namespace ``altcap``), and the helpers that count a
stage's verdicts.

A stage counts with counters named ``STAGE|in``, ``STAGE|passed`` and ``STAGE|rejected|REASON``; the
first two tick the run's live progress too (``pipeline.progress``).
"""

from __future__ import annotations

import apache_beam as beam
from apache_beam.metrics import Metrics

from filters.record import is_rejected
from pipeline import progress

NAMESPACE = "altcap"
SEP = "|"
REJECTED = "rejected"  # the tagged output that carries a stage's rejects
RETRY = "retry"  # ``RETRY|retried``, ``|recovered``, ``|refetched``: what ``--retry-failed`` ran again
_counters: dict = {}  # name -> (Beam counter, whether progress shows it)


def counter_name(stage: str, what: str, reason: str | None = None) -> str:
    return SEP.join((stage, what, reason) if reason else (stage, what))


def count(name: str, n: int = 1) -> None:
    found = _counters.get(name)
    if found is None:
        found = _counters[name] = (Metrics.counter(NAMESPACE, name), progress.shows(name))
    counter, shown = found
    counter.inc(n)
    if shown:
        progress.tick(name, n)


def count_stage(stage: str, entered: int, rejected: dict[str, int]) -> None:
    """A stage's counts at once: ``entered`` records, ``rejected`` by reason, the rest passed."""
    count(counter_name(stage, "in"), entered)
    count(counter_name(stage, "passed"), entered - sum(rejected.values()))
    for reason, n in rejected.items():
        if n:
            count(counter_name(stage, "rejected", reason), n)
    progress.flush()  # a shard's counts: shown now


def count_verdict(stage: str, outcome: dict) -> dict:
    """Count one record that went through ``stage``: passed, or rejected with its reason."""
    count(counter_name(stage, "in"))
    if is_rejected(outcome):
        count(counter_name(stage, "rejected", outcome["reason"]))
    else:
        count(counter_name(stage, "passed"))
    return outcome


class _Count(beam.DoFn):
    """Counts each record under the stage's counter ``what`` (a reject: under its reason too); the
    progress a bundle ticked is sent as it ends, so the stages after a shuffle see it complete."""

    def __init__(self, stage: str, what: str):
        self.stage = stage
        self.what = what

    def process(self, record):
        count(counter_name(self.stage, self.what, record["reason"] if self.what == REJECTED else None))
        yield record

    def finish_bundle(self):
        progress.flush()


class CountedStage(beam.PTransform):
    """A Beam stage whose funnel is counted around it: ``inner`` turns records into ``kept`` and
    ``rejected`` outputs (its verdicts, possibly over several transforms) and counts nothing."""

    def __init__(self, stage: str, inner: beam.PTransform):
        super().__init__()
        self.stage = stage
        self.inner = inner

    def expand(self, records):
        verdicts = records | "CountIn" >> beam.ParDo(_Count(self.stage, "in")) | "Verdicts" >> self.inner
        return {"kept": verdicts["kept"] | "CountPassed" >> beam.ParDo(_Count(self.stage, "passed")),
                REJECTED: verdicts[REJECTED] | "CountRejected" >> beam.ParDo(_Count(self.stage, REJECTED))}


def counters_of(result) -> dict[str, int]:
    """Committed counter values of a finished pipeline, by name."""
    query = result.metrics().query()
    totals: dict[str, int] = {}
    for item in query["counters"]:
        if item.key.metric.namespace == NAMESPACE:
            value = item.committed if item.committed is not None else item.attempted
            totals[item.key.metric.name] = totals.get(item.key.metric.name, 0) + value
    return totals
