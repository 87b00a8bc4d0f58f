"""``altcap tokenizer train``: a byte-level BPE trained on the final captions of a finished run (the
shards' .txt text: the hypernymized rewrite when that step ran), as DALL-E trained its 16,384-id
vocabulary on its own captions."""

from __future__ import annotations

from typing import Iterator

from dataset import fileio
from dataset.layout import shard_ids, shard_paths
from dataset.reader import read_parquet
from tokens import TokenizerError
from tokens.text_ids import train_bpe

FOLDER = "tokenizer"  # beside the shards, unless told otherwise


def final_captions(out_dir: str) -> Iterator[str]:
    for shard_id in shard_ids(out_dir):
        rows = read_parquet(shard_paths(out_dir, shard_id)["parquet"], ["caption", "caption_hypernymized"])
        for caption, rewritten in zip(*(column.to_pylist() for column in rows.columns)):
            yield rewritten or caption or ""  # a parquet row has the column, None where the step did not run


def train_on_run(out_dir: str, vocab_size: int, into: str | None = None) -> tuple[str, int]:
    """(the tokenizer's folder, how many captions it learnt from)."""
    if vocab_size < 300:
        raise TokenizerError(f"--vocab {vocab_size}: a byte-level BPE needs at least 300 ids (256 bytes, specials)")
    captions = list(final_captions(out_dir))
    if not captions:
        raise TokenizerError(f"{out_dir} holds no finished shards with captions to train on")
    folder = into or fileio.join(out_dir, FOLDER)
    if fileio.is_remote(folder):
        raise TokenizerError(f"{folder}: the tokenizer is written to a local folder; give one with --into")
    train_bpe(captions, folder, vocab_size)
    return folder, len(captions)
