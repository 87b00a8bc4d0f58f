"""Build the Beam pipeline for a run, run it, then check and write the funnel (stats.json)."""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
import os
import time

import apache_beam as beam
import pyarrow.parquet as pq
from apache_beam.options.pipeline_options import (
    DirectOptions,
    PipelineOptions,
    StandardOptions,
    WorkerOptions,
)
from apache_beam.runners.runner import PipelineState

from filters.clip_grounding import label_vocabulary
from filters.clip_model import check_clip_spec
from filters.langid import model_path
from pipeline import fileio
from pipeline.clip_step import clip_spec
from pipeline.clip_top import CUT_FILE, TopFractionCut, top_cut_summary
from pipeline.concept_cut import CONCEPTS_FILE, ConceptFrequencyCut, concepts_summary
from pipeline.config import Config
from pipeline.funnel import AccountingError, check_funnel, funnel_from_counters
from pipeline.inputs import expand_inputs, preflight
from pipeline.metrics import counters_of
from pipeline.pages import FetchPages
from pipeline.report import write_report
from pipeline.schema import REJECT_SCHEMA, reject_row
from pipeline.sources import PAGES, REJECTED, ReadSource
from pipeline.stages import AssignShards, BuildShards, ImageDedup, UrlDedup
from pipeline.text_stage import TextStage

log = logging.getLogger("altcap")

VERSION = "0.1.0"
# Settings that change speed but never which samples come out: a resumed run may change them.
SPEED_ONLY = {("download", "threads"), ("download", "per_host")}


class OutputFolderError(ValueError):
    """The output folder holds another run."""


def input_sizes(items: list[tuple[str, str]]) -> list[list]:
    """(kind, path, size in bytes) of every input item, so an edited input is noticed."""
    return [[kind, path, fileio.size(path)] for kind, path in items]


def fingerprint(inputs: list[list], config: Config) -> str:
    settings = {section: {k: v for k, v in values.items() if (section, k) not in SPEED_ONLY}
                for section, values in config.to_dict().items()}
    blob = json.dumps({"inputs": inputs, "config": settings}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def prepare_output(out_dir: str, items, config: Config, *, overwrite: bool) -> None:
    """Claim the output folder for this run, or check a previous run's claim for resuming."""
    fileio.ensure_dir(out_dir)
    run_file = fileio.join(out_dir, "run.json")
    inputs = input_sizes(items)
    claim = {"fingerprint": fingerprint(inputs, config), "inputs": inputs, "config": config.to_dict()}
    if fileio.exists(run_file) and not overwrite:
        previous = json.loads(fileio.read_bytes(run_file))
        if previous.get("fingerprint") != claim["fingerprint"]:
            changed = _changed_settings(previous.get("config", {}), claim["config"])
            if previous.get("inputs") != inputs:
                changed.append("the input files")
            raise OutputFolderError(
                f"{out_dir} holds a run with other settings ({', '.join(changed) or 'unknown'}); "
                "resume needs the same inputs and config: use another --output, or --overwrite")
    if overwrite:
        fileio.delete(fileio.match(fileio.join(out_dir, "shards", "*")) +
                      fileio.match(fileio.join(out_dir, "rejects", "*.parquet")) +
                      fileio.match(fileio.join(out_dir, "stats.json")) +
                      fileio.match(fileio.join(out_dir, CUT_FILE)) +
                      fileio.match(fileio.join(out_dir, CONCEPTS_FILE)))
    # Stages before the shards are recomputed on every run; their rejects are written afresh.
    fileio.delete(fileio.match(fileio.join(out_dir, "rejects", "pre", "*")))
    fileio.delete(fileio.match(fileio.join(out_dir, "shards", "*.tmp-*")) +
                  fileio.match(fileio.join(out_dir, "rejects", "*.tmp-*")))
    for sub in ("shards", "rejects"):
        fileio.ensure_dir(fileio.join(out_dir, sub))
    fileio.write_bytes(run_file, json.dumps(claim, indent=1).encode())


def _changed_settings(old: dict, new: dict) -> list[str]:
    return [f"{section}.{key}" for section, values in new.items() for key, value in values.items()
            if old.get(section, {}).get(key) != value and (section, key) not in SPEED_ONLY]


def build(pipeline: beam.Pipeline, items: list[tuple[str, str]], config: Config,
          out_dir: str) -> None:
    """Add the whole run to ``pipeline``."""
    config_dict = config.to_dict()
    read = (pipeline
            | "Inputs" >> beam.Create(items)
            | "SpreadInputs" >> beam.Reshuffle()
            | "ReadSources" >> beam.ParDo(ReadSource(config_dict)).with_outputs(
                REJECTED, PAGES, main="records"))
    crawled = read[PAGES] | "CrawlPages" >> FetchPages(config_dict)
    candidates = (read["records"], crawled["records"]) | "AllCandidates" >> beam.Flatten()
    rejects = [read[REJECTED], crawled[REJECTED]]

    texts = candidates | "Text" >> TextStage(config_dict)
    candidates = texts["kept"]
    rejects.append(texts[REJECTED])

    if config.dedup.url != "none":
        deduped = candidates | "UrlDedup" >> UrlDedup(config.dedup.url)
        candidates = deduped["kept"]
        rejects.append(deduped[REJECTED])

    shards = (candidates
              | "AssignShards" >> AssignShards(config.shards.samples_per_shard)
              | "BuildShards" >> beam.ParDo(BuildShards(config_dict, out_dir)))
    if config.hypernymize.enabled and config.hypernymize.min_concept_mentions:
        shards = shards | "ConceptFrequency" >> ConceptFrequencyCut(config.hypernymize.min_concept_mentions,
                                                                    out_dir)
    if config.clip.enabled and config.clip.top_fraction is not None:
        shards = shards | "ClipTopFraction" >> TopFractionCut(config.clip.top_fraction, out_dir)
    if config.dedup.image:
        shards | "ImageDedup" >> ImageDedup(out_dir)

    (rejects
     | "EarlyRejects" >> beam.Flatten()
     | "RejectRows" >> beam.Map(reject_row)
     | "WriteRejects" >> beam.io.WriteToParquet(
         fileio.join(out_dir, "rejects", "pre", "part"), REJECT_SCHEMA,
         file_name_suffix=".parquet", codec="zstd"))


def pipeline_options(beam_args: list[str]) -> PipelineOptions:
    """The user's Beam options; local runs default to one worker process per core."""
    options = PipelineOptions(beam_args)
    standard = options.view_as(StandardOptions)
    direct = options.view_as(DirectOptions)
    given = " ".join(beam_args)
    if standard.runner in (None, "DirectRunner", "direct"):
        if "--direct_running_mode" not in given:
            direct.direct_running_mode = "multi_processing"
        if "--direct_num_workers" not in given:
            direct.direct_num_workers = os.cpu_count() or 1
    worker_logs = options.view_as(WorkerOptions)
    if "--default_sdk_harness_log_level" not in given:
        worker_logs.default_sdk_harness_log_level = "WARNING"
    if "--sdk_harness_log_level_overrides" not in given:
        worker_logs.sdk_harness_log_level_overrides = {"altcap": "INFO"}
    return options


def parquet_rows(paths: list[str]) -> int:
    total = 0
    for path in paths:
        with fileio.open_read(path) as stream:
            total += pq.ParquetFile(stream).metadata.num_rows
    return total


def clip_info(out_dir: str) -> dict | None:
    """The CLIP model the shards were scored with (weights, precision, cuts, any problem)."""
    for path in sorted(fileio.match(fileio.join(out_dir, "shards", "*_stats.json"))):
        found = json.loads(fileio.read_bytes(path)).get("clip")
        if found:
            return dict(found, top_fraction=top_cut_summary(out_dir))
    return None


def run(inputs: list[str], out_dir: str, config: Config, *, beam_args: list[str] = (),
        input_format: str = "auto", overwrite: bool = False) -> dict:
    """Run the pipeline end to end; returns the stats written to ``stats.json``."""
    started = time.time()
    items = expand_inputs(list(inputs), input_format if input_format != "auto"
                          else config.input.format)
    preflight(items, config)
    model_path(config.text.lang_model)  # fetched (or refused) here, not in every worker
    if config.clip.enabled:
        check_clip_spec(clip_spec(config.clip))  # a wrong name fails here, not in every worker
        if config.clip.grounding:
            label_vocabulary(config.clip.grounding_vocabulary, config.clip.grounding_vocabulary_size)
    if config.hypernymize.enabled:
        from hypernymize.spacy_tagger import load_spacy_tagger
        from hypernymize.wikidata_kb import WikidataKb
        from hypernymize.wordnet_source import instance_table

        instance_table()  # compiled once here (~10 s the first time), not by every local worker at once
        if config.hypernymize.kb:
            WikidataKb(config.hypernymize.kb)  # an unusable KB fails here, not in every worker
        if config.hypernymize.spacy_model not in ("auto", "off"):
            load_spacy_tagger(config.hypernymize.spacy_model)  # so does a model that will not load
    prepare_output(out_dir, items, config, overwrite=overwrite)
    log.info("%d input item(s); output in %s", len(items), out_dir)

    pipeline = beam.Pipeline(options=pipeline_options(list(beam_args)))
    build(pipeline, items, config, out_dir)
    result = pipeline.run()
    state = result.wait_until_finish()
    if state not in (None, PipelineState.DONE):
        raise RuntimeError(f"the pipeline ended in state {state}")

    funnel = funnel_from_counters(counters_of(result))
    shard_files = fileio.match(fileio.join(out_dir, "shards", "*.parquet"))
    reject_files = (fileio.match(fileio.join(out_dir, "rejects", "*.parquet")) +
                    fileio.match(fileio.join(out_dir, "rejects", "pre", "*.parquet")))
    samples, rejected = parquet_rows(shard_files), parquet_rows(reject_files)
    problems = check_funnel(funnel, samples_written=samples, rejects_written=rejected)
    stats = {
        "altcap_version": VERSION,
        "inputs": [list(i) for i in items],
        "output": out_dir,
        "samples": samples,
        "shards": len(shard_files),
        "rejects": rejected,
        "funnel": funnel,
        "check": {"ok": not problems, "problems": problems},
        "clip": clip_info(out_dir) if config.clip.enabled else None,
        "concepts": concepts_summary(out_dir) if config.hypernymize.min_concept_mentions else None,
        "timings": {
            "started": datetime.datetime.fromtimestamp(started, datetime.timezone.utc).isoformat(),
            "wall_s": round(time.time() - started, 3),
        },
        "config": config.to_dict(),
    }
    if stats["clip"] and not stats["clip"]["filtering"]:
        log.warning("CLIP %s: %s; scores are random and no pair was dropped for its score",
                    stats["clip"]["model"], stats["clip"]["problem"])
    fileio.write_bytes(fileio.join(out_dir, "stats.json"),
                       json.dumps(stats, indent=1, ensure_ascii=False).encode())
    write_report(out_dir, stats, shard_parquets=shard_files, reject_files=reject_files)
    if problems:
        raise AccountingError("records do not add up: " + "; ".join(problems))
    return stats
