"""The records of a synthetic run: ``per_prompt`` candidates for each prompt of an expanded prompt
file (``prompts.jsonl``, one ``synth.prompts.Prompt`` a line), each with its own seed. A record's
URL, ``synthetic://PROMPT_ID/N``, names its prompt as the host, so shard assignment keeps a
prompt's images together, and its key follows from URL and prompt like any record's.

Variations (``altcap synth --from-dataset``) are records too: ``per_prompt`` for each sample of a
finished folder's shard that has tokens, carrying the sample's code grid (``image_codes``), its
final caption and its key (``source_key``, which also stands as the prompt id: the best of a
sample's variations are kept)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import IO, Iterator

from dataset import fileio
from dataset.layout import TOKENS, shard_paths
from dataset.reader import read_parquet
from dataset.side_arrays import load_side
from filters.record import new_record
from synth.prompts import Prompt

SOURCE = "synthetic"
SCHEME = "synthetic://"
PROMPTS_FILE = "prompts.jsonl"


def write_prompts(stream: IO[bytes], prompts: list[Prompt]) -> None:
    for prompt in prompts:
        line = {"prompt_id": prompt.prompt_id, **dataclasses.asdict(prompt)}
        stream.write((json.dumps(line, ensure_ascii=False) + "\n").encode("utf-8"))


def image_seed(seed: int, prompt_id: str, number: int) -> int:
    """A 31-bit seed for image ``number`` of a prompt: the same on every machine and run."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{prompt_id}:{number}".encode()).digest()[:4], "big") >> 1


def prompt_records(stream: IO[bytes], *, per_prompt: int, seed: int) -> Iterator[dict]:
    """``per_prompt`` records for each prompt line of ``stream``."""
    for line in stream:
        if not line.strip():
            continue
        prompt = json.loads(line)
        slots = dict(prompt["slots"])
        for number in range(per_prompt):
            yield new_record(
                f"{SCHEME}{prompt['prompt_id']}/{number}", prompt["text"], source=SOURCE,
                prompt_id=prompt["prompt_id"], template=prompt["template"],
                slots=json.dumps(slots, ensure_ascii=False, sort_keys=True) if slots else None,
                label=slots.get("class"), seed=image_seed(seed, prompt["prompt_id"], number))


def variation_records(out_dir: str, shard_id: int, *, per_prompt: int, seed: int) -> Iterator[dict]:
    """``per_prompt`` records for each sample of a finished shard that has its code grid in tokens/."""
    paths = shard_paths(out_dir, shard_id)
    if not fileio.exists(paths[TOKENS.folder]):
        return
    codes = {str(row["key"]): row["image_codes"] for row in load_side(paths[TOKENS.folder])}
    rows = read_parquet(paths["parquet"], ["key", "caption", "caption_hypernymized"]).to_pylist()
    for row in rows:
        if row["key"] not in codes:
            continue
        caption = row["caption_hypernymized"] or row["caption"]
        for number in range(per_prompt):
            yield new_record(f"{SCHEME}{row['key']}/{number}", caption, source=SOURCE, prompt_id=row["key"],
                             source_key=row["key"], image_codes=codes[row["key"]],
                             seed=image_seed(seed, row["key"], number))
