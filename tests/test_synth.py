"""``altcap synth`` end to end (issue 21): prompt templates expanded over classes and settings, N images
drawn per prompt by a tiny diffusers pipeline or the bundled trainer's tiny model, scored by a tiny CLIP
with weights, the class checked zero-shot, the best K of each prompt kept; the output is a run folder
like any other (funnel, rejects with reasons, provenance columns), reads with webdataset, trains the
bundled trainer, and the same seed gives the same images."""

from __future__ import annotations

import io
import json
import subprocess
from collections import defaultdict

import numpy as np
import open_clip
import pytest
import torch
import webdataset as wds
from PIL import Image

from dataset.layout import TOKENS
from filters.clip_model import export_local_dir
from pipeline.synth_run import synth, variations
from synth.generators import load_generator, weights_sha256
from synth.records import image_seed
from synth.tiny_models import save_tiny_stable_diffusion

from conftest import ALTCAP
from pipeline_helpers import IN_MEMORY, reject_rows, shard_rows, tar_samples
from test_clip import TINY
from test_synth_generators import checkpoint  # noqa: F401  (fixture)
from test_trainer import settings, token_folder  # noqa: F401  (fixture)

pytestmark = pytest.mark.usefixtures("one_torch_thread")
CLASSES = ["dog", "car"]
SETTINGS = ["on a beach", "in the snow"]


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory) -> str:
    torch.manual_seed(0)
    return export_local_dir(open_clip.CLIP(**TINY), TINY, str(tmp_path_factory.mktemp("tiny-clip")))


@pytest.fixture(scope="module")
def prompts(tmp_path_factory):
    folder = tmp_path_factory.mktemp("prompts")
    (folder / "classes.txt").write_text("\n".join(CLASSES) + "\n")
    path = folder / "prompts.yaml"
    path.write_text(json.dumps({"templates": ["a photo of a {class} {setting}"],
                                "slots": {"class": "classes.txt", "setting": SETTINGS}}))
    return path


@pytest.fixture(scope="module")
def diffusion(tmp_path_factory) -> str:
    return save_tiny_stable_diffusion(tmp_path_factory.mktemp("sd"))


def common(tiny_clip: str, *more: str) -> list[str]:
    return ["image.min_side=16", "resize.image_size=32", "resize.encode_format=png", "resize.encode_quality=6",
            f"clip.model={tiny_clip}", "clip.device=cpu", "clip.precision=fp32", "clip.batch_size=4",
            "clip.min_score=-1", "synth.batch_size=4", "synth.steps=2", "synth.device=cpu", *more]


@pytest.fixture(scope="module")
def drawn(tmp_path_factory, prompts, diffusion, tiny_clip):
    out = tmp_path_factory.mktemp("synth") / "out"
    stats = synth(str(prompts), str(out), f"diffusers:{diffusion}", per_prompt=3, keep=2, seed=7,
                  overrides=common(tiny_clip), beam_args=IN_MEMORY)
    return out, stats


def test_n_are_drawn_per_prompt_and_the_best_k_kept_by_their_scores(drawn):
    out, stats = drawn
    funnel = {e["stage"]: (e["in"], e["passed"], e["rejected"]) for e in stats["funnel"]}
    assert list(funnel) == ["source", "generate", "image", "clip", "best_of", "image_dedup"]
    assert funnel["source"] == (12, 12, 0) and funnel["generate"] == (12, 12, 0) and stats["check"]["ok"]
    samples, rejects = shard_rows(out), reject_rows(out)
    assert len(samples) + len(rejects) == 12 == len({row["key"] for row in samples + rejects})
    by_prompt = defaultdict(list)
    for row in samples + [row for row in rejects if row["reason"] == "outranked"]:
        by_prompt[row["prompt_id"]].append((-row["clip_score"], row["key"]))
    kept = {row["key"] for row in samples}
    for ranked in by_prompt.values():
        assert {key for _, key in sorted(ranked)[:2]} == {key for _, key in ranked if key in kept}
    assert all(len([key for _, key in ranked if key in kept]) <= 2 for ranked in by_prompt.values())
    assert {row["reason"] for row in rejects} == {"outranked", "class_not_visible"}  # both cases happen
    assert all(row["detail"].startswith("rank ") for row in rejects if row["reason"] == "outranked")


def test_the_class_must_be_clips_first_label_among_the_runs_classes(drawn):
    out, _ = drawn
    samples, rejects = shard_rows(out), reject_rows(out)
    assert all(row["clip_labels"] == [row["label"]] for row in samples)
    hidden = [row for row in rejects if row["reason"] == "class_not_visible"]
    assert all(row["clip_labels"] != [row["label"]] and row["stage"] == "clip" for row in hidden)
    assert (out / "input" / "labels.txt").read_text().split() == sorted(CLASSES)


def test_each_sample_keeps_its_provenance(drawn, diffusion):
    out, stats = drawn
    spec = f"diffusers:{diffusion}"
    for row in shard_rows(out) + reject_rows(out):
        slots = json.loads(row["slots"])
        assert row["caption"] == f"a photo of a {slots['class']} {slots['setting']}" and row["label"] == slots["class"]
        assert row["template"] == "a photo of a {class} {setting}" and row["source"] == "synthetic"
        number = int(row["url"].rsplit("/", 1)[1])
        assert row["url"] == f"synthetic://{row['prompt_id']}/{number}"
        assert row["seed"] == image_seed(7, row["prompt_id"], number)
        assert (row["generator"], row["checkpoint_sha256"], row["guidance"]) == (spec, weights_sha256(spec), 7.5)
    assert stats["generate"]["checkpoint_sha256"] == weights_sha256(spec)


def test_the_output_reads_with_webdataset(drawn):
    out, stats = drawn
    tars = sorted(str(path) for path in (out / "shards").glob("*.tar"))
    found = list(wds.WebDataset(tars, shardshuffle=False).decode("pil"))
    assert len(found) == stats["samples"] and all(sample["png"].size == (32, 32) for sample in found)
    assert {sample["txt"] for sample in found} == {row["caption"] for row in shard_rows(out)}


def test_the_same_seed_gives_the_same_images_and_another_seed_others(drawn, tmp_path, prompts, diffusion, tiny_clip):
    out, stats = drawn
    again = synth(str(prompts), str(tmp_path / "again"), f"diffusers:{diffusion}", per_prompt=3, keep=2, seed=7,
                  overrides=common(tiny_clip), beam_args=IN_MEMORY)
    assert tar_samples(tmp_path / "again") == tar_samples(out)
    assert again["funnel"] == stats["funnel"]
    other = synth(str(prompts), str(tmp_path / "other"), f"diffusers:{diffusion}", per_prompt=3, keep=3, seed=8,
                  overrides=common(tiny_clip), beam_args=IN_MEMORY)
    images = {sample["png"] for sample in tar_samples(out).values()}
    assert other["samples"] and not images & {sample["png"] for sample in tar_samples(tmp_path / "other").values()}
    resumed = synth(str(prompts), str(out), f"diffusers:{diffusion}", per_prompt=3, keep=2, seed=7,
                    overrides=common(tiny_clip), beam_args=IN_MEMORY)  # the same folder: every shard reused
    assert resumed["funnel"] == stats["funnel"] and tar_samples(out) == tar_samples(tmp_path / "again")


@pytest.fixture(scope="module")
def bundled(tmp_path_factory, prompts, checkpoint, token_folder, tiny_clip):  # noqa: F811
    """A synthetic run of the bundled model, with tokens made as its training data's were."""
    vq = token_folder.parent / "vq"
    out = tmp_path_factory.mktemp("bundled") / "out"
    stats = synth(str(prompts), str(out), f"altcap:{checkpoint}", per_prompt=2, seed=1,
                  overrides=common(tiny_clip, "tokens.enabled=true", f"tokens.image_model={vq}",
                                   "tokens.image_size=64", "tokens.text_length=12", "tokens.device=cpu",
                                   "tokens.precision=fp32", "resize.image_size=64"),
                  beam_args=IN_MEMORY)
    return out, stats


def test_the_bundled_model_generates_a_dataset_that_trains_it(bundled, checkpoint, tmp_path):  # noqa: F811
    from trainer.train import train

    out, stats = bundled
    assert stats["check"]["ok"] and stats["samples"] > 0
    assert all(row["generator"] == f"altcap:{checkpoint}" for row in shard_rows(out))
    assert sum(1 for _ in (out / TOKENS.folder).glob("*.npy")) == stats["shards"]
    losses = train(settings(out, tmp_path / "train", "max_steps=3", "batch_size=2", "val_per_mille=0"))
    assert len(losses) == 3 and all(loss > 0 for loss in losses)


def test_variations_complete_real_code_grids_from_their_first_rows(bundled, checkpoint, tmp_path,  # noqa: F811
                                                                   tiny_clip):
    source, _ = bundled
    stats = variations(str(source), str(tmp_path / "varied"), f"altcap:{checkpoint}", keep_rows=3, per_sample=2,
                       seed=5, overrides=common(tiny_clip, "resize.image_size=64"), beam_args=IN_MEMORY)
    originals = {row["key"]: row for row in shard_rows(source)}
    codes = {str(row["key"]): row["image_codes"] for path in sorted((source / TOKENS.folder).glob("*.npy"))
             for row in np.load(path)}
    assert stats["funnel"][0]["in"] == 2 * len(originals) and stats["check"]["ok"]
    varied = shard_rows(tmp_path / "varied") + reject_rows(tmp_path / "varied")
    assert {row["source_key"] for row in varied} == set(originals)
    assert all(row["prompt_id"] == row["source_key"] and row["caption"] == originals[row["source_key"]]["caption"]
               for row in varied)
    generator = load_generator(f"altcap:{checkpoint}", device="cpu")
    written = tar_samples(tmp_path / "varied")
    for row in shard_rows(tmp_path / "varied")[:3]:  # each image is the model's completion of its sample's grid
        expected = generator.complete(codes[row["source_key"]][None].astype(np.int64), 3, [row["seed"]],
                                      prompts=[row["caption"]])[0]
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(written[row["key"]]["png"])).convert("RGB")),
                              np.asarray(expected))


@pytest.mark.parametrize("args, fragment", [
    (["--generator", "dalle:x"], "synth.generator is altcap:CHECKPOINT or diffusers:MODEL_OR_FOLDER"),
    (["--generator", "altcap:/nowhere/checkpoint"], "/nowhere/checkpoint"),
    (["--generator", "altcap:x", "--slot", "class"], "--slot class: give NAME=FILE"),
    (["--generator", "altcap:x", "--from-dataset", "out/"], "takes --prompts FILE, or --from-dataset OUT_DIR"),
])
def test_synth_refuses_what_it_cannot_run_in_one_line(tmp_path, prompts, args, fragment):
    done = subprocess.run([ALTCAP, "synth", "--prompts", str(prompts), "--output", str(tmp_path / "out"), *args],
                          capture_output=True, text=True, timeout=120)
    errors = [line for line in done.stderr.splitlines() if line.startswith("altcap: error:")]
    assert done.returncode == 2 and len(errors) == 1 and fragment in errors[0], done.stderr
    assert "Traceback" not in done.stderr


def test_a_prompt_file_error_is_one_line(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("a photo of a {class}\n")
    done = subprocess.run([ALTCAP, "synth", "--prompts", str(bad), "--output", str(tmp_path / "out"),
                           "--generator", "altcap:x"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stderr.count("altcap: error:") == 1 and "class" in done.stderr, done.stderr
