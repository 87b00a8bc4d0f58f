"""Beam Metrics counters for the funnel (namespace ``altcap``), and the helpers that count a
stage's verdicts.

A stage counts with counters named ``STAGE|in``, ``STAGE|passed`` and ``STAGE|rejected|REASON``.
"""

from __future__ import annotations

import apache_beam as beam
from apache_beam.metrics import Metrics

from filters.record import is_rejected

NAMESPACE = "altcap"
SEP = "|"
REJECTED = "rejected"  # the tagged output that carries a stage's rejects
RETRY = "retry"  # ``RETRY|retried``, ``|recovered``, ``|refetched``: what ``--retry-failed`` ran again
_counters: dict = {}


def counter_name(stage: str, what: str, reason: str | None = None) -> str:
    return SEP.join((stage, what, reason) if reason else (stage, what))


def count(name: str, n: int = 1) -> None:
    counter = _counters.get(name)
    if counter is None:
        counter = _counters[name] = Metrics.counter(NAMESPACE, name)
    counter.inc(n)


def count_stage(stage: str, entered: int, rejected: dict[str, int]) -> None:
    """A stage's counts at once: ``entered`` records, ``rejected`` by reason, the rest passed."""
    count(counter_name(stage, "in"), entered)
    count(counter_name(stage, "passed"), entered - sum(rejected.values()))
    for reason, n in rejected.items():
        if n:
            count(counter_name(stage, "rejected", reason), n)


def count_verdict(stage: str, outcome: dict) -> dict:
    """Count one record that went through ``stage``: passed, or rejected with its reason."""
    count(counter_name(stage, "in"))
    if is_rejected(outcome):
        count(counter_name(stage, "rejected", outcome["reason"]))
    else:
        count(counter_name(stage, "passed"))
    return outcome


class CountedStage(beam.PTransform):
    """A Beam stage whose funnel is counted around it: ``inner`` turns records into ``kept`` and
    ``rejected`` outputs (its verdicts, possibly over several transforms) and counts nothing."""

    def __init__(self, stage: str, inner: beam.PTransform):
        super().__init__()
        self.stage = stage
        self.inner = inner

    def expand(self, records):
        stage = self.stage

        def entered(record):
            count(counter_name(stage, "in"))
            return record

        def passed(record):
            count(counter_name(stage, "passed"))
            return record

        def rejected(record):
            count(counter_name(stage, "rejected", record["reason"]))
            return record

        verdicts = records | "CountIn" >> beam.Map(entered) | "Verdicts" >> self.inner
        return {"kept": verdicts["kept"] | "CountPassed" >> beam.Map(passed),
                REJECTED: verdicts[REJECTED] | "CountRejected" >> beam.Map(rejected)}


def counters_of(result) -> dict[str, int]:
    """Committed counter values of a finished pipeline, by name."""
    query = result.metrics().query()
    totals: dict[str, int] = {}
    for item in query["counters"]:
        if item.key.metric.namespace == NAMESPACE:
            value = item.committed if item.committed is not None else item.attempted
            totals[item.key.metric.name] = totals.get(item.key.metric.name, 0) + value
    return totals
