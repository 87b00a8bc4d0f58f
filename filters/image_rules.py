"""Image rules decided from the header alone (``ImageInfo``), before anything is decoded.

Checked in this order, all O(1): ``too_many_pixels`` first and whatever the other settings (the
pixel-bomb guard), then what kind of file it is (``format_not_allowed``, ``animated``), then its
geometry (``too_small``, ``aspect_ratio``).

MPO (multi-picture JPEG: stereo pairs, phone photos with an embedded preview or HDR gain map) is
a JPEG whose first picture every JPEG decoder shows; it is served as image/jpeg. It therefore
counts as ``jpeg`` for the format rule and its extra pictures do not make it ``animated``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from filters.image_config import ImageConfig

if TYPE_CHECKING:
    from filters.image_probe import ImageInfo

REASONS = ("too_many_pixels", "format_not_allowed", "animated", "too_small", "aspect_ratio")
FORMAT_ALIASES = {"jpg": "jpeg", "tif": "tiff", "mpo": "jpeg"}


def normalize_format(name: str) -> str:
    name = name.lower()
    return FORMAT_ALIASES.get(name, name)


def check_image_rules(info: ImageInfo, config: ImageConfig) -> tuple[str, str] | None:
    """``None`` when ``info`` passes every rule, else (reason, detail) of the first it fails."""
    if info.pixels > config.max_pixels:
        return "too_many_pixels", f"{info.width}x{info.height} = {info.pixels} px > {config.max_pixels}"
    allowed = {normalize_format(name) for name in config.formats}
    if normalize_format(info.format) not in allowed:
        return "format_not_allowed", f"{info.format} not in {sorted(allowed)}"
    if info.frames > 1 and info.format != "mpo" and not config.allow_animated:
        return "animated", f"{info.frames} frames"
    short, long = sorted((info.width, info.height))
    if short < config.min_side:
        return "too_small", f"{info.width}x{info.height}: shorter side {short} px < {config.min_side}"
    if long / short > config.max_aspect_ratio:
        return "aspect_ratio", f"{info.width}x{info.height}: ratio {long / short:.2f} > {config.max_aspect_ratio:g}"
    return None
