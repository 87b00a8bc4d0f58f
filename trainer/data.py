"""Batches for the trainer from altcap's token files (README "Tokens for the trainer").

Each folder is an altcap output folder: ``tokens/NNNNN.npy`` (one structured array per shard: key,
text_ids, text_length, image_codes) and ``tokens/tokenizers.json``. Files are memory-mapped and a
batch is a gather of rows: nothing to decode, so no DataLoader worker processes are needed, nor a
prefetch thread. `TokenStream` reads a list of folders as one; `MixedStream` draws from each folder of
a mix manifest (``synth.mix``) its weight's share of every batch.
"""

from __future__ import annotations

import glob
import json
import os

import numpy as np
import torch

from dataset.layout import TOKENS
from tokens.manifest import TokenizerMismatch, differences, manifest_path


def token_folders_spec(folders: list[str]) -> dict:
    """The tokenizers.json of the folders, which must all name the same tokenizers (tokens.manifest.COMPARED)."""
    if not folders:
        raise ValueError("no token folders named")
    specs = []
    for folder in folders:
        path = manifest_path(folder)
        if not os.path.exists(path):
            raise FileNotFoundError(f"{path} not found: {folder} has no tokens (altcap tokenize {folder} makes them)")
        with open(path, encoding="utf-8") as handle:
            specs.append(json.load(handle))
    for folder, spec in zip(folders[1:], specs[1:]):
        changed = differences(specs[0], spec)
        if changed:
            raise TokenizerMismatch(f"{folder} holds tokens of other tokenizers than {folders[0]} "
                                    f"({'; '.join(changed)}): train on folders tokenized alike")
    return specs[0]


def is_val(keys: np.ndarray, val_per_mille: int) -> np.ndarray:
    """int(key[:8], 16) % 1000 < val_per_mille for each key (keys are hex digests), without a Python loop."""
    heads = np.asarray(keys).astype("S8").tobytes().decode("ascii")
    return np.frombuffer(bytes.fromhex(heads), ">u4") % 1000 < val_per_mille


class TokenStream:
    """Batches (text_ids int64 (B,L), text_lengths int64 (B,), image_codes int64 (B,N)) from token files,
    endless (epoch after epoch), deterministic for (seed, rank, world_size), resumable exactly from `state()`.

    Each epoch the shards are permuted by (seed, epoch); rank r takes shards[r::world_size] (with fewer
    shards than ranks every rank takes every shard and rows r::world_size of each group's order); shards
    are taken ``mix`` at a time and the group's rows permuted by (seed, epoch, group). Batches run on
    across groups and epochs. ``split="val"``: the held-out rows in file order, one pass, the last
    batch maybe short. ``offset`` counts the positions of the epoch's order passed, rows of the other
    split included, so a resume reads no row before it.
    """

    def __init__(self, folders: list[str], batch_size: int, *, rank: int = 0, world_size: int = 1, seed: int = 0,
                 split: str = "train", val_per_mille: int = 10, mix: int = 8):
        if split not in ("train", "val"):
            raise ValueError(f"split must be train or val, not {split!r}")
        token_folders_spec(folders)
        self.paths = sorted(p for folder in folders for p in glob.glob(os.path.join(folder, TOKENS.folder, "*.npy")))
        if not self.paths:
            raise FileNotFoundError(f"no token files in {', '.join(folders)}")
        self.folders = folders
        self.batch_size, self.rank, self.world_size, self.seed = batch_size, rank, world_size, seed
        self.split, self.val_per_mille, self.mix = split, val_per_mille, mix
        self.epoch, self.offset = 0, 0
        self._sizes: dict[str, int] = {}
        self._plan = self._group = None

    def state(self) -> dict:
        return {"epoch": int(self.epoch), "offset": int(self.offset)}

    def load_state(self, state: dict) -> None:
        if "epoch" not in state:
            raise ValueError("the data position is of a mix manifest's sources, not of a list of folders")
        self.epoch, self.offset = int(state["epoch"]), int(state["offset"])

    def __iter__(self):
        return self

    def __next__(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.take(self.batch_size)

    def take(self, count: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The next ``count`` rows (fewer at the end of the val pass): a batch, or a mixed batch's share."""
        parts, need, fresh = [], count, None  # fresh: rows still needed when an epoch began in this call
        while need:
            group = self._current()
            if group is None:  # past the epoch's end
                if self.split == "val":
                    break
                if fresh == need:
                    raise ValueError(f"rank {self.rank} of {self.world_size} has no {self.split} rows in an epoch "
                                     f"of {', '.join(self.folders)}")
                self.epoch, self.offset, fresh = self.epoch + 1, 0, need
                continue
            start, end, files, starts, rows, positions = group
            first = np.searchsorted(positions, self.offset - start)
            taken = rows[first:first + need]
            self.offset = start + positions[first + need - 1] + 1 if len(taken) == need else end
            parts.append(gather(files, starts, taken))
            need -= len(taken)
        if need == count:
            raise StopIteration
        return tuple(torch.from_numpy(np.concatenate(part)) for part in zip(*parts))

    def _size(self, path: str) -> int:
        if path not in self._sizes:
            self._sizes[path] = len(np.load(path, mmap_mode="r"))
        return self._sizes[path]

    def _epoch_plan(self) -> tuple[list[list[str]], bool]:
        """This rank's groups of shards in the epoch, and whether ranks split each group's rows."""
        if self._plan is None or self._plan[0] != self.epoch:
            paths = self.paths
            if self.split == "train":
                paths = [paths[i] for i in np.random.default_rng([self.seed, self.epoch]).permutation(len(paths))]
            split_rows = len(paths) < self.world_size
            mine = paths if split_rows else paths[self.rank::self.world_size]
            self._plan = self.epoch, [mine[i:i + self.mix] for i in range(0, len(mine), self.mix)], split_rows
        return self._plan[1:]

    def _current(self):
        """The group holding ``offset`` (start, end, files, row starts, rows, their positions), None past the end."""
        if self._group and self._group[0] == self.epoch and self._group[1] <= self.offset < self._group[2]:
            return self._group[1:]
        groups, split_rows = self._epoch_plan()
        start = 0
        for index, paths in enumerate(groups):  # lengths from the files' headers: no rows read
            size = sum(map(self._size, paths))
            end = start + (len(range(self.rank, size, self.world_size)) if split_rows else size)
            if self.offset < end:
                self._group = (self.epoch, start, end, *self._load(index, paths, split_rows))
                return self._group[1:]
            start = end
        return None

    def _load(self, index: int, paths: list[str], split_rows: bool) -> tuple:
        """The group's files, where each file's rows start, and this rank's rows of the split in order
        (indices into the group's rows) with their positions in the group's order."""
        files = [np.load(path, mmap_mode="r") for path in paths]
        starts = np.cumsum([0] + [len(file) for file in files])
        if self.split == "train":
            order = np.random.default_rng([self.seed, self.epoch, index]).permutation(starts[-1])
        else:
            order = np.arange(starts[-1])
        if split_rows:
            order = order[self.rank::self.world_size]
        try:
            val = np.concatenate([is_val(file["key"], self.val_per_mille) for file in files])
        except ValueError as error:
            raise ValueError(f"keys of {', '.join(paths)} must start with 8 hex digits ({error})") from None
        positions = np.flatnonzero(val[order] == (self.split == "val"))
        return files, starts, order[positions], positions


class MixedStream:
    """Training batches from several folders (the sources of a mix manifest, ``altcap mix``) in proportion
    to their weights, deterministic for (seed, rank, world_size) and resumable exactly from `state()`.

    Each source is a TokenStream of its own, with its own epochs (a source smaller than its share
    repeats sooner). Each row of a batch goes to the source furthest behind its share of the rows
    handed out so far (n * weight - taken, the first such source on a tie): after any n rows a source
    is less than a row ahead of n * weight and at most a row or two behind, whatever the batch size,
    and every rank draws the same counts from each source.
    """

    def __init__(self, folders: list[str], weights: list[float], batch_size: int, *, rank: int = 0,
                 world_size: int = 1, seed: int = 0, val_per_mille: int = 10, mix: int = 8):
        if len(folders) != len(weights) or not all(weight > 0 for weight in weights):
            raise ValueError(f"a weight above 0 for each folder, not {weights} for {folders}")
        token_folders_spec(folders)
        self.folders, self.weights = list(folders), [weight / sum(weights) for weight in weights]
        self.batch_size = batch_size
        self.streams = [TokenStream([folder], batch_size, rank=rank, world_size=world_size, seed=seed, split="train",
                                    val_per_mille=val_per_mille, mix=mix) for folder in folders]
        self.taken = [0] * len(folders)

    def state(self) -> dict:
        return {"sources": [{"folder": folder, "weight": weight, "taken": taken, **stream.state()} for
                            folder, weight, taken, stream in zip(self.folders, self.weights, self.taken, self.streams)]}

    def load_state(self, state: dict) -> None:
        if "sources" not in state:
            raise ValueError("the data position is of a list of folders, not of a mix manifest's sources")
        theirs = [(source["folder"], source["weight"]) for source in state["sources"]]
        if theirs != list(zip(self.folders, self.weights)):
            raise ValueError(f"the data position is of another mix ({', '.join(f'{f}={w:g}' for f, w in theirs)})")
        for stream, source in zip(self.streams, state["sources"]):
            stream.load_state(source)
        self.taken = [int(source["taken"]) for source in state["sources"]]

    def __iter__(self):
        return self

    def __next__(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        counts = self.counts()
        parts = [stream.take(count) for stream, count in zip(self.streams, counts) if count]
        self.taken = [taken + count for taken, count in zip(self.taken, counts)]
        return tuple(torch.cat(part) for part in zip(*parts))

    def counts(self) -> list[int]:
        """How many rows of the next batch each source gives."""
        taken = list(self.taken)
        for n in range(sum(taken) + 1, sum(taken) + self.batch_size + 1):
            behind = [n * weight - count for weight, count in zip(self.weights, taken)]
            taken[behind.index(max(behind))] += 1
        return [after - before for after, before in zip(taken, self.taken)]


def gather(files: list[np.ndarray], starts: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, ...]:
    """(text_ids, text_length, image_codes) as int64 of the group's ``rows``, in their order."""
    shard = np.searchsorted(starts, rows, side="right") - 1
    text_shape, codes_shape = files[0].dtype["text_ids"].shape, files[0].dtype["image_codes"].shape
    ids = np.empty((len(rows), *text_shape), np.int64)
    lengths = np.empty(len(rows), np.int64)
    codes = np.empty((len(rows), *codes_shape), np.int64)
    for j in np.unique(shard):
        at = np.flatnonzero(shard == j)
        picked = files[j][rows[at] - starts[j]]
        ids[at], lengths[at], codes[at] = picked["text_ids"], picked["text_length"], picked["image_codes"]
    return ids, lengths, codes
