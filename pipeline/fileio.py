"""File access through Beam's FileSystems, so local paths, gs:// and s3:// all work the same way.

Writes are atomic: a file is written under a temporary name and renamed when complete, so a killed
run never leaves a half-written shard under its final name.
"""

from __future__ import annotations

import contextlib
import uuid

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems


def join(base: str, *parts: str) -> str:
    return FileSystems.join(base, *parts)


def exists(path: str) -> bool:
    return FileSystems.exists(path)


def ensure_dir(path: str) -> None:
    if not FileSystems.exists(path):
        try:
            FileSystems.mkdirs(path)
        except IOError:  # created meanwhile by another worker
            if not FileSystems.exists(path):
                raise


def open_read(path: str, *, decompress: bool = False):
    """A binary stream; ``decompress`` undoes .gz/.bz2/.zst by the file's extension."""
    kind = CompressionTypes.AUTO if decompress else CompressionTypes.UNCOMPRESSED
    return FileSystems.open(path, compression_type=kind)


def read_bytes(path: str) -> bytes:
    with open_read(path) as handle:
        return handle.read()


def read_range(path: str, offset: int, size: int) -> bytes:
    """``size`` bytes at ``offset`` (the whole file from ``offset`` when size < 0)."""
    with open_read(path) as handle:
        if offset:
            handle.seek(offset)
        return handle.read() if size < 0 else handle.read(size)


@contextlib.contextmanager
def atomic_write(path: str):
    """Yield a binary stream; on success the data appears at ``path`` in one rename."""
    temp = f"{path}.tmp-{uuid.uuid4().hex[:12]}"
    stream = FileSystems.create(temp, compression_type=CompressionTypes.UNCOMPRESSED)
    try:
        yield stream
        stream.close()
    except BaseException:
        stream.close()
        with contextlib.suppress(Exception):
            FileSystems.delete([temp])
        raise
    if FileSystems.exists(path):
        FileSystems.delete([path])
    FileSystems.rename([temp], [path])


def write_bytes(path: str, data: bytes) -> None:
    with atomic_write(path) as stream:
        stream.write(data)


def match(pattern: str) -> list[str]:
    """Sorted paths matching a glob (an empty list when none match)."""
    results = FileSystems.match([pattern])[0].metadata_list
    return sorted(m.path for m in results)


def size(path: str) -> int | None:
    """Size in bytes of ``path`` as the file system reports it; None when it matches no single entry."""
    found = FileSystems.match([path])[0].metadata_list
    return found[0].size_in_bytes if len(found) == 1 and found[0].path == path else None


def delete(paths: list[str]) -> None:
    if paths:
        FileSystems.delete(paths)
