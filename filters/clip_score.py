"""CLIP image-text similarity in fixed-size batches: L2-normalised image and text embeddings and
their cosine, as open_clip's ``encode_image``/``encode_text`` give them.

Every batch has ``batch_size`` rows: the last one is padded by repeating its last item and the
padding is dropped from the results, so a GPU sees one input shape (no re-tuning, no recompiles).
"""

from __future__ import annotations

import functools
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch

from filters.clip_images import ImageBatcher
from filters.clip_model import LoadedClip

PIXEL_TYPES = {"fp32": torch.float32, "int8": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass
class ClipScores:
    scores: np.ndarray  # (n,) float32 cosine of each image with its text
    image_embeddings: np.ndarray  # (n, d) float32, unit length
    text_embeddings: np.ndarray  # (n, d) float32, unit length


def padded_batches(items: Sequence, batch_size: int) -> list[tuple[list, int]]:
    """(batch of exactly ``batch_size`` items, how many of them are real) covering ``items``."""
    if batch_size <= 0:
        raise ValueError("batch_size must be > 0")
    batches = []
    for start in range(0, len(items), batch_size):
        batch = list(items[start:start + batch_size])
        real = len(batch)
        batch += [batch[-1]] * (batch_size - real)
        batches.append((batch, real))
    return batches


def padded_to(batch: torch.Tensor, size: int) -> torch.Tensor:
    """``batch`` with its last row repeated up to ``size`` rows."""
    missing = size - batch.shape[0]
    return torch.cat([batch, batch[-1:].expand(missing, *batch.shape[1:])]) if missing > 0 else batch


class ClipScorer:
    def __init__(self, loaded: LoadedClip, batch_size: int = 64, decoder: str = "auto"):
        if batch_size <= 0:
            raise ValueError("batch_size must be > 0")
        self.loaded = loaded
        self.batch_size = batch_size
        self.batcher = ImageBatcher(loaded.preprocess, loaded.device, PIXEL_TYPES[loaded.precision], decoder)
        self._ahead = ThreadPoolExecutor(1, thread_name_prefix="altcap-clip-input")

    def _embed(self, items: Sequence, to_tensor: Callable[[list], torch.Tensor],
               encode: Callable[..., torch.Tensor]) -> np.ndarray:
        chunks = []
        with torch.inference_mode():
            for batch, real in padded_batches(items, self.batch_size):
                inputs = to_tensor(batch).to(self.loaded.device, non_blocking=True)
                embedded = encode(inputs, normalize=True)[:real]
                chunks.append(embedded.float().cpu().numpy())
        return np.concatenate(chunks) if chunks else np.zeros((0, self.dimension), np.float32)

    @functools.cached_property
    def dimension(self) -> int:
        """The embedding size (found by embedding one text)."""
        return int(self.embed_texts([""]).shape[1])

    def embed_images(self, images: Sequence) -> np.ndarray:
        """Unit-length embeddings of PIL images, (n, d) float32."""
        preprocess, dtype = self.loaded.preprocess, PIXEL_TYPES[self.loaded.precision]
        return self._embed(images, lambda batch: torch.stack([preprocess(im) for im in batch]).to(dtype),
                           self.loaded.model.encode_image)

    def embed_encoded(self, blobs: Sequence[bytes]) -> np.ndarray:
        """Unit-length embeddings of encoded images (JPEG, PNG... bytes), (n, d) float32. The next
        batch is decoded while the model runs on this one."""
        parts = [blobs[start:start + self.batch_size] for start in range(0, len(blobs), self.batch_size)]
        ahead = self._ahead.submit(self.batcher, parts[0]) if parts else None
        chunks = []
        with torch.inference_mode():
            for n in range(len(parts)):
                batch = ahead.result()
                if n + 1 < len(parts):
                    ahead = self._ahead.submit(self.batcher, parts[n + 1])
                embedded = self.loaded.model.encode_image(padded_to(batch, self.batch_size), normalize=True)
                chunks.append(embedded[:batch.shape[0]].float().cpu().numpy())
        return np.concatenate(chunks) if chunks else np.zeros((0, self.dimension), np.float32)

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length embeddings of texts, (n, d) float32."""
        return self._embed(texts, lambda batch: self.loaded.tokenizer(batch), self.loaded.model.encode_text)

    def score(self, images: Sequence, texts: Sequence[str]) -> ClipScores:
        """Each PIL image's cosine similarity with the text at the same position."""
        return self._scores(images, texts, self.embed_images)

    def score_encoded(self, blobs: Sequence[bytes], texts: Sequence[str]) -> ClipScores:
        """Each encoded image's cosine similarity with the text at the same position."""
        return self._scores(blobs, texts, self.embed_encoded)

    def _scores(self, images: Sequence, texts: Sequence[str], embed: Callable) -> ClipScores:
        if len(images) != len(texts):
            raise ValueError(f"{len(images)} images but {len(texts)} texts")
        image_embeddings = embed(images)
        text_embeddings = self.embed_texts(texts)
        scores = np.einsum("nd,nd->n", image_embeddings, text_embeddings).astype(np.float32)
        return ClipScores(scores, image_embeddings, text_embeddings)
