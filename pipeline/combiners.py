"""Beam combiners shared by the second passes over the shards."""

from __future__ import annotations

from collections import Counter

import apache_beam as beam


class SumCounts(beam.CombineFn):
    """Adds up dicts of counts (per-shard histograms, concept mentions) into one dict."""

    def create_accumulator(self):
        return Counter()

    def add_input(self, accumulator, counts):
        accumulator.update(counts)
        return accumulator

    def merge_accumulators(self, accumulators):
        merged = Counter()
        for accumulator in accumulators:
            merged.update(accumulator)
        return merged

    def extract_output(self, accumulator):
        return dict(accumulator)
