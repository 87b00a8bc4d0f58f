"""Build the Beam pipeline for a run, run it, then check and write the funnel (stats.json)."""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
import os
import time

import apache_beam as beam
from apache_beam.options.pipeline_options import (
    DirectOptions,
    PipelineOptions,
    StandardOptions,
    WorkerOptions,
)
from apache_beam.runners.runner import PipelineState

from crawl import commoncrawl
from crawl.http_stream import is_http
from dataset import fileio, tally
from dataset.layout import PRE_REJECTS, REJECTS, SHARDS, SIDE_FILES
from dataset.schema import REJECT_SCHEMA, reject_row
from filters.langid import model_path
from pipeline import passes
from pipeline.config import Config, ConfigError, load_config
from pipeline.funnel import AccountingError, check_funnel, funnel_from_counters
from pipeline.inputs import expand_inputs, preflight
from pipeline.metrics import REJECTED, RETRY, CountedStage, counter_name, counters_of
from pipeline.model_pass import MODEL_PASS_REJECTS, ModelPass, model_pass_stages, shard_step
from pipeline.pages import FetchPages
from pipeline.progress_monitor import Monitor
from pipeline.report import write_report
from pipeline.shard_builder import StaleShardError
from pipeline.shard_retry import RetryFailed
from pipeline.sources import PAGES, ReadSource
from pipeline.stages import URL_DEDUP, AssignShards, UrlDedup
from pipeline.steps import SHARD_STEPS, enabled_steps
from pipeline.text_stage import TEXT, TextRules
from pipeline.written import WriteTally

log = logging.getLogger("altcap")

VERSION = "0.1.0"
# Settings that change speed but never which samples come out: a resumed run may change them.
SPEED_ONLY = {("download", "threads"), ("download", "host_rps"), ("input", "http_retries"),
              ("input", "http_backoff_s"), ("pools", "accelerator"), ("pools", "min_ram")}


class OutputFolderError(ValueError):
    """The output folder holds another run."""


def input_sizes(items: list[tuple[str, str]]) -> list[list]:
    """(kind, path, size in bytes) of every input item, so an edited input is noticed. Common
    Crawl's files (never rewritten) and files over HTTP(S) are not sized: a request per file would
    cost the launcher as many requests as the whole run."""
    return [[kind, path, None if is_http(path) or commoncrawl.is_published(path) else fileio.size(path)]
            for kind, path in items]


def resolved_settings(config: Config) -> dict[str, str]:
    """What the enabled steps' machine-dependent settings stand for here ("auto": the model found)."""
    return {name: value for step in enabled_steps(config) for name, value in step.resolved(config).items()}


def fingerprint(inputs: list[list], config: Config, resolved: dict[str, str]) -> str:
    settings = {section: {k: v for k, v in values.items() if (section, k) not in SPEED_ONLY}
                for section, values in config.to_dict().items()}
    content = {"inputs": inputs, "config": settings}
    if resolved:  # left out when empty, so such runs keep the fingerprint they had before it existed
        content["resolved"] = resolved
    blob = json.dumps(content, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def previous_outputs(out_dir: str) -> list[str]:
    """Everything a finished run leaves that ``--overwrite`` must delete: the shards, the rejects,
    every side file, the whole-run passes' summaries and the stats."""
    patterns = [(SHARDS, "*"), (REJECTS, "*.parquet"), ("stats.json",), (tally.WRITTEN,)]
    patterns += [(side.folder, "*") for side in SIDE_FILES]
    patterns += [(each.summary_file,) for each in passes.PASSES if each.summary_file]
    patterns += [(left,) for each in passes.PASSES for left in each.leaves]
    return [path for pattern in patterns for path in fileio.match(fileio.join(out_dir, *pattern))]


def prepare_output(out_dir: str, items, config: Config, *, overwrite: bool) -> None:
    """Claim the output folder for this run, or check a previous run's claim for resuming."""
    fileio.ensure_dir(out_dir)
    run_file = fileio.join(out_dir, "run.json")
    inputs = input_sizes(items)
    resolved = resolved_settings(config)
    claim = {"fingerprint": fingerprint(inputs, config, resolved), "inputs": inputs,
             "config": config.to_dict(), "resolved": resolved}
    if fileio.exists(run_file) and not overwrite:
        previous = json.loads(fileio.read_bytes(run_file))
        if previous.get("fingerprint") != claim["fingerprint"]:
            changed = (_changed_settings(previous.get("config", {}), claim["config"])
                       + _changed_resolutions(previous, claim))
            if previous.get("inputs") != inputs:
                changed.append("the input files")
            if changed:
                raise OutputFolderError(
                    f"{out_dir} holds a run with other settings ({', '.join(changed)}); "
                    "resume needs the same inputs and config: use another --output, or --overwrite")
    if overwrite:
        fileio.delete(previous_outputs(out_dir))
    # Stages before the shards are recomputed on every run; their rejects are written afresh (with
    # what a killed write left: Beam's beam-temp-* folder), and so is the tally of what the run wrote.
    early = fileio.join(out_dir, REJECTS, PRE_REJECTS)
    fileio.delete(fileio.match(fileio.join(early, "**")) + fileio.match(fileio.join(out_dir, tally.WRITTEN)))
    if fileio.exists(early):  # a local folder
        fileio.delete([early])
    temporary = [(SHARDS, "*.tmp-*"), (REJECTS, "*.tmp-*")] + [(side.folder, "*.tmp-*") for side in SIDE_FILES]
    fileio.delete([path for pattern in temporary for path in fileio.match(fileio.join(out_dir, *pattern))])
    for sub in (SHARDS, REJECTS):
        fileio.ensure_dir(fileio.join(out_dir, sub))
    fileio.write_bytes(run_file, json.dumps(claim, indent=1).encode())


def _changed_settings(old: dict, new: dict) -> list[str]:
    """The settings that differ, but for speed-only ones and settings added to altcap since the
    folder was made, left at their defaults (a folder made by an older altcap resumes)."""
    defaults = Config().to_dict()
    return [f"{section}.{key}" for section, values in new.items() for key, value in values.items()
            if (section, key) not in SPEED_ONLY and old.get(section, {}).get(key, defaults[section][key]) != value]


def _changed_resolutions(previous: dict, claim: dict) -> list[str]:
    """Settings as they were that stand for something else now, e.g. "auto" finding a new model."""
    was, old_config, config = previous.get("resolved", {}), previous.get("config", {}), claim["config"]
    return [f"{name} ({_setting(config, name)}: was {was.get(name, 'not recorded')}, now {now})"
            for name, now in claim["resolved"].items()
            if was.get(name) != now and _setting(old_config, name) == _setting(config, name)]


def _setting(config: dict, name: str):
    section, key = name.split(".", 1)
    return config.get(section, {}).get(key)


def build(pipeline: beam.Pipeline, items: list[tuple[str, str]], config: Config,
          out_dir: str, retry: RetryFailed | None = None) -> None:
    """Add the whole run to ``pipeline``; with ``retry``, finished shards are written again with
    their failed records run anew (``altcap run --retry-failed``)."""
    config_dict = config.to_dict()
    read = (pipeline
            | "Inputs" >> beam.Create(items)
            | "SpreadInputs" >> beam.Reshuffle()
            | "ReadSources" >> beam.ParDo(ReadSource(config_dict)).with_outputs(
                REJECTED, PAGES, main="records"))
    crawled = read[PAGES] | "CrawlPages" >> FetchPages(config_dict)
    candidates = (read["records"], crawled["records"]) | "AllCandidates" >> beam.Flatten()
    rejects = [read[REJECTED], crawled[REJECTED]]

    if not config.synth.generator:  # a synthetic run's captions are its prompts: no alt-text rules
        texts = candidates | "Text" >> CountedStage(TEXT, TextRules(config_dict))
        candidates = texts["kept"]
        rejects.append(texts[REJECTED])

    if config.dedup.url != "none" and not config.synth.generator:
        deduped = candidates | "UrlDedup" >> CountedStage(URL_DEDUP, UrlDedup(config.dedup.url))
        candidates = deduped["kept"]
        rejects.append(deduped[REJECTED])

    shards = (candidates
              | "AssignShards" >> AssignShards(config.shards.samples_per_shard, config.download.per_host)
              | "BuildShards" >> shard_step(config, out_dir, retry))
    if stages := model_pass_stages(config):  # the models on their own workers (pools.model_pass)
        shards = (shards
                  | "WrittenShards" >> beam.Keys()
                  | "ModelPass" >> ModelPass(config, out_dir, stages, MODEL_PASS_REJECTS))
    shards = passes.apply_passes(shards, config, out_dir)

    reject_files = (rejects
                    | "EarlyRejects" >> beam.Flatten()
                    | "RejectRows" >> beam.Map(reject_row)
                    | "WriteRejects" >> beam.io.WriteToParquet(
                        fileio.join(out_dir, REJECTS, PRE_REJECTS, "part"), REJECT_SCHEMA,
                        file_name_suffix=".parquet", codec="zstd"))
    (shards, reject_files) | "Written" >> WriteTally(out_dir, enabled_steps(config))


def pipeline_options(beam_args: list[str]) -> PipelineOptions:
    """The user's Beam options; local runs default to one worker process per core. The launcher's
    own reads and writes of gs:// and s3:// paths use them too (``--s3_endpoint_url``, ...)."""
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
    if "--sdk_harness_log_level_overrides" not in given:  # altcap's debug lines (--verbose) in workers too
        worker_logs.sdk_harness_log_level_overrides = {"altcap": "DEBUG" if log.isEnabledFor(logging.DEBUG) else "INFO"}
    fileio.use_options(options)
    return options


def new_pipeline(options: PipelineOptions) -> beam.Pipeline:
    """A pipeline for ``options``; options its runner refuses (an unknown runner, a malformed
    ``--project``) end with one message."""
    try:
        return beam.Pipeline(options=options)
    except ValueError as err:  # Beam's "Pipeline has validations errors: ..."
        raise ConfigError(" ".join(str(err).split())) from None


def planned_run(inputs: list[str], out_dir: str, config: Config, options: PipelineOptions, *,
                input_format: str = "auto", overwrite: bool = False, claim: bool = True,
                items: list[tuple[str, str]] | None = None, retry: RetryFailed | None = None):
    """Everything before the job runs: the inputs listed (or the ``items`` given) and checked, the
    models found, the output folder claimed (not when ``claim`` is false: a dry run writes nothing)
    and the whole run built. Returns (pipeline, input items, enabled steps)."""
    if items is None:
        items = expand_inputs(list(inputs), input_format if input_format != "auto"
                              else config.input.format, config.input)
    preflight(items, config)
    model_path(config.text.lang_model)  # fetched (or refused) here, not in every worker
    steps = enabled_steps(config)
    for step in steps:
        step.preflight(config)  # a wrong model name or file fails here, not in every worker
    for step in SHARD_STEPS:
        if step not in steps and (notice := step.unused(config)):
            log.info(notice)
    if claim:
        prepare_output(out_dir, items, config, overwrite=overwrite)
        for step in steps:
            step.claim(config, out_dir)
    log.info("%d input item(s); output in %s", len(items), out_dir)
    pipeline = new_pipeline(options)
    build(pipeline, items, config, out_dir, retry)
    return pipeline, items, steps


def claimed_run(out_dir: str) -> dict:
    """What run.json says a folder's run was: its input items and config."""
    run_file = fileio.join(out_dir, "run.json")
    if not fileio.exists(run_file):
        raise OutputFolderError(f"{out_dir} holds no run (no run.json): nothing to retry")
    return json.loads(fileio.read_bytes(run_file))


def retry_config(out_dir: str, config_file: str | None, overrides: list[str]) -> tuple[list[tuple[str, str]], Config]:
    """The input items and config of the run in ``out_dir`` for ``--retry-failed``, with the settings
    given now over it (a change that is not speed-only is refused as on any resume)."""
    claim = claimed_run(out_dir)
    config = load_config(config_file, overrides, base=claim["config"])
    if "scored_by" in claim or config.pools.model_pass:
        how = "altcap score" if "scored_by" in claim else "pools.model_pass"
        raise OutputFolderError(f"{out_dir}: its models ran as a pass of their own ({how}), which --retry-failed "
                                "does not handle: build the folder again with --overwrite")
    return [(kind, path) for kind, path, _ in claim["inputs"]], config


def planned_command(args, options: PipelineOptions, *, claim: bool = True):
    """``planned_run`` for an ``altcap run`` command line: ``--input``/``--output`` or ``--retry-failed``."""
    if args.retry_failed:
        items, config = retry_config(args.retry_failed, args.config, args.set)
        return planned_run([], args.retry_failed, config, options, items=items, retry=passes.retry_failed(config),
                           claim=claim)
    return planned_run(args.input, args.output, load_config(args.config, args.set), options,
                       input_format=args.input_format, overwrite=args.overwrite, claim=claim)


def run(inputs: list[str], out_dir: str, config: Config, *, beam_args: list[str] = (),
        input_format: str = "auto", overwrite: bool = False, items: list[tuple[str, str]] | None = None,
        retry_failed: bool = False) -> dict:
    """Run the pipeline end to end; returns the stats written to ``stats.json``. ``retry_failed``
    runs the records that failed for a transient reason again (``pipeline.shard_retry``)."""
    started = time.time()
    retry = passes.retry_failed(config) if retry_failed else None
    pipeline, items, steps = planned_run(inputs, out_dir, config, pipeline_options(list(beam_args)),
                                         input_format=input_format, overwrite=overwrite, items=items,
                                         retry=retry)
    try:
        with Monitor(len(items)) as monitor:  # the live progress; the funnel below comes from Beam's metrics
            result = pipeline.run()
            state = monitor.wait(result)
    except Exception as failure:
        stale = StaleShardError.found_in(failure)
        if stale is None:
            raise
        raise stale from None
    if state not in (None, PipelineState.DONE):
        raise RuntimeError(f"the pipeline ended in state {state}")

    counters = counters_of(result)
    funnel = funnel_from_counters(counters)
    written = tally.read(out_dir)  # the job's own count of the rows in its files: no shard is read here
    problems = check_funnel(funnel, samples_written=written["samples"], rejects_written=written["rejects"])
    stats = {
        "altcap_version": VERSION,
        "inputs": [list(i) for i in items],
        "output": out_dir,
        "samples": written["samples"],
        "shards": written["shards"],
        "rejects": written["rejects"],
        "funnel": funnel,
        "check": {"ok": not problems, "problems": problems},
    }
    for step in steps:  # what the in-shard steps report, by stage
        if step.stage in written["steps"]:
            stats[step.stage] = written["steps"][step.stage][1]
    for each in passes.PASSES:
        if each.enabled(config) and (summary := each.summary(out_dir)):
            stats[each.stage] = summary
    if retry:
        retried = {name: counters.get(counter_name(RETRY, name), 0) for name in ("retried", "recovered", "refetched")}
        stats["retry"] = dict(retried, failed_again=retried["retried"] - retried["recovered"])
    stats["timings"] = {
        "started": datetime.datetime.fromtimestamp(started, datetime.timezone.utc).isoformat(),
        "wall_s": round(time.time() - started, 3),
    }
    stats["config"] = config.to_dict()
    if stats.get("clip") and not stats["clip"]["filtering"]:
        log.warning("CLIP %s: %s; scores are random and no pair was dropped for its score",
                    stats["clip"]["model"], stats["clip"]["problem"])
    fileio.write_bytes(fileio.join(out_dir, "stats.json"),
                       json.dumps(stats, indent=1, ensure_ascii=False).encode())
    write_report(out_dir, stats, written)
    if problems:
        raise AccountingError("records do not add up: " + "; ".join(problems))
    return stats
