"""Beam Metrics counters for the funnel (namespace ``altcap``)."""

from __future__ import annotations

from apache_beam.metrics import Metrics

NAMESPACE = "altcap"
_counters: dict = {}


def count(name: str, n: int = 1) -> None:
    counter = _counters.get(name)
    if counter is None:
        counter = _counters[name] = Metrics.counter(NAMESPACE, name)
    counter.inc(n)


def counters_of(result) -> dict[str, int]:
    """Committed counter values of a finished pipeline, by name."""
    query = result.metrics().query()
    totals: dict[str, int] = {}
    for item in query["counters"]:
        if item.key.metric.namespace == NAMESPACE:
            value = item.committed if item.committed is not None else item.attempted
            totals[item.key.metric.name] = totals.get(item.key.metric.name, 0) + value
    return totals
