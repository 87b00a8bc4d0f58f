"""Each in-shard step alone on a list of dicts, without Beam or an HTTP server (the way datatrove's
``check_filter`` tests a filter); how a shard runs its steps; what the step and pass lists derive;
and a step written only here that joins a real run through one line in the step list."""

from __future__ import annotations

import hashlib
import io
import json

import numpy as np
import open_clip
import pytest
import torch
from PIL import Image

from crawl.download_config import DownloadConfig
from crawl.serve import LocalServer, Route
from dataset.layout import EMBEDDINGS, SIDE_FILES
from filters.clip_config import ClipConfig
from filters.clip_model import export_local_dir
from filters.image_config import ImageConfig, ResizeConfig
from filters.record import is_rejected, new_record, reject
from filters.settings import require
from hypernymize.config import HypernymizeConfig
from pipeline import passes, steps
from pipeline.clip_step import ClipStep
from pipeline.config import Config, load_config
from pipeline.download_step import DownloadStep
from pipeline.funnel import stage_order
from pipeline.hypernymize_step import HypernymizeStep
from pipeline.image_step import ImageStep
from pipeline.run import prepare_output
from pipeline.shard_step import RecordStep, ShardStep, run_steps

from pipeline_helpers import jpeg, reject_rows, run_local, shard_rows, stats_of
from test_clip import TINY

HOST = "steps.altcap.test"


def record(n: int, caption: str = "a red square", **fields) -> dict:
    return new_record(f"http://{HOST}/{n}.jpg", caption, **fields)


def earlier_reject(n: int) -> dict:
    return reject(record(n, "rejected before"), "text", "too_short", "from an earlier stage")


def checked(step: ShardStep, batch: list[dict]) -> list[dict]:
    """Run ``step`` on ``batch`` and check the contract: the same records out, in order; earlier
    rejects untouched; new rejects of the step's stage with a reason it declares."""
    before = [dict(outcome) for outcome in batch]
    after = step(batch)
    assert [o["key"] for o in after] == [o["key"] for o in before]
    for old, new in zip(before, after):
        if is_rejected(old):
            assert new == old
        elif is_rejected(new):
            assert new["stage"] == step.stage and declares(step, new["reason"]), new
            assert "image_bytes" not in new
    return after


def declares(step: ShardStep, reason: str) -> bool:
    return any(reason == known or (known.endswith("*") and reason.startswith(known[:-1])) for known in step.reasons)


def test_download_reads_image_files_and_refuses_unsafe_urls_without_a_request(tmp_path):
    (tmp_path / "photo.bin").write_bytes(b"0123456789")
    step = DownloadStep(DownloadConfig(retries=0))  # private addresses refused, as by default
    batch = [
        record(0, image_ref={"path": str(tmp_path / "photo.bin"), "offset": 2, "size": 5}),
        record(1, image_ref={"path": str(tmp_path / "gone.bin"), "offset": 0, "size": -1}),
        earlier_reject(2),
        new_record("ftp://files.example/a.jpg", "a file"),
        new_record("http://127.0.0.1:9/a.jpg", "a private address"),
    ]
    try:
        out = checked(step, batch)
    finally:
        step.close()
    assert out[0]["image_bytes"] == b"23456" and "http_status" not in out[0]
    assert [o.get("reason") for o in out] == [None, "unreadable_file", "too_short", "unsupported_scheme",
                                              "private_address"]


def test_image_probes_applies_the_rules_and_resizes():
    photo, small = jpeg(600, 500), jpeg(300, 300)
    png = io.BytesIO()
    Image.new("RGB", (600, 500)).save(png, "PNG")
    step = ImageStep(ImageConfig(), ResizeConfig(image_size=64))
    batch = [record(0, image_bytes=photo), record(1, image_bytes=small), record(2, image_bytes=png.getvalue()),
             record(3, image_bytes=b"not an image"), earlier_reject(4)]
    out = checked(step, batch)
    assert [o.get("reason") for o in out] == [None, "too_small", "format_not_allowed", "unreadable", "too_short"]
    kept = out[0]
    assert Image.open(io.BytesIO(kept["image_bytes"])).size == (64, 64) and kept["image_ext"] == "jpg"
    assert (kept["width"], kept["height"], kept["original_width"], kept["original_height"]) == (64, 64, 600, 500)
    assert kept["sha256"] == hashlib.sha256(photo).hexdigest()
    assert (out[1]["width"], out[1]["sha256"]) == (300, hashlib.sha256(small).hexdigest())  # what the probe learnt


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    torch.manual_seed(0)
    return export_local_dir(open_clip.CLIP(**TINY), TINY, str(tmp_path_factory.mktemp("tiny-clip")))


def test_clip_scores_cuts_and_keeps_embeddings(tiny_clip):
    images = [jpeg(64, 64, (40 * n, 90, 200 - 30 * n)) for n in range(5)]
    batch = [record(n, f"photo number {n}", image_bytes=image, image_ext="jpg") for n, image in enumerate(images)]
    settings = dict(enabled=True, model=tiny_clip, device="cpu", precision="fp32", batch_size=2)
    everything = checked(ClipStep(ClipConfig(**settings, min_score=-1)), [dict(r) for r in batch] + [earlier_reject(9)])
    scores = sorted(o["clip_score"] for o in everything[:5])
    cut = (scores[1] + scores[2]) / 2
    step = ClipStep(ClipConfig(**settings, min_score=cut))
    out = checked(step, [dict(r) for r in batch])
    assert step.info["filtering"] and step.info["min_score"] == cut
    assert sum(is_rejected(o) for o in out) == 2 and {o["reason"] for o in out if is_rejected(o)} == {"low_clip_score"}
    for outcome in out:
        assert (outcome["clip_score"] >= cut) != is_rejected(outcome)
        if not is_rejected(outcome):
            image, text = outcome[EMBEDDINGS.field]
            assert image.dtype == text.dtype == np.float16 and image.shape == (TINY["embed_dim"],)


def test_hypernymize_rewrites_and_rejects_captions():
    step = HypernymizeStep(HypernymizeConfig(enabled=True, spacy_model="off"))
    batch = [record(0, "Albert Einstein smiles at the camera"), record(1, "A bowl of soup from Zorblax Quinterfeld."),
             earlier_reject(2), record(3, "A red barn in a green field")]
    out = checked(step, batch)
    assert [o.get("caption_hypernymized") for o in out] == ["Physicist smiles at the camera",
                                                            "A bowl of soup from Zorblax Quinterfeld.", None,
                                                            "A red barn in a green field"]
    assert (out[1]["reason"], out[1]["detail"]) == ("unresolved_proper_noun", "Zorblax Quinterfeld")
    assert out[0]["entities"][0]["hypernym"] == "physicist" and out[3]["entities"] == []


class Tag(RecordStep):
    stage, reasons = "tag", ("odd",)

    def process(self, outcome):
        if outcome["n"] % 2:
            return reject(outcome, self.stage, "odd")
        return dict(outcome, tagged=True)


class Batches(ShardStep):
    stage, reasons, batch_size = "batches", (), 3

    def __init__(self):
        self.seen = []

    def __call__(self, batch):
        self.seen.append([o["n"] for o in batch])
        return batch


def test_record_steps_run_fused_in_the_pool_and_batch_steps_see_full_batches():
    from concurrent.futures import ThreadPoolExecutor

    batches = Batches()
    with ThreadPoolExecutor(4) as pool:
        out = list(run_steps([Tag(), batches], [{"key": str(n), "n": n} for n in range(10)], pool, window=3))
    assert [o["n"] for o in out] == list(range(10))  # order kept
    assert [o.get("reason") for o in out] == [None, "odd"] * 5 and all(o.get("tagged") for o in out[::2])
    # a batch holds 3 samples; rejects ride along without counting
    assert batches.seen == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]


def test_the_lists_make_the_funnel_order_and_the_config():
    assert stage_order() == ("source", "text", "url_dedup", "generate", "download", "image", "decontaminate", "clip",
                             "safety", "hypernymize", "tokens", "concepts", "clip_top", "best_of", "image_dedup",
                             "near_dedup", "semantic_dedup", "review")
    sections = Config().to_dict()
    for step in steps.SHARD_STEPS:
        assert set(step.settings) <= set(sections)
    assert [each.stage for each in passes.PASSES] == ["concepts", "clip_top", "best_of", "image_dedup", "near_dedup",
                                                      "semantic_dedup", "review"]


def test_overwrite_deletes_every_side_file_and_pass_summary(tmp_path):
    out = tmp_path / "out"
    leftovers = ["shards/00000.tar", "rejects/top-00000.parquet", "rejects/pre/part-0.parquet", "stats.json"]
    leftovers += [f"{side.folder}/00003.npy" for side in SIDE_FILES]
    leftovers += [each.summary_file for each in passes.PASSES if each.summary_file]
    leftovers += ["near_pairs/0123.jpg", "rejects/semantic-00000.npy"]  # what passes leave beside
    for name in leftovers:
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_bytes(b"an earlier run")
    prepare_output(str(out), [], load_config(), overwrite=True)
    assert [name for name in leftovers if (out / name).exists()] == []
    assert json.loads((out / "run.json").read_text())["inputs"] == []


# --- a step defined only here: its module (this one) and one line in the step list ---------------

from dataclasses import dataclass  # noqa: E402


@dataclass
class CaptionLengthConfig:
    max_chars: int = 0  # 0: off

    def check(self):
        require(self.max_chars >= 0, "caption_length.max_chars must be >= 0")


class CaptionLengthStep(RecordStep):
    stage, reasons = "caption_length", ("caption_too_long",)
    settings = {"caption_length": CaptionLengthConfig}

    @classmethod
    def enabled(cls, config):
        return config.caption_length.max_chars > 0

    def __init__(self, caption_length: CaptionLengthConfig):
        self.max_chars = caption_length.max_chars
        self.info = {"max_chars": self.max_chars}

    def process(self, outcome):
        if len(outcome["caption"]) > self.max_chars:
            return reject(outcome, self.stage, "caption_too_long", f"{len(outcome['caption'])} characters")
        return outcome


def test_a_step_joins_a_run_by_one_line_in_the_step_list(tmp_path, monkeypatch):
    monkeypatch.setattr(steps, "SHARD_STEPS", steps.SHARD_STEPS + (CaptionLengthStep,))
    assert "caption_length:\n  max_chars: 0" in Config().to_yaml()
    captions = ["short one", "a much longer caption than allowed", "tiny", "another caption far too long"]
    routes = {f"/{n}.jpg": Route(jpeg(420 + n, 410)) for n in range(len(captions))}
    with LocalServer(routes) as server:
        listing = tmp_path / "list.tsv"
        listing.write_text("".join(f"{c}\thttp://{HOST}/{n}.jpg\n" for n, c in enumerate(captions)))
        stats = run_local([listing], tmp_path / "out", "caption_length.max_chars=12", "shards.samples_per_shard=2",
                          f'download.connect_to=["{HOST}:80:127.0.0.1:{server.port}"]')
    assert sorted(r["caption"] for r in shard_rows(tmp_path / "out")) == ["short one", "tiny"]
    dropped = [(r["stage"], r["reason"], r["detail"]) for r in reject_rows(tmp_path / "out")]
    assert sorted(dropped) == [("caption_length", "caption_too_long", "28 characters"),
                               ("caption_length", "caption_too_long", "34 characters")]
    funnel = [(e["stage"], e["in"], e["passed"], e["rejected"]) for e in stats_of(tmp_path / "out")["funnel"]]
    assert funnel[3:] == [("download", 4, 4, 0), ("image", 4, 4, 0), ("caption_length", 4, 2, 2),
                          ("image_dedup", 2, 2, 0)]
    assert stats["caption_length"] == {"max_chars": 12}
