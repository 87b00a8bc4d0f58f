"""The funnel and its accounting check."""

from __future__ import annotations

from pipeline.funnel import check_funnel, funnel_from_counters
from pipeline.metrics import counter_name


def counters(**stages):
    out = {}
    for stage, (entered, passed, reasons) in stages.items():
        out[counter_name(stage, "in")] = entered
        out[counter_name(stage, "passed")] = passed
        for reason, n in reasons.items():
            out[counter_name(stage, "rejected", reason)] = n
    return out


def test_funnel_is_in_pipeline_order_with_reasons_by_count():
    funnel = funnel_from_counters(counters(
        image=(8, 5, {"too_small": 2, "aspect_ratio": 1}),
        source=(12, 10, {"empty_alt": 2}),
        download=(10, 8, {"http_404": 2})))
    assert [e["stage"] for e in funnel] == ["source", "download", "image"]
    assert funnel[2]["reasons"] == {"too_small": 2, "aspect_ratio": 1}
    assert funnel[2]["rejected"] == 3
    assert check_funnel(funnel, samples_written=5, rejects_written=7) == []


def test_check_finds_every_kind_of_loss():
    funnel = funnel_from_counters(counters(
        source=(12, 10, {"empty_alt": 1}),         # one record vanished inside the stage
        download=(9, 8, {"http_404": 1})))        # and one between stages
    problems = check_funnel(funnel, samples_written=7, rejects_written=1)
    assert any("stage source: 12 in != 10 passed + 1 rejected" in p for p in problems)
    assert any("stage download received 9 records but stage source passed 10" in p
               for p in problems)
    assert any("7 samples in the shards but the last stage passed 8" in p for p in problems)
    assert any("1 rows in rejects/ but the stages rejected 2" in p for p in problems)
