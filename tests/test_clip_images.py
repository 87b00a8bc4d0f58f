"""Encoded images into CLIP batches: the Pillow decoder gives exactly what open_clip's transform
gives, the tensor decoder (nvjpeg's path on a GPU, run here on the CPU) stays within 0.01 of it
in score, whatever the format, and batching with look-ahead keeps order and padding right."""

from __future__ import annotations

import io

import numpy as np
import open_clip
import pytest
import torch
from PIL import Image
from skimage import data as photos
from torchvision import transforms as T

from filters.clip_images import ImageBatcher, TensorTransform, decode_pil, resolve_decoder
from filters.clip_score import ClipScorer

from test_clip import TEXTS, tiny, tiny_dir  # noqa: F401  (fixtures)


def encoded(array: np.ndarray, fmt: str, mode: str | None = None) -> bytes:
    image = Image.fromarray(array)
    if mode:
        image = image.convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return buffer.getvalue()


@pytest.fixture(scope="module")
def blobs() -> list[bytes]:
    return [encoded(photos.astronaut(), "JPEG"), encoded(photos.coffee(), "PNG"),
            encoded(photos.chelsea(), "JPEG", "CMYK"), encoded(photos.rocket(), "WEBP"),
            encoded(photos.camera(), "JPEG")]  # the last is greyscale


@pytest.mark.parametrize("batch_size", [1, 2, 3, 5, 8])
def test_pil_decoder_embeds_exactly_like_open_clip(tiny, blobs, batch_size):  # noqa: F811
    scorer = ClipScorer(tiny, batch_size=batch_size, decoder="pil")
    expected = ClipScorer(tiny, batch_size=1).embed_images([decode_pil(blob) for blob in blobs])
    np.testing.assert_allclose(scorer.embed_encoded(blobs), expected, atol=1e-5)
    found = scorer.score_encoded(blobs, TEXTS)
    np.testing.assert_allclose(found.image_embeddings, expected, atol=1e-5)


@pytest.mark.parametrize("batch_size", [2, 5])
def test_torch_decoder_scores_within_001_of_pil(tiny, blobs, batch_size):  # noqa: F811
    exact = ClipScorer(tiny, batch_size=batch_size, decoder="pil").score_encoded(blobs, TEXTS)
    tensor = ClipScorer(tiny, batch_size=batch_size, decoder="torch").score_encoded(blobs, TEXTS)
    assert np.abs(tensor.scores - exact.scores).max() < 0.01
    pil_batch = ImageBatcher(tiny.preprocess, torch.device("cpu"), torch.float32, "pil")(blobs)
    torch_batch = ImageBatcher(tiny.preprocess, torch.device("cpu"), torch.float32, "torch")(blobs)
    assert torch_batch.shape == pil_batch.shape == (5, 3, 32, 32)
    assert (torch_batch - pil_batch).abs().mean() < 0.02  # normalised units: ~1/255 per pixel


def test_empty_input(tiny):  # noqa: F811
    assert ClipScorer(tiny, batch_size=4, decoder="torch").embed_encoded([]).shape == (0, 32)


def test_tensor_transform_reads_open_clip_transforms():
    transform = TensorTransform.of(open_clip.image_transform(224, is_train=False))
    assert transform == TensorTransform(224, (224, 224), open_clip.OPENAI_DATASET_MEAN, open_clip.OPENAI_DATASET_STD)
    unknown = T.Compose([T.Resize(224, interpolation=T.InterpolationMode.BICUBIC), T.CenterCrop(224),
                         T.Grayscale(3), T.ToTensor(), T.Normalize((0.5,) * 3, (0.5,) * 3)])
    assert TensorTransform.of(unknown) is None
    with pytest.raises(ValueError, match="use the pil decoder"):
        ImageBatcher(unknown, torch.device("cpu"), torch.float32, "torch")


def test_decoder_auto_is_torch_on_cuda_and_pil_on_cpu():
    assert resolve_decoder("auto", torch.device("cuda")) == "torch"
    assert resolve_decoder("auto", torch.device("cpu")) == "pil"
    assert resolve_decoder("pil", torch.device("cuda")) == "pil"
    with pytest.raises(ValueError, match="unknown image decoder"):
        resolve_decoder("nvjpeg", torch.device("cpu"))
