"""A diffusers ``VQModel`` with random weights, saved with its own ``save_pretrained``, for what
must run offline (the demo, tests, benchmarks): no package ships VQ weights. Its codes have the
real format and geometry; its reconstructions are noise."""

from __future__ import annotations

import torch


def save_random_vq(folder, *, blocks: int = 4, codes: int = 16384, channels: int = 8, seed: int = 0,
                   safe: bool = True, **options) -> str:
    """A VQ autoencoder whose factor is 2 ** (blocks - 1) (4 blocks: f8, 5: f16) with ``codes``
    codebook entries, written to ``folder``; returns the folder. ``options`` go to ``VQModel``
    (MoVQ's ``norm_type="spatial"``, aMUSEd's ``lookup_from_codebook=True``)."""
    from diffusers import VQModel

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = VQModel(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * blocks,
                        up_block_types=("UpDecoderBlock2D",) * blocks, block_out_channels=(channels,) * blocks,
                        layers_per_block=1, latent_channels=4, num_vq_embeddings=codes, vq_embed_dim=4,
                        norm_num_groups=4, sample_size=64, **options)
    model.save_pretrained(folder, safe_serialization=safe)
    return str(folder)
