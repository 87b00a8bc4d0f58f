"""The Beam steps between the sources and the finished shards.

URL dedup and shard assignment shuffle small records only; the shard's steps (download, image
rules, the models) and its write happen in one DoFn per shard, so image bytes never pass through a
GroupByKey. The whole-run passes (``pipeline.passes``) then visit every written shard.
"""

from __future__ import annotations

import hashlib
import logging
import math
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import apache_beam as beam

from filters.record import reject
from pipeline.config import Config, config_from_dict
from pipeline.metrics import REJECTED, RETRY, count, count_stage, counter_name
from pipeline.shard_builder import build_shard, record_order
from pipeline.shard_retry import RetryFailed
from pipeline.steps import enabled_steps

log = logging.getLogger("altcap")

URL_DEDUP = "url_dedup"


class UrlDedup(beam.PTransform):
    """One record per image URL (``url``) or per (URL, alt-text) pair (``pair``); smallest key wins."""

    def __init__(self, mode: str):
        super().__init__()
        self.mode = mode

    def expand(self, records):
        mode = self.mode

        def keyed(record):
            return (record["image_url"] if mode == "url" else record["key"]), record

        def pick(item):
            _, group = item
            ordered = sorted(group, key=record_order)
            yield ordered[0]
            for loser in ordered[1:]:
                yield beam.pvalue.TaggedOutput(
                    REJECTED, reject(loser, URL_DEDUP, "duplicate_url", f"kept {ordered[0]['key']}"))

        return (records
                | "KeyByUrl" >> beam.Map(keyed)
                | "GroupByUrl" >> beam.GroupByKey()
                | "PickOne" >> beam.FlatMap(pick).with_outputs(REJECTED, main="kept"))


def shard_count(records: int, samples_per_shard: int) -> int:
    return math.ceil(records / samples_per_shard) if records else 0


def host_of(record: dict) -> str:
    """The host a record's image is fetched from, lower-cased; "" when it is read from a file."""
    if record.get("image_ref"):
        return ""
    try:
        return urlsplit(record["image_url"]).hostname or ""
    except ValueError:
        return ""


def host_spread(records_of_host: int, samples_per_shard: int, per_host: int) -> int:
    """How many shards a host's records go to: one when they fit in a shard, more for a bigger
    host, but at most ``per_host``, so that each of its shards keeps one request in flight and
    together they stay within the host's limit (``crawl.fetch``: each shard takes 1/spread of it)."""
    return max(1, min(per_host, math.ceil(records_of_host / samples_per_shard)))


def shard_of(key: str, shards: int, host: str = "", spread: int = 1) -> int:
    """A stable shard for a record: the same input and config always fill shards the same way. A
    host's records go to ``spread`` consecutive shards from one its name picks, so a host is
    fetched from few shards, which share its politeness limits between them, and not from every
    shard at once (as a crawler partitions its fetch lists by host: Nutch's
    ``partition.url.mode=byHost``). Records read from files (no host) spread by key."""
    if not host:
        return int(key[:15], 16) % shards
    first = int(hashlib.sha1(host.encode()).hexdigest()[:15], 16)
    return (first + int(key[:15], 16) % spread) % shards


def _assigned(hosted: tuple[str, dict], shards: int, big_hosts: dict[str, int], samples_per_shard: int,
              per_host: int) -> tuple[int, dict]:
    host, record = hosted
    spread = host_spread(big_hosts.get(host, 1), samples_per_shard, per_host)
    return shard_of(record["key"], shards, host, spread), dict(record, host_shards=spread)


class AssignShards(beam.PTransform):
    """(shard id, record) pairs grouped per shard, each record with ``host_shards``: the number
    of shards its host is fetched from. The shard count follows the record count; only the hosts
    with more records than a shard holds (at most one per shard) travel to every worker."""

    def __init__(self, samples_per_shard: int, per_host: int):
        super().__init__()
        self.samples_per_shard = samples_per_shard
        self.per_host = per_host

    def expand(self, records):
        per_shard, per_host = self.samples_per_shard, self.per_host
        total = records | "CountRecords" >> beam.combiners.Count.Globally()
        hosted = records | "HostOf" >> beam.Map(lambda record: (host_of(record), record))
        big_hosts = (hosted
                     | "Hosts" >> beam.Keys()
                     | "CountPerHost" >> beam.combiners.Count.PerElement()
                     | "BigHosts" >> beam.Filter(lambda host_count: host_count[0] and host_count[1] > per_shard))
        return (hosted
                | "ShardOf" >> beam.Map(
                    lambda pair, n, big: _assigned(pair, shard_count(n, per_shard), big, per_shard, per_host),
                    n=beam.pvalue.AsSingleton(total), big=beam.pvalue.AsDict(big_hosts))
                | "GroupByShard" >> beam.GroupByKey())


class BuildShards(beam.DoFn):
    """(shard id, records) -> the written shard; emits (shard id, samples). The steps whose stages
    are in ``leave_out`` run later, as a pass of their own (``pipeline.model_pass``), which counts them.
    With ``retry`` a finished shard is written again with its failed records run anew (``pipeline.shard_retry``)."""

    def __init__(self, config: dict, out_dir: str, leave_out: tuple[str, ...] = (), retry: RetryFailed | None = None):
        self._config_dict = config
        self.out_dir = out_dir
        self.leave_out = leave_out
        self.retry = retry

    def setup(self):
        config: Config = config_from_dict(self._config_dict)
        threads = config.download.threads
        self.steps = [step.build(config) for step in enabled_steps(config) if step.stage not in self.leave_out]
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="altcap-fetch")
        self.window = max(threads * 16, 256)

    def teardown(self):
        self.pool.shutdown(wait=False, cancel_futures=True)
        for step in self.steps:
            step.close()

    def process(self, item):
        shard_id, records = item
        records = list(records)
        stats = build_shard(shard_id, records, out_dir=self.out_dir, steps=self.steps, pool=self.pool,
                            window=self.window, retry=self.retry)
        if "retried" in stats and not stats["reused"]:
            for name, n in stats["retried"].items():
                count(counter_name(RETRY, name), n)
        if stats["records"] != len(records):
            raise RuntimeError(f"shard {shard_id}: {len(records)} records assigned but its stats "
                               f"say {stats['records']}")
        for stage, entry in stats["stages"].items():
            if stage not in self.leave_out:
                count_stage(stage, entry["in"], entry["rejected"])
        return [(shard_id, stats["samples"])]
