"""Generators of real shape and random (untrained) weights, saved through the code users load them
with, for what runs offline (tests, benchmarks): no package ships text-to-image weights. Their
images are noise; their speed and file formats are real."""

from __future__ import annotations

import dataclasses
import json
import os

import torch


def save_random_checkpoint(folder, *, size: str = "tiny", image_size: int = 64, codes: int = 1024,
                           text_length: int = 32, seed: int = 0) -> str:
    """An untrained bundled-trainer checkpoint (``model.safetensors`` + ``model.json``) on a random
    f8 VQ model and CLIP's BPE; ``size`` is one of ``trainer.model.SIZES``. Returns the checkpoint folder."""
    from safetensors.torch import save_file

    from tokens.config import TokensConfig
    from tokens.manifest import manifest_of
    from tokens.random_vq import save_random_vq
    from trainer.model import SIZES, DalleTransformer, ModelConfig

    vq = save_random_vq(os.path.join(folder, "vq"), blocks=4, codes=codes, seed=seed)
    spec = manifest_of(TokensConfig(image_model=vq, image_size=image_size, text_length=text_length))
    config = ModelConfig(text_vocab=spec["text"]["vocab_size"], text_length=text_length,
                         image_vocab=spec["image"]["codebook_size"], image_grid=spec["image"]["grid"], **SIZES[size])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = DalleTransformer(config)
    checkpoint = os.path.join(folder, "checkpoint")
    os.makedirs(checkpoint, exist_ok=True)
    save_file({name: tensor.contiguous() for name, tensor in model.state_dict().items()},
              os.path.join(checkpoint, "model.safetensors"))
    with open(os.path.join(checkpoint, "model.json"), "w", encoding="utf-8") as handle:
        json.dump({"model": dataclasses.asdict(config), "tokenizers": spec, "step": 0}, handle, indent=1)
    return checkpoint


def save_tiny_stable_diffusion(folder, *, safe: bool = True, sample_size: int = 8) -> str:
    """A Stable Diffusion pipeline small enough for a test: 2-level UNet and VAE (images of
    ``4 * sample_size`` px), a one-layer CLIP text encoder with a BPE of single letters, made from
    configs and saved with ``save_pretrained``. Returns the pipeline's folder."""
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for letter in "abcdefghijklmnopqrstuvwxyz":
        vocab.update({letter: len(vocab), f"{letter}</w>": len(vocab) + 1})
    words = os.path.join(folder, "vocabulary")
    os.makedirs(words, exist_ok=True)
    with open(os.path.join(words, "vocab.json"), "w", encoding="utf-8") as handle:
        json.dump(vocab, handle)
    with open(os.path.join(words, "merges.txt"), "w", encoding="utf-8") as handle:
        handle.write("#version: 0.2\n")
    tokenizer = CLIPTokenizer.from_pretrained(words, model_max_length=32)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        unet = UNet2DConditionModel(block_out_channels=(8, 16), layers_per_block=1, sample_size=sample_size,
                                    norm_num_groups=4, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                    up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=16,
                                    attention_head_dim=2)
        vae = AutoencoderKL(block_out_channels=(8, 16), down_block_types=("DownEncoderBlock2D",) * 2,
                            up_block_types=("UpDecoderBlock2D",) * 2, latent_channels=4, norm_num_groups=4,
                            sample_size=2 * sample_size)
        text = CLIPTextModel(CLIPTextConfig(vocab_size=len(vocab), hidden_size=16, intermediate_size=32,
                                            num_hidden_layers=1, num_attention_heads=2, max_position_embeddings=32,
                                            bos_token_id=0, eos_token_id=1, pad_token_id=1))
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                              set_alpha_to_one=False, steps_offset=1)
    pipeline = StableDiffusionPipeline(vae=vae, text_encoder=text, tokenizer=tokenizer, unet=unet, scheduler=scheduler,
                                       safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    target = os.path.join(folder, "pipeline")
    pipeline.save_pretrained(target, safe_serialization=safe)
    return target
