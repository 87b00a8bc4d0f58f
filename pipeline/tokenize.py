"""``altcap tokenize OUT_DIR``: the tokens step over an output folder's finished shards, as its own
Beam job, so a crawl made on CPU workers is tokenized later on GPU workers (any runner). A shard
whose token file already holds a row for each of its samples is skipped: the job is idempotent and
resumes shard by shard. Its token files equal those a run with ``tokens.enabled`` writes, byte for
byte, when the shard's samples are the same (the models see the same images in the same batches).
"""

from __future__ import annotations

import logging

import apache_beam as beam

from dataset import fileio
from dataset.layout import TOKENS, shard_ids, shard_paths
from dataset.reader import read_parquet, read_shard
from dataset.side_arrays import load_side, side_array, write_side
from filters.settings import ConfigError
from pipeline.config import Config, config_from_dict
from pipeline.metrics import count, counters_of
from pipeline.pools import on_model_pool
from pipeline.shard_step import run_steps
from pipeline.tokens_step import TokensStep

log = logging.getLogger("altcap")

WRITTEN, SKIPPED, SAMPLES, TRUNCATED, FAILED = ("tokenize|shards_written", "tokenize|shards_skipped",
                                                "tokenize|samples", "tokenize|captions_truncated",
                                                "tokenize|samples_failed")


def is_tokenized(out_dir: str, shard_id: int) -> bool:
    """Whether the shard's token file has exactly its samples' keys, in shard order (a shard without
    samples has nothing to tokenize)."""
    paths = shard_paths(out_dir, shard_id)
    keys = read_parquet(paths["parquet"], ["key"]).column("key").to_pylist()
    if not keys or not fileio.exists(paths[TOKENS.folder]):
        return not keys
    return load_side(paths[TOKENS.folder])["key"].tolist() == keys


def shard_records(out_dir: str, shard_id: int):
    """The shard's samples as the tokens step sees them in a run: the written image and final caption."""
    for sample in read_shard(out_dir, shard_id):
        yield {"key": sample["key"], "caption": sample["caption"], "image_bytes": sample["image"],
               "image_ext": sample["image_ext"]}


class TokenizeShards(beam.DoFn):
    """shard id -> the shard's token file written (or found done)."""

    def __init__(self, config: dict, out_dir: str):
        self._config_dict = config
        self.out_dir = out_dir

    def setup(self):
        self.step = TokensStep.build(config_from_dict(self._config_dict))

    def process(self, shard_id: int):
        if is_tokenized(self.out_dir, shard_id):
            count(SKIPPED)
            return
        self.step.info["captions_truncated"] = 0
        rows, failed = [], 0
        for outcome in run_steps([self.step], shard_records(self.out_dir, shard_id), None, 0):
            if TOKENS.field in outcome:
                rows.append((outcome["key"], *outcome[TOKENS.field]))
            else:
                failed += 1
                log.warning("shard %05d: %s not tokenized: %s", shard_id, outcome["key"], outcome.get("detail"))
        if rows:
            write_side(shard_paths(self.out_dir, shard_id)[TOKENS.folder], side_array(TOKENS, rows))
        count(WRITTEN)
        count(SAMPLES, len(rows))
        count(FAILED, failed)
        count(TRUNCATED, self.step.info["captions_truncated"])


def build(pipeline: beam.Pipeline, shards: list[int], config: Config, out_dir: str) -> None:
    """Add the tokenizing of ``shards`` to ``pipeline``."""
    (pipeline
     | "Shards" >> beam.Create(shards)
     | "SpreadShards" >> beam.Reshuffle()
     | "Tokenize" >> on_model_pool(beam.ParDo(TokenizeShards(config.to_dict(), out_dir)), config))


def planned_tokenize(out_dir: str, config: Config, options, *, claim: bool = True) -> beam.Pipeline:
    """The shards listed, the models found, the tokenizers claimed (not when ``claim`` is false: a
    dry run writes nothing) and the job built."""
    from pipeline.run import new_pipeline

    shards = shard_ids(out_dir)
    if not shards:
        raise ConfigError(f"{out_dir} holds no finished shards (shards/NNNNN_stats.json) to tokenize")
    TokensStep.preflight(config)
    if claim:
        TokensStep.claim(config, out_dir)
    log.info("tokenizing %d shard(s) of %s", len(shards), out_dir)
    pipeline = new_pipeline(options)
    build(pipeline, shards, config, out_dir)
    return pipeline


def tokenize(out_dir: str, config: Config, *, beam_args: list[str] = ()) -> dict:
    """Tokenize every finished shard of ``out_dir`` not tokenized yet; returns the counts."""
    from pipeline.run import pipeline_options

    result = planned_tokenize(out_dir, config, pipeline_options(list(beam_args))).run()
    result.wait_until_finish()
    found = counters_of(result)
    return {name.split("|", 1)[1]: found.get(name, 0) for name in (WRITTEN, SKIPPED, SAMPLES, TRUNCATED, FAILED)}
