"""Politeness that holds for the whole job, not per worker: a host's records go to at most
``download.per_host`` shards (``pipeline.stages.host_spread``), and each of those shards takes its
share of the host's limits (``download.per_host`` requests in flight, ``download.host_rps``
requests a second). Checked on the servers' side, over runs on several worker processes."""

from __future__ import annotations

import hashlib
import json

import pytest

from crawl.download_config import DownloadConfig
from crawl.fetch import Fetcher
from crawl.serve import LocalServer, Route
from dataset.reader import read_parquet
from filters.record import Dropped
from pipeline.stages import host_spread, shard_count, shard_of

from pipeline_helpers import jpeg, run_local, shard_rows

WORKERS = ["--direct_running_mode=multi_processing", "--direct_num_workers=3"]
BIG, SMALL = "big.altcap.test", "small-{}.altcap.test"


def test_a_host_spreads_over_at_most_per_host_shards_and_small_hosts_stay_in_one():
    assert [host_spread(n, 100, per_host=4) for n in (1, 100, 101, 250, 401, 10**6)] == [1, 1, 2, 3, 4, 4]
    keys = [hashlib.sha1(str(i).encode()).hexdigest() for i in range(500)]
    first = shard_of(keys[0], 50, "cdn.example", spread=1)  # the host's own shard
    assert {shard_of(key, 50, "cdn.example", spread=4) for key in keys} == {(first + i) % 50 for i in range(4)}
    assert {shard_of(key, 50, "one.example") for key in keys} == {shard_of(keys[0], 50, "one.example")}
    assert len({shard_of(key, 50) for key in keys}) == 50  # no host (files): spread by key


@pytest.mark.parametrize("host_shards, expected", [(1, 4), (2, 2), (8, 1)])
def test_a_fetcher_takes_its_share_of_the_hosts_concurrency(host_shards, expected):
    from concurrent.futures import ThreadPoolExecutor

    routes = {f"/{i}.jpg": Route(b"x", delay=0.2) for i in range(16)}
    with LocalServer(routes) as server:
        config = DownloadConfig(per_host=4, host_rps=0, threads=16, allow_private_addresses=True)
        with Fetcher(config) as fetcher, ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda i: fetcher.fetch(server.url(f"/{i}.jpg"), host_shards=host_shards), range(16)))
        assert server.max_in_flight == expected


def test_a_fetcher_takes_its_share_of_the_hosts_rate():
    routes = {f"/{i}.jpg": Route(b"x") for i in range(9)}
    with LocalServer(routes) as server:
        config = DownloadConfig(per_host=4, host_rps=8, threads=4, allow_private_addresses=True)
        with Fetcher(config) as fetcher:
            for i in range(9):
                fetcher.fetch(server.url(f"/{i}.jpg"), host_shards=2)  # 4 a second: 0.25 s apart
    assert server.arrivals[-1] - server.arrivals[0] >= 8 * 0.25 * 0.95  # arrival jitter aside
    assert server.busiest_second() <= 4 + 1  # one at the window's edge: arrivals jitter


@pytest.mark.parametrize("status", [429, 503])
def test_a_host_that_asks_to_wait_gets_no_request_from_any_thread_until_then(status):
    routes = {"/busy.jpg": Route(b"", status=status, headers={"Retry-After": "1"}), "/next.jpg": Route(b"x")}
    with LocalServer(routes) as server:
        config = DownloadConfig(retries=0, host_rps=0, allow_private_addresses=True)
        with Fetcher(config) as fetcher:
            with pytest.raises(Dropped, match=f"http_{status}"):
                fetcher.fetch(server.url("/busy.jpg"))  # given up at once (no retries), the wait kept
            fetcher.fetch(server.url("/next.jpg"))
    told, next_request = server.arrivals
    assert next_request - told >= 0.95  # Retry-After: 1, arrival jitter aside


@pytest.fixture(scope="module")
def crawl(tmp_path_factory):
    """One job on three worker processes: 48 images of one big host, answered slowly, and 6 small
    hosts with 2 images each; shards of 8 (8 of them), per_host 3, host_rps 12."""
    tmp = tmp_path_factory.mktemp("polite")
    big = LocalServer({f"/{i}.jpg": Route(jpeg(300, 300 + i), delay=0.05) for i in range(48)})
    small = LocalServer({f"/{i}.jpg": Route(jpeg(400 + i, 300)) for i in range(12)})
    with big, small:
        lines = [f"big host photo {i}\thttp://{BIG}/{i}.jpg" for i in range(48)]
        lines += [f"small host photo {i}\thttp://{SMALL.format(i // 2)}/{i}.jpg" for i in range(12)]
        (tmp / "pairs.tsv").write_text("\n".join(lines) + "\n")
        mappings = [f"{BIG}:80:127.0.0.1:{big.port}"] + [f"{SMALL.format(n)}:80:127.0.0.1:{small.port}"
                                                         for n in range(6)]
        stats = run_local([tmp / "pairs.tsv"], tmp / "out", f"download.connect_to={json.dumps(mappings)}",
                          "shards.samples_per_shard=8", "download.per_host=3", "download.host_rps=12",
                          "download.threads=8", "image.min_side=100", beam_args=WORKERS)
    return stats, big, tmp / "out"


def test_on_several_workers_a_host_never_sees_more_than_its_limits(crawl):
    stats, big, out = crawl
    assert stats["check"]["ok"] and stats["samples"] == 60
    assert shard_count(60, 8) == 8 and host_spread(48, 8, per_host=3) == 3
    assert big.max_in_flight <= 3  # per_host for the whole job: 3 shards, one request each
    assert big.busiest_second() <= 12 + 3  # host_rps, and one at the window's edge per shard
    assert big.arrivals[-1] - big.arrivals[0] >= (48 - 3) / 12 * 0.95


def test_each_host_is_fetched_from_its_own_few_shards(crawl):
    _, _, out = crawl
    shards_of: dict[str, set[int]] = {}
    for path in sorted((out / "shards").glob("*.parquet")):
        for url in read_parquet(str(path), ["url"]).column("url").to_pylist():
            shards_of.setdefault(url.split("/")[2], set()).add(int(path.stem))
    assert len(shards_of[BIG]) == 3
    assert all(len(shards_of[SMALL.format(n)]) == 1 for n in range(6))
    assert len(shard_rows(out)) == 60
