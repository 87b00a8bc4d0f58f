"""The funnel: per-stage counts of records in, passed and rejected (by reason), and its check.

Stages count with Beam Metrics counters (``pipeline.metrics``). At the end of a run the counters
are checked against each other and against the rows actually written: records in = passed +
rejected at every stage, each stage receives what the previous one passed, and the files hold
exactly the samples and rejects counted.
"""

from __future__ import annotations

from collections import defaultdict

from filters.record import SOURCE
from pipeline import passes, steps
from pipeline.metrics import SEP
from pipeline.stages import URL_DEDUP
from pipeline.text_stage import TEXT


def stage_order() -> tuple[str, ...]:
    """Stage names in pipeline order, which the funnel in stats.json follows: the stages before the
    shards, the in-shard steps, the whole-run passes."""
    return ((SOURCE, TEXT, URL_DEDUP) + tuple(step.stage for step in steps.SHARD_STEPS)
            + tuple(each.stage for each in passes.PASSES))


class AccountingError(RuntimeError):
    """Records were lost or double-counted: the run's numbers do not add up."""


def funnel_from_counters(counters: dict[str, int]) -> list[dict]:
    """Stages in pipeline order, each {stage, in, passed, rejected, reasons}."""
    stages: dict[str, dict] = defaultdict(lambda: {"in": 0, "passed": 0, "reasons": {}})
    for name, value in counters.items():
        parts = name.split(SEP)
        if len(parts) == 2 and parts[1] in ("in", "passed"):
            stages[parts[0]][parts[1]] += value
        elif len(parts) == 3 and parts[1] == "rejected":
            stages[parts[0]]["reasons"][parts[2]] = value
    known = stage_order()
    order = [s for s in known if s in stages] + sorted(s for s in stages if s not in known)
    funnel = []
    for stage in order:
        entry = stages[stage]
        reasons = dict(sorted(entry["reasons"].items(), key=lambda kv: (-kv[1], kv[0])))
        funnel.append({"stage": stage, "in": entry["in"], "passed": entry["passed"],
                       "rejected": sum(reasons.values()), "reasons": reasons})
    return funnel


def check_funnel(funnel: list[dict], *, samples_written: int, rejects_written: int) -> list[str]:
    """Every way the numbers fail to add up, as sentences (empty when all is well)."""
    problems = []
    for entry in funnel:
        if entry["in"] != entry["passed"] + entry["rejected"]:
            problems.append(f"stage {entry['stage']}: {entry['in']} in != {entry['passed']} passed "
                            f"+ {entry['rejected']} rejected")
    for before, after in zip(funnel, funnel[1:]):
        if after["in"] != before["passed"]:
            problems.append(f"stage {after['stage']} received {after['in']} records but stage "
                            f"{before['stage']} passed {before['passed']}")
    final = funnel[-1]["passed"] if funnel else 0
    if samples_written != final:
        problems.append(f"{samples_written} samples in the shards but the last stage passed {final}")
    rejected = sum(entry["rejected"] for entry in funnel)
    if rejects_written != rejected:
        problems.append(f"{rejects_written} rows in rejects/ but the stages rejected {rejected}")
    return problems
