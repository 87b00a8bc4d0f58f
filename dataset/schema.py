"""Column layout of the output metadata (shard parquet, per-sample json) and of rejects.

img2dataset's column names are kept where the meaning is the same (key, url, caption, width,
height, original_width, original_height, sha256, status, error_message) so tools made for
img2dataset output read ours.
"""

from __future__ import annotations

import pyarrow as pa

ENTITY = pa.struct([("start", pa.int32()), ("end", pa.int32()), ("text", pa.string()), ("type", pa.string()),
                    ("hypernym", pa.string()), ("source", pa.string()), ("kept", pa.bool_())])
# Where a candidate came from and what its text is: samples and rejects both carry these.
_CANDIDATE_COLUMNS = [
    ("url", pa.string()),
    ("caption", pa.string()),
    ("page_url", pa.string()),
    ("alt_raw", pa.string()),
    ("source", pa.string()),
    ("lang", pa.string()),
    ("lang_score", pa.float32()),
    ("caption_hypernymized", pa.string()),
    ("entities", pa.list_(ENTITY)),
    # a synthetic sample's provenance (altcap synth; empty for the web's): the caption is its prompt
    ("prompt_id", pa.string()),
    ("template", pa.string()),
    ("slots", pa.string()),  # JSON: slot name -> value
    ("label", pa.string()),  # the class the image should show (the {class} slot)
    ("seed", pa.int64()),
    ("generator", pa.string()),
    ("checkpoint_sha256", pa.string()),
    ("guidance", pa.float32()),
    ("source_key", pa.string()),  # a variation's real sample (altcap synth --from-dataset)
]

SAMPLE_SCHEMA = pa.schema([
    ("key", pa.string()),
    *_CANDIDATE_COLUMNS,
    ("width", pa.int32()),
    ("height", pa.int32()),
    ("original_width", pa.int32()),
    ("original_height", pa.int32()),
    ("image_format", pa.string()),
    ("sha256", pa.string()),
    ("phash", pa.string()),
    ("clip_score", pa.float32()),
    ("clip_labels", pa.list_(pa.string())),
    ("nsfw_score", pa.float32()),
    ("watermark_score", pa.float32()),
    ("http_status", pa.int32()),
    ("status", pa.string()),
    ("error_message", pa.string()),
])

REJECT_SCHEMA = pa.schema([
    ("key", pa.string()),
    ("stage", pa.string()),
    ("reason", pa.string()),
    ("detail", pa.string()),
    *_CANDIDATE_COLUMNS,
    ("http_status", pa.int32()),
    ("width", pa.int32()),
    ("height", pa.int32()),
    ("image_format", pa.string()),
    ("sha256", pa.string()),
    ("phash", pa.string()),
    ("clip_score", pa.float32()),
    ("clip_labels", pa.list_(pa.string())),
    ("nsfw_score", pa.float32()),
    ("watermark_score", pa.float32()),
    ("status", pa.string()),
    ("error_message", pa.string()),
    ("thumbnail", pa.binary()),  # a small JPEG, for the few rejects the report shows (dataset.thumbnails)
])


_RENAMED = {"url": "image_url"}  # output column -> record field


def _row(record: dict, schema: pa.Schema) -> dict:
    return {name: record.get(_RENAMED.get(name, name)) for name in schema.names}


def sample_row(record: dict) -> dict:
    row = _row(record, SAMPLE_SCHEMA)
    row["status"] = "success"
    row["error_message"] = None
    return row


def reject_row(record: dict) -> dict:
    row = _row(record, REJECT_SCHEMA)
    row["status"] = "rejected"
    detail = record.get("detail") or ""
    row["error_message"] = f"{record['reason']}: {detail}" if detail else record["reason"]
    return row


def table(rows: list[dict], schema: pa.Schema) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=schema)
