"""Write one shard: samples stream into a WebDataset tar while their parquet rows, rejects and
side-file values are collected; ``commit`` writes those files and then the stats marker."""

from __future__ import annotations

import contextlib
import io
import json
import tarfile

import pyarrow as pa
import pyarrow.parquet as pq

from dataset import fileio
from dataset.layout import SideFile
from dataset.schema import REJECT_SCHEMA, SAMPLE_SCHEMA, reject_row, sample_row, table
from dataset.side_arrays import side_array, write_side
from dataset.thumbnails import REJECT_EXAMPLES, example_order, with_thumbnails
from filters.record import REJECTED_IMAGE, is_rejected

TAR_MTIME = 0  # fixed member times keep shards byte-identical between runs


def final_caption(record: dict) -> str:
    """The caption a sample's .txt holds: the hypernymized rewrite when that step ran."""
    return record.get("caption_hypernymized", record.get("caption")) or ""


def tar_member(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = TAR_MTIME
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


@contextlib.contextmanager
def naming(path: str):
    """An OSError while writing ``path`` names it, not its temporary file: on a full disk a write()
    names no file at all, and the one line a user reads should say which output failed."""
    try:
        yield
    except OSError as err:
        if err.errno is None or err.filename == path:
            raise
        raise OSError(err.errno, err.strerror, path) from err


def write_table(path: str, data: pa.Table) -> None:
    with naming(path), fileio.atomic_write(path) as stream:
        pq.write_table(data, stream, compression="zstd")


def write_parquet(path: str, rows: list[dict], schema: pa.Schema) -> None:
    write_table(path, table(rows, schema))


class ShardWriter:
    """Streams samples into a WebDataset tar and collects parquet rows; commits atomically."""

    def __init__(self, paths: dict, side_files: tuple[SideFile, ...] = ()):
        self.paths = paths
        self.samples: list[dict] = []
        self.rejects: list[dict] = []
        self.reject_images: dict[tuple[str, str], list[tuple[tuple, str, bytes]]] = {}
        self.side_rows: dict[SideFile, list[tuple]] = {side: [] for side in side_files}
        self._tar_context = fileio.atomic_write(paths["tar"])
        with naming(paths["tar"]):
            self._tar = tarfile.open(fileobj=self._tar_context.__enter__(), mode="w|",
                                     format=tarfile.USTAR_FORMAT)

    def add(self, outcome: dict) -> None:
        if is_rejected(outcome):
            row = reject_row(outcome)
            self.rejects.append(row)
            if outcome.get(REJECTED_IMAGE):
                self._keep_image(row, outcome[REJECTED_IMAGE])
            return
        row = sample_row(outcome)
        key = outcome["key"]
        with naming(self.paths["tar"]):
            tar_member(self._tar, f"{key}.{outcome['image_ext']}", outcome["image_bytes"])
            tar_member(self._tar, f"{key}.txt", final_caption(outcome).encode("utf-8"))
            tar_member(self._tar, f"{key}.json", json.dumps(row, ensure_ascii=False).encode("utf-8"))
        self.samples.append(row)
        for side, rows in self.side_rows.items():
            if side.field in outcome:
                rows.append((key, *outcome[side.field]))

    def _keep_image(self, row: dict, image: bytes) -> None:
        """Hold the image of a reject that may be shown (among the first of its reason), drop the rest."""
        held = self.reject_images.setdefault((row["stage"], row["reason"]), [])
        held.append((example_order(row), row["key"], image))
        held.sort(key=lambda item: item[0])
        del held[REJECT_EXAMPLES:]

    def commit(self, stats: dict) -> None:
        with naming(self.paths["tar"]):
            self._tar.close()
            self._tar_context.__exit__(None, None, None)
        write_parquet(self.paths["parquet"], self.samples, SAMPLE_SCHEMA)
        images = {key: image for held in self.reject_images.values() for _, key, image in held}
        write_parquet(self.paths["rejects"], with_thumbnails(self.rejects, images), REJECT_SCHEMA)
        for side, rows in self.side_rows.items():
            if rows:
                with naming(self.paths[side.folder]):
                    write_side(self.paths[side.folder], side_array(side, rows))
        with naming(self.paths["stats"]):
            fileio.write_bytes(self.paths["stats"], json.dumps(stats, indent=1).encode())

    def abort(self, err: BaseException) -> None:
        """Drop the unfinished tar; ``err`` stays the error to report (a full disk fails the close too)."""
        with contextlib.suppress(OSError):
            self._tar_context.__exit__(type(err), err, err.__traceback__)
