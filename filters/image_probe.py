"""Header-only image probe: format, size, frame count and EXIF orientation, never the pixels.

Pillow's plugins read headers lazily, so opening costs microseconds and no pixel memory. The probe
opens only web image formats (no EPS/PSD/... plugins, some of which shell out or parse exotic data)
and skips ``Image.open``'s global decompression-bomb check: the pixel limit that matters is the run's
``ImageConfig.max_pixels``, applied by the image rules right after the probe and again by
``transform_image`` before it decodes. Pillow's global ``MAX_IMAGE_PIXELS`` is never changed (a
process-wide setting, racy across threads and relied on by other code); the one place it still
applies is inside the GIF plugin, which refuses a frame that stretches the canvas past twice it.

WebP is the one format whose header read reserves memory: libwebp callocs two canvas buffers
(4 bytes per pixel, up to 2 GiB for a 16383x16383 canvas). The pages stay untouched, so resident
memory does not grow; under an address-space limit smaller than that the file is ``unreadable``.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

from PIL import (  # noqa: F401  importing a plugin registers its opener in Image.OPEN
    AvifImagePlugin,
    BmpImagePlugin,
    ExifTags,
    GifImagePlugin,
    IcoImagePlugin,
    Image,
    ImageFile,
    JpegImagePlugin,
    PngImagePlugin,
    TiffImagePlugin,
    WebPImagePlugin,
)

from filters.record import Dropped

# Pillow format names tried, in order (their magic numbers do not overlap). MPO comes through JPEG.
OPENED_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "AVIF", "BMP", "TIFF", "ICO")
TIFF_PAGE_LIMIT = 1000  # pages counted at most (one directory read each)
ORIENTATION_SWAPS_SIDES = frozenset({5, 6, 7, 8})


@dataclass(frozen=True)
class ImageInfo:
    format: str  # lower-case Pillow format name: jpeg, png, webp, gif, avif, bmp, tiff, ico, mpo
    width: int  # as displayed, i.e. after the EXIF orientation
    height: int
    stored_width: int  # as stored in the file
    stored_height: int
    frames: int  # 1 when not animated
    orientation: int  # EXIF orientation 1-8; 1 when absent or invalid
    mode: str  # Pillow mode of the stored pixels (RGB, L, P, CMYK, RGBA, I;16, ...)
    sha256: str  # hex digest of the original bytes

    @property
    def pixels(self) -> int:
        return self.stored_width * self.stored_height


def open_image(data: bytes) -> ImageFile.ImageFile:
    """Identify ``data`` among OPENED_FORMATS and read its header; the pixels stay undecoded.

    Does what ``Image.open`` does minus its decompression-bomb check (see the module docstring).
    Raises Pillow's own errors; callers turn them into ``Dropped``.
    """
    prefix = data[:16]
    for name in OPENED_FORMATS:
        factory, accept = Image.OPEN[name]
        if accept(prefix) is True:
            return factory(io.BytesIO(data), "")
    raise Image.UnidentifiedImageError("not a " + ", ".join(OPENED_FORMATS) + " file")


def probe_image(data: bytes) -> ImageInfo:
    """What the header says about ``data``; raises ``Dropped`` when it cannot be read.

    Reasons: ``unreadable`` (unknown format, corrupt header), ``decompression_bomb`` (a PNG text chunk
    that inflates past Pillow's safe limit), ``too_many_pixels`` (a GIF frame that stretches the
    canvas past Pillow's hard limit: Pillow refuses it while opening, before any size is known).
    """
    try:
        image = open_image(data)
        stored_width, stored_height, mode = *image.size, image.mode
        orientation = read_orientation(image)
        frames = _frame_count(image)  # last: counting TIFF pages moves to other pages
    except Image.DecompressionBombError as err:
        raise Dropped("too_many_pixels", str(err)) from None
    except MemoryError:
        raise
    except Exception as err:  # Pillow's plugins raise many types on hostile headers
        reason = "decompression_bomb" if "Decompressed data too large" in str(err) else "unreadable"
        raise Dropped(reason, f"{type(err).__name__}: {err}") from None
    if stored_width < 1 or stored_height < 1:
        raise Dropped("unreadable", f"empty image {stored_width}x{stored_height}")
    width, height = ((stored_height, stored_width) if orientation in ORIENTATION_SWAPS_SIDES
                     else (stored_width, stored_height))
    return ImageInfo(
        format=image.format.lower(), width=width, height=height, stored_width=stored_width,
        stored_height=stored_height, frames=frames, orientation=orientation, mode=mode,
        sha256=hashlib.sha256(data).hexdigest())


def read_orientation(image: Image.Image) -> int:
    """EXIF (or XMP) orientation from what the header holds; 1 when absent, invalid or unparsable.

    Uses the base ``Image.getexif``: PNG overrides it to decode the whole image in search of an eXIf
    chunk after the pixel data, so for PNG only EXIF placed before IDAT counts.
    """
    try:
        value = Image.Image.getexif(image).get(ExifTags.Base.Orientation, 1)
    except Exception:  # a broken EXIF block costs the orientation, not the image
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _frame_count(image: ImageFile.ImageFile) -> int:
    """Frames without decoding any: PNG (acTL), WebP, AVIF and MPO store the count in the header;
    GIF walks block headers and skips the pixel data (~1.5 us per frame: well under a millisecond
    for real animations, ~2 s for a hostile 32 MB file of 1x1 frames); TIFF reads page
    directories (~60 us each), up to TIFF_PAGE_LIMIT."""
    if image.format == "TIFF":
        pages = 1
        try:
            while pages < TIFF_PAGE_LIMIT:
                image.seek(pages)
                pages += 1
        except EOFError:
            pass
        return pages
    return getattr(image, "n_frames", 1)
