"""The Beam steps between the sources and the finished shards.

URL dedup and shard assignment shuffle small records only; the shard's steps (download, image
rules, the models) and its write happen in one DoFn per shard, so image bytes never pass through a
GroupByKey. The whole-run passes (``pipeline.passes``) then visit every written shard.
"""

from __future__ import annotations

import logging
import math
from concurrent.futures import ThreadPoolExecutor

import apache_beam as beam

from filters.record import reject
from pipeline.config import Config, config_from_dict
from pipeline.metrics import REJECTED, count_stage
from pipeline.shard_builder import build_shard, record_order
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


class BuildShards(beam.DoFn):
    """(shard id, records) -> the written shard; emits (shard id, samples). The steps whose stages
    are in ``leave_out`` run later, as a pass of their own (``pipeline.model_pass``), which counts them."""

    def __init__(self, config: dict, out_dir: str, leave_out: tuple[str, ...] = ()):
        self._config_dict = config
        self.out_dir = out_dir
        self.leave_out = leave_out

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
                            window=self.window)
        if stats["records"] != len(records):
            raise RuntimeError(f"shard {shard_id}: {len(records)} records assigned but its stats "
                               f"say {stats['records']}")
        for stage, entry in stats["stages"].items():
            if stage not in self.leave_out:
                count_stage(stage, entry["in"], entry["rejected"])
        return [(shard_id, stats["samples"])]
