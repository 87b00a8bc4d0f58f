"""The generators of altcap synth (synth/generators.py), loaded by ``load_generator`` as users' models are: a
checkpoint the bundled trainer wrote from real photo tokens (tests/test_trainer.py's token folder, 8x8 codes of a
tiny random VQ model) and a tiny Stable Diffusion pipeline built from configs and saved with ``save_pretrained``.
Offline, CPU, fp32."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
from safetensors.torch import load_file, save_file

from dataset.layout import TOKENS
from dataset.side_arrays import load_side
from synth.generators import SPECS, GeneratorError, check_generator, load_generator, weights_sha256
from synth.tiny_models import save_tiny_stable_diffusion
from trainer.train import train

from test_trainer import settings, token_folder  # noqa: F401  (fixture)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


PROMPTS = ["a rocket on the launch pad", "a cup of coffee on a saucer", "a cat lying on a wooden floor"]


def pixels(images) -> np.ndarray:
    return np.stack([np.asarray(image, dtype=np.int16) for image in images])


# --- altcap: the bundled trainer's model ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def checkpoint(token_folder, tmp_path_factory) -> str:  # noqa: F811
    out = tmp_path_factory.mktemp("altcap") / "run"
    train(settings(token_folder, out, "max_steps=20"))
    return str(out / "checkpoint")


@pytest.fixture(scope="module")
def altcap(checkpoint):
    return load_generator(f"altcap:{checkpoint}", batch_size=3, device="cpu")


@pytest.fixture(scope="module")
def real_codes(token_folder) -> np.ndarray:  # noqa: F811
    """Three real photos' 8x8 code grids, as the tokens step wrote them."""
    return load_side(str(token_folder / TOKENS.folder / "00000.npy"))["image_codes"][:3].astype(np.int64)


@pytest.mark.parametrize("guidance", [1.0, 3.0])
def test_an_altcap_image_depends_on_its_prompt_and_seed_only(checkpoint, guidance):
    generator = load_generator(f"altcap:{checkpoint}", guidance=guidance, batch_size=3, device="cpu")
    prompts = [PROMPTS[i % 3] for i in range(7)]
    seeds = [10, 11, 12, 10, 14, 15, 16]  # the 4th is the 1st again, in another batch (3 + 3 + 1)
    together = generator.codes(prompts, seeds)
    assert together.shape == (7, 64)
    alone = np.concatenate([generator.codes([prompt], [seed]) for prompt, seed in zip(prompts, seeds)])
    assert np.array_equal(together, alone)  # exact: each row draws from its own generator
    assert np.array_equal(generator.codes(prompts[::-1], seeds[::-1]), together[::-1])
    assert np.array_equal(together[0], together[3])
    assert len({row.tobytes() for row in together}) == 6  # another seed, another image

    images = generator.generate(prompts, seeds)
    assert [(image.mode, image.size) for image in images] == [("RGB", (64, 64))] * 7
    assert np.array_equal(pixels(images), pixels(generator.generate(prompts[:1], seeds[:1]) +
                                                 generator.generate(prompts[1:], seeds[1:])))
    assert np.array_equal(pixels(images[:1]), pixels(images[3:4]))
    assert not np.array_equal(pixels(images[:1]), pixels(images[1:2]))


def test_guidance_changes_the_draws(checkpoint, altcap):
    plain = load_generator(f"altcap:{checkpoint}", guidance=1.0, batch_size=3, device="cpu")
    assert altcap.guidance == 3.0 and plain.guidance == 1.0
    assert not np.array_equal(altcap.codes(PROMPTS, [1, 2, 3]), plain.codes(PROMPTS, [1, 2, 3]))


def test_complete_keeps_the_first_rows_of_real_codes_and_draws_the_rest(altcap, real_codes):
    kept = 3 * 8  # three rows of the 8x8 grid
    for prompts in (None, PROMPTS):
        done = altcap.completed_codes(real_codes, 3, [7, 8, 9], prompts)
        assert np.array_equal(done[:, :kept], real_codes[:, :kept])
        assert (done[:, kept:] != real_codes[:, kept:]).any(axis=1).all()
        assert np.array_equal(done, altcap.completed_codes(real_codes, 3, [7, 8, 9], prompts))
        assert np.array_equal(done[1:2], altcap.completed_codes(real_codes[1:2], 3, [8],
                                                                None if prompts is None else prompts[1:2]))
    images = altcap.complete(real_codes, 3, [7, 8, 9])
    assert np.array_equal(pixels(images), pixels(altcap.pictures(altcap.completed_codes(real_codes, 3, [7, 8, 9]))))
    assert np.array_equal(altcap.completed_codes(real_codes, 8, [1, 2, 3]), real_codes)  # every row kept
    assert not np.array_equal(altcap.completed_codes(real_codes, 3, [17, 18, 19])[:, kept:], done[:, kept:])


def test_complete_refuses_codes_that_do_not_fit(altcap, real_codes):
    cases = [(real_codes[:, :60], 3, "codes must be \\(n, 64\\)"), (real_codes + 64, 3, "not this model's VQ codes"),
             (real_codes, 9, "keep_rows must be an integer in \\[0, 8\\]"), (real_codes[:2], 3, "2 images, 3 seeds")]
    for codes, rows, message in cases:
        with pytest.raises(GeneratorError, match=message):
            altcap.complete(codes, rows, [1, 2, 3])


def test_checkpoint_sha256_is_over_the_weights_and_changes_with_them(checkpoint, altcap, tmp_path):
    with open(f"{checkpoint}/model.safetensors", "rb") as handle:
        assert altcap.checkpoint_sha256 == hashlib.sha256(handle.read()).hexdigest()
    assert altcap.spec == f"altcap:{checkpoint}" and weights_sha256(altcap.spec) == altcap.checkpoint_sha256
    assert altcap.settings == {"guidance": 3.0, "temperature": 1.0, "top_k": None, "top_p": None, "device": "cpu"}
    copy = shutil.copytree(checkpoint, tmp_path / "checkpoint")
    assert load_generator(f"altcap:{copy}", device="cpu").checkpoint_sha256 == altcap.checkpoint_sha256
    weights = load_file(copy / "model.safetensors")
    weights["image_embedding.weight"] = weights["image_embedding.weight"].flip(0)  # the codes relabelled
    save_file(weights, copy / "model.safetensors")
    changed = load_generator(f"altcap:{copy}", batch_size=3, device="cpu")
    assert changed.checkpoint_sha256 != altcap.checkpoint_sha256
    assert not np.array_equal(changed.codes(PROMPTS, [1, 2, 3]), altcap.codes(PROMPTS, [1, 2, 3]))


# --- diffusers: a tiny Stable Diffusion pipeline -----------------------------------------------------------------


@pytest.fixture(scope="module")
def diffusion_folder(tmp_path_factory) -> str:
    return save_tiny_stable_diffusion(tmp_path_factory.mktemp("sd"))


@pytest.fixture(scope="module")
def diffusion(diffusion_folder):
    return load_generator(f"diffusers:{diffusion_folder}", steps=3, batch_size=3, device="cpu", height=32, width=32)


def test_a_diffusers_image_depends_on_its_prompt_and_seed_only(diffusion):
    prompts = [PROMPTS[i % 3] for i in range(5)]
    seeds = [10, 11, 12, 10, 14]  # the 4th is the 1st again, in another batch (3 + 2)
    together = pixels(diffusion.generate(prompts, seeds))
    assert together.shape == (5, 32, 32, 3)
    assert np.array_equal(pixels(diffusion.generate(prompts[:1], seeds[:1]))[0],
                          pixels(diffusion.generate(prompts[:1], seeds[:1]))[0])
    alone = np.concatenate([pixels(diffusion.generate([prompt], [seed])) for prompt, seed in zip(prompts, seeds)])
    # Within one level of 255, not exact: each image's latents and noise come from its own generator, but the
    # UNet's and VAE's convolutions sum in another order for another batch size, and a 1e-7 difference rounds to
    # the next level where a value sits on .5 (measured: 3 of 73,728 values in 24 images, batch 8 against 1)
    assert np.abs(together - alone).max() <= 1 and np.abs(together[0] - together[3]).max() <= 1
    assert (together != alone).mean() < 0.01
    assert np.abs(together[0] - together[1]).mean() > 10  # another seed and prompt, another image
    other_seed = pixels(diffusion.generate(prompts[:1], [99]))[0]
    assert np.abs(other_seed - together[0]).mean() > 10


def test_diffusers_provenance(diffusion, diffusion_folder):
    root = Path(diffusion_folder)
    files = sorted(path.relative_to(root).as_posix() for path in root.rglob("*.safetensors"))
    assert files == ["text_encoder/model.safetensors", "unet/diffusion_pytorch_model.safetensors",
                     "vae/diffusion_pytorch_model.safetensors"]
    digest = hashlib.sha256()
    for name in files:
        digest.update((root / name).read_bytes())
    assert diffusion.checkpoint_sha256 == digest.hexdigest() == weights_sha256(diffusion.spec)
    assert diffusion.spec == f"diffusers:{diffusion_folder}" and diffusion.guidance == 7.5
    assert diffusion.settings == {"guidance": 7.5, "steps": 3, "height": 32, "width": 32, "precision": "torch.float32",
                                  "pipeline": "StableDiffusionPipeline", "scheduler": "DDIMScheduler", "device": "cpu"}


def test_pickled_diffusers_weights_are_refused_in_one_line(tmp_path):
    folder = save_tiny_stable_diffusion(tmp_path, safe=False)
    with pytest.raises(GeneratorError) as refused:
        load_generator(f"diffusers:{folder}", device="cpu")
    with pytest.raises(GeneratorError, match="pickled weights"):
        check_generator(f"diffusers:{folder}")
    message = str(refused.value)
    assert "\n" not in message and "pickled weights" in message and "without executing code" in message
    assert "safe_serialization=True" in message


def test_an_uncached_hub_id_offline_is_one_clear_error(monkeypatch, tmp_path):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(GeneratorError, match="HF_HUB_OFFLINE is set.*LocalEntryNotFoundError") as refused:
        load_generator("diffusers:nobody/no-such-pipeline", device="cpu")
    assert "\n" not in str(refused.value)
    with pytest.raises(GeneratorError, match="no such folder, and not a hub id"):
        load_generator(f"diffusers:{tmp_path}/absent", device="cpu")
    with pytest.raises(GeneratorError, match="no readable model_index.json"):
        load_generator(f"diffusers:{tmp_path}", device="cpu")


def test_unknown_specs_and_options_are_refused(checkpoint, diffusion_folder, tmp_path):
    for spec in ("dalle:model", "altcap", "diffusers:", "", "Altcap:x"):
        for call in (load_generator, check_generator, weights_sha256):
            with pytest.raises(GeneratorError, match=f"use {SPECS}"):
                call(spec)
    check_generator(f"altcap:{checkpoint}")
    check_generator(f"diffusers:{diffusion_folder}")
    check_generator("diffusers:org/some-pipeline")  # a hub id: checked when it loads
    with pytest.raises(GeneratorError, match="no model.json and model.safetensors"):
        check_generator(f"altcap:{tmp_path}")
    with pytest.raises(GeneratorError, match="no model.json and model.safetensors"):
        load_generator(f"altcap:{tmp_path}")
    with pytest.raises(GeneratorError, match="no generator takes the option stpes"):
        load_generator(f"altcap:{checkpoint}", stpes=3)
    # a run's settings go to either kind: None keeps the default, the other kind's options are left out
    loaded = load_generator(f"altcap:{checkpoint}", guidance=None, steps=30, batch_size=2, device="cpu")
    assert loaded.guidance == 3.0 and loaded.batch_size == 2


def test_prompts_and_seeds_must_pair_up(altcap, diffusion):
    for generator in (altcap, diffusion):
        assert generator.generate([], []) == []
        with pytest.raises(GeneratorError, match="2 prompts and 1 seeds"):
            generator.generate(PROMPTS[:2], [1])
        with pytest.raises(GeneratorError, match="seeds must be integers"):
            generator.generate(PROMPTS[:1], [-1])
