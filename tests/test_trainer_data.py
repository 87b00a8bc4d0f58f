"""trainer.data: batches from token files written the way altcap writes them (dataset.side_arrays),
the train/val split by key, disjoint ranks, seeded order and an exact resume from ``state()``."""

from __future__ import annotations

import hashlib
import json
import math
import os

import numpy as np
import pytest
import torch

from dataset.layout import TOKENIZERS_FILE, TOKENS
from dataset.side_arrays import side_array, write_side
from tokens.manifest import TokenizerMismatch
from trainer.data import TokenStream, is_val, token_folders_spec

pytestmark = pytest.mark.timeout(60)

LENGTH, GRID, VAL = 6, 2, 100  # VAL per mille: about 1 row in 10 held out


def manifest(grid: int = GRID) -> dict:
    """A tokenizers.json with the fields tokens.manifest.describe writes."""
    return {"image": {"library": "diffusers", "class": "VQModel", "model": "random-vq", "subfolder": None,
                      "revision": None, "sha256": "ab" * 32, "image_size": grid * 8, "factor": 8, "grid": grid,
                      "codebook_size": 64, "dtype": "<u2"},
            "text": {"library": "altcap-bpe", "tokenizer": "bpe", "sha256": "cd" * 32, "vocab_size": 300,
                     "length": LENGTH, "pad_id": 0, "dtype": "<u2"},
            "file": {"folder": TOKENS.folder, "fields": ["key", *TOKENS.columns]}}


def token_folder(root, name: str, sizes: list[int], first_id: int = 0, grid: int = GRID) -> str:
    """An output folder with one token file per size; text_ids[0] of every row is its own row id."""
    folder = os.path.join(root, name)
    os.makedirs(os.path.join(folder, TOKENS.folder))
    rng = np.random.default_rng(first_id)
    row_id = first_id
    for shard, size in enumerate(sizes):
        rows = []
        for _ in range(size):
            key = hashlib.sha1(f"{name}/{row_id}".encode()).hexdigest()[:20]
            length = int(rng.integers(1, LENGTH + 1))
            ids = np.zeros(LENGTH, np.uint16)
            ids[:length] = rng.integers(1, 300, length)
            ids[0] = row_id
            rows.append((key, ids, np.uint16(length), rng.integers(0, 64, grid * grid).astype(np.uint16)))
            row_id += 1
        write_side(os.path.join(folder, TOKENS.folder, f"{shard:05d}.npy"), side_array(TOKENS, rows))
    with open(os.path.join(folder, TOKENS.folder, TOKENIZERS_FILE), "w") as handle:
        json.dump(manifest(grid), handle)
    return folder


@pytest.fixture
def folders(tmp_path) -> list[str]:
    return [token_folder(tmp_path, "a", [31, 47, 23, 40, 38]), token_folder(tmp_path, "b", [29, 52], first_id=1000)]


def token_files(folders: list[str]):
    for folder in folders:
        for name in sorted(os.listdir(os.path.join(folder, TOKENS.folder))):
            if name.endswith(".npy"):
                yield os.path.join(folder, TOKENS.folder, name), np.load(os.path.join(folder, TOKENS.folder, name))


def file_rows(folders: list[str]) -> dict[int, np.void]:
    """Every row of the folders by its id."""
    return {int(row["text_ids"][0]): row for _, rows in token_files(folders) for row in rows}


def held_out(rows: dict[int, np.void]) -> set[int]:
    return {row_id for row_id, row in rows.items() if int(str(row["key"])[:8], 16) % 1000 < VAL}


def ids(batch) -> list[int]:
    return batch[0][:, 0].tolist()


def epoch_ids(stream: TokenStream) -> list[int]:
    """The row ids of the stream's first epoch, a batch of one at a time."""
    out = []
    while True:
        batch = next(stream)
        if stream.state()["epoch"] > 0:
            return out
        out += ids(batch)


def test_batches_are_the_file_rows_as_int64(folders):
    rows = file_rows(folders)
    stream = TokenStream(folders, 8, val_per_mille=VAL, mix=2)
    for _ in range(40):  # past an epoch
        text_ids, text_lengths, image_codes = next(stream)
        assert text_ids.shape == (8, LENGTH) and text_lengths.shape == (8,) and image_codes.shape == (8, GRID ** 2)
        assert text_ids.dtype == text_lengths.dtype == image_codes.dtype == torch.int64
        for ids_, length, codes in zip(text_ids.numpy(), text_lengths.numpy(), image_codes.numpy()):
            row = rows[int(ids_[0])]
            assert (ids_ == row["text_ids"]).all() and length == row["text_length"]
            assert (codes == row["image_codes"]).all()


def test_an_epoch_of_train_and_the_val_pass_hold_every_row_once(folders):
    rows = file_rows(folders)
    val = held_out(rows)
    assert 10 <= len(val) <= 45  # about VAL per mille of 260 rows
    train_count = len(rows) - len(val)
    stream = TokenStream(folders, 7, val_per_mille=VAL, mix=3)
    seen = [row_id for _ in range(math.ceil(2 * train_count / 7)) for row_id in ids(next(stream))]
    first, second = seen[:train_count], seen[train_count:2 * train_count]
    assert sorted(first) == sorted(second) == sorted(set(rows) - val)
    assert first != second  # each epoch its own order
    val_batches = list(TokenStream(folders, 7, split="val", val_per_mille=VAL, mix=3))
    assert [len(batch[0]) for batch in val_batches] == [7] * (len(val) // 7) + ([len(val) % 7] if len(val) % 7 else [])
    assert sorted(row_id for batch in val_batches for row_id in ids(batch)) == sorted(val)
    in_order = [row_id for batch in val_batches for row_id in ids(batch)]
    assert in_order == sorted(in_order)  # file order: ids grow through the sorted shards


@pytest.mark.parametrize("sizes, world_size", [([31, 47, 23, 40, 38, 29, 52], 2), ([90], 3), ([40, 50], 3)])
def test_ranks_read_disjoint_rows_that_cover_the_epoch(tmp_path, sizes, world_size):
    folders = [token_folder(tmp_path, "a", sizes)]
    rows = file_rows(folders)
    for split, wanted in (("train", set(rows) - held_out(rows)), ("val", held_out(rows))):
        parts = []
        for rank in range(world_size):
            stream = TokenStream(folders, 1, rank=rank, world_size=world_size, split=split, val_per_mille=VAL, mix=2)
            parts.append(epoch_ids(stream) if split == "train" else [ids(batch)[0] for batch in stream])
        if split == "train":
            assert all(parts)  # no rank is empty, also with fewer shards than ranks
        assert sum(map(len, parts)) == len(wanted) and set().union(*map(set, parts)) == wanted


def test_the_seed_decides_the_order_and_groups_of_shards_are_mixed(folders):
    def first(seed: int) -> list[int]:
        stream = TokenStream(folders, 16, seed=seed, val_per_mille=VAL, mix=2)
        return [row_id for _ in range(5) for row_id in ids(next(stream))]

    assert first(0) == first(0) and first(1) == first(1) and first(0) != first(1)
    shard = {int(row_id): path for path, rows in token_files(folders) for row_id in rows["text_ids"][:, 0]}
    batch = first(0)[:16]
    assert len({shard[row_id] for row_id in batch}) == 2 and batch != sorted(batch)


@pytest.mark.parametrize("rank, world_size, mix", [(0, 1, 2), (1, 2, 3), (2, 3, 8)])
def test_a_stream_resumed_from_its_state_gives_the_same_batches(folders, rank, world_size, mix):
    if world_size == 3:
        folders = folders[1:]  # two shards, three ranks: the ranks split rows
    options = dict(rank=rank, world_size=world_size, seed=5, val_per_mille=VAL, mix=mix)
    reference = TokenStream(folders, 9, **options)
    expected = [ids(next(reference)) for _ in range(50)]  # over two epochs
    assert reference.state()["epoch"] >= 1
    for stop in (1, 6, 13, 17, 29, 41):
        stream = TokenStream(folders, 9, **options)
        for _ in range(stop):
            next(stream)
        state = json.loads(json.dumps(stream.state()))
        resumed = TokenStream(folders, 9, **options)
        resumed.load_state(state)
        assert [ids(next(resumed)) for _ in range(50 - stop)] == expected[stop:]


def test_a_resume_reads_no_row_before_its_offset(folders):
    stream = TokenStream(folders, 10, val_per_mille=VAL, mix=1)
    consumed = [row_id for _ in range(15) for row_id in ids(next(stream))]
    state = stream.state()
    assert state["epoch"] == 0
    expected = [ids(next(stream)) for _ in range(3)]
    done = set(consumed) | held_out(file_rows(folders))
    spoiled = 0
    for path, rows in token_files(folders):  # spoil the keys of the shards passed whole: a read of them would fail
        if consumed[-1] not in rows["text_ids"][:, 0] and set(rows["text_ids"][:, 0].tolist()) <= done:
            rows["key"] = "not hex"
            write_side(path, rows)
            spoiled += 1
    assert spoiled
    resumed = TokenStream(folders, 10, val_per_mille=VAL, mix=1)
    resumed.load_state(state)
    assert [ids(next(resumed)) for _ in range(3)] == expected
    with pytest.raises(ValueError, match="8 hex digits"):
        next(TokenStream(folders, 10, val_per_mille=VAL, mix=1))  # from the start it reads them


def test_folders_of_other_tokenizers_are_refused_in_one_line(tmp_path, folders):
    assert token_folders_spec(folders) == manifest()
    other = token_folder(tmp_path, "c", [10], first_id=2000, grid=4)
    with pytest.raises(TokenizerMismatch) as refused:
        token_folders_spec([*folders, other])
    assert "image.grid 2 -> 4" in str(refused.value) and "\n" not in str(refused.value)
    with pytest.raises(TokenizerMismatch, match="image.grid"):
        TokenStream([folders[0], other], 4)


def test_the_split_is_the_first_eight_hex_digits_per_mille():
    keys = np.array(["00000063ffff", "00000064", "000003e7aa", "000003E8", "ffffffff"])  # 99, 100, 999, 1000, ...295
    assert is_val(keys, 100).tolist() == [True, False, False, True, False]
    with pytest.raises(ValueError):
        is_val(np.array(["0000006"]), 100)


def test_a_rank_without_train_rows_is_an_error_not_an_endless_loop(folders):
    with pytest.raises(ValueError, match="no train rows"):
        next(TokenStream(folders, 4, val_per_mille=1000))
