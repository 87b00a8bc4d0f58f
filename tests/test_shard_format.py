"""Shards are plain WebDataset: readable by webdataset 0.2 (img2dataset's pin) and 1.x, and by
tools made for img2dataset output (including altcap itself)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import webdataset as wds
from PIL import Image

from crawl.serve import Route
from pipeline.stages import shard_count, shard_of

from pipeline_helpers import HOST, jpeg, run_local, serve, shard_rows, tar_samples

ROOT = Path(__file__).resolve().parent.parent
WEBDATASET_1 = Path(os.environ.get("ALTCAP_WEBDATASET1", ROOT / ".venv" / "webdataset-1"))
READER = """
import json, sys, webdataset as wds
rows = []
for sample in wds.WebDataset(sys.argv[1:], shardshuffle=False).decode("pil"):
    rows.append({"key": sample["__key__"], "caption": sample["txt"], "size": list(sample["jpg"].size),
                 "url": sample["json"]["url"]})
print(json.dumps({"version": wds.__version__, "rows": rows}))
"""


@pytest.fixture(scope="module")
def output(tmp_path_factory):
    out = tmp_path_factory.mktemp("shards") / "out"
    listing = out.parent / "l.tsv"
    routes = {f"/{i}.jpg": Route(jpeg(450 + 10 * i, 420, (20 * i, 90, 200))) for i in range(6)}
    with serve(routes) as site:
        listing.write_text("".join(f"photo número {i}\t{site.url(f'/{i}.jpg')}\n" for i in range(6)))
        run_local([listing], out, "shards.samples_per_shard=4", site.connect_to)
    return out


def expected(out: Path) -> list[dict]:
    return sorted(({"key": r["key"], "caption": r["caption"], "size": [256, 256], "url": r["url"]}
                   for r in shard_rows(out)), key=lambda r: r["key"])


def read_with(python_path: str | None, tars: list[Path]) -> dict:
    env = dict(os.environ)
    if python_path:
        env["PYTHONPATH"] = python_path
    done = subprocess.run([sys.executable, "-c", READER, *map(str, tars)], env=env,
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def test_installed_webdataset_reads_every_sample(output):
    tars = sorted((output / "shards").glob("*.tar"))
    assert [t.name for t in tars] == ["00000.tar", "00001.tar"]  # the fixed host's keys fill both shards
    assert {shard_of(r["key"], shard_count(6, 4), HOST, spread=2) for r in shard_rows(output)} == {0, 1}
    rows = []
    for sample in wds.WebDataset([str(t) for t in tars], shardshuffle=False).decode("pil"):
        assert isinstance(sample["jpg"], Image.Image)
        rows.append({"key": sample["__key__"], "caption": sample["txt"],
                     "size": list(sample["jpg"].size), "url": sample["json"]["url"]})
    assert sorted(rows, key=lambda r: r["key"]) == expected(output)
    assert wds.__version__.startswith("0.2")  # img2dataset's pin


def test_webdataset_1_reads_every_sample(output):
    if not (WEBDATASET_1 / "webdataset").is_dir():
        pytest.skip(f"webdataset 1.x not installed at {WEBDATASET_1} (make test installs it)")
    result = read_with(str(WEBDATASET_1), sorted((output / "shards").glob("*.tar")))
    assert result["version"].startswith("1.")
    assert sorted(result["rows"], key=lambda r: r["key"]) == expected(output)


def test_parquet_uses_img2dataset_columns(output):
    row = shard_rows(output)[0]
    for column in ("key", "url", "caption", "width", "height", "original_width",
                   "original_height", "sha256", "status", "error_message"):
        assert column in row
    assert row["status"] == "success" and row["error_message"] is None


def test_an_altcap_output_folder_is_an_input_too(output, tmp_path):
    stats = run_local([output / "shards"], tmp_path / "again", "image.min_side=1",
                      "resize.resize_mode=no")
    again = {r["caption"]: r for r in shard_rows(tmp_path / "again")}
    assert set(again) == {r["caption"] for r in shard_rows(output)}
    assert stats["funnel"][0]["in"] == 6


def test_the_reader_gives_every_sample_with_its_metadata_and_needs_no_beam(output):
    code = ("import json, sys; from dataset import read_samples; "
            "rows = [[s['key'], s['caption'], s['meta']['url'], s['image_ext'], len(s['image'])] "
            "for s in read_samples(sys.argv[1])]; "
            "print(json.dumps({'beam': 'apache_beam' in sys.modules, 'rows': rows}))")
    done = subprocess.run([sys.executable, "-c", code, str(output)], capture_output=True, text=True, check=True,
                          cwd=ROOT)
    found = json.loads(done.stdout)
    assert found["beam"] is False
    images = {key: files["jpg"] for key, files in tar_samples(output).items()}
    assert sorted(found["rows"]) == sorted([r["key"], r["caption"], r["url"], "jpg", len(images[r["key"]])]
                                           for r in shard_rows(output))
