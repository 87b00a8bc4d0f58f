"""``altcap score OUT_DIR``: CLIP over a finished output folder whose run had none, as its own Beam
job, so a crawl made on CPU workers is scored later on GPU workers (``pools`` resource hints). Each
shard comes out as the shard step's CLIP would have left it (``pipeline.model_pass``): scores and
labels in its parquet and .json rows, its embeddings file, the clip cut with its rejects in
``rejects/clip-NNNNN.parquet``; then the run's top-fraction cut, when configured. A shard already
scored is skipped: the job is idempotent and resumes shard by shard.

The folder's ``stats.json`` gains the ``clip`` and ``clip_top`` stages after the run's own (they ran
last: the run's whole-run passes saw no scores) and is checked again. ``run.json`` takes the clip
settings, so finishing a score needs the same ones, and ``altcap run`` with the old settings is
refused.
"""

from __future__ import annotations

import json
import logging

import apache_beam as beam
from apache_beam.io.fileio import MatchFiles

from dataset import fileio, tally
from dataset.layout import PRE_REJECTS, REJECTS, shard_ids
from filters.settings import ConfigError
from pipeline.clip_step import ClipStep
from pipeline.clip_top import TopFractionCut
from pipeline.config import Config, config_from_dict
from pipeline.funnel import AccountingError, check_funnel, funnel_from_counters
from pipeline.metrics import counters_of
from pipeline.model_pass import SCORE_REJECTS, ModelPass
from pipeline.written import WriteTally

log = logging.getLogger("altcap")

SCORED, SKIPPED = f"{SCORE_REJECTS}|shards_written", f"{SCORE_REJECTS}|shards_skipped"
SPEED_ONLY = ("device", "precision", "batch_size", "decoder")  # clip settings that change no verdict


def claim_scoring(out_dir: str, config: Config) -> None:
    """Record the clip settings in the folder's run.json, or refuse a folder that its run scored or
    that a score with other settings began."""
    from pipeline.run import fingerprint

    run_file = fileio.join(out_dir, "run.json")
    if not (fileio.exists(run_file) and fileio.exists(fileio.join(out_dir, "stats.json"))):
        raise ConfigError(f"{out_dir} holds no finished run (run.json and stats.json): finish it with altcap run")
    claimed = json.loads(fileio.read_bytes(run_file))
    before, now = claimed["config"]["clip"], config.to_dict()["clip"]
    if before["enabled"] and "scored_by" not in claimed:
        raise ConfigError(f"{out_dir} was scored in its run (clip.enabled): there is nothing to score")
    changed = [f"clip.{name} {before.get(name)!r} -> {value!r}" for name, value in now.items()
               if before["enabled"] and name not in SPEED_ONLY and before.get(name) != value]
    if changed:
        raise ConfigError(f"{out_dir} was scored with other settings ({', '.join(changed)}): finish it with the same")
    claimed["config"]["clip"] = now
    claimed["scored_by"] = "altcap score"
    claimed["fingerprint"] = fingerprint(claimed["inputs"], config_from_dict(claimed["config"]),
                                         claimed.get("resolved", {}))
    fileio.write_bytes(run_file, json.dumps(claimed, indent=1).encode())


def build(pipeline: beam.Pipeline, shards: list[int], config: Config, out_dir: str) -> None:
    """Add the scoring of ``shards``, then the top-fraction cut, then the tally of the folder, to
    ``pipeline``."""
    scored = (pipeline
              | "Shards" >> beam.Create(shards)
              | "Score" >> ModelPass(config, out_dir, (ClipStep.stage,), SCORE_REJECTS))
    if TopFractionCut.enabled(config):  # only this cut re-reads its own rejects: the run's passes saw no scores
        scored = scored | TopFractionCut.stage >> TopFractionCut(config, out_dir, (TopFractionCut.rejects,))
    pre_rejects = (pipeline
                   | "PreRejects" >> MatchFiles(fileio.join(out_dir, REJECTS, PRE_REJECTS, "*.parquet"))
                   | "PreRejectPaths" >> beam.Map(lambda found: found.path))
    (scored, pre_rejects) | "Written" >> WriteTally(out_dir, [ClipStep])


def planned_score(out_dir: str, config: Config, options, *, claim: bool = True) -> beam.Pipeline:
    """The shards listed, the model found, the folder claimed (not when ``claim`` is false: a dry
    run writes nothing) and the job built."""
    from pipeline.run import new_pipeline

    if not config.clip.enabled:
        raise ConfigError("altcap score runs CLIP: clip.enabled must stay true")
    shards = shard_ids(out_dir)
    if not shards:
        raise ConfigError(f"{out_dir} holds no finished shards (shards/NNNNN_stats.json) to score")
    ClipStep.preflight(config)
    if claim:
        claim_scoring(out_dir, config)
        fileio.delete(fileio.match(fileio.join(out_dir, tally.WRITTEN)))  # the run's: this job writes its own
    log.info("scoring %d shard(s) of %s", len(shards), out_dir)
    pipeline = new_pipeline(options)
    build(pipeline, shards, config, out_dir)
    return pipeline


def rescored_stats(out_dir: str, config: Config, counters: dict[str, int], written: dict) -> dict:
    """The folder's stats.json with the clip stages appended to its funnel, checked again against the
    job's tally ``written``, and the figures that depend on them (samples, rejects, the clip and
    clip_top summaries) made anew."""
    stats = json.loads(fileio.read_bytes(fileio.join(out_dir, "stats.json")))
    added = funnel_from_counters(counters)
    again = {entry["stage"] for entry in added}
    stats["funnel"] = [entry for entry in stats["funnel"] if entry["stage"] not in again] + added
    stats.update(samples=written["samples"], shards=written["shards"], rejects=written["rejects"])
    problems = check_funnel(stats["funnel"], samples_written=stats["samples"], rejects_written=stats["rejects"])
    stats["check"] = {"ok": not problems, "problems": problems}
    stats[ClipStep.stage] = written["steps"][ClipStep.stage][1]
    if TopFractionCut.enabled(config):
        stats[TopFractionCut.stage] = TopFractionCut.summary(out_dir)
    stats["config"][ClipStep.stage] = config.to_dict()[ClipStep.stage]
    return stats


def score(out_dir: str, config: Config, *, beam_args: list[str] = ()) -> dict:
    """Score every finished shard of ``out_dir`` not scored yet, cut, and check the funnel again;
    returns the shards scored and skipped, and the stats written."""
    from pipeline.report import write_report
    from pipeline.run import pipeline_options

    result = planned_score(out_dir, config, pipeline_options(list(beam_args))).run()
    result.wait_until_finish()
    counters = counters_of(result)
    written = tally.read(out_dir)
    stats = rescored_stats(out_dir, config, counters, written)
    fileio.write_bytes(fileio.join(out_dir, "stats.json"), json.dumps(stats, indent=1, ensure_ascii=False).encode())
    write_report(out_dir, stats, written)
    if not stats["check"]["ok"]:
        raise AccountingError("records do not add up: " + "; ".join(stats["check"]["problems"]))
    return {"shards_scored": counters.get(SCORED, 0), "shards_skipped": counters.get(SKIPPED, 0), "stats": stats}
