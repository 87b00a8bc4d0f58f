"""The bundled trainer on token files made from real photos (scikit-image's CC0 photos through a
tiny VQ model and CLIP's BPE, by the tokens step users run): the loss falls, a resumed run repeats
the uninterrupted one, two processes (DDP, FSDP) on CPU train on disjoint data, and sampling keeps CLIP's
best images."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys

import numpy as np
import open_clip
import pytest
import torch
from PIL import Image
from skimage import data as photos

from dataset.layout import TOKENS
from dataset.side_arrays import side_array, write_side
from filters.clip_config import ClipConfig
from filters.clip_model import export_local_dir, load_clip
from filters.clip_score import ClipScorer
from pipeline.shard_step import run_steps
from pipeline.tokens_step import TokensStep
from tokens.config import TokensConfig
from tokens.manifest import claim, manifest_of
from tokens.random_vq import save_random_vq
from trainer.sample import rerank, sample
from trainer.train import load_train_config, train

from test_clip import TINY

pytestmark = pytest.mark.usefixtures("one_torch_thread")
SOURCES = {"astronaut": "an astronaut in a white suit", "coffee": "a cup of coffee on a saucer",
           "chelsea": "a cat lying on a wooden floor", "rocket": "a rocket on the launch pad",
           "immunohistochemistry": "stained tissue under a microscope", "hubble_deep_field": "galaxies in deep space"}


def crops(n: int) -> list[tuple[bytes, str]]:
    """``n`` JPEG crops of the photos (each its own size and place), with the photo's caption."""
    found, rng = [], np.random.default_rng(0)
    names = list(SOURCES)
    for i in range(n):
        name = names[i % len(names)]
        array = getattr(photos, name)()
        side = int(min(array.shape[:2]) * rng.uniform(0.5, 1.0))
        top, left = rng.integers(0, array.shape[0] - side + 1), rng.integers(0, array.shape[1] - side + 1)
        buffer = io.BytesIO()
        Image.fromarray(array[top:top + side, left:left + side]).convert("RGB").resize((96, 96)).save(buffer, "JPEG")
        found.append((buffer.getvalue(), SOURCES[name]))
    return found


@pytest.fixture(scope="module")
def token_folder(tmp_path_factory):
    """An altcap output folder's tokens/: 3 shards of real photo crops, 8x8 codes of 64, 12 CLIP ids."""
    root = tmp_path_factory.mktemp("tokens-data")
    settings = TokensConfig(enabled=True, image_model=save_random_vq(root / "vq", blocks=4, codes=64),
                            image_size=64, text_length=12, device="cpu", precision="fp32", batch_size=16)
    out = root / "run"
    step = TokensStep(settings)
    samples = crops(240)
    for shard in range(3):
        records = [{"key": hashlib.sha1(f"{shard}-{i}".encode()).hexdigest()[:20], "caption": caption,
                    "image_bytes": blob} for i, (blob, caption) in enumerate(samples[shard::3])]
        rows = [(o["key"], *o[TOKENS.field]) for o in run_steps([step], records, None, 0)]
        write_side(str(out / TOKENS.folder / f"{shard:05d}.npy"), side_array(TOKENS, rows))
    claim(str(out), manifest_of(settings))
    return out


def settings(folder, out_dir, *more: str):
    return load_train_config(None, [f"data={folder}", f"out_dir={out_dir}", "size=tiny", "batch_size=16",
                                    "lr=0.003", "min_lr=0.0003", "warmup=10", "eval_every=1000",
                                    "log_every=1000", "checkpoint_every=1000", "dropout=0.1", *more])


def test_the_loss_falls_clearly_and_a_checkpoint_is_written(token_folder, tmp_path, capsys):
    losses = train(settings(token_folder, tmp_path / "run", "max_steps=300"))
    first, last = np.mean(losses[:10]), np.mean(losses[-20:])
    assert last < 0.5 * first, (first, last)  # over 300 steps: from about 4.6 to well under half
    folder = tmp_path / "run" / "checkpoint"
    assert {p.name for p in folder.iterdir()} == {"model.safetensors", "model.json", "state.pt"}
    meta = json.loads((folder / "model.json").read_text())
    assert meta["step"] == 300 and meta["model"]["image_grid"] == 8
    assert meta["tokenizers"]["image"]["codebook_size"] == 64
    torch.load(folder / "state.pt", weights_only=True)  # loads without executing code
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == 300 and log[-1]["val_loss"] is not None and log[-1]["mfu"] is None  # CPU: no peak
    printed = capsys.readouterr().out
    assert "checkpoints in" in printed and "MFU n/a (cpu)" in printed


def test_a_resumed_run_repeats_the_uninterrupted_one(token_folder, tmp_path):
    straight = train(settings(token_folder, tmp_path / "straight", "max_steps=40", "grad_accum=2"))
    interrupted = settings(token_folder, tmp_path / "resumed", "max_steps=40", "grad_accum=2")
    first_half = train(interrupted, stop_after=23)  # mid-epoch: 160 train rows, 32 a step
    second_half = train(interrupted)
    assert len(first_half) == 23 and len(second_half) == 17
    np.testing.assert_allclose(first_half + second_half, straight, rtol=1e-5)  # CPU fp32: same to rounding


@pytest.mark.parametrize("parallel", ["ddp", "fsdp"])
def test_two_processes_on_cpu_train_on_disjoint_data(token_folder, tmp_path, parallel):
    config = tmp_path / "train.yaml"
    config.write_text(json.dumps({"data": [str(token_folder)], "out_dir": str(tmp_path / "ddp"), "size": "tiny",
                                  "batch_size": 8, "max_steps": 60, "lr": 0.003, "warmup": 5, "log_every": 10,
                                  "eval_every": 60, "checkpoint_every": 60, "parallel": parallel}))
    torchrun = os.path.join(os.path.dirname(sys.executable), "torchrun")
    done = subprocess.run([torchrun, "--standalone", "--nproc_per_node=2", "-m", "trainer.train", "--config",
                           str(config)], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    assert "on 2 x cpu" in done.stdout and done.stdout.count("step 60/60") == 1  # rank 0 prints
    log = [json.loads(line) for line in (tmp_path / "ddp" / "log.jsonl").read_text().splitlines()]
    assert log[-1]["loss"] < 0.7 * log[0]["loss"]
    state = torch.load(tmp_path / "ddp" / "checkpoint" / "state.pt", weights_only=True)
    assert state["world_size"] == 2 and len(state["data"]) == 2
    assert state["data"][0]["offset"] > 0 and state["data"][1]["offset"] > 0  # both ranks read


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    torch.manual_seed(0)
    return export_local_dir(open_clip.CLIP(**TINY), TINY, str(tmp_path_factory.mktemp("clip")))


def test_sampling_keeps_the_images_clip_scores_best(token_folder, tmp_path, tiny_clip, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # CLIP's precision auto measures here
    train(settings(token_folder, tmp_path / "run", "max_steps=30"))
    checkpoint = str(tmp_path / "run" / "checkpoint")
    found = sample(checkpoint, "a rocket on the launch pad", n=6, keep=2, guidance=2.0, batch_size=4,
                   clip_model=tiny_clip, clip_pretrained=None, device="cpu", png=str(tmp_path / "grid.png"))
    assert found.codes.shape == (2, 64) and Image.open(found.png).size == (2 * 64, 64)
    assert found.scores == sorted(found.scores, reverse=True)
    again = sample(checkpoint, "a rocket on the launch pad", n=6, keep=6, guidance=2.0, batch_size=4,
                   clip_model=tiny_clip, clip_pretrained=None, device="cpu", png=str(tmp_path / "all.png"))
    assert found.scores == pytest.approx(again.scores[:2], abs=1e-5)  # the same draws (seeded), the best two

    scorer = ClipScorer(load_clip(ClipConfig(model=tiny_clip, pretrained=None, device="cpu", precision="fp32")), 4)
    images = [Image.fromarray(np.full((64, 64, 3), shade, np.uint8)) for shade in (0, 60, 120, 180, 240)]
    every = scorer.score(images, ["a photo"] * 5).scores
    order, scores = rerank(images, "a photo", scorer, keep=3)
    assert order == list(np.argsort(-np.asarray(every))[:3]) and scores == pytest.approx(sorted(every)[::-1][:3])


def test_the_commands_end_a_user_error_in_one_line(token_folder, tmp_path, capsys):
    from pipeline.cli import main

    assert main(["train", "--set", f"data={token_folder}", "--set", "size=2B"]) == 2
    assert main(["train", "--set", "max_steps=10"]) == 2  # no data
    assert main(["train", "--set", f"data={token_folder}", "--set", "max_step=10"]) == 2
    assert main(["sample", "--checkpoint", str(tmp_path / "none"), "--prompt", "a cat"]) == 2
    errors = capsys.readouterr().err.splitlines()
    assert errors == ["altcap train: error: size '2B': one of tiny, 124M, 350M, 1.3B",
                      "altcap train: error: data: name at least one altcap output folder with tokens/",
                      errors[2], errors[3]]
    assert "unknown training setting 'max_step'" in errors[2] and errors[3].startswith("altcap sample: error:")
