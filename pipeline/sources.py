"""Source stage: every input item becomes candidate records (and source rejects).

``iter_source`` dispatches on the input kind to the Beam-free readers in ``crawl``; ``ReadSource``
is the Beam step around it. A file that breaks half-way (a truncated gzip, say) ends with one
reject for the rest of the file instead of failing the job.
"""

from __future__ import annotations

import logging
import time
from typing import Iterator

import apache_beam as beam

from crawl import img2dataset_folder, lists, warc
from crawl.http_stream import ResumableHTTPStream, is_http
from dataset import fileio
from filters.record import SOURCE, is_input_error, is_rejected, make_key, new_record, reject
from pipeline import progress
from pipeline.config import Config, config_from_dict
from pipeline.metrics import REJECTED, count_verdict
from synth.records import prompt_records, variation_records

log = logging.getLogger("altcap")

PAGES = "pages"
PROGRESS_EVERY_S = 10.0


def _list_options(config: Config) -> dict:
    cfg = config.input
    return {"url_column": cfg.url_column, "caption_column": cfg.caption_column}


def _files_layout_records(folder: str) -> Iterator[dict]:
    """img2dataset's ``files`` layout: KEY.jpg beside KEY.txt and KEY.json in a sub-folder."""
    samples: dict[str, dict] = {}
    for path in fileio.match(fileio.join(folder, "*")):
        name = path.rsplit("/", 1)[-1]
        sample_key, _, ext = name.partition(".")
        samples.setdefault(sample_key, {})[ext.lower()] = path
    for sample_key in sorted(samples):
        parts = samples[sample_key]
        image = next((parts[e] for e in img2dataset_folder.IMAGE_EXTENSIONS if e in parts), None)
        meta = fileio.read_bytes(parts["json"]) if "json" in parts else None
        caption = fileio.read_bytes(parts["txt"]) if "txt" in parts else None
        ref = {"path": image, "offset": 0, "size": -1} if image else None
        yield img2dataset_folder.sample_record(sample_key=sample_key, meta=meta, caption=caption,
                                               image_ref=ref, source=folder)


def _open_archive(path: str, config: Config):
    """A WARC/WAT as stored: over HTTP(S) streamed and resumed where a connection broke."""
    return ResumableHTTPStream(path, config.input.http_policy()) if is_http(path) else fileio.open_read(path)


def iter_source(kind: str, path: str, config: Config) -> Iterator[dict]:
    """Candidate records (passed or rejected) of one input item."""
    if kind in ("warc", "wat"):
        with _open_archive(path, config) as stream:  # FastWARC reads the gzip members itself
            if kind == "warc":
                yield from warc.read_warc(stream, source=path,
                                          lazy_attributes=tuple(config.extract.lazy_attributes),
                                          max_page_bytes=config.extract.max_page_bytes)
            else:
                yield from warc.read_wat(stream, source=path)
    elif kind in ("tsv", "csv"):
        with fileio.open_decompressed(path) as stream:
            yield from lists.read_delimited(
                stream, delimiter="\t" if kind == "tsv" else ",", source=path,
                header=config.input.header,
                headerless_columns=tuple(config.input.headerless_columns), **_list_options(config))
    elif kind == "jsonl":
        with fileio.open_decompressed(path) as stream:
            yield from lists.read_jsonl(stream, source=path, **_list_options(config))
    elif kind == "parquet":
        with fileio.open_read(path) as stream:
            yield from lists.read_parquet(stream, source=path, **_list_options(config))
    elif kind == "img2dataset_tar":
        with fileio.open_read(path) as stream:
            yield from img2dataset_folder.read_webdataset_tar(stream, tar_path=path)
    elif kind == "img2dataset_files":
        yield from _files_layout_records(path)
    elif kind == "prompts":
        with fileio.open_read(path) as stream:
            yield from prompt_records(stream, per_prompt=config.synth.per_prompt, seed=config.synth.seed)
    elif kind == "variations":  # a finished shard's parquet: OUT_DIR/shards/NNNNN.parquet
        folder, name = path.rsplit("/", 1)
        yield from variation_records(folder.rsplit("/", 1)[0], int(name.split(".")[0]),
                                     per_prompt=config.synth.per_prompt, seed=config.synth.seed)
    else:
        raise ValueError(f"unknown input kind {kind!r}")


def read_page_list(path: str) -> Iterator[str]:
    """Page URLs of a ``pages`` input: one per line, blank lines and #comments skipped."""
    with fileio.open_decompressed(path) as stream:
        for line in stream:
            url = line.decode("utf-8", "replace").strip()
            if url and not url.startswith("#"):
                yield url


def _broken_file(kind: str, path: str, produced: int, err: Exception) -> dict:
    where = f"{path}@after-{produced}"
    record = new_record("", "", source=where, key=make_key(where, kind))
    return reject(record, SOURCE, "unreadable_file", f"{type(err).__name__}: {err}"[:500])


class ReadSource(beam.DoFn):
    """(kind, path) -> candidate records; rejects go to the ``rejected`` output."""

    def __init__(self, config: dict):
        self._config_dict = config
        self.config: Config | None = None

    def setup(self):
        self.config = config_from_dict(self._config_dict)

    def process(self, item):
        kind, path = item
        if kind == PAGES:
            for url in read_page_list(path):
                yield beam.pvalue.TaggedOutput(PAGES, (url, path))
            _input_done()
            return
        produced = 0
        next_report = time.monotonic() + PROGRESS_EVERY_S
        try:
            for record in iter_source(kind, path, self.config):
                produced += 1
                count_verdict(SOURCE, record)
                if produced % 1000 == 0 and time.monotonic() > next_report:
                    next_report = time.monotonic() + PROGRESS_EVERY_S
                    log.debug("reading %s: %d candidates so far", path, produced)
                if is_rejected(record):
                    yield beam.pvalue.TaggedOutput(REJECTED, record)
                else:
                    yield record
        except BaseException as err:  # a broken file costs its remaining records, not the job
            if not is_input_error(err):
                raise
            log.warning("input %s broke after %d records: %s", path, produced, err)
            record = _broken_file(kind, path, produced, err)
            count_verdict(SOURCE, record)
            yield beam.pvalue.TaggedOutput(REJECTED, record)
        _input_done()


def _input_done() -> None:
    """An input item read to its end: the progress shows it with the candidates it gave, at once."""
    progress.tick(progress.INPUTS_DONE)
    progress.flush()
