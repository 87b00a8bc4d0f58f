"""Images as discrete codes: a VQ autoencoder from diffusers (``VQModel``) maps an image to a grid
of codebook indices and back, as DALL-E-style models train on them (DALL-E: 32x32 codes of 8192;
dalle-mini: 16x16 of 16384). The codes are the quantizer's indices, not the latents before it.

A model is a folder ``save_pretrained`` wrote, or a hub id with an optional subfolder and a revision
(Kandinsky 2.2's MoVQ: ``kandinsky-community/kandinsky-2-2-decoder/movq``); a hub model is fetched
as a snapshot, so the exact commit is known. Weights load only from safetensors: a
checkpoint that would need pickle to load is refused.
"""

from __future__ import annotations

import copy
import hashlib
import os
from dataclasses import dataclass

import torch

from tokens import TokenizerError

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class Geometry:
    image_size: int  # pixels per side the model is fed
    factor: int  # pixels per code per side (f8, f16)
    codebook_size: int

    @property
    def grid(self) -> int:
        return self.image_size // self.factor


@dataclass(frozen=True)
class ModelFiles:
    """Where a model's files are on this machine and what exactly they are."""
    folder: str  # holds config.json and the safetensors weights
    model: str  # as the user named it: a folder, or a hub id with its subfolder
    subfolder: str | None
    revision: str | None  # the hub commit; None for a local folder
    sha256: str  # of the safetensors weights


def locate(name: str, *, revision: str | None = None) -> ModelFiles:
    """The model's local folder: a folder as it is; a hub id, ``org/repo`` or ``org/repo/subfolder``,
    as a snapshot in the Hugging Face cache (downloaded once; offline it must be there already)."""
    if os.path.isdir(name):
        root, subfolder, commit = name, None, None
    elif name.startswith(("/", ".", "~")) or name.count("/") < 1:
        raise TokenizerError(f"cannot load VQ model {name!r}: no such folder, and not a hub id (org/repo[/subfolder])")
    else:
        from huggingface_hub import snapshot_download

        org, repo, *rest = name.split("/")
        subfolder = "/".join(rest) or None
        within = f"{subfolder}/" if subfolder else ""
        try:  # the config and safetensors only: never a pickle, nor the rest of a pipeline's repo
            root = snapshot_download(f"{org}/{repo}", revision=revision,
                                     allow_patterns=[f"{within}*.json", f"{within}*.safetensors"])
        except Exception as err:  # offline, unknown repo or revision: huggingface_hub has many kinds
            raise TokenizerError(f"cannot load VQ model {name!r}: {type(err).__name__}: {err}") from None
        commit = os.path.basename(os.path.normpath(root))
    folder = os.path.join(root, subfolder) if subfolder else root
    if not os.path.isdir(folder):
        raise TokenizerError(f"cannot load VQ model {name!r}: no folder {folder}")
    weights = sorted(file for file in os.listdir(folder) if file.endswith(".safetensors"))
    if not weights:
        raise TokenizerError(f"{folder} has no .safetensors weights; altcap loads no pickled model "
                             "(convert it: VQModel.from_pretrained(...).save_pretrained(OUT, safe_serialization=True))")
    digest = hashlib.sha256()
    for file in weights:
        with open(os.path.join(folder, file), "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return ModelFiles(folder, name, subfolder, commit, digest.hexdigest())


def load_vq_model(folder: str, dtype: torch.dtype = torch.float32):
    """A ``VQModel`` from a local folder's safetensors, never from pickle."""
    from diffusers import VQModel

    try:
        return VQModel.from_pretrained(folder, use_safetensors=True, torch_dtype=dtype, low_cpu_mem_usage=False)
    except (OSError, ValueError, EnvironmentError) as e:
        raise TokenizerError(f"cannot load VQ model {folder!r}: {e}") from e


class ImageTokenizer:
    """``encode(images) -> codes`` and ``decode(codes) -> images`` with a diffusers ``VQModel``."""

    def __init__(self, name: str, *, image_size: int = 256, revision: str | None = None, device: str = "cpu",
                 precision: str = "fp32"):
        if precision not in DTYPES:
            raise TokenizerError(f"VQ precision {precision!r}: use one of {', '.join(DTYPES)}")
        self.files = locate(name, revision=revision)
        self.device = torch.device(device)
        self.model = load_vq_model(self.files.folder).to(self.device).eval()
        self.precision, self.dtype = "fp32", torch.float32
        # the nearest-code search stays in fp32 whatever the encoder runs in: in bf16 nearly equal
        # distances tie (a random MoVQ-sized model: every code 0)
        self.quantizer = copy.deepcopy(self.model.quantize)
        config = self.model.config
        factor = 2 ** (len(config.block_out_channels) - 1)
        if image_size % factor:
            raise TokenizerError(f"image size {image_size} is no multiple of the model's factor {factor}")
        self.geometry = Geometry(image_size, factor, int(config.num_vq_embeddings))
        self.set_precision(precision)

    def set_precision(self, precision: str) -> None:
        """Run the model in fp32, bf16 or fp16 from now on. The weights are loaded again in that type
        (a cast from bf16 back to fp32 would keep bf16's rounding)."""
        if getattr(self.model.config, "force_upcast", False):
            precision = "fp32"  # the checkpoint says it is only right in fp32 (aMUSEd's VQ)
        if precision != self.precision:
            self.model = load_vq_model(self.files.folder, DTYPES[precision]).to(self.device).eval()
            self.precision, self.dtype = precision, DTYPES[precision]

    @torch.no_grad()
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 images (batch, size, size, 3) -> int64 codes (batch, grid * grid), row by row."""
        size = self.geometry.image_size
        if images.shape[1:] != (size, size, 3):
            raise TokenizerError(f"images must be {size}x{size}x3, got {tuple(images.shape[1:])}")
        return self.encode_pixels(images.to(self.device).permute(0, 3, 1, 2).float() / 127.5 - 1.0)

    @torch.no_grad()
    def encode_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        """Pixels in [-1, 1] (batch, 3, size, size) -> int64 codes (batch, grid * grid)."""
        latents = self.model.encode(pixels.to(self.device, self.dtype)).latents
        _, _, (_, _, indices) = self.quantizer(latents.float())
        return indices.reshape(len(pixels), -1)

    @torch.no_grad()
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """int codes (batch, grid * grid) -> uint8 images (batch, size, size, 3)."""
        grid = self.geometry.grid
        shape = (len(codes), grid, grid, self.model.config.vq_embed_dim)
        indices = torch.as_tensor(codes).to(self.device).reshape(-1).long()
        if self.model.config.lookup_from_codebook:  # the model looks the codes up itself
            pixels = self.model.decode(indices, force_not_quantize=True, shape=shape).sample
        else:
            latents = self.model.quantize.get_codebook_entry(indices, shape)
            pixels = self.model.decode(latents.to(self.dtype), force_not_quantize=True).sample
        return ((pixels.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu()
