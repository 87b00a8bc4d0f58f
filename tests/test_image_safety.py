"""Image safety and near-duplicates in real Beam pipelines (issue 19): perceptual near-duplicates made
from real photos are dropped by the whole-run pass and distinct photos are not; an evaluation set
removes exactly the planted matches; NSFW and watermark heads on the CLIP embeddings score every
sample as the head file computes, cut at the settings and, with ``nsfw_rule=both``, only with a bad
word in the caption; an image classifier of transformers is the alternative; a pickled head is refused
before the job; without heads nothing is scored and the run says so. Each keeps the funnel true and
runs again into the same folder without change."""

from __future__ import annotations

import io
import json
import logging

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image, ImageEnhance, ImageOps
from skimage import data as photos
from test_crash import contents
from test_safety_heads import tiny_vit_folder, torch_pickle

from crawl.serve import Route
from filters.near_dup import phash_of_bytes
from filters.record import make_key
from filters.safety_heads import ImageClassifierScorer, load_head, save_head
from pipeline.cli import main
from pipeline.config import ConfigError
from pipeline.run import OutputFolderError

from pipeline_helpers import (
    HOST,
    IN_MEMORY,
    PERMISSIVE,
    reasons,
    reject_rows,
    run_local,
    serve,
    shard_rows,
    stats_of,
    tar_samples,
)
from test_clip_stage import CAPTIONS, clip_settings, photo_jpegs, tiny_model  # noqa: F401

PHOTOS = {"astronaut": photos.astronaut(), "coffee": photos.coffee(), "chelsea": photos.chelsea(),
          "rocket": photos.rocket(), "camera": np.stack([photos.camera()] * 3, axis=-1),
          "cells": photos.immunohistochemistry()}


def encoded(image: Image.Image, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def variant(name: str) -> tuple[str, bytes]:
    """A near-duplicate of one photo: re-encoded badly, halved, brightened or greyed."""
    image = Image.fromarray(PHOTOS[name])
    kinds = {"astronaut": ("q30", lambda: encoded(image, 30)),
             "coffee": ("half", lambda: encoded(image.resize((image.width // 2, image.height // 2)))),
             "chelsea": ("bright", lambda: encoded(ImageEnhance.Brightness(image).enhance(1.3))),
             "rocket": ("grey", lambda: encoded(ImageOps.grayscale(image).convert("RGB")))}
    kind, make = kinds[name]
    return f"/copies/{name}-{kind}.jpg", make()


def url(path: str) -> str:
    return f"http://{HOST}{path}"


@pytest.fixture(scope="module")
def photo_site(tmp_path_factory):
    """Six real photos and near-duplicates of four of them, listed with a caption each."""
    root = tmp_path_factory.mktemp("near")
    routes = {f"/photos/{name}.jpg": Route(encoded(Image.fromarray(array))) for name, array in PHOTOS.items()}
    copies = dict(variant(name) for name in ("astronaut", "coffee", "chelsea", "rocket"))
    routes.update({path: Route(data) for path, data in copies.items()})
    listing = root / "photos.tsv"
    listing.write_text("".join(f"a photo {path.rsplit('/', 1)[1][:-4]}\t{url(path)}\n" for path in routes))
    with serve(routes) as site:
        yield root, listing, site, copies


def test_near_duplicates_of_real_photos_are_dropped_and_distinct_photos_kept(photo_site):
    root, listing, site, copies = photo_site
    out = root / "out"
    stats = run_local([listing], out, *PERMISSIVE, "dedup.near_distance=10", "shards.samples_per_shard=3",
                      site.connect_to)
    keys = {row["url"]: row["key"] for row in shard_rows(out) + reject_rows(out)}
    expected = {}
    for path in copies:
        name = path.split("/")[-1].split("-")[0]
        pair = sorted([keys[url(path)], keys[url(f"/photos/{name}.jpg")]])
        expected[pair[1]] = pair[0]  # the larger key loses to the smaller
    dropped = {row["key"]: row for row in reject_rows(out)}
    assert set(dropped) == set(expected)
    for key, row in dropped.items():
        assert (row["stage"], row["reason"]) == ("near_dedup", "near_duplicate")
        assert row["detail"].endswith(f"bits from {expected[key]}") and row["phash"]
    assert stats["samples"] == len(PHOTOS) and stats["check"]["ok"]
    assert all(len(row["phash"]) == 16 for row in shard_rows(out))
    assert "Near-duplicates dropped" in (out / "report.html").read_text()
    assert list((out / "near_pairs").glob("*.jpg"))
    before = contents(out)
    again = run_local([listing], out, *PERMISSIVE, "dedup.near_distance=10", "shards.samples_per_shard=3",
                      site.connect_to)
    assert again["funnel"] == stats["funnel"]
    assert contents(out) == before  # idempotent on resume


def test_an_evaluation_set_removes_exactly_the_planted_matches(photo_site, tmp_path):
    root, listing, site, copies = photo_site
    evaluation = tmp_path / "eval"
    evaluation.mkdir()
    for name in ("astronaut", "rocket"):  # in the run, as the evaluation set holds them: re-encoded and smaller
        image = Image.fromarray(PHOTOS[name])
        smaller = image.resize((image.width * 3 // 4, image.height * 3 // 4))
        (evaluation / f"{name}.jpg").write_bytes(encoded(smaller, 60))
    (evaluation / "moon.jpg").write_bytes(encoded(Image.fromarray(photos.moon()).convert("RGB")))  # not in the run
    (evaluation / "notes.txt").write_text("not an image")
    planted = {url(f"/photos/{name}.jpg") for name in ("astronaut", "rocket")} | {
        url(path) for path in copies if path.split("/")[-1].startswith(("astronaut", "rocket"))}
    stats = run_local([listing], tmp_path / "out", *PERMISSIVE, f"dedup.against={evaluation}", site.connect_to)
    dropped = {row["url"] for row in reject_rows(tmp_path / "out")}
    assert dropped == planted and reasons(stats, "decontaminate") == {"eval_overlap": len(planted)}
    assert stats["decontaminate"]["hashes"] == 3 and stats["decontaminate"]["unreadable"] == 1
    hashes = tmp_path / "eval.txt"  # the same set as a list of pHashes
    assert main(["phash", str(evaluation), "--out", str(hashes)]) == 0
    assert len(hashes.read_text().splitlines()) == 3
    assert hashes.read_text().splitlines()[0].startswith(phash_of_bytes((evaluation / "astronaut.jpg").read_bytes(),
                                                                        10**8))
    listed = run_local([listing], tmp_path / "listed", *PERMISSIVE, f"dedup.against={hashes}", site.connect_to)
    assert {row["url"] for row in reject_rows(tmp_path / "listed")} == planted and listed["check"]["ok"]
    assert run_local([listing], tmp_path / "out", *PERMISSIVE, f"dedup.against={evaluation}",
                     site.connect_to)["funnel"] == stats["funnel"]  # resumed: the same
    (evaluation / "coffee.jpg").write_bytes(encoded(Image.fromarray(PHOTOS["coffee"])))  # the set changed
    with pytest.raises(OutputFolderError, match="dedup.against"):
        run_local([listing], tmp_path / "out", *PERMISSIVE, f"dedup.against={evaluation}", site.connect_to)


@pytest.fixture(scope="module")
def clip_site(tmp_path_factory, tiny_model):  # noqa: F811
    """The photos of the CLIP tests, one caption with a bad word, and a run with CLIP only: its
    embeddings set the heads' biases so that some samples score over the cuts."""
    root = tmp_path_factory.mktemp("safety")
    captions = [*CAPTIONS[:-1], "a blue square porn"]
    listing = root / "photos.tsv"
    listing.write_text("".join(f"{caption}\t{url(f'/{n}.jpg')}\n" for n, caption in enumerate(captions)))
    clip = [*PERMISSIVE, *clip_settings(tiny_model, "clip.min_score=-1")]
    with serve({f"/{n}.jpg": Route(data) for n, data in enumerate(photo_jpegs())}) as site:
        base = run_local([listing], root / "clip-only", *clip, site.connect_to)
        vectors = embeddings(root / "clip-only")
        flagged = make_key(url("/7.jpg"), captions[7])  # the nsfw head points at it, the watermark head away
        unlike = min(vectors, key=lambda key: float(vectors[key] @ vectors[flagged]))
        heads = {kind: make_head(root / f"{kind}.safetensors", kind, vectors, toward, cut)
                 for kind, toward, cut in (("nsfw", flagged, 0.5), ("watermark", unlike, 0.8))}
        yield root, listing, site, clip, base, heads, vectors


def embeddings(out) -> dict[str, np.ndarray]:
    rows = np.concatenate([np.load(path) for path in sorted((out / "embeddings").glob("*.npy"))])
    return {str(row["key"]): np.asarray(row["image_embedding"], np.float32) for row in rows}


def make_head(path, kind: str, vectors: dict[str, np.ndarray], toward: str, cut: float) -> str:
    """A two-layer head scoring by closeness to the image of key ``toward`` (tiny CLIP's embeddings
    are alike, so a random head would rank them all the same way), biased so that the 40% closest
    images score ``cut`` or more."""
    rng = np.random.default_rng(len(kind))
    direction = vectors[toward] / np.linalg.norm(vectors[toward])
    hidden = (np.vstack([5 * direction, rng.normal(size=(7, len(direction)))]).astype(np.float32),
              np.zeros(8, np.float32))
    out = (np.array([[1.0] + [0.01] * 7], np.float32), np.zeros(1, np.float32))
    x = np.stack(list(vectors.values()))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    logits = np.maximum(x @ hidden[0].T, 0) @ out[0].T
    out = (out[0], np.array([np.log(cut / (1 - cut)) - np.quantile(logits, 0.6)], np.float32))
    save_head(str(path), [hidden, out], kind=kind, embedding="ViT-tiny", l2_normalize=True)
    return str(path)


def test_without_heads_nothing_is_scored_and_the_run_says_so(clip_site, caplog, tmp_path):
    root, listing, site, clip, base, _, _ = clip_site
    with caplog.at_level(logging.INFO, logger="altcap"):
        run_local([listing], tmp_path / "out", *clip, site.connect_to)
    said = [record.getMessage() for record in caplog.records if "NSFW" in record.getMessage()]
    assert said == ["no NSFW or watermark scores (no safety.nsfw_head, nsfw_model, watermark_head or "
                    "watermark_model given): nothing is dropped for them"]
    assert all(row["nsfw_score"] is None and row["watermark_score"] is None for row in shard_rows(tmp_path / "out"))
    assert "safety" not in [entry["stage"] for entry in base["funnel"]]


def test_heads_score_every_sample_as_the_head_file_does_and_cut_at_the_settings(clip_site, tmp_path):
    root, listing, site, clip, base, heads, vectors = clip_site
    settings = [*clip, f"safety.nsfw_head={heads['nsfw']}", f"safety.watermark_head={heads['watermark']}",
                site.connect_to]
    out = tmp_path / "out"
    stats = run_local([listing], out, *settings)
    keys = list(vectors)
    expected = {kind: dict(zip(keys, load_head(path).scores(np.stack([vectors[k] for k in keys]))))
                for kind, path in heads.items()}
    rows = shard_rows(out) + [row for row in reject_rows(out) if row["stage"] == "safety"]
    assert {row["key"] for row in rows} == set(keys)
    for row in rows:
        nsfw, mark = expected["nsfw"][row["key"]], expected["watermark"][row["key"]]
        assert row["nsfw_score"] == pytest.approx(nsfw, abs=1e-6)
        assert row["watermark_score"] == pytest.approx(mark, abs=1e-6)
        reason = "nsfw" if nsfw >= 0.5 else "watermark" if mark >= 0.8 else None
        assert row.get("reason") == reason
    assert set(reasons(stats, "safety")) == {"nsfw", "watermark"} and stats["check"]["ok"]
    assert stats["safety"]["nsfw"]["max"] == 0.5 and stats["safety"]["filtering"]
    report = (out / "report.html").read_text()
    assert "data-column=nsfw_score>" in report and "data-column=watermark_score>" in report  # histograms
    assert "cut 0.5" in report and "cut 0.8" in report  # with their cuts
    before = contents(out)
    assert run_local([listing], out, *settings)["funnel"] == stats["funnel"]
    assert contents(out) == before


def test_nsfw_rule_both_drops_only_a_scored_image_with_a_bad_word_in_its_caption(clip_site, tmp_path):
    root, listing, site, clip, _, heads, vectors = clip_site
    scores = dict(zip(vectors, load_head(heads["nsfw"]).scores(np.stack(list(vectors.values())))))
    flagged = {row["key"] for row in [*shard_rows(root / "clip-only")] if "porn" in row["caption"]}
    assert len(flagged) == 1 and scores[next(iter(flagged))] >= 0.5  # the fixture's head scores it over the cut
    with pytest.raises(ConfigError, match="text.profanity=false"):
        run_local([listing], tmp_path / "refused", *clip, f"safety.nsfw_head={heads['nsfw']}",
                  "safety.nsfw_rule=both", "text.profanity=true", site.connect_to)
    stats = run_local([listing], tmp_path / "out", *clip, f"safety.nsfw_head={heads['nsfw']}",
                      "safety.nsfw_rule=both", "text.profanity=false", site.connect_to)
    dropped = {row["key"]: row for row in reject_rows(tmp_path / "out")}
    assert set(dropped) == flagged and "'porn'" in dropped[next(iter(flagged))]["detail"]
    assert sum(score >= 0.5 for score in scores.values()) > 1 and stats["check"]["ok"]


def test_a_pickled_head_is_refused_before_the_job(clip_site, tmp_path, capsys):
    root, listing, site, clip, _, _, _ = clip_site
    marker = tmp_path / "ran"
    evil = torch_pickle(tmp_path / "nsfw.safetensors", marker)
    command = ["run", "--input", str(listing), "--output", str(tmp_path / "out"), *IN_MEMORY,
               *(part for setting in [*clip, f"safety.nsfw_head={evil}"] for part in ("--set", setting))]
    assert main(command) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "safety.nsfw_head" in error[0] and "pickle" in error[0]
    assert not marker.exists() and not (tmp_path / "out" / "shards").exists()


def test_an_image_classifier_of_transformers_scores_the_images(clip_site, tmp_path):
    root, listing, site, clip, _, _, _ = clip_site
    model = tiny_vit_folder(tmp_path / "vit")
    stats = run_local([listing], tmp_path / "out", *clip, f"safety.nsfw_model={model}", "safety.max_nsfw=0.6",
                      "safety.device=cpu", site.connect_to)
    reference = ImageClassifierScorer(str(model), "nsfw")
    rows = shard_rows(tmp_path / "out")
    images = {key: parts["jpg"] for key, parts in tar_samples(tmp_path / "out").items()}
    expected = reference.scores([Image.open(io.BytesIO(images[row["key"]])) for row in rows])
    assert [row["nsfw_score"] for row in rows] == pytest.approx(expected.tolist(), abs=1e-5)
    assert all(score < 0.6 for score in expected) and stats["check"]["ok"]
    dropped = [row for row in reject_rows(tmp_path / "out") if row["stage"] == "safety"]
    assert all(row["nsfw_score"] >= 0.6 for row in dropped)
    assert len(rows) + len(dropped) == len(CAPTIONS)
    assert json.loads((tmp_path / "out" / "stats.json").read_text())["safety"]["nsfw"]["source"] == str(model)
    assert stats_of(tmp_path / "out")["samples"] == len(rows)
    assert pq.read_table(next((tmp_path / "out" / "shards").glob("*.parquet"))).schema.field("nsfw_score")


def test_semdedup_drops_one_of_each_planted_near_copy_in_embedding_space(tmp_path, tiny_model):  # noqa: F811
    """Re-encoded, slightly brightened copies of real photos (other bytes: exact dedup is off, and
    does not see them anyway) embed within 0.005 of their originals; different photos do not."""
    originals = {name: Image.fromarray(array) for name, array in PHOTOS.items()}
    routes = {f"/{name}.jpg": Route(encoded(image)) for name, image in originals.items()}
    copies = {f"/{name}-copy.jpg": Route(encoded(ImageEnhance.Brightness(originals[name]).enhance(1.02), 80))
              for name in ("astronaut", "coffee", "rocket")}
    routes.update(copies)
    listing = tmp_path / "photos.tsv"
    listing.write_text("".join(f"a photo {path[1:-4]}\t{url(path)}\n" for path in routes))
    settings = [*PERMISSIVE, *clip_settings(tiny_model, "clip.min_score=-1"), "dedup.image=false",
                "dedup.semantic_eps=0.005", "dedup.semantic_clusters=2", "shards.samples_per_shard=3"]
    with serve(routes) as site:
        stats = run_local([listing], tmp_path / "out", *settings, site.connect_to)
        dropped = {row["url"].rsplit("/", 1)[1] for row in reject_rows(tmp_path / "out")}
        assert reasons(stats, "semantic_dedup") == {"semantic_duplicate": 3} and stats["check"]["ok"]
        for name in ("astronaut", "coffee", "rocket"):
            assert len({f"{name}.jpg", f"{name}-copy.jpg"} & dropped) == 1
        assert json.loads((tmp_path / "out" / "semantic_dedup.json").read_text())["clusters"] == 2
        assert len(list((tmp_path / "out" / "rejects").glob("semantic-*.npy"))) >= 1
        before = contents(tmp_path / "out")
        assert run_local([listing], tmp_path / "out", *settings, site.connect_to)["funnel"] == stats["funnel"]
        assert contents(tmp_path / "out") == before
    with pytest.raises(ConfigError, match="clip.enabled"):
        run_local([listing], tmp_path / "no-clip", "dedup.semantic_eps=0.005")
