"""``tokens/tokenizers.json``: which tokenizers made an output folder's token files, exactly (model,
hub commit, sha256 of the weights and of the vocabulary, geometry, lengths, array types). Token
files made by other tokenizers never mix into a folder: a run or ``altcap tokenize`` that would
write them is refused. Names and paths are recorded but not compared (the same weights may sit in
another folder); what decides the codes and ids is."""

from __future__ import annotations

import functools
import json

import numpy as np

from dataset import fileio
from dataset.layout import TOKENIZERS_FILE, TOKENS
from tokens.config import TokensConfig
from tokens.image_codes import ModelFiles, locate
from tokens.text_ids import PAD_ID, TextTokenizer

COMPARED = {"image": ("sha256", "image_size", "factor", "grid", "codebook_size", "dtype"),
            "text": ("library", "sha256", "vocab_size", "length", "dtype")}


class TokenizerMismatch(ValueError):
    """An output folder holds token files another tokenizer made."""


def code_dtype(codebook_size: int) -> np.dtype:
    return np.dtype(np.uint16 if codebook_size <= 2 ** 16 else np.int32)


def describe(files: ModelFiles, model_config: dict, image_size: int, text: TextTokenizer, length: int) -> dict:
    """The manifest of an image model (its files and diffusers config) and a text tokenizer."""
    factor = 2 ** (len(model_config["block_out_channels"]) - 1)
    codebook = int(model_config["num_vq_embeddings"])
    return {
        "image": {"library": "diffusers", "class": "VQModel", "model": files.model, "subfolder": files.subfolder,
                  "revision": files.revision, "sha256": files.sha256, "image_size": image_size, "factor": factor,
                  "grid": image_size // factor, "codebook_size": codebook, "dtype": code_dtype(codebook).str},
        "text": {"library": text.library, "tokenizer": text.name, "sha256": text.sha256,
                 "vocab_size": text.vocab_size, "length": length, "pad_id": PAD_ID, "dtype": text.dtype.str},
        "file": {"folder": TOKENS.folder, "fields": ["key", *TOKENS.columns]},
    }


def manifest_of(settings: TokensConfig) -> dict:
    """The manifest the settings stand for on this machine (fetches a hub model's files once)."""
    return _manifest(settings.image_model, settings.image_revision, settings.image_size, settings.text_tokenizer,
                     settings.text_length)


@functools.lru_cache(maxsize=4)  # the launcher asks three times; the weights are hashed once
def _manifest(image_model: str, revision: str | None, image_size: int, text_tokenizer: str, length: int) -> dict:
    from diffusers import VQModel

    files = locate(image_model, revision=revision)
    return describe(files, VQModel.load_config(files.folder), image_size, TextTokenizer(text_tokenizer), length)


def manifest_path(out_dir: str) -> str:
    return fileio.join(out_dir, TOKENS.folder, TOKENIZERS_FILE)


def differences(found: dict, wanted: dict) -> list[str]:
    return [f"{part}.{field} {found.get(part, {}).get(field)!r} -> {wanted[part][field]!r}"
            for part, fields in COMPARED.items() for field in fields
            if found.get(part, {}).get(field) != wanted[part][field]]


def claim(out_dir: str, manifest: dict) -> None:
    """Write the folder's manifest, or check that the one there names the same tokenizers."""
    path = manifest_path(out_dir)
    if fileio.exists(path):
        changed = differences(json.loads(fileio.read_bytes(path)), manifest)
        if changed:
            raise TokenizerMismatch(f"{path} names other tokenizers ({'; '.join(changed)}); token files of "
                                    "two tokenizers never mix: use another output folder or the same tokenizers")
    fileio.write_bytes(path, json.dumps(manifest, indent=1).encode())


def tokenizers_of(manifest: dict, device: str = "cpu") -> tuple:
    """(ImageTokenizer, TextTokenizer) that a manifest names, checked against its sha256s: what
    ``tokens show`` and the trainer's sampling decode with."""
    from tokens.image_codes import ImageTokenizer

    image = ImageTokenizer(manifest["image"]["model"], image_size=manifest["image"]["image_size"],
                           revision=manifest["image"]["revision"], device=device)
    text = TextTokenizer(manifest["text"]["tokenizer"])
    if (image.files.sha256, text.sha256) != (manifest["image"]["sha256"], manifest["text"]["sha256"]):
        raise TokenizerMismatch(f"the tokenizers named ({manifest['image']['model']}, {manifest['text']['tokenizer']}) "
                                "have other weights or vocabulary on this machine than the tokens were made with")
    return image, text
