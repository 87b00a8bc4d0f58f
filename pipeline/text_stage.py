"""The text stage in Beam: caption rules and language ID on batches, then the run-wide repeat cut.

It runs on the candidates straight from the sources, before URL dedup and before any image is
fetched. Every record leaves with ``caption`` (cleaned), ``lang`` and ``lang_score`` (null for a
caption rejected on its form before language ID, or one the model has no evidence on).
"""

from __future__ import annotations

import hashlib

import apache_beam as beam

from filters.record import reject
from filters.text_filter import TextFilter
from pipeline.config import config_from_dict
from pipeline.metrics import REJECTED

TEXT = "text"


def text_key(caption: str) -> str:
    """Captions that differ only in case and spacing share a key."""
    return hashlib.blake2b(" ".join(caption.lower().split()).encode("utf-8", "surrogatepass"),
                           digest_size=8).hexdigest()


class CheckTexts(beam.DoFn):
    """Batches of records in; each record out, passed or tagged ``rejected`` with its reason."""

    def __init__(self, config_dict: dict):
        self.config_dict = config_dict
        self.filter = None

    def setup(self):
        text = config_from_dict(self.config_dict).text
        self.filter = TextFilter(text.rules(), text.lang_model)

    def process(self, batch):
        verdicts = self.filter.check_batch([record.get("caption") or "" for record in batch])
        for record, verdict in zip(batch, verdicts):
            record = dict(record, caption=verdict.caption, lang=verdict.lang,
                          lang_score=verdict.lang_score)
            if verdict.passed:
                yield record
            else:
                yield beam.pvalue.TaggedOutput(REJECTED, reject(record, TEXT, verdict.reason,
                                                                verdict.detail))


class DropRepeatedTexts(beam.PTransform):
    """Drop captions used for more than ``max_repeats`` distinct image URLs in the whole run.

    Only small values are shuffled: (caption hash, URL hash) pairs are made distinct and counted
    per caption with a combine; the captions over the limit reach the filter as a side input."""

    def __init__(self, max_repeats: int):
        super().__init__()
        self.max_repeats = max_repeats

    def expand(self, records):
        limit = self.max_repeats
        keyed = records | "KeyByText" >> beam.Map(lambda r: (text_key(r["caption"]), r))
        overused = (keyed
                    | "TextAndUrl" >> beam.Map(lambda kv: (kv[0], text_key(kv[1]["image_url"])))
                    | "DistinctPairs" >> beam.Distinct()
                    | "TextOnly" >> beam.Keys()
                    | "CountUses" >> beam.combiners.Count.PerElement()
                    | "OverLimit" >> beam.Filter(lambda kv: kv[1] > limit))

        def split(item, overused):
            key, record = item
            uses = overused.get(key)
            if uses is None:
                yield record
            else:
                yield beam.pvalue.TaggedOutput(REJECTED, reject(
                    record, TEXT, "repeated_text", f"used for {uses} images (limit {limit})"))

        return keyed | "DropRepeated" >> beam.FlatMap(
            split, overused=beam.pvalue.AsDict(overused)).with_outputs(REJECTED, main="kept")


class TextRules(beam.PTransform):
    """Records in; ``kept`` and ``rejected`` out: the rules on batches, then the repeat cut."""

    def __init__(self, config_dict: dict):
        super().__init__()
        self.config_dict = config_dict

    def expand(self, records):
        text = config_from_dict(self.config_dict).text
        checked = (records
                   | "BatchTexts" >> beam.BatchElements(min_batch_size=1, max_batch_size=text.batch_size)
                   | "CheckTexts" >> beam.ParDo(CheckTexts(self.config_dict)).with_outputs(REJECTED, main="kept"))
        if not text.max_repeats:
            return {"kept": checked["kept"], REJECTED: checked[REJECTED]}
        repeats = checked["kept"] | "RepeatedTexts" >> DropRepeatedTexts(text.max_repeats)
        rejected = (checked[REJECTED], repeats[REJECTED]) | "TextRejects" >> beam.Flatten()
        return {"kept": repeats["kept"], REJECTED: rejected}
