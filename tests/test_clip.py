"""CLIP scoring on a tiny open_clip model, randomly initialised, saved as a ``local-dir:`` folder
and loaded through ``load_clip`` like any user model; real CC0 photos from scikit-image. Precision
auto measures into a private XDG_CACHE_HOME."""

from __future__ import annotations

import json

import numpy as np
import open_clip
import pytest
import torch
from PIL import Image
from skimage import data as photos

from filters.clip_config import ClipConfig
from filters.clip_model import (
    CONFIG_FILE,
    WEIGHTS_FILE,
    ClipModelError,
    calibrate_clip,
    export_local_dir,
    load_clip,
    resolve_precision,
)
from filters.clip_score import ClipScorer, padded_batches
from filters.precision import cache_path

TINY = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "head_width": 32, "patch_size": 8},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}
TEXTS = ["an astronaut in a white suit", "a cup of coffee on a saucer", "a cat lying on a sofa",
         "a rocket on a launch pad", "a black and white photo of a camera man"]


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    torch.manual_seed(0)
    model = open_clip.CLIP(**TINY)
    return export_local_dir(model, TINY, str(tmp_path_factory.mktemp("tiny-clip")))


@pytest.fixture(scope="module")
def tiny(tiny_dir):
    return load_clip(ClipConfig(model=tiny_dir, device="cpu", precision="fp32"))


@pytest.fixture(scope="module")
def images():
    return [Image.fromarray(photos.astronaut()), Image.fromarray(photos.coffee()),
            Image.fromarray(photos.chelsea()), Image.fromarray(photos.rocket()),
            Image.fromarray(photos.camera()).convert("RGB")]


def open_clip_reference(loaded, images, texts):
    """open_clip's own encoders, one item at a time, normalised."""
    model = loaded.model
    with torch.no_grad():
        image = torch.cat([model.encode_image(loaded.preprocess(im)[None]) for im in images])
        text = torch.cat([model.encode_text(loaded.tokenizer([t])) for t in texts])
    image = image / image.norm(dim=-1, keepdim=True)
    text = text / text.norm(dim=-1, keepdim=True)
    return (image * text).sum(-1).numpy(), image.numpy(), text.numpy()


def test_exported_folder_is_an_open_clip_local_dir(tiny_dir):
    folder = tiny_dir.removeprefix("local-dir:")
    config = json.loads(open(f"{folder}/{CONFIG_FILE}").read())
    assert config["model_cfg"] == TINY
    model = open_clip.create_model(tiny_dir)  # open_clip alone loads it too
    assert sum(p.numel() for p in model.parameters()) < 5_000_000
    with open(f"{folder}/{WEIGHTS_FILE}", "rb") as weights:
        header_size = int.from_bytes(weights.read(8), "little")
        assert b'"visual.' in weights.read(header_size)  # a safetensors header naming the tensors


def test_loads_the_exported_weights(tiny_dir, tiny):
    torch.manual_seed(0)
    original = open_clip.CLIP(**TINY).state_dict()
    loaded = tiny.model.state_dict()
    assert original.keys() == loaded.keys()
    assert all(torch.equal(original[k], loaded[k]) for k in original)
    assert tiny.weights == tiny_dir.removeprefix("local-dir:") and tiny.problem == ""
    assert tiny.device.type == "cpu" and tiny.precision == "fp32"


@pytest.mark.parametrize("batch_size", [1, 2, 3, 5, 8])
def test_scores_equal_open_clip_encoders_whatever_the_batch(tiny, images, batch_size):
    expected, expected_images, expected_texts = open_clip_reference(tiny, images, TEXTS)
    found = ClipScorer(tiny, batch_size=batch_size).score(images, TEXTS)
    assert found.scores.shape == (5,) and found.scores.dtype == np.float32
    np.testing.assert_allclose(found.scores, expected, atol=1e-5)
    np.testing.assert_allclose(found.image_embeddings, expected_images, atol=1e-5)
    np.testing.assert_allclose(found.text_embeddings, expected_texts, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(found.image_embeddings, axis=1), 1.0, atol=1e-5)


def test_scores_pair_each_image_with_its_own_text(tiny, images):
    scorer = ClipScorer(tiny, batch_size=4)
    forward = scorer.score(images, TEXTS).scores
    backward = scorer.score(images[::-1], TEXTS[::-1]).scores
    np.testing.assert_allclose(forward, backward[::-1], atol=1e-6)
    shifted = scorer.score(images, TEXTS[1:] + TEXTS[:1]).scores
    assert not np.allclose(forward, shifted, atol=1e-4)


def test_empty_input_gives_empty_arrays(tiny):
    found = ClipScorer(tiny, batch_size=4).score([], [])
    assert found.scores.shape == (0,)
    assert found.image_embeddings.shape == (0, TINY["embed_dim"]) == found.text_embeddings.shape


def test_mismatched_lengths_are_refused(tiny, images):
    with pytest.raises(ValueError, match="5 images but 4 texts"):
        ClipScorer(tiny).score(images, TEXTS[:4])


def test_padded_batches_have_one_shape_and_count_the_real_items():
    batches = padded_batches(list(range(7)), 3)
    assert [(b, n) for b, n in batches] == [([0, 1, 2], 3), ([3, 4, 5], 3), ([6, 6, 6], 1)]
    assert padded_batches([], 4) == []
    with pytest.raises(ValueError):
        padded_batches([1], 0)


def test_local_dir_without_weights_loads_random_and_says_so(tmp_path):
    torch.manual_seed(1)
    name = export_local_dir(open_clip.CLIP(**TINY), TINY, str(tmp_path))
    (tmp_path / WEIGHTS_FILE).unlink()
    loaded = load_clip(ClipConfig(model=name, device="cpu", precision="fp32"))
    assert loaded.weights is None and "no weights file" in loaded.problem


def test_pretrained_tag_unreachable_falls_back_to_a_random_model(monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # this machine is offline
    offline = ClipConfig(model="ViT-B-32", pretrained="laion2b_s34b_b79k", device="cpu", precision="fp32")
    loaded = load_clip(offline)
    assert loaded.weights is None
    assert "ViT-B-32/laion2b_s34b_b79k unavailable" in loaded.problem
    vectors = ClipScorer(loaded, batch_size=2).embed_texts(["a dog"])
    assert vectors.shape == (1, 512)
    torch.manual_seed(123)  # the random model does not depend on the caller's seed: every worker makes the same
    again = load_clip(offline)
    np.testing.assert_array_equal(ClipScorer(again, batch_size=2).embed_texts(["a dog"]), vectors)


@pytest.mark.parametrize("spec, message", [
    (ClipConfig(model="ViT-Nonexistent-99"), "unknown open_clip model"),
    (ClipConfig(model="ViT-B-32", pretrained="/no/such/weights.pt"), "weights file not found"),
    (ClipConfig(model="local-dir:/no/such/folder"), "no open_clip_config.json"),
    (ClipConfig(model="ViT-B-32", precision="int3"), "clip precision 'int3'"),
])
def test_bad_model_settings_say_what_is_wrong(spec, message):
    with pytest.raises(ClipModelError, match=message):
        load_clip(spec)


def test_precision_auto_is_left_to_the_measurement():
    assert resolve_precision("auto", torch.device("cpu")) == "auto"
    assert resolve_precision("int8", torch.device("cpu")) == "int8"
    with pytest.raises(ClipModelError, match="CPU path"):
        resolve_precision("int8", torch.device("cuda"))


def test_precision_auto_measures_once_and_stays_within_001_of_fp32(tiny_dir, tiny, images, monkeypatch):
    import filters.precision

    measured = []
    measure = filters.precision._measure
    monkeypatch.setattr(filters.precision, "_measure", lambda *args: measured.append(1) or measure(*args))
    auto = load_clip(ClipConfig(model=tiny_dir, device="cpu", precision="auto"))
    assert auto.precision in ("fp32", "bf16", "int8") and measured == [1]
    exact = ClipScorer(tiny, batch_size=4).score(images, TEXTS).scores
    assert np.abs(ClipScorer(auto, batch_size=4).score(images, TEXTS).scores - exact).max() <= 0.01
    [(key, entry)] = json.loads(open(cache_path()).read()).items()
    assert key.startswith(f"clip | {tiny_dir} | cpu: ")
    assert set(entry["rates"]) == {"fp32", "bf16", "int8"} and entry["agreement"][auto.precision] <= 0.01
    again = load_clip(ClipConfig(model=tiny_dir, device="cpu", precision="auto"))
    assert again.precision == auto.precision and measured == [1]  # cached


def test_calibration_leaves_the_fp32_model_as_it_was(tiny):
    before = {name: tensor.clone() for name, tensor in tiny.model.state_dict().items()}
    found = calibrate_clip("tiny", tiny.model, tiny.preprocess, tiny.tokenizer, tiny.device)
    assert set(found.rates) == {"fp32", "bf16", "int8"} and found.agreement["fp32"] == 0
    after = tiny.model.state_dict()
    assert all(torch.equal(before[name], after[name]) for name in before)


@pytest.mark.parametrize("precision", ["bf16", "int8"])
def test_fast_cpu_paths_stay_within_001_of_fp32(tiny_dir, tiny, images, precision):
    exact = ClipScorer(tiny, batch_size=4).score(images, TEXTS).scores
    fast = load_clip(ClipConfig(model=tiny_dir, device="cpu", precision=precision))
    assert fast.precision == precision
    found = ClipScorer(fast, batch_size=4).score(images, TEXTS).scores
    assert found.dtype == np.float32
    assert np.abs(found - exact).max() <= 0.01
    assert not np.array_equal(found, exact)  # it did run another way
