"""Runner parity: one small job (a WARC and a TSV, CLIP, hypernymization, tokens and the whole-run
passes) gives the same output (keys, shard bytes, parquet rows, side files, funnel) under every Beam
runner set-up that runs offline: the DirectRunner in one process and in worker processes, the
PortableRunner with an embedded job service and LOOPBACK workers, and the PortableRunner against a
separate job server with an EXTERNAL pool of worker processes. The portable runners return
committed metrics only: the funnel check must hold with them."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from crawl.serve import Route
from pipeline.demo import gallery_html, warc_response
from pipeline.local_cluster import job_server
from tokens.random_vq import save_random_vq

from pipeline_helpers import PERMISSIVE, TEXT_RULES_OFF, serve
from test_clip_stage import CAPTIONS, photo_jpegs, tiny_model  # noqa: F401

BIN = Path(sys.executable).parent
PAGE = "http://gallery.altcap.test/index.html"


@pytest.fixture(scope="module")
def job_server_args():
    """A job server and a pool of worker processes (pipeline.local_cluster)."""
    with job_server(workers=2) as args:
        yield args


RUNNERS = {
    "direct": ["--direct_running_mode=in_memory", "--direct_num_workers=1"],
    "direct_processes": ["--direct_running_mode=multi_processing", "--direct_num_workers=2"],
    "portable_loopback": ["--runner=PortableRunner", "--job_endpoint=embed", "--environment_type=LOOPBACK"],
    "portable_pool": ["--runner=PortableRunner"],  # + the job server's options
}


def outputs(out: Path) -> dict:
    """What must not depend on the runner: every written file's bytes (parquet as rows), the
    rejects Beam writes before the shards as one sorted list, and the funnel."""
    found = {}
    for sub in ("shards", "embeddings", "tokens", "rejects"):
        for path in sorted((out / sub).rglob("*")):
            name = str(path.relative_to(out))
            if not path.is_file() or name.startswith("rejects/pre/"):
                continue
            if path.suffix == ".parquet":
                found[name] = pq.read_table(path).to_pylist()
            elif name.endswith("_stats.json"):
                stats = json.loads(path.read_text())
                found[name] = {k: stats[k] for k in ("keys_digest", "records", "samples", "stages")}
            else:
                found[name] = path.read_bytes()
    early = [row for path in (out / "rejects" / "pre").glob("*.parquet") for row in pq.read_table(path).to_pylist()]
    found["rejects/pre"] = sorted(json.dumps(row, sort_keys=True, default=str) for row in early)
    found["funnel"] = json.loads((out / "stats.json").read_text())["funnel"]
    return found


def test_every_offline_runner_writes_the_same_output(tmp_path, tiny_model, job_server_args):  # noqa: F811
    images = photo_jpegs()
    images[7] = images[2]  # a duplicate: image dedup drops one
    routes = {f"/t/{i}.jpg": Route(blob) for i, blob in enumerate(images)}
    routes.update({f"/w/{i}.jpg": Route(blob) for i, blob in enumerate(images[:4])})
    (tmp_path / "pairs.tsv").write_text("".join(f"{caption}\thttp://img.altcap.test/t/{i}.jpg\n"
                                                for i, caption in enumerate(CAPTIONS)))
    alts = ["the same astronaut on another page", "the same coffee on another page",  # dedup's twins
            "Albert Einstein beside a cat", "Albert Einstein beside a rocket"]  # the concept cut's rare physicist
    page = gallery_html("Gallery", [(f"http://img.altcap.test/w/{i}.jpg", alt) for i, alt in enumerate(alts)])
    (tmp_path / "pages.warc.gz").write_bytes(warc_response(PAGE, page))
    assert gzip.decompress((tmp_path / "pages.warc.gz").read_bytes())  # a real gzip member
    vq = save_random_vq(tmp_path / "vq", blocks=4, codes=64)
    found = {}
    with serve(routes, host="img.altcap.test") as site:
        settings = [*PERMISSIVE, *TEXT_RULES_OFF, "download.allow_private_addresses=true", "download.retries=0",
                    site.connect_to, "shards.samples_per_shard=4",
                    "clip.enabled=true", f"clip.model={tiny_model}", "clip.device=cpu", "clip.precision=fp32",
                    "clip.min_score=-1", "clip.top_fraction=0.6",
                    "hypernymize.enabled=true", "hypernymize.spacy_model=off", "hypernymize.min_concept_mentions=5",
                    "tokens.enabled=true", f"tokens.image_model={vq}", "tokens.image_size=64", "tokens.device=cpu",
                    "tokens.precision=fp32", "tokens.text_length=16"]
        for name, beam_args in RUNNERS.items():
            extra = job_server_args if name == "portable_pool" else []
            command = [str(BIN / "altcap"), "run", "--input", str(tmp_path / "pairs.tsv"), "--input",
                       str(tmp_path / "pages.warc.gz"), "--output", str(tmp_path / name),
                       *(part for setting in settings for part in ("--set", setting)), *beam_args, *extra]
            done = subprocess.run(command, capture_output=True, text=True, timeout=300)
            assert done.returncode == 0, f"{name}: {done.stderr[-3000:]}"
            found[name] = outputs(tmp_path / name)
    reference = found["direct"]
    funnel = {entry["stage"]: entry["rejected"] for entry in reference["funnel"]}
    assert funnel["concepts"] == 2 and funnel["clip_top"] > 0 and funnel["image_dedup"] > 0  # every pass cuts
    assert any(name.startswith("tokens/") for name in reference) and any(n.startswith("embeddings/") for n in reference)
    for name, outcome in found.items():
        assert sorted(outcome) == sorted(reference), name
        assert [file for file in reference if outcome[file] != reference[file]] == [], name
