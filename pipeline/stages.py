"""The Beam steps between the sources and the finished shards.

URL dedup and shard assignment shuffle small records only; download, image rules and the shard
write happen in one DoFn per shard (image bytes never pass through a GroupByKey); the
top-fraction CLIP cut (``clip_top``) and exact image dedup then visit every written shard once
each, shuffling only scores and (sha256, key, shard) triples.
"""

from __future__ import annotations

import logging
import math
from concurrent.futures import ThreadPoolExecutor

import apache_beam as beam

from crawl.fetch import Fetcher
from filters.record import IMAGE_DEDUP, URL_DEDUP, reject
from pipeline.clip_step import ClipStep
from pipeline.config import Config, config_from_dict
from pipeline.funnel import counter_name
from pipeline.image_dedup import REASON as DEDUP_REASON
from pipeline.image_dedup import dedup_check, losers_of
from pipeline.metrics import count
from pipeline.sample_steps import SampleMaker
from pipeline.shard_builder import build_shard, record_order, shard_hashes
from pipeline.shard_rewrite import cut_shard

log = logging.getLogger("altcap")

REJECTED = "rejected"


class UrlDedup(beam.PTransform):
    """One record per image URL (``url``) or per (URL, alt-text) pair (``pair``); smallest key wins."""

    def __init__(self, mode: str):
        super().__init__()
        self.mode = mode

    def expand(self, records):
        mode = self.mode

        def keyed(record):
            count(counter_name(URL_DEDUP, "in"))
            return (record["image_url"] if mode == "url" else record["key"]), record

        def pick(item):
            _, group = item
            ordered = sorted(group, key=record_order)
            count(counter_name(URL_DEDUP, "passed"))
            yield ordered[0]
            for loser in ordered[1:]:
                count(counter_name(URL_DEDUP, "rejected", "duplicate_url"))
                yield beam.pvalue.TaggedOutput(
                    REJECTED, reject(loser, URL_DEDUP, "duplicate_url", f"kept {ordered[0]['key']}"))

        return (records
                | "KeyByUrl" >> beam.Map(keyed)
                | "GroupByUrl" >> beam.GroupByKey()
                | "PickOne" >> beam.FlatMap(pick).with_outputs(REJECTED, main="kept"))


def shard_count(records: int, samples_per_shard: int) -> int:
    return math.ceil(records / samples_per_shard) if records else 0


def shard_of(key: str, shards: int) -> int:
    """A stable shard for a key: the same input and config always fill shards the same way."""
    return int(key[:15], 16) % shards


class AssignShards(beam.PTransform):
    """(shard id, record) pairs grouped per shard; the shard count follows the record count."""

    def __init__(self, samples_per_shard: int):
        super().__init__()
        self.samples_per_shard = samples_per_shard

    def expand(self, records):
        per_shard = self.samples_per_shard
        total = records | "CountRecords" >> beam.combiners.Count.Globally()
        return (records
                | "ShardOf" >> beam.Map(
                    lambda r, n: (shard_of(r["key"], shard_count(n, per_shard)), r),
                    n=beam.pvalue.AsSingleton(total))
                | "GroupByShard" >> beam.GroupByKey())


def _count_stage(stage: str, entry: dict) -> None:
    count(counter_name(stage, "in"), entry["in"])
    count(counter_name(stage, "passed"), entry["passed"])
    for reason, n in entry["rejected"].items():
        count(counter_name(stage, "rejected", reason), n)


class BuildShards(beam.DoFn):
    """(shard id, records) -> the written shard; emits (shard id, samples)."""

    def __init__(self, config: dict, out_dir: str):
        self._config_dict = config
        self.out_dir = out_dir

    def setup(self):
        self.config: Config = config_from_dict(self._config_dict)
        threads = self.config.download.threads
        self.fetcher = Fetcher(self.config.download)
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="altcap-fetch")
        self.make_sample = SampleMaker(self.config, self.fetcher)
        self.window = max(threads * 16, 256)
        self.clip_step = ClipStep(self.config.clip) if self.config.clip.enabled else None
        self.hypernymize_step = None
        if self.config.hypernymize.enabled:
            from pipeline.hypernymize_step import HypernymizeStep  # loads WordNet: only when asked

            self.hypernymize_step = HypernymizeStep(self.config.hypernymize)

    def teardown(self):
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.fetcher.close()

    def process(self, item):
        shard_id, records = item
        records = list(records)
        stats = build_shard(shard_id, records, out_dir=self.out_dir, make_sample=self.make_sample,
                            pool=self.pool, window=self.window, clip_step=self.clip_step,
                            hypernymize_step=self.hypernymize_step)
        if stats["records"] != len(records):
            raise RuntimeError(f"shard {shard_id}: {len(records)} records assigned but its stats "
                               f"say {stats['records']}")
        for stage, entry in stats["stages"].items():  # download, image, and clip, hypernymize when they ran
            _count_stage(stage, entry)
        return [(shard_id, stats["samples"])]


class ImageDedup(beam.PTransform):
    """Drop exact duplicate images across shards; every shard is visited so counts add up."""

    def __init__(self, out_dir: str):
        super().__init__()
        self.out_dir = out_dir

    def expand(self, shard_samples):
        out_dir = self.out_dir
        losers = (shard_samples
                  | "ImageHashes" >> beam.FlatMap(
                      lambda item: [(sha256, (key, item[0])) for sha256, key in shard_hashes(out_dir, item[0])])
                  | "GroupBySha256" >> beam.GroupByKey()
                  | "Losers" >> beam.FlatMap(lambda item: losers_of(list(item[1]))))

        def visit(item):
            shard_id, grouped = item
            written = sum(grouped["samples"])  # samples the earlier passes left (before dedup)
            cut_shard(out_dir, shard_id, written, IMAGE_DEDUP, DEDUP_REASON, "dedup_rejects",
                      dedup_check(out_dir, shard_id, list(grouped["losers"])))
            return shard_id

        return ({"samples": shard_samples, "losers": losers}
                | "JoinLosers" >> beam.CoGroupByKey()
                | "RewriteShards" >> beam.Map(visit))
