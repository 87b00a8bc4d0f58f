"""Precision ``auto`` for the VQ image tokenizer: the fastest of fp32 and bf16 (and fp16 on CUDA)
on this machine whose codes agree with fp32's, measured once per machine and model
(``filters/precision.py``). CPU flags do not tell which is faster: on a 2-core Xeon with
AVX512-BF16, CLIP's ViT-B-32 once ran at 14.6 pairs/s in fp32 and 9.6 in bf16 (a busy machine),
and at 15.9 and 59.6 on a quiet one.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from filters.precision import Calibration, calibrate, check_photos
from tokens.image_codes import ImageTokenizer

CODE_AGREEMENT = 0.99
"""The share of codes a faster precision must give exactly as fp32 does: codes are what the model
trains on. (A randomly initialised MoVQ-sized model whose nearest-code search ran in bf16, 3.5x
faster on 2 CPU cores, gave 0% of fp32's codes; the search now stays in fp32.)"""


def auto_candidates(device: torch.device) -> tuple[str, ...]:
    """What precision auto tries besides fp32."""
    if device.type == "cuda":
        return ("bf16", "fp16") if torch.cuda.is_bf16_supported() else ("fp16",)
    return ("bf16",)


def code_agreement(exact: torch.Tensor, found: torch.Tensor) -> float:
    """The share of codes equal to fp32's."""
    return float((found == exact).float().mean())


def auto_precision(tokenizer: ImageTokenizer, n: int = 8) -> Calibration:
    """Measure (or find cached) which precision encodes ``n`` check photos fastest with at least
    ``CODE_AGREEMENT`` of the codes fp32 gives, and leave ``tokenizer`` in it."""
    size = tokenizer.geometry.image_size

    def prepare(precision: str) -> Callable[[], torch.Tensor]:
        tokenizer.set_precision(precision)
        if tokenizer.precision != precision:  # the checkpoint asks for fp32 (force_upcast)
            raise RuntimeError(f"the model runs only in {tokenizer.precision}")
        images = torch.from_numpy(np.stack([np.asarray(photo) for photo in check_photos(size, n)]))
        return lambda: tokenizer.encode(images).cpu()

    calibration = calibrate("vq", f"{tokenizer.files.sha256} at {size} px", tokenizer.device,
                            auto_candidates(tokenizer.device), n, prepare, code_agreement,
                            lambda share: share >= CODE_AGREEMENT)
    tokenizer.set_precision(calibration.precision)
    return calibration
