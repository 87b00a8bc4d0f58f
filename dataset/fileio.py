"""File access for local paths and object stores (gs://, s3://, ...): local paths go straight to
the operating system, and only a path with a scheme loads Beam's FileSystems (which the pipeline's
options configure), so the shard format and the trainer read local folders without Beam.

Writes are atomic: a file is written under a temporary name and renamed when complete, so a killed
run never leaves a half-written shard under its final name.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import uuid


def is_remote(path: str) -> bool:
    return "://" in path


def _filesystems():
    from apache_beam.io.filesystems import FileSystems

    return FileSystems


def join(base: str, *parts: str) -> str:
    return _filesystems().join(base, *parts) if is_remote(base) else os.path.join(base, *parts)


def exists(path: str) -> bool:
    return _filesystems().exists(path) if is_remote(path) else os.path.exists(path)


def ensure_dir(path: str) -> None:
    if not is_remote(path):
        os.makedirs(path, exist_ok=True)
    elif not _filesystems().exists(path):
        try:
            _filesystems().mkdirs(path)
        except IOError:  # created meanwhile by another worker
            if not _filesystems().exists(path):
                raise


def open_read(path: str):
    """A binary stream of the file as stored (no decompression)."""
    if not is_remote(path):
        return open(path, "rb")
    from apache_beam.io.filesystem import CompressionTypes

    return _filesystems().open(path, compression_type=CompressionTypes.UNCOMPRESSED)


def read_bytes(path: str) -> bytes:
    with open_read(path) as handle:
        return handle.read()


def read_range(path: str, offset: int, size: int) -> bytes:
    """``size`` bytes at ``offset`` (the whole file from ``offset`` when size < 0)."""
    with open_read(path) as handle:
        if offset:
            handle.seek(offset)
        return handle.read() if size < 0 else handle.read(size)


def _create(path: str):
    if not is_remote(path):
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        return open(path, "wb")
    from apache_beam.io.filesystem import CompressionTypes

    return _filesystems().create(path, compression_type=CompressionTypes.UNCOMPRESSED)


def _rename(source: str, target: str) -> None:
    if not is_remote(target):
        os.replace(source, target)
        return
    if _filesystems().exists(target):
        _filesystems().delete([target])
    _filesystems().rename([source], [target])


@contextlib.contextmanager
def atomic_write(path: str):
    """Yield a binary stream; on success the data appears at ``path`` in one rename."""
    temp = f"{path}.tmp-{uuid.uuid4().hex[:12]}"
    stream = _create(temp)
    try:
        yield stream
        stream.close()
    except BaseException:
        stream.close()
        with contextlib.suppress(Exception):
            delete([temp])
        raise
    _rename(temp, path)


def write_bytes(path: str, data: bytes) -> None:
    with atomic_write(path) as stream:
        stream.write(data)


def match(pattern: str) -> list[str]:
    """Sorted paths of the files matching a glob (an empty list when none match)."""
    if not is_remote(pattern):
        return sorted(p for p in glob.glob(pattern, recursive=True) if os.path.isfile(p))
    results = _filesystems().match([pattern])[0].metadata_list
    return sorted(m.path for m in results)


def size(path: str) -> int | None:
    """Size in bytes of the file at ``path``; None when there is no such file."""
    if not is_remote(path):
        return os.path.getsize(path) if os.path.isfile(path) else None
    found = _filesystems().match([path])[0].metadata_list
    return found[0].size_in_bytes if len(found) == 1 and found[0].path == path else None


def delete(paths: list[str]) -> None:
    """Delete files, and folders with everything in them."""
    remote = [path for path in paths if is_remote(path)]
    if remote:
        _filesystems().delete(remote)
    for path in paths:
        if is_remote(path):
            continue
        if os.path.isdir(path):
            shutil.rmtree(path)
        else:
            os.remove(path)
