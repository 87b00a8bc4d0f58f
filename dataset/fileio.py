"""File access for local paths and object stores (gs://, s3://, ...): local paths go straight to
the operating system, and only a path with a scheme loads Beam's FileSystems (which the pipeline's
options configure), so the shard format and the trainer read local folders without Beam.

Writes are atomic: a file is written under a temporary name and renamed when complete, so a killed
run never leaves a half-written shard under its final name.

A store is checked at its first use: a missing client package or, in the launcher, missing
credentials end with one line. Unchecked, Beam retries an s3:// call without credentials with
exponential backoff for many minutes (measured: over 9 minutes on moto_server), and a gs:// call
after ~20 s of looking for credentials goes on anonymously.
"""

from __future__ import annotations

import bz2
import contextlib
import glob
import gzip
import importlib
import io
import lzma
import os
import shutil
import uuid
import zlib


def is_remote(path: str) -> bool:
    return "://" in path


class StoreError(OSError):
    """An object store that cannot be used as set up; the message says what is missing."""


def _aws_credentials(options) -> bool:
    import boto3
    from apache_beam.options.pipeline_options import S3Options

    return bool(options.view_as(S3Options).s3_access_key_id) or boto3.session.Session().get_credentials() is not None


def _google_credentials(options) -> bool:
    """python-storage skips authentication when STORAGE_EMULATOR_HOST names an emulator."""
    import google.auth
    from google.auth.exceptions import DefaultCredentialsError

    if os.environ.get("STORAGE_EMULATOR_HOST"):
        return True
    try:
        google.auth.default()
    except DefaultCredentialsError:
        return False
    return True


# scheme: (client module, the package that brings it, has credentials, how to give them)
STORES = {
    "s3": ("boto3", "apache-beam[aws]", _aws_credentials,
           "pass --s3_access_key_id and --s3_secret_access_key (and --s3_endpoint_url for an S3-compatible "
           "store) or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"),
    "gs": ("google.cloud.storage", "apache-beam[gcp]", _google_credentials,
           "run `gcloud auth application-default login` or set GOOGLE_APPLICATION_CREDENTIALS; public files "
           "can be read over https://storage.googleapis.com/"),
}
_launcher_options = None  # what use_options gave, in the launcher; workers get theirs from Beam
_checked: set[str] = set()  # the schemes found usable


def use_options(options) -> None:
    """Reach remote paths with the run's Beam options (``--s3_endpoint_url``, ``--s3_access_key_id``,
    ...). Beam hands them to FileSystems when a pipeline is made and in its workers, but the launcher
    lists the inputs and claims the output folder before that."""
    global _launcher_options
    _filesystems_module().set_options(options)
    _launcher_options = options
    _checked.clear()


def _check_store(path: str) -> None:
    scheme = path.split("://", 1)[0].lower()
    if scheme in _checked or scheme not in STORES:
        return
    module, package, has_credentials, how = STORES[scheme]
    try:
        importlib.import_module(module)
    except ImportError:
        raise StoreError(f"{path}: {scheme}:// paths need {module}: pip install '{package}'") from None
    if _launcher_options is not None and not has_credentials(_launcher_options):
        raise StoreError(f"{path}: no credentials for {scheme}:// found: {how}")
    _checked.add(scheme)


def _filesystems_module():
    from apache_beam.io.filesystems import FileSystems

    return FileSystems


def _filesystems(path: str):
    """Beam's FileSystems, once the store of ``path`` is known to be usable."""
    _check_store(path)
    return _filesystems_module()


def join(base: str, *parts: str) -> str:
    return _filesystems_module().join(base, *parts) if is_remote(base) else os.path.join(base, *parts)


def exists(path: str) -> bool:
    return _filesystems(path).exists(path) if is_remote(path) else os.path.exists(path)


def ensure_dir(path: str) -> None:
    if not is_remote(path):
        os.makedirs(path, exist_ok=True)
    elif not _filesystems(path).exists(path):
        try:
            _filesystems(path).mkdirs(path)
        except IOError:  # created meanwhile by another worker
            if not _filesystems(path).exists(path):
                raise


def open_read(path: str):
    """A binary stream of the file as stored (no decompression)."""
    if not is_remote(path):
        return open(path, "rb")
    from apache_beam.io.filesystem import CompressionTypes

    return _filesystems(path).open(path, compression_type=CompressionTypes.UNCOMPRESSED)


class _Inflated(io.RawIOBase):
    """A zlib stream (``.deflate``, as Beam writes it) decompressed while read."""

    def __init__(self, raw):
        self._raw = raw
        self._inflate = zlib.decompressobj()
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self._pending and not self._inflate.eof:
            chunk = self._raw.read(1 << 16)
            if not chunk:
                raise EOFError("compressed file ended before the end-of-stream marker was reached")
            self._pending = self._inflate.decompress(chunk)
        size = min(len(buffer), len(self._pending))
        buffer[:size], self._pending = self._pending[:size], self._pending[size:]
        return size


class _Decompressed(io.RawIOBase):
    """The decompressed bytes of ``raw``; closing it closes both streams."""

    def __init__(self, stream, raw):
        self._stream = stream
        self._raw = raw

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        return self._stream.readinto(buffer)

    def close(self) -> None:
        if not self.closed:
            self._stream.close()
            self._raw.close()
        super().close()


def _zstd(raw):
    import zstandard

    return zstandard.ZstdDecompressor().stream_reader(raw)


DECOMPRESSORS = {
    ".gz": lambda raw: gzip.GzipFile(fileobj=raw, mode="rb"),
    ".bz2": bz2.BZ2File,
    ".xz": lzma.LZMAFile,
    ".zst": _zstd,
    ".deflate": _Inflated,
}


def open_decompressed(path: str):
    """A binary stream of the file's contents, with .gz/.bz2/.xz/.zst/.deflate undone by its
    extension: a proper ``io`` stream that ``io.TextIOWrapper`` and ``csv`` read."""
    raw = open_read(path)
    decompress = DECOMPRESSORS.get(os.path.splitext(path)[1].lower())
    return io.BufferedReader(_Decompressed(decompress(raw), raw)) if decompress else raw


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

    return _filesystems(path).create(path, compression_type=CompressionTypes.UNCOMPRESSED)


def rename(source: str, target: str) -> None:
    """Move a file onto ``target``, replacing it (on object stores: copy, then delete)."""
    if not is_remote(target):
        os.replace(source, target)
        return
    if _filesystems(target).exists(target):
        _filesystems(target).delete([target])
    _filesystems(target).rename([source], [target])


@contextlib.contextmanager
def atomic_write(path: str):
    """Yield a binary stream; on success the data appears at ``path`` in one rename."""
    temp = f"{path}.tmp-{uuid.uuid4().hex[:12]}"
    stream = _create(temp)
    try:
        yield stream
        stream.close()
    except BaseException:
        with contextlib.suppress(Exception):  # a full disk fails the close too: the temp file must still go
            stream.close()
        with contextlib.suppress(Exception):
            delete([temp])
        raise
    rename(temp, path)


def write_bytes(path: str, data: bytes) -> None:
    with atomic_write(path) as stream:
        stream.write(data)


def match(pattern: str) -> list[str]:
    """Sorted paths of the files matching a glob (an empty list when none match)."""
    if not is_remote(pattern):
        return sorted(p for p in glob.glob(pattern, recursive=True) if os.path.isfile(p))
    results = _filesystems(pattern).match([pattern])[0].metadata_list
    return sorted(m.path for m in results)


def size(path: str) -> int | None:
    """Size in bytes of the file at ``path``; None when there is no such file."""
    if not is_remote(path):
        return os.path.getsize(path) if os.path.isfile(path) else None
    found = _filesystems(path).match([path])[0].metadata_list
    return found[0].size_in_bytes if len(found) == 1 and found[0].path == path else None


def delete(paths: list[str]) -> None:
    """Delete files, and folders with everything in them."""
    remote = [path for path in paths if is_remote(path)]
    if remote:
        for path in remote:
            _check_store(path)
        _filesystems_module().delete(remote)
    for path in paths:
        if is_remote(path):
            continue
        if os.path.isdir(path):
            shutil.rmtree(path)
        else:
            os.remove(path)
