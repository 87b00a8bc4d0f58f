"""Images per second, one core: altcap's probe + transform against img2dataset's Resizer.

Real photos from ../shared/realdata, resized to typical web sizes and saved as JPEG q90, then turned
into 256 px center_crop JPEG q95 by both, on the same bytes, runs alternating. ``--threads N`` adds
altcap's scaling from 1 to N threads (img2dataset's Resizer cannot take part: around every call it
points the process's stdout/stderr file descriptors at /dev/null and back, which races in threads).

    .venv/bin/python benchmarks/image_decode.py [--runs 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from PIL import Image

from filters.image_config import ResizeConfig
from filters.image_probe import probe_image
from filters.image_transform import transform_image

ROOT = Path(__file__).resolve().parent.parent
REALDATA = Path(os.environ.get("ALTCAP_REALDATA", ROOT.parent / "shared" / "realdata"))
PHOTOS = [
    "images/sharp/2569067123_aca715a2ee_o.jpg", "images/sharp/gain-map.jpg", "images/sharp/flowers.jpeg",
    "images/imageio_test_images/rommel.jpg", "images/imageio_test_images/kodim03.png",
    "images/skimage_wheel/retina.jpg", "images/skimage_wheel/hubble_deep_field.jpg",
    "images/skimage_wheel/astronaut.png", "images/skimage_wheel/coffee.png",
    "images/skimage_wheel/motorcycle_left.png",
]
LONG_SIDES = (640, 1024, 1600, 2048, 3000)
RESIZE = ResizeConfig(image_size=256, resize_mode="center_crop", encode_format="jpg", encode_quality=95)


def web_jpegs(long_side: int) -> list[bytes]:
    out = []
    for name in PHOTOS:
        with Image.open(REALDATA / name) as photo:
            photo = photo.convert("RGB")
            scale = long_side / max(photo.size)
            photo = photo.resize((round(photo.width * scale), round(photo.height * scale)), Image.LANCZOS)
        buffer = io.BytesIO()
        photo.save(buffer, "JPEG", quality=90)
        out.append(buffer.getvalue())
    return out


def altcap(data: bytes) -> None:
    transform_image(data, probe_image(data), RESIZE, max_pixels=89_478_485)


def img2dataset_resizer():
    from img2dataset.resizer import Resizer

    resizer = Resizer(image_size=256, resize_mode="center_crop", resize_only_if_bigger=False,
                      encode_format="jpg", encode_quality=95)

    def run(data: bytes) -> None:
        _, _, _, _, _, error = resizer(io.BytesIO(data))
        assert error is None, error
    return run


def images_per_second(fn, images: list[bytes], threads: int) -> float:
    start = time.perf_counter()
    if threads == 1:
        for data in images:
            fn(data)
    else:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(fn, images))
    return len(images) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="also time altcap with this many threads")
    parser.add_argument("--repeat", type=int, default=3, help="passes over the photos per run")
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # albumentations' version check, imghdr's deprecation
    peers = {"altcap": altcap, "img2dataset": img2dataset_resizer()}
    print(f"256 px center_crop, JPEG q95, one thread, median of {args.runs} alternating runs")
    threaded = f"altcap {args.threads} threads"
    print(f"{'long side':>9} {'altcap img/s':>13} {'img2dataset img/s':>18} {'ratio':>6}"
          + (f" {threaded + ' img/s':>22} {'scaling':>8}" if args.threads > 1 else ""))
    for long_side in LONG_SIDES:
        images = web_jpegs(long_side) * args.repeat
        for fn in peers.values():  # warm up
            fn(images[0])
        rates = {name: [] for name in [*peers, threaded]}
        for _ in range(args.runs):
            for name, fn in peers.items():
                rates[name].append(images_per_second(fn, images, 1))
            if args.threads > 1:
                rates[threaded].append(images_per_second(altcap, images, args.threads))
        ours, theirs = statistics.median(rates["altcap"]), statistics.median(rates["img2dataset"])
        line = f"{long_side:>9} {ours:>13.1f} {theirs:>18.1f} {ours / theirs:>5.2f}x"
        if args.threads > 1:
            many = statistics.median(rates[threaded])
            line += f" {many:>22.1f} {many / ours:>7.2f}x"
        print(line)


if __name__ == "__main__":
    main()
