"""probe_image on every real image file: header facts agree with IMAGE_PROPERTIES.tsv, bad headers drop."""

from __future__ import annotations

import hashlib
import io
import warnings

import pytest
from PIL import Image, ImageFile

from filters.image_probe import TIFF_PAGE_LIMIT, probe_image
from filters.record import Dropped

from conftest import realdata_cases, realdata_table

PROPERTIES = ("images", "IMAGE_PROPERTIES.tsv")
ROWS = realdata_table(*PROPERTIES)
READABLE = [row for row in ROWS if not row["load"].startswith("OPEN_ERROR")]
UNREADABLE = [row for row in ROWS if row["load"].startswith("OPEN_ERROR")]
NOT_IMAGES = {"IMAGE_PROPERTIES.tsv", "LICENSE", "LICENSE.txt", "README.ijg"}


def tsv_orientation(row: dict) -> int:
    """The TSV's exif_orientation column: blank means none; 'exif-error' marks PNGs whose getexif()
    had to decode the whole file (in search of a late eXIf chunk) and failed: none in the header."""
    value = row["exif_orientation"]
    return int(value) if value.isdigit() else 1


def test_properties_list_every_image_file(realdata):
    """The parametrized tests below cover every file under images/, not a sample."""
    images = realdata("images")
    on_disk = {str(path.relative_to(images)) for path in images.rglob("*")
               if path.is_file() and path.name not in NOT_IMAGES}
    assert on_disk == {row["path"] for row in ROWS}


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")  # hopper_bad_exif.jpg, as intended
@pytest.mark.parametrize("row", realdata_cases(READABLE, *PROPERTIES))
def test_probe_agrees_with_properties(realdata, row):
    data = realdata("images", row["path"]).read_bytes()
    if row["path"] == "pillow/decompression_bomb.gif":  # its frame stretches the canvas to 4.4 Gpx
        with pytest.raises(Dropped) as caught:
            probe_image(data)
        assert caught.value.reason == "too_many_pixels"
        return
    info = probe_image(data)
    assert info.format == row["fmt"].lower()
    assert info.mode == row["mode"]
    assert (info.stored_width, info.stored_height) == (int(row["w"]), int(row["h"]))
    assert info.frames == int(row["frames"])
    assert info.orientation == tsv_orientation(row)
    swapped = info.orientation in (5, 6, 7, 8)
    assert (info.width, info.height) == ((info.stored_height, info.stored_width) if swapped
                                         else (info.stored_width, info.stored_height))
    assert info.pixels == info.width * info.height
    assert info.sha256 == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("row", realdata_cases(UNREADABLE, *PROPERTIES))
def test_unreadable_headers_drop(realdata, row):
    with pytest.raises(Dropped) as caught:
        probe_image(realdata("images", row["path"]).read_bytes())
    expected = "decompression_bomb" if row["path"] == "pillow/png_decompression_dos.png" else "unreadable"
    assert caught.value.reason == expected
    assert caught.value.detail


def test_bombs_leave_pillow_settings_alone(realdata):
    """No DecompressionBombError/Warning escapes, and Pillow's global limits are not touched."""
    limit, truncated = Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        for name, pixels in (("65536-uint32-limit.png", 65536 * 65536), ("giant-image.jpg", 20000 * 14000)):
            assert probe_image(realdata("images", "sharp", name).read_bytes()).pixels == pixels
    assert (Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES) == (limit, truncated)


def test_webp_canvas_is_read_from_the_header():
    """A 1x1 animation on a 16383x16383 canvas: the probe reports the canvas, instantly."""
    frames = [Image.new("RGB", (1, 1), colour) for colour in ("red", "blue")]
    out = io.BytesIO()
    frames[0].save(out, "WEBP", save_all=True, append_images=frames[1:], lossless=True)
    data = bytearray(out.getvalue())
    vp8x = data.index(b"VP8X")
    data[vp8x + 12:vp8x + 18] = (16382).to_bytes(3, "little") * 2  # canvas width-1, height-1
    info = probe_image(bytes(data))
    assert (info.format, info.width, info.height, info.frames) == ("webp", 16383, 16383, 2)


def test_only_web_formats_are_opened():
    """EPS would go to Ghostscript, PPM/TGA are not web formats: none reaches a Pillow plugin."""
    ppm = io.BytesIO()
    Image.new("RGB", (8, 8)).save(ppm, "PPM")
    for data in (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 8 8\n", ppm.getvalue(), b"", b"<html>"):
        with pytest.raises(Dropped) as caught:
            probe_image(data)
        assert caught.value.reason == "unreadable"


def test_tiff_pages_are_counted_up_to_the_limit():
    pages = [Image.new("L", (4, 4), shade) for shade in (0, 100, 200)]
    out = io.BytesIO()
    pages[0].save(out, "TIFF", save_all=True, append_images=pages[1:])
    assert probe_image(out.getvalue()).frames == 3 < TIFF_PAGE_LIMIT
