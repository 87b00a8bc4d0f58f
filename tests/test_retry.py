"""``altcap run --retry-failed`` (issue 18): a run whose downloads failed for transient reasons (503,
429, a reset), retried once the server is well, ends with what a run that never saw the failures
writes: the same shard bytes, side files, rejects and funnel. Only the transient failures are
fetched again; what fails again stays a reject; a retry is idempotent, resumable after SIGKILL, and
a recovered image that beats a kept one in image dedup takes its place. With a cut over the whole
run (the CLIP top fraction) the samples it dropped are fetched again and judged afresh."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import pyarrow.parquet as pq
import pytest
from test_crash import ALTCAP, KillPoint, present, run_until

from crawl.faults import photo
from crawl.serve import Route
from filters.record import make_key
from pipeline.cli import main
from pipeline.run import OutputFolderError, retry_config

from pipeline_helpers import IN_MEMORY, PERMISSIVE, jpeg, run_local, serve, stats_of
from test_clip_stage import clip_settings, photo_jpegs, tiny_model  # noqa: F401

HEALTHY = [f"/h{i}.jpg" for i in range(10)]
SETTINGS = ("shards.samples_per_shard=4",)


def key_of(path: str, caption: str) -> str:
    return make_key(f"http://photos.altcap.test{path}", caption)


def named_copy(of: str, smaller: bool) -> str:
    """A path for a copy of ``of``'s image whose key sorts before (``smaller``) or after that of ``of``."""
    return next(path for n in range(100) if (key_of(path := f"/copy{n}-of-{of[1:]}", "copy")
                                             < key_of(of, "photo " + of[1:-4])) == smaller)


WINS, LOSES = named_copy("/h1.jpg", smaller=True), named_copy("/h2.jpg", smaller=False)
FLAKY = {  # path -> what it answers first (each then serves its image)
    "/f503a.jpg": Route(status=503), "/f503b.jpg": Route(status=503), "/f502.jpg": Route(b"bad", status=502),
    "/f429.jpg": Route(status=429, headers={"Retry-After": "0"}), "/freset.jpg": Route(photo("freset"), cut_after=500,
                                                                                      reset=True),
    WINS: Route(status=503), LOSES: Route(status=503),
}
COPIES = [f"/copy-of-h{n}.jpg" for n in range(3, 9)]  # served well: image dedup drops one of each pair at once
IMAGE_OF = {WINS: "/h1.jpg", LOSES: "/h2.jpg", **{copy: f"/h{copy[-5]}.jpg" for copy in COPIES}}
FINAL = {"/always500.jpg": Route(b"oops", status=500), "/gone.jpg": Route(status=404),
         "/tiny.jpg": Route(jpeg(40, 40))}


def image(path: str) -> bytes:
    return photo(IMAGE_OF.get(path, path))


def routes(flaky: bool, delay: float = 0.0) -> dict:
    served = {path: Route(image(path), delay=delay) for path in HEALTHY + COPIES}
    served.update({path: [first, Route(image(path), delay=delay)] if flaky else Route(image(path), delay=delay)
                   for path, first in FLAKY.items()})
    served.update(FINAL)
    return served


def caption_of(path: str) -> str:
    return "copy" if path.startswith("/copy") else "photo " + path[1:-4]


def write_listing(folder: Path) -> Path:
    paths = HEALTHY + COPIES + list(FLAKY) + list(FINAL)
    listing = folder / "list.tsv"
    listing.write_text("".join(f"{caption_of(p)}\thttp://photos.altcap.test{p}\n" for p in paths))
    return listing


def rows_in(path: Path) -> list[dict]:
    return pq.read_table(path).to_pylist()


def comparable(out: Path) -> dict[str, object]:
    """The folder's files as a run without failures writes them: bytes of shards and side files, the
    rows of every reject file (a pass appends what it drops later), stats without timings and the
    retry's own counts."""
    found = {}
    for path in sorted(out.rglob("*")):
        name = path.relative_to(out).as_posix()
        if path.is_dir() or name in ("report.html", "run.json") or name.startswith("rejects/pre/"):
            continue
        if name.endswith(".parquet") and name.startswith("rejects/"):
            found[name] = sorted(json.dumps(row, sort_keys=True, default=bytes.hex) for row in rows_in(path))
        elif name.endswith(".json"):
            data = json.loads(path.read_text())
            for varies in ("elapsed_s", "timings", "output", "retried", "retry"):
                data.pop(varies, None)
            found[name] = data
        else:
            found[name] = path.read_bytes()
    return found


def assert_same(out: Path, clean: Path) -> None:
    found, expected = comparable(out), comparable(clean)
    assert sorted(found) == sorted(expected)
    for name, value in expected.items():
        assert found[name] == value, f"{name} differs from a run without failures"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A run through the failures and a clean run on the same listing, and the server, well again:
    one server for all, as download.connect_to names its port and a retry keeps the run's settings."""
    root = tmp_path_factory.mktemp("retry")
    listing = write_listing(root)
    with serve(routes(flaky=True)) as site:
        first = run_local([listing], root / "failed", *SETTINGS, site.connect_to)
        site.server.routes = routes(flaky=False)
        run_local([listing], root / "clean", *SETTINGS, site.connect_to)
        yield SimpleNamespace(root=root, listing=listing, first=first, server=site.server, connect_to=site.connect_to)


def copy_of_failed(runs, tmp_path: Path, **served) -> Path:
    """A copy of the failed run's folder to retry, with the server answering ``routes(**served)``."""
    runs.server.routes = routes(flaky=False, **served)
    runs.server.requests.clear()
    shutil.copytree(runs.root / "failed", tmp_path / "failed")
    return tmp_path / "failed"


def retry(out: Path, capsys, *beam_args: str) -> tuple[dict, str]:
    assert main(["run", "--retry-failed", str(out), *(beam_args or IN_MEMORY)]) == 0
    return stats_of(out), capsys.readouterr().out


def test_a_retry_recovers_the_transient_failures_and_writes_what_a_clean_run_writes(runs, tmp_path, capsys):
    download = next(e for e in runs.first["funnel"] if e["stage"] == "download")["reasons"]
    assert download == {"http_503": 4, "http_502": 1, "http_429": 1, "connection_error": 1, "http_500": 1,
                        "http_404": 1}
    out = copy_of_failed(runs, tmp_path)
    retried_shards = {path.name[6:11] for path in out.glob("rejects/shard-*.parquet")
                      if any(row["reason"].startswith(("http_5", "http_429", "connection")) for row in rows_in(path))}
    assert {path.name[6:11] for path in out.glob("rejects/dedup-*")} & retried_shards  # kept dropped: no refetch
    stats, printed = retry(out, capsys)
    assert stats["retry"] == {"retried": 8, "recovered": 7, "refetched": 0, "failed_again": 1}
    assert "retried 8 records that had failed for a transient reason: 7 recovered, 1 failed again" in printed
    assert dict(runs.server.requests) == {**dict.fromkeys(FLAKY, 1), "/always500.jpg": 1}  # nothing else fetched
    assert stats["check"]["ok"]
    assert stats["funnel"] == stats_of(runs.root / "clean")["funnel"]
    assert_same(out, runs.root / "clean")
    dropped = {row["url"].rsplit("/", 1)[1] for path in out.glob("rejects/dedup-*") for row in rows_in(path)}
    assert {"h1.jpg", LOSES[1:]} <= dropped and WINS[1:] not in dropped  # the recovered copy won h1's place


def test_a_second_retry_changes_nothing_and_a_plain_resume_reuses_every_shard(runs, tmp_path, capsys):
    out = copy_of_failed(runs, tmp_path)
    retry(out, capsys)
    before = comparable(out)
    again, printed = retry(out, capsys)
    assert again["retry"] == {"retried": 1, "recovered": 0, "refetched": 0, "failed_again": 1}
    assert comparable(out) == before
    runs.server.requests.clear()
    resumed = run_local([runs.listing], out, *SETTINGS, runs.connect_to)
    assert not runs.server.requests  # every shard reused
    assert resumed["funnel"] == again["funnel"] and "retry" not in resumed
    assert_same(out, runs.root / "clean")


def test_a_retry_killed_half_way_and_retried_again_writes_what_a_clean_run_writes(runs, tmp_path):
    out = copy_of_failed(runs, tmp_path, delay=0.3)  # a retried shard's tar stays open a while
    command = [ALTCAP, "run", "--retry-failed", str(out), "--direct_running_mode=multi_processing",
               "--direct_num_workers=2"]
    point = KillPoint("a retried shard's tar under its temporary name, its marker gone", present("shards/*.tar.tmp-*"))
    assert run_until(command, out, point, tmp_path / "killed.log") is None
    assert run_until(command, out, None, tmp_path / "again.log") == 0, (tmp_path / "again.log").read_text()
    assert_same(out, runs.root / "clean")


def test_retry_takes_only_the_folder_and_refuses_what_it_cannot_do(runs, tmp_path, capsys):
    failed = str(runs.root / "failed")
    assert main(["run", "--retry-failed", failed, "--input", str(runs.listing)]) == 2
    assert "takes the inputs and the output folder from" in capsys.readouterr().err
    assert main(["run", "--retry-failed", str(tmp_path / "nothing")]) == 2
    assert "holds no run (no run.json)" in capsys.readouterr().err
    assert main(["run", "--retry-failed", failed, "--set", "image.min_side=10", *IN_MEMORY]) == 2
    assert "other settings (image.min_side)" in capsys.readouterr().err
    items, config = retry_config(failed, None, ["download.threads=3"])  # speed only: allowed
    assert config.download.threads == 3 and items == [("tsv", str(runs.listing))]
    runs.server.routes = routes(flaky=False)
    apart = tmp_path / "apart"
    run_local([runs.listing], apart, *SETTINGS, runs.connect_to, "pools.model_pass=true", "hypernymize.enabled=true",
              "hypernymize.spacy_model=off")
    with pytest.raises(OutputFolderError, match="pools.model_pass"):
        retry_config(str(apart), None, [])


def test_with_a_cut_over_the_run_the_samples_it_dropped_are_judged_again(tmp_path, tiny_model, capsys):  # noqa: F811
    """The CLIP top fraction keeps half of the run's pairs: two images that failed and come back
    move the cut, so samples it dropped may return; one image a batch keeps the scores batch-free."""
    captions = ["an astronaut in a white suit", "a cup of coffee", "a cat on a sofa", "a rocket",
                "a camera man", "cells under a microscope", "a red square", "a blue square"]
    images = photo_jpegs()
    listing = tmp_path / "clip.tsv"
    listing.write_text("".join(f"{c}\thttp://photos.altcap.test/{n}.jpg\n" for n, c in enumerate(captions)))
    settings = [*PERMISSIVE, *clip_settings(tiny_model, "clip.min_score=-1", "clip.top_fraction=0.5",
                                            "clip.batch_size=1"), "shards.samples_per_shard=3"]
    healthy = {f"/{n}.jpg": Route(data) for n, data in enumerate(images)}
    with serve(dict(healthy, **{f"/{n}.jpg": [Route(status=503), Route(images[n])] for n in (0, 5)})) as site:
        run_local([listing], tmp_path / "out", *settings, site.connect_to)
        site.server.routes = healthy
        clean = run_local([listing], tmp_path / "clean", *settings, site.connect_to)
        stats, _ = retry(tmp_path / "out", capsys)
    assert stats["retry"]["recovered"] == 2 and stats["retry"]["refetched"] > 0
    assert stats["funnel"] == clean["funnel"]
    assert_same(tmp_path / "out", tmp_path / "clean")
