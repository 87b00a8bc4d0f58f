"""Image codes and text ids (tokens/): tiny VQ models built with diffusers and saved with its own
``save_pretrained``, loaded through the code users get for real checkpoints; CLIP's BPE from
open_clip and a byte-level BPE trained with ``tokenizers``."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tokens import TokenizerError
from tokens.image_codes import ImageTokenizer
from tokens.random_vq import save_random_vq
from tokens.text_ids import CLIP, PAD_ID, TextTokenizer, train_bpe

SIZE = 64


def tiny_vq(folder, blocks: int, codes: int, *, safe: bool = True, **options) -> str:
    """A VQ autoencoder whose factor is 2 ** (blocks - 1): 4 blocks -> f8, 5 -> f16."""
    return save_random_vq(folder, blocks=blocks, codes=codes, safe=safe, **options)


def photos(n: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(1)
    return torch.randint(0, 256, (n, SIZE, SIZE, 3), dtype=torch.uint8, generator=generator)


@pytest.mark.parametrize(("blocks", "codes", "grid", "options"), [
    (4, 64, 8, {}), (5, 32, 4, {}),  # f8 and f16
    (4, 64, 8, {"norm_type": "spatial", "channels": 32}),  # MoVQ (Kandinsky 2.2): its decoder norms on the codes
    (5, 32, 4, {"lookup_from_codebook": True}),  # aMUSEd's VQ looks the codes up itself
])
def test_codes_come_from_the_quantizer_and_decode_to_the_models_reconstruction(tmp_path, blocks, codes, grid, options):
    tokenizer = ImageTokenizer(tiny_vq(tmp_path / "vq", blocks, codes, **options), image_size=SIZE)
    assert (tokenizer.geometry.grid, tokenizer.geometry.codebook_size) == (grid, codes)
    images = photos(3)
    encoded = tokenizer.encode(images)
    assert encoded.shape == (3, grid * grid) and encoded.dtype == torch.int64
    assert 0 <= int(encoded.min()) and int(encoded.max()) < codes
    # the model's own forward pass: encode, quantize, decode
    with torch.no_grad():
        pixels = images.permute(0, 3, 1, 2).float() / 127.5 - 1.0
        own = tokenizer.model(pixels).sample
    own = ((own.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1)
    decoded = tokenizer.decode(encoded)
    assert decoded.shape == images.shape and decoded.dtype == torch.uint8
    assert int((decoded.int() - own.int()).abs().max()) <= 1  # the straight-through sum rounds apart
    assert torch.equal(tokenizer.encode(decoded), tokenizer.encode(decoded))  # deterministic


def test_pickled_weights_and_wrong_geometry_are_refused(tmp_path):
    with pytest.raises(TokenizerError, match="no .safetensors"):
        ImageTokenizer(tiny_vq(tmp_path / "pickled", 4, 64, safe=False), image_size=SIZE)
    with pytest.raises(TokenizerError, match="no multiple"):
        ImageTokenizer(tiny_vq(tmp_path / "vq", 4, 64), image_size=60)
    tokenizer = ImageTokenizer(str(tmp_path / "vq"), image_size=SIZE)
    with pytest.raises(TokenizerError, match="must be 64x64x3"):
        tokenizer.encode(torch.zeros((1, 32, 32, 3), dtype=torch.uint8))
    with pytest.raises(TokenizerError, match="cannot load"):
        ImageTokenizer(str(tmp_path / "missing"), image_size=SIZE)


CAPTIONS = ["a dog runs on the beach", "you 'll love the view", "a £ 6,000 operation", "actors attend the premiere ."]


def test_clip_ids_decode_to_the_caption_and_truncation_is_counted():
    tokenizer = TextTokenizer(CLIP)
    encoded = tokenizer.encode([*CAPTIONS, "wow! " * 40], length=16)
    ids = encoded.ids
    assert ids.shape == (5, 16) and ids.dtype == np.uint16
    decoded = [tokenizer.decode(row) for row in ids]
    assert decoded[:2] == CAPTIONS[:2] and decoded[3] == CAPTIONS[3]
    # CLIP's BPE spells numbers digit by digit: the decoded text gives the very same ids again
    assert decoded[2] == "a £ 6 , 0 0 0 operation" and np.array_equal(tokenizer.encode([decoded[2]], 16).ids[0], ids[2])
    assert encoded.truncated.tolist() == [False, False, False, False, True]
    assert encoded.lengths.tolist() == [len(tokenizer.ids(c)) for c in CAPTIONS] + [16]
    assert (ids[0] == PAD_ID).sum() == 16 - encoded.lengths[0]
    # "!" is CLIP's id 0: a cut caption still ends with the end token and decodes to its start
    assert ids[4, -1] == tokenizer.ids("")[-1] and decoded[4] == ("wow ! " * 7).strip()


def test_a_trained_bpe_round_trips_captions(tmp_path):
    train_bpe(CAPTIONS * 10, str(tmp_path / "bpe"), vocab_size=300)
    tokenizer = TextTokenizer(str(tmp_path / "bpe"))
    assert tokenizer.vocab_size == 300
    encoded = tokenizer.encode(CAPTIONS, length=24)
    assert [tokenizer.decode(row) for row in encoded.ids] == CAPTIONS and not encoded.truncated.any()
    assert tokenizer.sha256 != TextTokenizer(CLIP).sha256
    with pytest.raises(TokenizerError, match="no tokenizer.json"):
        TextTokenizer(str(tmp_path))
