"""Image codes and text ids (tokens/): tiny VQ models built with diffusers and saved with its own
``save_pretrained``, loaded through the code users get for real checkpoints; CLIP's BPE from
open_clip and a byte-level BPE trained with ``tokenizers``."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers import VQModel

from tokens.image_codes import ImageTokenizer, TokenizerError
from tokens.text_ids import CLIP, PAD_ID, TextTokenizer, train_bpe

SIZE = 64


def tiny_vq(folder, blocks: int, codes: int, *, safe: bool = True) -> str:
    """A VQ autoencoder whose factor is 2 ** (blocks - 1): 4 blocks -> f8, 5 -> f16."""
    torch.manual_seed(0)
    model = VQModel(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * blocks,
                    up_block_types=("UpDecoderBlock2D",) * blocks, block_out_channels=(8,) * blocks,
                    layers_per_block=1, latent_channels=4, num_vq_embeddings=codes, vq_embed_dim=4,
                    norm_num_groups=4, sample_size=SIZE)
    model.save_pretrained(folder, safe_serialization=safe)
    return str(folder)


def photos(n: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(1)
    return torch.randint(0, 256, (n, SIZE, SIZE, 3), dtype=torch.uint8, generator=generator)


@pytest.mark.parametrize(("blocks", "codes", "grid"), [(4, 64, 8), (5, 32, 4)])  # f8 and f16
def test_codes_come_from_the_quantizer_and_decode_to_the_models_reconstruction(tmp_path, blocks, codes, grid):
    tokenizer = ImageTokenizer(tiny_vq(tmp_path / "vq", blocks, codes), image_size=SIZE)
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
    ids, truncated = tokenizer.encode([*CAPTIONS, "word " * 40], length=16)
    assert ids.shape == (5, 16) and ids.dtype == np.uint16
    decoded = [tokenizer.decode(row) for row in ids[:4]]
    assert decoded[:2] == CAPTIONS[:2] and decoded[3] == CAPTIONS[3]
    # CLIP's BPE spells numbers digit by digit: the decoded text gives the very same ids again
    assert decoded[2] == "a £ 6 , 0 0 0 operation" and np.array_equal(tokenizer.encode([decoded[2]], 16)[0][0], ids[2])
    assert truncated.tolist() == [False, False, False, False, True]
    assert (ids[0] == PAD_ID).sum() == 16 - len(tokenizer.ids(CAPTIONS[0]))


def test_a_trained_bpe_round_trips_captions(tmp_path):
    train_bpe(CAPTIONS * 10, str(tmp_path / "bpe"), vocab_size=300)
    tokenizer = TextTokenizer(str(tmp_path / "bpe"))
    assert tokenizer.vocab_size == 300
    ids, truncated = tokenizer.encode(CAPTIONS, length=24)
    assert [tokenizer.decode(row) for row in ids] == CAPTIONS and not truncated.any()
    with pytest.raises(ValueError, match="no tokenizer.json"):
        TextTokenizer(str(tmp_path))
