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


# A shard writer that loses its reject rows: the stages counted the reject, but the job's tally of
# the files it wrote (written.json) finds none; the run must say so.
LOSE_REJECT_ROWS = """
import sys

import dataset.writer
from pipeline.cli import main

write_parquet = dataset.writer.write_parquet


def losing_reject_rows(path, rows, schema):
    return write_parquet(path, [] if "/rejects/shard-" in path else rows, schema)


dataset.writer.write_parquet = losing_reject_rows
sys.exit(main(["run", "--input", sys.argv[1], "--output", sys.argv[2], "--direct_running_mode=in_memory",
               "--set", "download.allow_private_addresses=true", "--set", "text.preset=laion",
               "--set", sys.argv[3]]))
"""


def test_lost_reject_rows_fail_the_run_with_exit_status_3(tmp_path):
    import json
    import subprocess
    import sys

    from crawl.serve import Route

    from pipeline_helpers import jpeg, serve

    with serve({"/big.jpg": Route(jpeg(500, 450)), "/small.jpg": Route(jpeg(100, 100))}) as site:
        listing = tmp_path / "l.tsv"
        listing.write_text(f"a big photo\t{site.url('/big.jpg')}\na small photo\t{site.url('/small.jpg')}\n")
        done = subprocess.run([sys.executable, "-c", LOSE_REJECT_ROWS, str(listing), str(tmp_path / "out"),
                               site.connect_to], capture_output=True, text=True, timeout=300)
    assert done.returncode == 3, done.stderr
    message = "altcap: accounting check FAILED: records do not add up: 0 rows in rejects/ but the stages rejected 1"
    assert message in done.stderr
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert stats["check"] == {"ok": False, "problems": ["0 rows in rejects/ but the stages rejected 1"]}
    assert "FAILED: 0 rows in rejects/" in (tmp_path / "out" / "report.html").read_text()
