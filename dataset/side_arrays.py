"""Side files as numpy structured arrays (``dataset.layout.SideFile``): built from a shard's rows,
written atomically, read back, and rewritten without dropped keys. Byte for byte the same for the
same rows, so a side file made in a run equals one made later over the finished shard."""

from __future__ import annotations

import io

import numpy as np

from dataset import fileio
from dataset.layout import SideFile


def side_array(side: SideFile, rows: list[tuple]) -> np.ndarray:
    """(key, value per column) rows as one structured array: ``key`` as fixed-width text, then each
    column in the type and shape its values have (little-endian, so any machine reads it)."""
    keys = [row[0] for row in rows]
    columns = [np.stack([np.asarray(row[n + 1]) for row in rows]) for n in range(len(side.columns))]
    dtype = [("key", f"<U{max(map(len, keys))}")]
    dtype += [(name, column.dtype.newbyteorder("<"), column.shape[1:]) for name, column in zip(side.columns, columns)]
    array = np.empty(len(rows), dtype=dtype)
    array["key"] = keys
    for name, column in zip(side.columns, columns):
        array[name] = column
    return array


def write_side(path: str, array: np.ndarray) -> None:
    with fileio.atomic_write(path) as stream:
        np.save(stream, array, allow_pickle=False)


def load_side(path: str) -> np.ndarray:
    """A side file's array, read whole (``np.load(path, mmap_mode="r")`` maps a local one instead)."""
    return np.load(io.BytesIO(fileio.read_bytes(path)), allow_pickle=False)


def drop_keys(path: str, drop: set[str]) -> None:
    """Rewrite a side file without the rows of ``drop``; untouched when it holds none of them."""
    array = load_side(path)
    keep = ~np.isin(array["key"], list(drop))
    if not keep.all():
        write_side(path, array[keep])
