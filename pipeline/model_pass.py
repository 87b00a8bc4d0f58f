"""The model steps as a pass of their own over written shards: ``altcap score`` (CLIP over a folder
built without it), and ``altcap run`` with ``pools.model_pass`` (CLIP, hypernymize, tokens after a
Reshuffle of shard ids, so the runner fuses them apart from the downloads and can run them on a GPU
pool, ``pipeline.pools``).

Each shard is read back from its tar (image, and the .json row, which holds every value as the
shard step had it), run through the steps in shard order, in the batches the shard step would have
made, and written again as the shard step writes it (``dataset.writer.ShardWriter``): the samples
kept with their new fields and side files, the pass's rejects in ``rejects/<prefix>-NNNNN.parquet``,
its stages added to the shard's stats. So a shard comes out as the shard step with the models in
it would have written it, byte for byte.

Crash-safe, shard by shard: the new tar and stats go under pending names, the parquet, side files
and reject file in place, and the pending stats last (the commit). Then the pending tar replaces
the tar, the rejected keys leave the other side files (tokens made before CLIP ran), and the
pending stats replace the stats: its stages mark the shard done, and a done shard is skipped. Until
the commit the tar is untouched, so a killed pass starts the shard again from it (the same samples
in the same batches); after it, a restart only finishes the moves.
"""

from __future__ import annotations

import time
from collections import Counter

import apache_beam as beam

from dataset import fileio
from dataset.layout import SIDE_FILES, pass_rejects, shard_paths
from dataset.reader import column_if_any, load_stats, written_records
from dataset.side_arrays import drop_keys
from dataset.writer import ShardWriter
from filters.record import is_rejected
from pipeline.config import Config, config_from_dict
from pipeline.generate_step import GenerateStep
from pipeline.metrics import count, count_stage
from pipeline.pools import MODEL_STAGES, on_model_pool
from pipeline.shard_builder import funnel_of
from pipeline.shard_retry import RetryFailed
from pipeline.shard_step import ShardStep, run_steps
from pipeline.stages import BuildShards
from pipeline.steps import enabled_steps

MODEL_PASS_REJECTS = "models"  # rejects/models-NNNNN.parquet: what the model steps of altcap run dropped
SCORE_REJECTS = "clip"  # rejects/clip-NNNNN.parquet: what the clip cut of altcap score dropped


def pending(path: str) -> str:
    """Where a shard file waits between the pass's commit and its move into place."""
    return f"{path}.pending"


def _write_pending(paths: dict, stats: dict, steps: list[ShardStep], rejects_path: str) -> None:
    for step in steps:  # the numbers a step adds up start again with each shard
        if step.summed:
            step.info.update(dict.fromkeys(step.summed, 0))
    started = time.monotonic()
    target = dict(paths, tar=pending(paths["tar"]), stats=pending(paths["stats"]), rejects=rejects_path)
    writer = ShardWriter(target, tuple(step.side_file for step in steps if step.side_file))
    outcomes: Counter = Counter()
    entering = 0
    try:
        for outcome in run_steps(steps, written_records(paths["tar"]), None, 0):
            entering += 1
            writer.add(outcome)
            if is_rejected(outcome):
                outcomes[(outcome["stage"], outcome["reason"])] += 1
        stages = funnel_of(entering, outcomes, tuple(step.stage for step in steps))
        after = dict(stats, samples=len(writer.samples), stages={**stats["stages"], **stages},
                     elapsed_s=round(stats["elapsed_s"] + time.monotonic() - started, 3))
        after.update({step.stage: dict(step.info) for step in steps if step.info is not None})
        writer.commit(after)
    except BaseException as err:
        writer.abort(err)
        raise


def _finish(paths: dict, rejects_path: str) -> None:
    if fileio.exists(pending(paths["tar"])):
        fileio.rename(pending(paths["tar"]), paths["tar"])
    dropped = set(column_if_any(rejects_path, "key"))
    for side in SIDE_FILES:
        if dropped and fileio.exists(paths[side.folder]):
            drop_keys(paths[side.folder], dropped)
    fileio.rename(pending(paths["stats"]), paths["stats"])


def pass_over_shard(out_dir: str, shard_id: int, steps: list[ShardStep], prefix: str) -> tuple[dict, bool]:
    """Run ``steps`` over a written shard (rejects to ``rejects/<prefix>-NNNNN.parquet``) unless its
    stats hold their stages already; returns the shard's stats and whether the steps ran now."""
    paths = shard_paths(out_dir, shard_id)
    stats = load_stats(paths["stats"])
    if all(step.stage in stats["stages"] for step in steps):
        return stats, False
    rejects_path = pass_rejects(out_dir, prefix, shard_id)
    if load_stats(pending(paths["stats"])) is None:
        _write_pending(paths, stats, steps, rejects_path)
    _finish(paths, rejects_path)
    return load_stats(paths["stats"]), True


def model_pass_stages(config: Config) -> tuple[str, ...]:
    """The stages ``altcap run`` leaves to its model pass: none unless ``pools.model_pass``."""
    if not config.pools.model_pass:
        return ()
    return tuple(step.stage for step in enabled_steps(config) if step.stage in MODEL_STAGES)


def shard_step(config: Config, out_dir: str, retry: RetryFailed | None = None) -> beam.PTransform:
    """The shard step of ``altcap run``: on the model pool when the models run inside it."""
    leave_out = model_pass_stages(config)
    transform = beam.ParDo(BuildShards(config.to_dict(), out_dir, leave_out, retry))
    stages = {step.stage for step in enabled_steps(config)}
    # a synthetic run's generator makes the images the shard step writes: it never waits for a model pass
    models = (stages & set(MODEL_STAGES) and not leave_out) or GenerateStep.stage in stages
    return on_model_pool(transform, config) if models else transform


class ModelSteps(beam.DoFn):
    """shard id -> the shard after the steps of ``stages`` (run now, or found done); emits
    (shard id, samples) and counts the stages, also for a shard done before."""

    def __init__(self, config: dict, out_dir: str, stages: tuple[str, ...], prefix: str):
        self._config_dict = config
        self.out_dir = out_dir
        self.stages = stages
        self.prefix = prefix

    def setup(self):
        config = config_from_dict(self._config_dict)
        self.steps = [step.build(config) for step in enabled_steps(config) if step.stage in self.stages]

    def teardown(self):
        for step in self.steps:
            step.close()

    def process(self, shard_id: int):
        stats, ran = pass_over_shard(self.out_dir, shard_id, self.steps, self.prefix)
        count(f"{self.prefix}|{'shards_written' if ran else 'shards_skipped'}")
        for stage in self.stages:
            entry = stats["stages"][stage]
            count_stage(stage, entry["in"], entry["rejected"])
        return [(shard_id, stats["samples"])]


class ModelPass(beam.PTransform):
    """Shard ids -> (shard id, samples) after the steps of ``stages`` ran over the written shards,
    on the model pool; ``prefix`` names the pass's reject files."""

    def __init__(self, config: Config, out_dir: str, stages: tuple[str, ...], prefix: str):
        super().__init__()
        self.config = config
        self.out_dir = out_dir
        self.stages = stages
        self.prefix = prefix

    def expand(self, shard_ids):
        steps = ModelSteps(self.config.to_dict(), self.out_dir, self.stages, self.prefix)
        return (shard_ids
                | "SpreadShards" >> beam.Reshuffle()
                | "ModelSteps" >> on_model_pool(beam.ParDo(steps), self.config))
