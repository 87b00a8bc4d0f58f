"""Sample images from a trained checkpoint, with DALL-E's CLIP re-ranking.

    altcap sample --checkpoint train-out/checkpoint --prompt "a red barn in a field" -n 32 --keep 8

The prompt becomes text ids with the tokenizer the training data was made with (named in the
checkpoint's model.json), the model draws ``n`` image code grids (top-k / top-p / temperature,
classifier-free guidance), the VQ model decodes them, and CLIP keeps the ``keep`` that match the
prompt best, as DALL-E drew 512 and kept the best 32 (Ramesh et al. 2021, section 2.5). The grid
is written as a PNG, best first.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from trainer.model import DalleTransformer, ModelConfig


@dataclass
class Samples:
    png: str  # the grid, best first
    scores: list[float]  # CLIP scores of the kept images, best first
    codes: np.ndarray  # (keep, grid * grid) codes of the kept images


def load_model(checkpoint: str, device: torch.device) -> tuple[DalleTransformer, dict]:
    """The trained model in eval mode, and the tokenizers its data was made with."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    with open(os.path.join(checkpoint, "model.json"), encoding="utf-8") as handle:
        meta = json.load(handle)
    model = DalleTransformer(ModelConfig(**meta["model"]))
    weights = os.path.join(checkpoint, "model.safetensors")
    try:
        model.load_state_dict(load_file(weights))
    except SafetensorError as err:
        raise OSError(f"{weights}: not a safetensors file ({err})") from None
    return model.to(device).eval(), meta["tokenizers"]


def caption_ids(text_tokenizer, prompts: list[str], length: int,
                device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The (n, length) int64 text ids and (n,) lengths of the prompts, as ``DalleTransformer.generate`` takes them."""
    encoded = text_tokenizer.encode(prompts, length)
    return (torch.from_numpy(encoded.ids.astype(np.int64)).to(device),
            torch.from_numpy(encoded.lengths.astype(np.int64)).to(device))


def pictures_of(image_tokenizer, codes: torch.Tensor) -> list[Image.Image]:
    """The RGB images the VQ model decodes (n, grid * grid) codes to."""
    return [Image.fromarray(array) for array in image_tokenizer.decode(codes).numpy()]


def rerank(images: list[Image.Image], prompt: str, scorer, keep: int) -> tuple[list[int], list[float]]:
    """The indices of the ``keep`` images CLIP scores highest against the prompt, best first, and their scores."""
    scores = scorer.score(images, [prompt] * len(images)).scores
    order = sorted(range(len(images)), key=lambda i: -float(scores[i]))[:keep]
    return order, [float(scores[i]) for i in order]


def grid_of(images: list[Image.Image]) -> Image.Image:
    columns = math.ceil(math.sqrt(len(images)))
    rows = math.ceil(len(images) / columns)
    width, height = images[0].size
    sheet = Image.new("RGB", (columns * width, rows * height), "white")
    for n, image in enumerate(images):
        sheet.paste(image, ((n % columns) * width, (n // columns) * height))
    return sheet


@torch.no_grad()
def sample(checkpoint: str, prompt: str, *, n: int = 16, keep: int = 4, temperature: float = 1.0,
           top_k: int | None = None, top_p: float | None = None, guidance: float = 3.0, seed: int = 0,
           batch_size: int = 16, clip_model: str = "ViT-B-32", clip_pretrained: str | None = "openai",
           device: str = "auto", png: str | None = None) -> Samples:
    """Draw ``n`` images for ``prompt``, keep the ``keep`` best by CLIP score, write the grid."""
    from filters.clip_config import ClipConfig
    from filters.clip_model import load_clip, resolve_device
    from filters.clip_score import ClipScorer
    from tokens.manifest import tokenizers_of

    where = resolve_device(device)
    model, spec = load_model(checkpoint, where)
    image_tokenizer, text_tokenizer = tokenizers_of(spec, device=str(where))
    ids, length = caption_ids(text_tokenizer, [prompt], model.config.text_length, where)
    generator = torch.Generator(where).manual_seed(seed)
    codes = []
    for start in range(0, n, batch_size):
        count = min(batch_size, n - start)
        codes.append(model.generate(ids.repeat(count, 1), length.repeat(count), temperature=temperature, top_k=top_k,
                                    top_p=top_p, guidance=guidance, generator=generator).cpu())
    codes = torch.cat(codes)
    pictures = pictures_of(image_tokenizer, codes)
    scorer = ClipScorer(load_clip(ClipConfig(model=clip_model, pretrained=clip_pretrained, device=str(where))),
                        batch_size)
    order, scores = rerank(pictures, prompt, scorer, keep)
    target = png or os.path.join(os.path.dirname(os.path.abspath(checkpoint)), "samples",
                                 re.sub(r"[^a-z0-9]+", "-", prompt.lower()).strip("-")[:60] + ".png")
    os.makedirs(os.path.dirname(target), exist_ok=True)
    grid_of([pictures[i] for i in order]).save(target)
    return Samples(target, scores, codes[order].numpy())
