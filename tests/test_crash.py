"""Crash safety (issue 18): a run killed with SIGKILL at several points, each restarted with the same
command, finishes with what an uninterrupted run writes; a full disk and an output that cannot be
written end with one ``altcap: error:`` line and leave no half shard, and a rerun with room finishes alike.

The kill points are events seen in the output folder (the k-th shard marker, a shard tar under its
temporary name, Beam's temporary reject files, the whole-run pass's reject files, the run's tally),
picked by a seeded random generator, so which points are hit does not depend on the machine's speed.
Each run is the ``altcap`` command in worker processes; the whole process group is killed.
"""

from __future__ import annotations

import fnmatch
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pyarrow.parquet as pq
import pytest

from crawl.serve import Route

from pipeline_helpers import jpeg, local_config, serve

ALTCAP = str(Path(sys.executable).parent / "altcap")
WORKERS = ["--direct_running_mode=multi_processing", "--direct_num_workers=2"]
IMAGES = 44
COPIES = range(0, IMAGES, 4)  # served again under another URL: image dedup, a whole-run pass, drops them
SEED = 18


@dataclass
class Job:
    """The ``altcap run`` command of the test job for an output folder, and what it writes uninterrupted."""

    tsv: Path
    config: Path
    baseline: dict

    def command(self, out: Path) -> list[str]:
        return [ALTCAP, "run", "--input", str(self.tsv), "--output", str(out), "--config", str(self.config),
                *WORKERS]


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    """~60 candidates on a local server under a fixed host name: samples, a duplicate URL, a missing and
    a too small image (rejects before and in the shards), copies of images (dropped by image dedup), in
    shards of 4. Each image answers after 20 ms, so a shard's tar stays open under its temporary name."""
    folder = tmp_path_factory.mktemp("crash")
    images = {f"/{i}.jpg": jpeg(420 + i, 430, (5 * i, 3 * i, 90)) for i in range(IMAGES)}
    routes = {path: Route(body, delay=0.02) for path, body in images.items()}
    routes.update({f"/copy{i}.jpg": Route(images[f"/{i}.jpg"], delay=0.02) for i in COPIES})
    routes["/small.jpg"] = Route(jpeg(100, 100))
    with serve(routes) as site:
        lines = [f"red square {i}\t{site.url(f'/{i}.jpg')}" for i in range(IMAGES)]
        lines += [f"copy of square {i}\t{site.url(f'/copy{i}.jpg')}" for i in COPIES]
        lines += [f"tiny\t{site.url('/small.jpg')}", f"gone\t{site.url('/missing.jpg')}",
                  f"red square 3 again\t{site.url('/3.jpg')}"]
        tsv = folder / "list.tsv"
        tsv.write_text("\n".join(lines) + "\n")
        config = folder / "job.yaml"
        config.write_text(local_config(site.connect_to, "shards.samples_per_shard=4").to_yaml())
        job = Job(tsv, config, {})
        done = subprocess.run(job.command(folder / "baseline"), capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        job.baseline.update(contents(folder / "baseline"))
        yield job


def contents(out: Path) -> dict[str, object]:
    """Every file and folder under ``out``, comparable between runs: bytes, but the shard stats without
    their time, stats.json without its timings and folder, the tally and run.json parsed, the rows of
    rejects/pre/ (Beam names and orders its files) sorted, report.html (it shows timings) by name only."""
    found: dict[str, object] = {}
    early_rejects = []
    for path in sorted(out.rglob("*")):
        name = path.relative_to(out).as_posix()
        if path.is_dir():
            found[name + "/"] = None
        elif fnmatch.fnmatch(name, "rejects/pre/part-*.parquet"):
            early_rejects += pq.read_table(path).to_pylist()
        elif name.endswith("_stats.json") or name in ("stats.json", "written.json", "run.json"):
            data = json.loads(path.read_text())
            for varies in ("elapsed_s", "timings", "output"):
                data.pop(varies, None)
            found[name] = data
        else:
            found[name] = None if name == "report.html" else path.read_bytes()
    found["rejects/pre/part-*.parquet"] = sorted(json.dumps(row, sort_keys=True) for row in early_rejects)
    return found


def assert_same_output(out: Path, baseline: dict) -> None:
    found = contents(out)
    extra, missing = sorted(set(found) - set(baseline)), sorted(set(baseline) - set(found))
    assert not extra and not missing, f"beside an uninterrupted run's files: {extra}; missing: {missing}"
    for name, value in baseline.items():
        assert found[name] == value, f"{name} differs from an uninterrupted run's"


def listing(out: Path) -> dict[str, int]:
    """Relative path -> inode of everything under ``out`` (a file rewritten in place gets a new inode)."""
    found = {}
    for root, folders, files in os.walk(out):
        for name in folders + files:
            path = os.path.join(root, name)
            try:
                found[os.path.relpath(path, out)] = os.lstat(path).st_ino
            except FileNotFoundError:  # renamed or deleted meanwhile
                pass
    return found


@dataclass
class KillPoint:
    """A moment of a run seen in its output folder: ``reached(at_start, now)`` on two ``listing``s."""

    name: str
    reached: Callable[[dict, dict], bool]


def new(pattern: str, count: int = 1) -> Callable[[dict, dict], bool]:
    """At least ``count`` paths matching ``pattern`` written since the run started."""
    return lambda start, now: sum(1 for path, inode in now.items()
                                  if fnmatch.fnmatch(path, pattern) and start.get(path) != inode) >= count


def present(pattern: str) -> Callable[[dict, dict], bool]:
    return lambda start, now: any(fnmatch.fnmatch(path, pattern) for path in now)


def both(*tests: Callable[[dict, dict], bool]) -> Callable[[dict, dict], bool]:
    return lambda start, now: all(test(start, now) for test in tests)


def kill_points(rng: random.Random) -> list[KillPoint]:
    """One run after another is killed at these, in this order, in the same output folder."""
    finished, more, dedup = rng.randint(2, 5), rng.randint(1, 3), rng.randint(1, 3)
    markers = "shards/*_stats.json"
    return [
        KillPoint("output folder claimed (run.json), job not started", new("run.json")),
        KillPoint("Beam writing rejects/pre/ under a temporary folder", present("rejects/pre/beam-temp-*/*")),
        KillPoint(f"{finished} shard markers written", new(markers, finished)),
        KillPoint(f"a shard tar under its temporary name, {more} more markers written",
                  both(new(markers, more), present("shards/*.tar.tmp-*"))),
        KillPoint(f"image dedup: {dedup} pass reject file(s) written", new("rejects/dedup-*.parquet", dedup)),
        KillPoint("tally written (written.json), stats.json not yet", new("written.json")),
    ]


def run_until(command: list[str], out: Path, point: KillPoint | None, log: Path, timeout: float = 120) -> int | None:
    """Run ``command``; kill its process group with SIGKILL once ``point`` is reached. Returns the exit
    status, or None when it was killed."""
    start = listing(out)
    with log.open("w") as errors:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=errors, start_new_session=True)
    deadline = time.monotonic() + timeout
    try:
        while process.poll() is None:
            if point is not None and point.reached(start, listing(out)):
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
                return None
            assert time.monotonic() < deadline, f"{command} ran over {timeout} s"
            time.sleep(0.005)
        return process.returncode
    finally:
        try:  # a worker left behind by a finished launcher
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait()


def left_behind(out: Path) -> str:
    """What a killed run left: markers, tars without a marker, temporary files, pass reject files."""
    names = [p.relative_to(out).as_posix() for p in out.rglob("*")]
    markers = {n.removesuffix("_stats.json") for n in names if n.endswith("_stats.json")}
    unmarked = [n for n in names if n.endswith(".tar") and n.removesuffix(".tar") not in markers]
    temporary = [n for n in names if ".tmp-" in n or "beam-temp" in n]
    dedup = [n for n in names if n.startswith("rejects/dedup-")]
    return (f"{len(markers)} markers, tars without marker {unmarked}, temporary {temporary}, "
            f"{len(dedup)} dedup reject files")


def test_a_run_killed_at_random_points_and_restarted_writes_what_an_uninterrupted_run_writes(job, tmp_path):
    out = tmp_path / "out"
    for number, point in enumerate(kill_points(random.Random(SEED)), 1):
        status = run_until(job.command(out), out, point, tmp_path / f"run{number}.log")
        assert status is None, f"run {number} ended ({status}) before the kill point: {point.name}"
        print(f"run {number} killed at {point.name}: left {left_behind(out)}")
    status = run_until(job.command(out), out, None, tmp_path / "last.log")
    assert status == 0, (tmp_path / "last.log").read_text()
    assert_same_output(out, job.baseline)


@pytest.fixture(scope="module")
def own_mounts(tmp_path_factory):
    """Skips where this system gives no user and mount namespace (``unshare -rm``: no root needed where
    the kernel allows unprivileged user namespaces) to mount a tmpfs in."""
    folder = tmp_path_factory.mktemp("mount")
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", 'mount -t tmpfs -o size=64k tmpfs "$1"', "sh", str(folder)],
                           capture_output=True, text=True) if shutil.which("unshare") else None
    if probe is None or probe.returncode != 0:
        pytest.skip(f"no mount namespace to mount a tmpfs in: {probe.stderr.strip() if probe else 'no unshare'}")


def ended(copies: Path, name: str) -> tuple[int, str]:
    """Exit status and stderr of the run ``name`` of ``runs_in_own_mounts``."""
    return int((copies / f"{name}.status").read_text()), (copies / f"{name}.err").read_text()


def runs_in_own_mounts(job: Job, tmp_path: Path, steps: list[tuple[str, str]]) -> Path:
    """In a mount namespace of its own, for each (name, shell command) in turn: the command changes
    what $out is mounted as, the job runs in $out, and copies/NAME/ keeps a copy of the folder,
    copies/NAME.err its stderr and copies/NAME.status its exit status. Returns copies/."""
    copies = tmp_path / "copies"
    copies.mkdir()
    script = ['out=$1; copies=$2; shift 2', 'mkdir -p "$out"']
    for name, change in steps:
        script += [f"{change} || exit 90", f'"$@" >"$copies/{name}.out" 2>"$copies/{name}.err"',
                   f'echo $? >"$copies/{name}.status"', f'cp -a "$out" "$copies/{name}"']
    out = tmp_path / "out"
    done = subprocess.run(["unshare", "-rm", "sh", "-c", "\n".join(script), "sh", str(out), str(copies),
                           *job.command(out)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return copies


def assert_one_line_error(status: int, errors: str, *fragments: str) -> None:
    """A run's last words are one ``altcap: error:`` line naming the problem; exit status 2."""
    assert status == 2, errors
    lines = errors.splitlines()
    assert lines and lines[-1].startswith("altcap: error:"), errors
    assert all(fragment in lines[-1] for fragment in fragments), lines[-1]
    assert sum(line.startswith("altcap: error:") for line in lines) == 1, errors


def assert_no_half_shard(out: Path, baseline: dict) -> None:
    """Every shard whose marker is written is whole: its files are what an uninterrupted run writes,
    the tar and parquet of those the whole-run pass (not reached here) leaves alone. (What is left
    under a temporary name no run trusts, and the next deletes.)"""
    found = contents(out)
    assert "stats.json" not in found
    markers = [name for name in found if name.endswith("_stats.json")]
    for marker in markers:
        number = marker.removeprefix("shards/").removesuffix("_stats.json")
        same = [marker, f"rejects/shard-{number}.parquet"]
        if f"rejects/dedup-{number}.parquet" not in baseline:
            same += [f"shards/{number}.tar", f"shards/{number}.parquet"]
        for name in same:
            assert found[name] == baseline[name], name


def test_an_unwritable_output_and_a_full_disk_end_in_one_line_and_a_rerun_with_room_finishes_alike(
        job, tmp_path, own_mounts):
    """The output folder is a read-only tmpfs: the launcher's first write fails with EROFS, as in a
    folder the job may not write (chmod does not stop root). Mounted writable but 192 KiB small (the
    job writes about 900 KiB), the workers' writes fail with ENOSPC, "No space left on device", as on
    a full disk. Grown to 64 MiB, the job resumes and finishes."""
    copies = runs_in_own_mounts(job, tmp_path, [
        ("read_only", 'mount -t tmpfs -o ro,size=192k tmpfs "$out"'),
        ("full", 'mount -o remount,rw "$out"'),
        ("room", 'mount -o remount,size=64m "$out"'),
    ])
    out = tmp_path / "out"
    assert_one_line_error(*ended(copies, "read_only"), "Read-only file system", str(out))
    assert not list((copies / "read_only").iterdir())
    assert_one_line_error(*ended(copies, "full"), "No space left on device", f"{out}/")  # the file that hit it
    assert_no_half_shard(copies / "full", job.baseline)
    status, errors = ended(copies, "room")
    assert status == 0, errors
    assert_same_output(copies / "room", job.baseline)


def test_an_output_that_is_a_file_ends_in_one_line(job, tmp_path):
    (tmp_path / "out").write_text("not a folder")
    done = subprocess.run(job.command(tmp_path / "out"), capture_output=True, text=True, timeout=300)
    assert_one_line_error(done.returncode, done.stderr, str(tmp_path / "out"))
    assert (tmp_path / "out").read_text() == "not a folder"
