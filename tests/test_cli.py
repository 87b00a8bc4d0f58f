"""The `altcap` command: user errors end in one line and exit status 2; a run prints its funnel."""

from __future__ import annotations

import json
import os
import subprocess

import numpy as np
import yaml

from crawl.serve import LocalServer, Route
from pipeline.config import Config, load_config

from conftest import ALTCAP
from pipeline_helpers import jpeg


def altcap(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([ALTCAP, *args], capture_output=True, text=True, cwd=cwd, timeout=300)


def one_line_error(done: subprocess.CompletedProcess, fragment: str) -> None:
    assert done.returncode == 2, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("altcap: error:")]
    assert len(errors) == 1 and fragment in errors[0], done.stderr
    assert "Traceback" not in done.stderr


def test_missing_input(tmp_path):
    one_line_error(altcap("run", "--input", str(tmp_path / "nope*.tsv"), "--output",
                          str(tmp_path / "out")), "no input file matches")


def test_unknown_kind_and_arc_files(tmp_path):
    (tmp_path / "list.xyz").write_text("x")
    one_line_error(altcap("run", "--input", str(tmp_path / "list.xyz"), "--output",
                          str(tmp_path / "out")), "--input-format")
    (tmp_path / "old.arc.gz").write_bytes(b"")
    one_line_error(altcap("run", "--input", str(tmp_path / "old.arc.gz"), "--output",
                          str(tmp_path / "out")), "ARC files are not supported")


def test_bad_setting_and_bad_columns(tmp_path):
    (tmp_path / "l.csv").write_text("link,words\nhttp://x.org/a.jpg,hi\n")
    one_line_error(altcap("run", "--input", str(tmp_path / "l.csv"), "--output", str(tmp_path / "o"),
                          "--set", "image.min_sides=3"), "unknown key image.min_sides")
    one_line_error(altcap("run", "--input", str(tmp_path / "l.csv"), "--output", str(tmp_path / "o"),
                          "--set", "input.url_column=src"), "no image URL column 'src'")


def test_config_prints_every_default_as_loadable_yaml(tmp_path):
    done = altcap("config")
    assert done.returncode == 0
    path = tmp_path / "c.yaml"
    path.write_text(done.stdout)
    assert yaml.safe_load(done.stdout)["image"]["min_side"] == 401
    assert load_config(str(path)) == Config()


def test_run_prints_the_funnel_and_resume_with_other_settings_is_refused(tmp_path):
    with LocalServer({"/a.jpg": Route(jpeg(640, 480)), "/b.jpg": Route(jpeg(300, 300))}) as server:
        (tmp_path / "l.tsv").write_text(f"A red barn in a green field.\t{server.url('/a.jpg')}\n"
                                        f"A small red barn beside a road.\t{server.url('/b.jpg')}\n"
                                        f"IMG_2345.jpg\t{server.url('/c.jpg')}\n")
        args = ["run", "--input", str(tmp_path / "l.tsv"), "--output", str(tmp_path / "out"),
                "--set", "download.allow_private_addresses=true"]
        done = altcap(*args)
    assert done.returncode == 0, done.stderr
    assert "1 samples in 1 shard(s)" in done.stdout
    assert "file_name 1" in done.stdout and "too_small 1" in done.stdout and "(ok," in done.stdout
    one_line_error(altcap(*args, "--set", "resize.image_size=64"), "resize.image_size")


def test_a_killed_run_resumes_without_duplicates_or_gaps(tmp_path):
    import signal
    import time

    from pipeline_helpers import TEXT_RULES_OFF, serve, shard_rows

    routes = {f"/{i}.jpg": Route(jpeg(420 + i, 430, (i, 4 * i, 0)), delay=0.1) for i in range(40)}
    with serve(routes) as site:
        server = site.server
        (tmp_path / "l.tsv").write_text("".join(f"red square {i}\t{site.url(f'/{i}.jpg')}\n"
                                                for i in range(40)))
        args = [ALTCAP, "run", "--input", str(tmp_path / "l.tsv"), "--output", str(tmp_path / "out"),
                *(arg for setting in TEXT_RULES_OFF + [site.connect_to] for arg in ("--set", setting)),
                "--set", "download.allow_private_addresses=true", "--set", "download.threads=2",
                "--set", "shards.samples_per_shard=5", "--direct_running_mode=in_memory"]
        process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   start_new_session=True)
        deadline = time.time() + 120
        while time.time() < deadline and len(list((tmp_path / "out" / "shards").glob("*_stats.json"))) < 2:
            time.sleep(0.05)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        markers = list((tmp_path / "out" / "shards").glob("*_stats.json"))
        assert 2 <= len(markers) < 8 and not (tmp_path / "out" / "stats.json").exists()
        kept = sum(json.loads(m.read_text())["records"] for m in markers)
        fetched_before = sum(server.requests.values())
        server.requests.clear()
        done = subprocess.run(args, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        refetched = sum(server.requests.values())
    assert refetched == 40 - kept  # finished shards were not downloaded again
    assert fetched_before + refetched >= 40
    keys = [r["key"] for r in shard_rows(tmp_path / "out")]
    assert len(keys) == len(set(keys)) == 40
    assert not list((tmp_path / "out").rglob("*.tmp-*"))


TRY_TEXTS = ["A man riding a wave on top of a surfboard.", "IMG_2345.jpg", "Un chien sur la plage",
             "Nike Air Max 90 Running Shoes White Black Red", "click to enlarge picture"]


def test_text_command_gives_one_json_verdict_per_line(tmp_path):
    done = subprocess.run([ALTCAP, "text", "-"], input="\n".join(TRY_TEXTS) + "\n", capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    verdicts = [json.loads(line) for line in done.stdout.splitlines()]
    assert [v["text"] for v in verdicts] == TRY_TEXTS
    assert set(verdicts[0]) == {"text", "pass", "reason", "detail", "caption", "lang", "lang_score"}
    assert [v["pass"] for v in verdicts] == [True, False, False, False, False]
    assert [v["reason"] for v in verdicts] == [None, "file_name", "language", "title_case", "boilerplate"]
    assert verdicts[0]["lang"] == "en" and 0 < verdicts[0]["lang_score"] <= 1
    assert verdicts[2]["lang"] == "fr"
    assert "cc3m: 1 of 5 passed" in done.stderr

    (tmp_path / "captions.txt").write_text("\n".join(TRY_TEXTS) + "\n", encoding="utf-8")
    laion = altcap("text", "--preset", "laion", str(tmp_path / "captions.txt"))
    assert [json.loads(line)["pass"] for line in laion.stdout.splitlines()] == [True, True, True, True, False]
    stricter = altcap("text", "--set", "text.min_words=12", str(tmp_path / "captions.txt"))
    assert json.loads(stricter.stdout.splitlines()[0])["reason"] == "too_few_words"


def test_text_command_errors_and_rules(tmp_path):
    one_line_error(altcap("text", str(tmp_path / "none.txt")), "cannot read")
    one_line_error(altcap("text", "--set", "text.required_words=noun,verbs", "-"), "required_words")
    one_line_error(altcap("text", "--set", "text.lang_model=/no/model.ftz", "-"), "lang_model")
    rules = altcap("text", "--rules", "--preset", "cc12m")
    assert rules.returncode == 0 and "max_word_repetition: 0.2" in rules.stdout


def test_resuming_onto_shards_of_other_records_ends_with_one_clear_line(tmp_path):
    """The input edited in place (same size, so the run's fingerprint still matches): the finished
    shard's records differ, which a worker finds; the run ends with that as a user error."""
    from pipeline_helpers import serve

    with serve({"/a.jpg": Route(jpeg(500, 450))}) as site:
        listing = tmp_path / "l.tsv"
        listing.write_text(f"a big photo\t{site.url('/a.jpg')}\n")
        args = ["run", "--input", str(listing), "--output", str(tmp_path / "out"), "--set", "text.preset=laion",
                "--set", "download.allow_private_addresses=true", "--set", site.connect_to]
        assert altcap(*args).returncode == 0
        listing.write_text(f"a bog photo\t{site.url('/a.jpg')}\n")
        done = altcap(*args)  # the default runner: the error comes back from a worker process
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines()[-1] == (
        f"altcap: error: {tmp_path / 'out' / 'shards' / '00000_stats.json'} was written for other input records; "
        "the output folder holds a different run (use a new --output or --overwrite)")


def test_the_demo_runs_offline_end_to_end(demo_run):
    done, folder = demo_run
    stats = json.loads((folder / "stats.json").read_text())
    funnel = {e["stage"]: (e["in"], e["passed"], e["rejected"]) for e in stats["funnel"]}
    assert funnel == {"source": (26, 24, 2), "text": (24, 20, 4), "url_dedup": (20, 19, 1), "download": (19, 17, 2),
                      "image": (17, 11, 6), "clip": (11, 11, 0), "hypernymize": (11, 11, 0), "tokens": (11, 11, 0),
                      "clip_top": (11, 11, 0), "image_dedup": (11, 10, 1)}
    assert stats["clip"]["filtering"] is False  # offline: no weights, nothing dropped for a score
    assert "10 samples in 3 shard(s)" in done.stdout and "report for a person" in done.stdout
    terminal = done.stdout + done.stderr
    assert "Traceback" not in terminal and "ERROR" not in terminal, terminal  # CLIP's missing weights: one line
    assert terminal.count("scores are random and no pair was dropped") == 1
    assert "NO WEIGHTS" in (folder / "report.html").read_text()
    assert (folder / "input" / "gallery.warc.gz").exists()
    tokens = [np.load(path) for path in sorted((folder / "tokens").glob("*.npy"))]
    assert sum(map(len, tokens)) == 10 and tokens[0]["image_codes"].shape[1:] == (32 * 32,)  # f8 at 256 px
    assert stats["tokens"]["grid"] == 32 and "tokens show" in done.stdout
