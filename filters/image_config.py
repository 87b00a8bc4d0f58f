"""Settings of the image rules (``image``) and of resizing and encoding (``resize``). The rules
default to Conceptual Captions' published ones (JPEG only, both sides > 400 px, aspect ratio <= 2);
resize and encode options keep img2dataset's names and meaning."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from filters.settings import require

INTERPOLATIONS = {"nearest", "bilinear", "bicubic", "lanczos", "area"}


@dataclass
class ImageConfig:
    formats: list = field(default_factory=lambda: ["jpeg"])
    min_side: int = 401  # smallest allowed side in px (CC: both sides > 400)
    max_aspect_ratio: float = 2.0
    max_pixels: int = 89_478_485  # refused before decoding (pixel bombs)
    allow_animated: bool = False

    def check(self) -> None:
        require(self.max_pixels > 0, "image.max_pixels must be > 0")
        require(self.max_aspect_ratio >= 1, "image.max_aspect_ratio must be >= 1")


@dataclass
class ResizeConfig:
    CHOICES: ClassVar[dict] = {
        "resize_mode": {"no", "keep_ratio", "center_crop", "border", "keep_ratio_largest"},
        "encode_format": {"jpg", "webp", "png"},
        "upscale_interpolation": INTERPOLATIONS,
        "downscale_interpolation": INTERPOLATIONS,
    }

    image_size: int = 256
    resize_mode: str = "center_crop"  # no|keep_ratio|center_crop|border|keep_ratio_largest
    resize_only_if_bigger: bool = False
    upscale_interpolation: str = "lanczos"
    downscale_interpolation: str = "area"
    encode_format: str = "jpg"  # jpg|webp|png
    encode_quality: int = 95

    def check(self) -> None:
        require(self.image_size > 0, "resize.image_size must be > 0")
        if self.encode_format == "png":
            require(0 <= self.encode_quality <= 9, "resize.encode_quality is the PNG compression level for png: 0..9")
        else:
            require(1 <= self.encode_quality <= 100, "resize.encode_quality must be 1..100")
