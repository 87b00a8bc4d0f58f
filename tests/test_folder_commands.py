"""The commands that look at a finished output folder (issue 20): ``altcap stats`` prints the funnel of
stats.json, ``altcap report`` writes report.html again, ``altcap ls`` lists the keys rejected for a
reason, ``altcap inspect`` prints one record and writes its image; and every command's ``--help``
ends with an example."""

from __future__ import annotations

import json

import pytest

from crawl.serve import Route
from pipeline.cli import EXAMPLES, main, parser

from pipeline_helpers import PERMISSIVE, jpeg, reject_rows, run_local, serve, shard_rows, tar_samples


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A run with samples and rejects of two reasons (a missing image, an image too small)."""
    root = tmp_path_factory.mktemp("folder")
    routes = {f"/{n}.jpg": Route(jpeg(300 + n, 240, (40 * n, 90, 160))) for n in range(4)}
    routes["/tiny.jpg"] = Route(jpeg(8, 8))
    with serve(routes) as site:
        listing = root / "l.tsv"
        listing.write_text("".join(f"photo {path}\t{site.url(path)}\n" for path in [*routes, "/gone.jpg"]))
        stats = run_local([listing], root / "out", *PERMISSIVE, "image.min_side=100", site.connect_to)
    return root / "out", stats


def test_stats_prints_the_funnel_of_stats_json(finished, capsys):
    out, stats = finished
    assert main(["stats", str(out)]) == 0
    printed = capsys.readouterr().out
    for entry in stats["funnel"]:
        assert any(line.split()[:4] == [entry["stage"], str(entry["in"]), str(entry["passed"]), str(entry["rejected"])]
                   for line in printed.splitlines())
    assert f"{stats['samples']} samples in {stats['shards']} shard(s)" in printed
    assert main(["stats", str(out.parent / "nothing")]) == 2
    assert "no finished run" in capsys.readouterr().err


def test_report_is_written_again(finished, capsys):
    out, _ = finished
    (out / "report.html").unlink()
    assert main(["report", str(out)]) == 0
    assert "report.html" in capsys.readouterr().out and "<h2>Funnel</h2>" in (out / "report.html").read_text()


def test_ls_lists_the_keys_of_a_reason_and_counts_them_all(finished, capsys):
    out, _ = finished
    rejects = reject_rows(out)
    assert main(["ls", str(out)]) == 0
    counts = dict(line.split("\t")[::-1] for line in capsys.readouterr().out.splitlines())
    assert {reason: int(n) for reason, n in counts.items()} == {
        reason: sum(row["reason"] == reason for row in rejects) for reason in {row["reason"] for row in rejects}}
    assert main(["ls", str(out), "--reason", "http_404"]) == 0
    listed = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    assert [(key, stage) for key, stage, _ in listed] == [(row["key"], row["stage"]) for row in rejects
                                                          if row["reason"] == "http_404"] and listed
    assert main(["ls", str(out), "--reason", "no_such_reason"]) == 1
    assert "http_404" in capsys.readouterr().err


def test_inspect_prints_a_sample_and_writes_its_image_or_prints_a_reject(finished, tmp_path, capsys):
    out, _ = finished
    sample = shard_rows(out)[0]
    assert main(["inspect", str(out), "--key", sample["key"], "--into", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert json.loads(printed[:printed.rindex("}") + 1])["url"] == sample["url"]
    assert (tmp_path / f"{sample['key']}.jpg").read_bytes() == tar_samples(out)[sample["key"]]["jpg"]
    reject = next(row for row in reject_rows(out) if row["reason"] == "too_small")
    assert main(["inspect", str(out), "--key", reject["key"]]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["stage"], shown["reason"]) == ("image", "too_small")
    assert main(["inspect", str(out), "--key", "0" * 20]) == 2
    assert "no sample or reject" in capsys.readouterr().err


def test_every_command_shows_an_example(capsys):
    commands = next(action for action in parser()._actions if hasattr(action, "choices") and action.choices)
    assert set(commands.choices) == set(EXAMPLES)
    for name in EXAMPLES:
        with pytest.raises(SystemExit):
            main([name, "--help"])
        assert f"example:\n  {EXAMPLES[name]}" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "examples:\n  altcap demo" in capsys.readouterr().out
