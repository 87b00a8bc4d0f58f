"""The `altcap` command: user errors end in one line and exit status 2; a run prints its funnel."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from crawl.serve import LocalServer, Route
from pipeline.config import Config, load_config

from pipeline_helpers import jpeg

ALTCAP = str(Path(sys.executable).parent / "altcap")


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
        (tmp_path / "l.tsv").write_text(f"a photo\t{server.url('/a.jpg')}\n"
                                        f"a small photo\t{server.url('/b.jpg')}\n")
        args = ["run", "--input", str(tmp_path / "l.tsv"), "--output", str(tmp_path / "out"),
                "--set", "download.allow_private_addresses=true"]
        done = altcap(*args)
    assert done.returncode == 0, done.stderr
    assert "1 samples in 1 shard(s)" in done.stdout
    assert "too_small 1" in done.stdout and "(ok," in done.stdout
    one_line_error(altcap(*args, "--set", "resize.image_size=64"), "resize.image_size")
