"""The job's last step: ``written.json``, the tally of what it wrote (``dataset.tally``), made by
the workers that read back each finished shard and each reject file of rejects/pre/, added up in
one combine over a constant key whose accumulator stays small. The launcher reads that file, not
the shards."""

from __future__ import annotations

import functools

import apache_beam as beam

from dataset import tally
from pipeline.model_pass import MODEL_PASS_REJECTS, SCORE_REJECTS
from pipeline.passes import PASSES

# every reject file a shard can have beside the shard step's: the whole-run passes', the model pass's
REJECT_PREFIXES = tuple(each.rejects for each in PASSES) + (MODEL_PASS_REJECTS, SCORE_REJECTS)


class AddTallies(beam.CombineFn):
    def __init__(self, summed: dict[str, tuple[str, ...]]):
        self.summed = summed

    def create_accumulator(self):
        return tally.empty()

    def add_input(self, total, more):
        return tally.add(total, more, self.summed)

    def merge_accumulators(self, totals):
        totals = iter(totals)
        first = next(totals)
        for more in totals:
            tally.add(first, more, self.summed)
        return first

    def extract_output(self, total):
        return total


def _tally_shard(out_dir: str, summed: dict, item: tuple[int, int]) -> dict:
    return tally.shard(out_dir, item[0], REJECT_PREFIXES, summed)


class WriteTally(beam.PTransform):
    """(finished shards as (shard id, samples), paths of rejects/pre/ files) -> ``written.json``;
    ``steps``: the in-shard steps whose reports the tally gathers."""

    def __init__(self, out_dir: str, steps):
        super().__init__()
        self.out_dir = out_dir
        self.summed = {step.stage: tuple(step.summed) for step in steps}

    def expand(self, inputs):
        shards, pre_rejects = inputs
        return ((shards | "TallyShards" >> beam.Map(functools.partial(_tally_shard, self.out_dir, self.summed)),
                 pre_rejects | "TallyPreRejects" >> beam.Map(tally.reject_file, self.out_dir))
                | "AllTallies" >> beam.Flatten()
                | "AddTallies" >> beam.CombineGlobally(AddTallies(self.summed))
                | "WriteTally" >> beam.Map(functools.partial(tally.write, self.out_dir)))
