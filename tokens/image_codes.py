"""Images as discrete codes: a VQ autoencoder from diffusers (``VQModel``) maps an image to a grid
of codebook indices and back, as DALL-E-style models train on them (DALL-E: 32x32 codes of 8192;
dalle-mini: 16x16 of 16384). The codes are the quantizer's indices, not the latents before it.

Weights load only from safetensors: a checkpoint that would need pickle to load is refused.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch


class TokenizerError(ValueError):
    """A tokenizer that cannot be used: missing, pickled weights, or a geometry that does not fit."""


@dataclass(frozen=True)
class Geometry:
    image_size: int  # pixels per side the model is fed
    factor: int  # pixels per code per side (f8, f16)
    codebook_size: int

    @property
    def grid(self) -> int:
        return self.image_size // self.factor


class ImageTokenizer:
    """``encode(images) -> codes`` and ``decode(codes) -> images`` with a diffusers ``VQModel`` from
    a folder ``save_pretrained`` wrote or a hub id (``revision`` pins it)."""

    def __init__(self, name_or_path: str, *, image_size: int = 256, revision: str | None = None,
                 device: str = "cpu", dtype: torch.dtype = torch.float32):
        self.model = load_vq_model(name_or_path, revision=revision, dtype=dtype).to(device).eval()
        config = self.model.config
        factor = 2 ** (len(config.block_out_channels) - 1)
        if image_size % factor:
            raise TokenizerError(f"image size {image_size} is no multiple of the model's factor {factor}")
        self.geometry = Geometry(image_size, factor, int(config.num_vq_embeddings))
        self.device, self.dtype = device, dtype

    @torch.no_grad()
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 images (batch, size, size, 3) -> int64 codes (batch, grid * grid), row by row."""
        size = self.geometry.image_size
        if images.shape[1:] != (size, size, 3):
            raise TokenizerError(f"images must be {size}x{size}x3, got {tuple(images.shape[1:])}")
        pixels = images.to(self.device).permute(0, 3, 1, 2).to(self.dtype) / 127.5 - 1.0
        latents = self.model.encode(pixels).latents
        _, _, (_, _, indices) = self.model.quantize(latents)
        return indices.reshape(len(images), -1)

    @torch.no_grad()
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """int codes (batch, grid * grid) -> uint8 images (batch, size, size, 3)."""
        grid = self.geometry.grid
        shape = (len(codes), grid, grid, self.model.config.vq_embed_dim)
        latents = self.model.quantize.get_codebook_entry(codes.to(self.device).reshape(-1).long(), shape)
        pixels = self.model.decode(latents.to(self.dtype), force_not_quantize=True).sample
        return ((pixels.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu()


def load_vq_model(name_or_path: str, *, revision: str | None = None, dtype: torch.dtype = torch.float32):
    """A ``VQModel`` from safetensors only; a folder with only pickled weights is refused."""
    from diffusers import VQModel

    if os.path.isdir(name_or_path) and not any(name.endswith(".safetensors") for name in os.listdir(name_or_path)):
        raise TokenizerError(f"{name_or_path} has no .safetensors weights; altcap loads no pickled model "
                             "(convert it: VQModel.from_pretrained(...).save_pretrained(OUT, safe_serialization=True))")
    try:
        return VQModel.from_pretrained(name_or_path, revision=revision, use_safetensors=True, torch_dtype=dtype,
                                       low_cpu_mem_usage=False)
    except (OSError, ValueError, EnvironmentError) as e:
        raise TokenizerError(f"cannot load VQ model {name_or_path!r}: {e}") from e
