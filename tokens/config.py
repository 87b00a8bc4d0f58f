"""Settings of the tokens stage (``tokens``): which VQ model turns images into codes and which BPE
turns captions into ids, their sizes, and where and how the models run. The defaults make the
ruDALL-E shape: 128 text ids and 32x32 image codes (an f8 VQ at 256 px)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from filters.settings import require

PRECISIONS = ("auto", "fp32", "bf16", "fp16")  # auto: measured on the worker (tokens/vq_precision.py)


@dataclass
class TokensConfig:
    CHOICES: ClassVar[dict] = {"precision": set(PRECISIONS), "decoder": {"auto", "pil", "torch"}}

    enabled: bool = False
    # A diffusers VQModel: a folder save_pretrained wrote, or a hub id org/repo[/subfolder]. The
    # default is Kandinsky 2.2's MoVQ: f8, 16384 codes, 32x32 codes at 256 px.
    image_model: str = "kandinsky-community/kandinsky-2-2-decoder/movq"
    image_revision: str | None = None  # hub branch, tag or commit; tokenizers.json records the commit
    image_size: int = 256  # images are resized (shorter side) and centre-cropped to this square
    text_tokenizer: str = "clip"  # clip (open_clip's BPE, offline) or a folder `altcap tokenizer train` wrote
    text_length: int = 128  # ids per caption, padded; longer captions are cut and counted
    device: str = "auto"  # auto: cuda when present
    precision: str = "auto"  # one of PRECISIONS
    batch_size: int = 32
    decoder: str = "auto"  # auto|pil|torch: torch decodes JPEGs with nvjpeg on CUDA (filters/clip_images.py)

    def check(self) -> None:
        require(self.image_size > 0, "tokens.image_size must be > 0")
        require(0 < self.text_length < 2 ** 16, "tokens.text_length must be 1..65535")
        require(self.batch_size > 0, "tokens.batch_size must be > 0")
