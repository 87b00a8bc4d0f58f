"""check_image_rules: each reason, their order, Conceptual Captions' defaults on real photos, and
pixel bombs refused without decoding."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from filters.image_config import ImageConfig
from filters.image_probe import ImageInfo, probe_image
from filters.image_rules import check_image_rules

ROOT = Path(__file__).resolve().parent.parent
BOMBS = {  # file -> the reason it is refused with, before any pixel is decoded
    "sharp/65536-uint32-limit.png": "too_many_pixels",  # 4.3 Gpx, 512 KB
    "sharp/giant-image.jpg": "too_many_pixels",  # 280 Mpx
    "pillow/decompression_bomb.gif": "too_many_pixels",  # a 44-byte GIF whose frame claims 4.4 Gpx
    "pillow/png_decompression_dos.png": "decompression_bomb",  # a text chunk that inflates without end
}
PHOTO = ImageInfo(format="jpeg", width=800, height=600, stored_width=800, stored_height=600, frames=1,
                  orientation=1, mode="RGB", sha256="0" * 64)
PERMISSIVE = ImageConfig(formats=["jpeg", "png", "webp", "gif", "avif", "bmp", "tiff", "ico"], min_side=1,
                         max_aspect_ratio=1000.0, allow_animated=True)


def reason(info: ImageInfo, config: ImageConfig) -> str | None:
    verdict = check_image_rules(info, config)
    return verdict and verdict[0]


def test_each_reason_with_its_numbers():
    config = ImageConfig()
    assert reason(PHOTO, config) is None
    cases = {
        "format_not_allowed": (replace(PHOTO, format="png"), "png"),
        "too_small": (replace(PHOTO, height=400, stored_height=400), "400"),
        "aspect_ratio": (replace(PHOTO, width=1300, stored_width=1300, height=600), "2.17"),
        "too_many_pixels": (replace(PHOTO, width=10000, height=9000, stored_width=10000, stored_height=9000),
                            "90000000"),
        "animated": (replace(PHOTO, frames=12), "12 frames"),
    }
    for expected, (info, number) in cases.items():
        found, detail = check_image_rules(info, config)
        assert found == expected
        assert number in detail


def test_bounds_are_inclusive_where_cc_says_so():
    config = ImageConfig()
    assert reason(replace(PHOTO, width=802, height=401), config) is None  # ratio exactly 2, side 401
    assert reason(replace(PHOTO, width=401, height=401), config) is None
    assert reason(replace(PHOTO, width=400, height=800), config) == "too_small"
    at_limit = replace(PHOTO, stored_width=config.max_pixels, stored_height=1, width=config.max_pixels,
                       height=1)
    assert reason(at_limit, replace(config, max_aspect_ratio=1e9, min_side=1)) is None


def test_pixel_bombs_are_refused_whatever_else_is_allowed():
    bomb = replace(PHOTO, format="png", width=65536, height=65536, stored_width=65536, stored_height=65536,
                   frames=5)
    assert reason(bomb, PERMISSIVE) == "too_many_pixels"
    assert reason(bomb, ImageConfig()) == "too_many_pixels"  # not format_not_allowed: the bomb is the news


def test_format_names():
    assert reason(PHOTO, replace(PERMISSIVE, formats=["jpg"])) is None
    assert reason(PHOTO, replace(PERMISSIVE, formats=["JPEG"])) is None
    assert reason(replace(PHOTO, format="tiff"), replace(PERMISSIVE, formats=["tif"])) is None
    webp = replace(PHOTO, format="webp")
    assert reason(webp, replace(PERMISSIVE, formats=["jpeg"])) == "format_not_allowed"


def test_mpo_is_a_still_jpeg():
    mpo = replace(PHOTO, format="mpo", frames=2)
    assert reason(mpo, ImageConfig()) is None
    assert reason(mpo, replace(ImageConfig(), formats=["png"])) == "format_not_allowed"


def test_kind_of_file_before_geometry():
    tiny_animation = replace(PHOTO, format="gif", width=20, height=20, stored_width=20, stored_height=20,
                             frames=9)
    assert reason(tiny_animation, ImageConfig()) == "format_not_allowed"
    assert reason(tiny_animation, replace(ImageConfig(), formats=["gif"])) == "animated"
    assert reason(tiny_animation, replace(ImageConfig(), formats=["gif"], allow_animated=True)) == "too_small"


# Conceptual Captions' rules (ImageConfig defaults: JPEG, both sides > 400 px, ratio <= 2) on real files.
CC_OUTCOMES = {
    "imageio_test_images/meadow_cube.jpg": "aspect_ratio",  # 2048x12288, 1:6
    "imageio_test_images/chelsea.jpg": "too_small",  # 451x300
    "skimage_wheel/rocket.jpg": None,  # 640x427
    "imageio_test_images/rommel.jpg": None,  # 3072x2304 stored, shown 2304x3072 (EXIF 6)
    "imageio_test_images/bricks.jpg": None,  # 512x512
    "skimage_wheel/retina.jpg": None,
    "skimage_wheel/hubble_deep_field.jpg": None,
    "sharp/flowers.jpeg": None,  # 1920x1080, ratio 1.78
    "sharp/gain-map.jpg": None,  # 3840x2160
    "sharp/Landscape_6.jpg": None,
    "pillow/frozenpond.mpo": None,  # a stereo pair: still a JPEG
    "pillow/flower.jpg": "too_small",  # 480x360
    "sharp/concert.jpg": "too_small",  # 400x267
    "imageio_test_images/kodim03.png": "format_not_allowed",
    "skimage_wheel/astronaut.png": "format_not_allowed",
    "sharp/4.webp": "format_not_allowed",
    "sharp/pitm.avif": "format_not_allowed",
    "sharp/Crash_test.gif": "format_not_allowed",
    "imageio_test_images/newtonscradle.gif": "format_not_allowed",
    "sharp/giant-image.jpg": "too_many_pixels",
}


@pytest.mark.parametrize("path,expected", CC_OUTCOMES.items(), ids=list(CC_OUTCOMES))
def test_conceptual_captions_defaults_on_real_files(realdata, path, expected):
    info = probe_image(realdata("images", path).read_bytes())
    assert reason(info, ImageConfig()) == expected


REFUSE_UNDER_BUDGET = """
import json, resource, sys, time
from PIL import Image
from filters.image_probe import probe_image
from filters.image_config import ImageConfig
from filters.image_rules import check_image_rules
from filters.record import Dropped

images, headroom = sys.argv[1], int(sys.argv[2])
payloads = {name: open(f"{images}/{name}", "rb").read() for name in sys.argv[3:]}
vm_bytes = int(open("/proc/self/statm").read().split()[0]) * resource.getpagesize()
resource.setrlimit(resource.RLIMIT_AS, (vm_bytes + headroom, vm_bytes + headroom))
rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
outcome = {}
for name, data in payloads.items():
    start = time.process_time()
    try:
        verdict = check_image_rules(probe_image(data), ImageConfig())
        outcome[name] = [verdict[0] if verdict else "passed", time.process_time() - start]
    except Dropped as dropped:
        outcome[name] = [dropped.reason, time.process_time() - start]
rss_growth_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before
Image.MAX_IMAGE_PIXELS = None  # this process only: show that decoding would not fit the budget
try:
    Image.open(f"{images}/sharp/giant-image.jpg").load()
    decode = "fits"
except MemoryError:
    decode = "MemoryError"
print(json.dumps({"outcome": outcome, "rss_growth_kb": rss_growth_kb, "decode": decode}))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs RLIMIT_AS and /proc")
def test_bombs_are_refused_without_decoding(realdata):
    """Under an address-space budget of 128 MB more than the process already has (decoding the
    smallest bomb needs 280 MB, the largest 4.4 GB), each bomb is refused in a small fraction of the
    CPU time a decode takes, with almost no memory growth; the same budget makes an actual decode fail."""
    images = realdata("images")
    result = subprocess.run(
        [sys.executable, "-c", REFUSE_UNDER_BUDGET, str(images), str(128 << 20), *BOMBS],
        capture_output=True, text=True, cwd=ROOT, timeout=60, check=True)
    report = json.loads(result.stdout)
    assert report["decode"] == "MemoryError"
    assert {name: reason for name, (reason, _) in report["outcome"].items()} == BOMBS
    assert max(cpu for _, cpu in report["outcome"].values()) < 0.5  # CPU seconds: another process's load adds none
    assert report["rss_growth_kb"] < 16 * 1024
