"""Decode, orient, flatten to RGB, resize and re-encode one image, with img2dataset's resize modes.

Sizes match img2dataset's ``Resizer`` exactly (albumentations' SmallestMaxSize / LongestMaxSize
rounding, CenterCrop and PadIfNeeded offsets); pixels differ only by resampling kernels. Pillow's
kernels widen when shrinking (antialiased; OpenCV's linear/cubic/lanczos are not) and ``lanczos``
has 3 lobes, not 4. Pillow has no exact area-average kernel for non-integer factors, so ``area``
(OpenCV's INTER_AREA) maps to HAMMING, the Pillow filter measured closest to it: mean absolute
difference 0.1-1.7 levels over factors 0.5x-6x on img2dataset's own test photos, against 0.7-4.5
for BOX and 0.2-3.2 for BILINEAR.

Unlike img2dataset, the EXIF orientation is applied, so ``original_width``/``original_height`` are
the displayed size. Embedded ICC profiles are ignored and not written, as in img2dataset.

Speed (about 1.3x img2dataset's OpenCV path at 640 px, 3.2x at 3000 px, one core; see
benchmarks/image_decode.py):
- JPEG is decoded at 1/2, 1/4 or 1/8 scale (libjpeg DCT scaling, ``Image.draft``) whenever the
  reduced image stays at least as large as the resized one on both sides.
- Only the part of the image that survives ``center_crop`` is resampled (``resize(box=...)``).
- Orientation is applied after resizing, to the small image; the crop box is mapped back into
  stored coordinates instead.
- Pillow releases the GIL while decoding, resampling and encoding: threads scale (two threads on
  two cores transform ~1.9x as many JPEGs per second as one).
"""

from __future__ import annotations

import io
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

from PIL import Image

from filters.image_config import ResizeConfig
from filters.image_probe import ORIENTATION_SWAPS_SIDES, ImageInfo, open_image
from filters.near_dup import phash
from filters.record import Dropped

WHITE = (255, 255, 255)
RESAMPLING = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
    "area": Image.Resampling.HAMMING,
}
# EXIF orientation -> the transpose that shows the stored pixels upright (as ImageOps.exif_transpose).
UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
ENCODERS = {"jpg": ("JPEG", "quality"), "webp": ("WEBP", "quality"), "png": ("PNG", "compress_level")}
DRAFT_FORMATS = frozenset({"JPEG", "MPO"})
ALPHA_MODES = frozenset({"RGBA", "LA", "PA"})
WIDE_GREY_MODES = frozenset({"I", "I;16", "I;16L", "I;16B", "I;16N"})  # 16-bit samples (in 32-bit for I)


@dataclass(frozen=True)
class EncodedImage:
    data: bytes
    ext: str  # jpg, webp or png
    width: int
    height: int
    original_width: int  # displayed size before resizing
    original_height: int
    decode_scale: int  # 1, or 2/4/8 when JPEG draft mode decoded at that reduction
    phash: str  # of the whole decoded image, upright, before the resize crops it (filters.near_dup)


@dataclass(frozen=True)
class ResizePlan:
    """Geometry in displayed coordinates: scale to ``size``, keep ``box`` of it, pad to ``pad_to``."""

    size: tuple[int, int] | None  # None: keep the image as decoded
    box: tuple[int, int, int, int] | None  # None: keep all of the scaled image
    pad_to: int | None  # border: centre on a white square of this side
    resample: Image.Resampling


def plan_resize(width: int, height: int, config: ResizeConfig) -> ResizePlan:
    """img2dataset's resize modes for a ``width`` x ``height`` (displayed) image."""
    target = config.image_size
    if config.resize_mode == "no":
        return ResizePlan(None, None, None, Image.Resampling.NEAREST)
    if config.resize_mode in ("keep_ratio", "center_crop"):
        side = min(width, height)
    elif config.resize_mode in ("border", "keep_ratio_largest"):
        side = max(width, height)
    else:
        raise ValueError(f"unknown resize_mode {config.resize_mode!r}")
    downscale = side > target
    if config.resize_only_if_bigger and not downscale:
        return ResizePlan(None, None, None, Image.Resampling.NEAREST)
    scale = target / side  # albumentations: Python's round (half to even), at least 1 px
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    box = None
    if config.resize_mode == "center_crop":
        left, top = (size[0] - target) // 2, (size[1] - target) // 2
        box = (left, top, left + target, top + target)
    interpolation = config.downscale_interpolation if downscale else config.upscale_interpolation
    return ResizePlan(size, box, target if config.resize_mode == "border" else None,
                      RESAMPLING[interpolation])


def transform_image(data: bytes, info: ImageInfo, config: ResizeConfig, *, max_pixels: int) -> EncodedImage:
    """Decode ``data`` (described by ``probe_image``), resize per ``config`` and encode it.

    Raises ``Dropped``: ``too_many_pixels`` (checked again here, before decoding) or ``decode_error``
    (truncated or corrupt pixel data: Pillow's LOAD_TRUNCATED_IMAGES stays off, a partial image
    is a reject). Animated images give their first frame.
    """
    if info.pixels > max_pixels:
        raise Dropped("too_many_pixels", f"{info.width}x{info.height} = {info.pixels} px > {max_pixels}")
    plan = plan_resize(info.width, info.height, config)
    with _decode_errors():
        image = open_image(data)
    if image.size != (info.stored_width, info.stored_height):
        raise ValueError(f"info describes a {info.stored_width}x{info.stored_height} image, "
                         f"the bytes hold {image.width}x{image.height}")
    scale = _draft(image, info, plan)
    with _decode_errors():
        image.load()
        image = to_rgb(image)
    fingerprint = phash(image.transpose(UPRIGHT[info.orientation]) if info.orientation in UPRIGHT else image)
    image = _apply_plan(image, info, plan, scale)
    return EncodedImage(encode(image, config), config.encode_format, image.width, image.height,
                        info.width, info.height, scale, fingerprint)


@contextmanager
def _decode_errors() -> Iterator[None]:
    try:
        yield
    except (Dropped, MemoryError):
        raise
    except Exception as err:  # Pillow's decoders raise many types on corrupt data
        raise Dropped("decode_error", f"{type(err).__name__}: {err}") from None


def _draft(image: Image.Image, info: ImageInfo, plan: ResizePlan) -> int:
    """Ask libjpeg for the largest DCT scale (8, 4, 2) that leaves the decoded image at least as
    large as the resized one on both sides; returns the scale (1 when not drafted)."""
    if plan.size is None or image.format not in DRAFT_FORMATS:
        return 1
    width, height = _stored(plan.size, info.orientation)
    drafted = image.draft(image.mode, (width, height))
    if drafted is None:
        return 1
    _, box = drafted
    return round(info.stored_width / box[2])


def to_rgb(image: Image.Image) -> Image.Image:
    """Flatten any decoded mode to 8-bit RGB; transparency is composited on white (as img2dataset).

    CMYK (Adobe-inverted CMYK is un-inverted by Pillow's JPEG decoder) uses Pillow's plain
    conversion, which matches OpenCV's within ~1 level; 16-bit grey keeps its top 8 bits.
    """
    if image.mode in ALPHA_MODES or "transparency" in image.info:
        rgba = image.convert("RGBA")
        flat = Image.new("RGB", image.size, WHITE)
        flat.paste(rgba, mask=rgba)
        return flat
    if image.mode == "RGB":
        return image
    if image.mode in WIDE_GREY_MODES:
        image = image.point(lambda value: value / 256).convert("L")
    return image.convert("RGB")


def _apply_plan(image: Image.Image, info: ImageInfo, plan: ResizePlan, scale: int) -> Image.Image:
    """Resample just the kept part of the stored pixels, then turn it upright, then pad."""
    if plan.size is not None:
        box = _box_in_stored(plan.box or (0, 0, *plan.size), info.orientation, plan.size)
        width, height = _stored(plan.size, info.orientation)
        if scale == 1 and (width, height) == image.size:
            image = image.crop(box) if plan.box else image
        else:  # stored pixels per resized pixel, in the (possibly drafted) decoded image
            fx, fy = info.stored_width / scale / width, info.stored_height / scale / height
            image = image.resize((box[2] - box[0], box[3] - box[1]), plan.resample,
                                 box=(box[0] * fx, box[1] * fy, box[2] * fx, box[3] * fy))
    if info.orientation in UPRIGHT:
        image = image.transpose(UPRIGHT[info.orientation])
    if plan.pad_to:
        canvas = Image.new("RGB", (plan.pad_to, plan.pad_to), WHITE)
        canvas.paste(image, ((plan.pad_to - image.width) // 2, (plan.pad_to - image.height) // 2))
        image = canvas
    return image


def _stored(size: tuple[int, int], orientation: int) -> tuple[int, int]:
    """A displayed (width, height) in stored orientation."""
    return (size[1], size[0]) if orientation in ORIENTATION_SWAPS_SIDES else size


def _box_in_stored(box: tuple[int, int, int, int], orientation: int,
                   size: tuple[int, int]) -> tuple[int, int, int, int]:
    """The stored-pixel box that shows as ``box`` once turned upright (``size``: displayed)."""
    left, top, right, bottom = box
    width, height = size
    return {
        1: (left, top, right, bottom),
        2: (width - right, top, width - left, bottom),
        3: (width - right, height - bottom, width - left, height - top),
        4: (left, height - bottom, right, height - top),
        5: (top, left, bottom, right),
        6: (top, width - right, bottom, width - left),
        7: (height - bottom, width - right, height - top, width - left),
        8: (height - bottom, left, height - top, right),
    }[orientation]


def encode(image: Image.Image, config: ResizeConfig) -> bytes:
    """``image`` as jpg/webp (``encode_quality`` 1-100) or png (compression level 0-9), no metadata."""
    fmt, quality_option = ENCODERS[config.encode_format]
    image.info = {}  # no ICC profile, EXIF or text copied from the source
    out = io.BytesIO()
    image.save(out, fmt, **{quality_option: config.encode_quality})
    return out.getvalue()
