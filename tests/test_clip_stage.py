"""The CLIP stage inside real Beam pipelines: every written sample scored as ``ClipScorer`` scores
it, the absolute cut and the run's top fraction keep exactly the expected pairs, embeddings line
up with the sample keys (also after image dedup), and a model without weights drops nothing and
says so."""

from __future__ import annotations

import io
from urllib.parse import urlsplit

import numpy as np
import open_clip
import pytest
import torch
from PIL import Image
from skimage import data as photos

from crawl.serve import LocalServer, Route
from filters.clip_config import ClipConfig
from filters.clip_grounding import PROMPT, top_labels
from filters.clip_model import WEIGHTS_FILE, export_local_dir, load_clip
from filters.clip_score import ClipScorer
from pipeline.stages import shard_of

from pipeline_helpers import PERMISSIVE, reasons, reject_rows, run_local, shard_rows, tar_samples
from test_clip import TINY

HOST = "photos.altcap.test"
CAPTIONS = ["an astronaut in a white suit", "a cup of coffee", "a cat on a sofa", "a rocket",
            "a camera man", "cells under a microscope", "a red square", "a blue square"]


def photo_jpegs() -> list[bytes]:
    arrays = [photos.astronaut(), photos.coffee(), photos.chelsea(), photos.rocket(),
              np.stack([photos.camera()] * 3, axis=-1), photos.immunohistochemistry(),
              np.full((300, 400, 3), (200, 30, 30), np.uint8), np.full((300, 400, 3), (30, 30, 200), np.uint8)]
    out = []
    for array in arrays:
        buffer = io.BytesIO()
        Image.fromarray(array).save(buffer, "JPEG", quality=90)
        out.append(buffer.getvalue())
    return out


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    torch.manual_seed(0)
    return export_local_dir(open_clip.CLIP(**TINY), TINY, str(tmp_path_factory.mktemp("tiny-clip")))


def clip_settings(model: str, *more: str) -> list[str]:
    return ["clip.enabled=true", f"clip.model={model}", "clip.device=cpu", "clip.precision=fp32",
            "clip.batch_size=3", *more]


def run_with(tmp_path, name, images, captions, *settings, times: int = 1):
    """Images under one fixed host name, served locally: keys, and so shards, do not depend on the
    server's port. ``times`` > 1 runs again into the same folder (a resume) and returns every run's stats."""
    routes = {f"/{i}.jpg": Route(data) for i, data in enumerate(images)}
    with LocalServer(routes) as server:
        listing = tmp_path / f"{name}.tsv"
        listing.write_text("".join(f"{c}\thttp://{HOST}/{i}.jpg\n" for i, c in enumerate(captions)))
        runs = [run_local([listing], tmp_path / name, *PERMISSIVE, *settings,
                          f'download.connect_to=["{HOST}:80:127.0.0.1:{server.port}"]') for _ in range(times)]
    return runs[0] if times == 1 else runs


def embeddings_of(out) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    found = {}
    for path in sorted((out / "embeddings").glob("*.npy")):
        rows = np.load(path, mmap_mode="r")  # numpy alone reads a side file
        for row in rows:
            found[str(row["key"])] = (np.array(row["image_embedding"]), np.array(row["text_embedding"]))
    return found


def test_scores_and_embeddings_of_every_sample(tmp_path, tiny_model):
    stats = run_with(tmp_path, "all", photo_jpegs(), CAPTIONS, *clip_settings(tiny_model, "clip.min_score=-1"))
    rows = shard_rows(tmp_path / "all")
    assert len(rows) == len(CAPTIONS)
    clip = next(e for e in stats["funnel"] if e["stage"] == "clip")
    assert (clip["in"], clip["passed"], clip["rejected"]) == (8, 8, 0)
    assert stats["clip"]["filtering"] and stats["clip"]["weights"] and stats["clip"]["precision"] == "fp32"
    assert "fp32 on cpu: pairs under -1.0 dropped" in (tmp_path / "all" / "report.html").read_text()
    # what CLIP saw is the written image: scoring it again gives the stored score and vectors
    scorer = ClipScorer(load_clip(ClipConfig(model=tiny_model, device="cpu", precision="fp32")), batch_size=4)
    samples = tar_samples(tmp_path / "all")
    images = [Image.open(io.BytesIO(samples[r["key"]]["jpg"])).convert("RGB") for r in rows]
    expected = scorer.score(images, [r["caption"] for r in rows])
    np.testing.assert_allclose([r["clip_score"] for r in rows], expected.scores, atol=1e-5)
    vectors = embeddings_of(tmp_path / "all")
    assert set(vectors) == {r["key"] for r in rows}
    for n, row in enumerate(rows):
        image, text = vectors[row["key"]]
        assert image.dtype == np.float16
        np.testing.assert_allclose(image, expected.image_embeddings[n], atol=2e-3)
        np.testing.assert_allclose(text, expected.text_embeddings[n], atol=2e-3)


def test_the_cut_keeps_exactly_the_pairs_at_or_above_it(tmp_path, tiny_model):
    run_with(tmp_path, "all", photo_jpegs(), CAPTIONS, *clip_settings(tiny_model, "clip.min_score=-1"))
    scores = sorted(r["clip_score"] for r in shard_rows(tmp_path / "all"))
    cut = (scores[3] + scores[4]) / 2  # between the 4th and 5th score: 4 stay
    stats = run_with(tmp_path, "cut", photo_jpegs(), CAPTIONS, *clip_settings(tiny_model, f"clip.min_score={cut}"))
    kept = shard_rows(tmp_path / "cut")
    assert len(kept) == 4 and all(r["clip_score"] >= cut for r in kept)
    dropped = [r for r in reject_rows(tmp_path / "cut") if r["stage"] == "clip"]
    assert len(dropped) == 4 and {r["reason"] for r in dropped} == {"low_clip_score"}
    assert all(r["clip_score"] < cut for r in dropped)
    assert set(embeddings_of(tmp_path / "cut")) == {r["key"] for r in kept}
    funnel = [e["stage"] for e in stats["funnel"]]
    assert funnel.index("image") < funnel.index("clip") < funnel.index("image_dedup")


def test_image_dedup_removes_the_losers_embeddings_too(tmp_path, tiny_model):
    images = photo_jpegs()[:3]
    images.append(images[0])  # the same bytes under another URL and caption
    captions = CAPTIONS[:3] + ["the same astronaut again"]
    stats = run_with(tmp_path, "dup", images, captions, *clip_settings(tiny_model, "clip.min_score=-1"))
    rows = shard_rows(tmp_path / "dup")
    assert len(rows) == 3 and reasons(stats, "image_dedup") == {"duplicate_image": 1}
    assert set(embeddings_of(tmp_path / "dup")) == {r["key"] for r in rows}


def test_the_top_fraction_keeps_exactly_the_best_of_the_whole_run(tmp_path, tiny_model):
    base = clip_settings(tiny_model, "clip.min_score=-1", "shards.samples_per_shard=3")  # up to 3 shards
    run_with(tmp_path, "all", photo_jpegs(), CAPTIONS, *base)
    scores = {r["caption"]: r["clip_score"] for r in shard_rows(tmp_path / "all")}  # keys hash the port
    best = sorted(scores, key=scores.get, reverse=True)
    stats, again = run_with(tmp_path, "top", photo_jpegs(), CAPTIONS, *base, "clip.top_fraction=0.3", times=2)
    kept = shard_rows(tmp_path / "top")
    assert sorted(r["caption"] for r in kept) == sorted(best[:3])  # ceil(0.3 x 8) = 3, across all shards
    dropped = [r for r in reject_rows(tmp_path / "top") if r["stage"] == "clip_top"]
    assert sorted(r["caption"] for r in dropped) == sorted(best[3:])
    assert {r["reason"] for r in dropped} == {"below_top_fraction"}
    assert set(embeddings_of(tmp_path / "top")) == {r["key"] for r in kept}
    filled = {shard_of(r["key"], 3, urlsplit(r["url"]).hostname, spread=3) for r in shard_rows(tmp_path / "all")}
    assert len(filled) >= 2  # the cut spans shards
    tars = sorted(p.name for p in (tmp_path / "top" / "shards").glob("*.tar"))
    assert tars == [f"{i:05d}.tar" for i in sorted(filled)]
    assert set(tar_samples(tmp_path / "top")) == {r["key"] for r in kept}
    top = next(e for e in stats["funnel"] if e["stage"] == "clip_top")
    assert (top["in"], top["passed"], top["rejected"]) == (8, 3, 5)
    funnel = [e["stage"] for e in stats["funnel"]]
    assert funnel.index("clip") < funnel.index("clip_top") < funnel.index("image_dedup")
    summary = stats["clip_top"]
    assert (summary["scored"], summary["keep"]) == (8, 3)
    assert summary["cut"] == pytest.approx(scores[best[2]], abs=1e-7)
    assert "the top 0.3 kept: 3 of 8 pairs" in (tmp_path / "top" / "report.html").read_text()

    assert again["clip_top"] == summary  # the resumed run: same cut
    assert sorted(r["caption"] for r in shard_rows(tmp_path / "top")) == sorted(best[:3])


def test_image_dedup_chooses_among_the_pairs_the_top_cut_kept(tmp_path, tiny_model):
    images = photo_jpegs()[:4] * 2  # every pair twice, under another URL: twins score the same
    captions = CAPTIONS[:4] * 2
    stats = run_with(tmp_path, "both", images, captions,
                     *clip_settings(tiny_model, "clip.min_score=-1", "clip.top_fraction=0.5"))
    rows = reject_rows(tmp_path / "both")
    cut = {r["key"] for r in rows if r["stage"] == "clip_top"}
    kept = {r["key"] for r in shard_rows(tmp_path / "both")}
    duplicates = [r for r in rows if r["stage"] == "image_dedup"]
    assert len(cut) == 4
    for row in duplicates:  # dedup only ever saw survivors, and kept one of them
        assert row["key"] not in cut and row["detail"].split()[-1] in kept
    assert len(kept) == 2 and len(duplicates) == 2  # the best two twins survive the cut, then dedup
    assert reasons(stats, "clip_top") == {"below_top_fraction": 4} and reasons(stats, "image_dedup") == {
        "duplicate_image": 2}


def test_grounding_keeps_the_pairs_whose_caption_names_a_top_label(tmp_path, tiny_model):
    labels = ["astronaut", "coffee", "cat", "rocket", "camera", "cell", "square", "sofa"]
    vocabulary = tmp_path / "labels.txt"
    vocabulary.write_text("\n".join(labels))
    base = clip_settings(tiny_model, "clip.min_score=-1")
    run_with(tmp_path, "all", photo_jpegs(), CAPTIONS, *base)
    rows = shard_rows(tmp_path / "all")
    # the expected labels, from the written images with the same weights and prompts
    scorer = ClipScorer(load_clip(ClipConfig(model=tiny_model, device="cpu", precision="fp32")), batch_size=3)
    samples = tar_samples(tmp_path / "all")
    images = scorer.embed_images([Image.open(io.BytesIO(samples[r["key"]]["jpg"])).convert("RGB") for r in rows])
    expected = dict(zip((r["caption"] for r in rows),
                        top_labels(images, scorer.embed_texts([PROMPT.format(x) for x in labels]), labels, 4)))
    grounded = {c for c, top in expected.items() if set(c.replace("cells", "cell").split()) & set(top)}
    assert grounded and grounded != set(CAPTIONS)  # the case is worth testing

    stats = run_with(tmp_path, "grounded", photo_jpegs(), CAPTIONS, *base, "clip.grounding=true",
                     "clip.grounding_top_k=4", f"clip.grounding_vocabulary={vocabulary}")
    kept = shard_rows(tmp_path / "grounded")
    assert {r["caption"] for r in kept} == grounded
    assert all(r["clip_labels"] == expected[r["caption"]] for r in kept)
    dropped = [r for r in reject_rows(tmp_path / "grounded") if r["stage"] == "clip"]
    assert {r["caption"] for r in dropped} == set(CAPTIONS) - grounded
    assert {r["reason"] for r in dropped} == {"ungrounded"}
    assert all(r["clip_labels"] == expected[r["caption"]] for r in dropped)
    assert stats["clip"]["grounding"] == {"labels": 8, "top_k": 4, "vocabulary": str(vocabulary)}


def test_a_model_without_weights_scores_but_drops_nothing(tmp_path):
    torch.manual_seed(3)
    model = export_local_dir(open_clip.CLIP(**TINY), TINY, str(tmp_path / "no-weights"))
    (tmp_path / "no-weights" / WEIGHTS_FILE).unlink()
    stats = run_with(tmp_path, "random", photo_jpegs()[:4], CAPTIONS[:4],
                     *clip_settings(model, "clip.min_score=0.99", "clip.top_fraction=0.1", "clip.grounding=true"))
    rows = shard_rows(tmp_path / "random")
    assert len(rows) == 4 and all(r["clip_score"] is not None and len(r["clip_labels"]) == 10 for r in rows)
    assert stats["clip"]["filtering"] is False and "no weights file" in stats["clip"]["problem"]
    assert stats["clip"]["min_score"] is None and stats["clip_top"]["cut"] is None
    assert "CLIP local-dir:" in (tmp_path / "random" / "report.html").read_text()
    assert "NO WEIGHTS" in (tmp_path / "random" / "report.html").read_text()


def test_a_wrong_model_name_fails_before_the_pipeline(tmp_path):
    from filters.clip_model import ClipModelError

    with pytest.raises(ClipModelError, match="unknown open_clip model"):
        run_with(tmp_path, "bad", photo_jpegs()[:1], CAPTIONS[:1], "clip.enabled=true", "clip.model=ViT-Nope")
