"""``altcap demo``: the whole spine, offline, on real CC0 photos that scikit-image ships.

It writes a small Common Crawl-style WARC of two gallery pages whose <img alt> tags point at
photos served by a local HTTP server on 127.0.0.1 (reached through ``download.connect_to``, with
private addresses allowed explicitly), then runs the pipeline on that WARC. The pages also hold
the cases the rules exist for: alt-texts that are no captions (a camera file name, "Share on
Facebook", a keyword list, French text: dropped by the text stage before their images are
fetched), small and non-JPEG images, an extreme aspect ratio, a corrupt file, a 404, a ``noai``
image, duplicates, and alt-less or data: URI images. The kept samples are pre-tokenized for the
trainer with a VQ model of the real f8 shape (random weights: no package ships VQ weights) and
CLIP's BPE.
"""

from __future__ import annotations

import gzip
import html
import io
import logging
import os
import uuid

from PIL import Image

from crawl.serve import LocalServer, Route
from dataset import fileio
from pipeline.config import load_config
from pipeline.run import run

log = logging.getLogger("altcap")

PAGE_HOST = "gallery.altcap.test"
IMAGE_HOST = "img.altcap.test"

# (photo in skimage/data, caption a person wrote for it)
PHOTOS = [
    ("astronaut.png", "astronaut in an orange flight suit beside a model of the space shuttle"),
    ("rocket.jpg", "a rocket on the launch pad at night"),
    ("motorcycle_left.png", "a red motorcycle parked in a workshop"),
    ("hubble_deep_field.jpg", "thousands of galaxies in the Hubble deep field"),
    ("retina.jpg", "photograph of the back of a human eye"),
    ("camera.png", "a man looking through a camera on a tripod in a park"),
    ("brick.png", "a wall of grey bricks"),
    ("grass.png", "close-up of a patch of grass"),
    ("gravel.png", "small grey stones on a garden path"),
    ("ihc.png", "stained tissue seen under a microscope"),
    ("coffee.png", "a cup of coffee on a red saucer"),  # 600x400: not > 400 px, rejected
    ("chelsea.png", "a tabby cat resting on a wooden floor"),  # 451x300: too small
    ("coins.png", "rows of old coins on a dark background"),  # 384x303: too small
]


def skimage_photo(name: str) -> Image.Image:
    import skimage

    return Image.open(os.path.join(os.path.dirname(skimage.__file__), "data", name))


def jpeg_bytes(image: Image.Image, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def demo_site() -> tuple[dict[str, Route], list[tuple[str, list[tuple[str | None, str | None]]]]]:
    """Image routes for the server, and the gallery pages as (url, [(src, alt)])."""
    routes: dict[str, Route] = {}
    gallery = []
    for name, caption in PHOTOS:
        path = f"/photos/{name.rsplit('.', 1)[0]}.jpg"
        routes[path] = Route(body=jpeg_bytes(skimage_photo(name)), content_type="image/jpeg")
        gallery.append((f"http://{IMAGE_HOST}{path}", caption))

    retina = skimage_photo("retina.jpg")
    routes["/photos/retina-strip.jpg"] = Route(
        body=jpeg_bytes(retina.crop((0, 450, 1411, 950))), content_type="image/jpeg")
    routes["/photos/astronaut.png"] = Route(body=png_bytes(skimage_photo("astronaut.png")),
                                            content_type="image/png")
    routes["/photos/broken.jpg"] = Route(body=jpeg_bytes(skimage_photo("rocket.jpg"))[:3000],
                                         content_type="image/jpeg")
    routes["/photos/rocket-copy.jpg"] = routes["/photos/rocket.jpg"]
    routes["/photos/hubble-noai.jpg"] = Route(body=routes["/photos/hubble_deep_field.jpg"].body,
                                              content_type="image/jpeg",
                                              headers={"X-Robots-Tag": "noai, noimageai"})
    extras = [
        (f"http://{IMAGE_HOST}/photos/retina-strip.jpg", "a thin strip of a retina photograph"),
        (f"http://{IMAGE_HOST}/photos/astronaut.png", "the astronaut portrait as a PNG file"),
        (f"http://{IMAGE_HOST}/photos/broken.jpg", "a photo whose file was cut short"),
        (f"http://{IMAGE_HOST}/photos/missing.jpg", "a photo that is no longer on the server"),
        (f"http://{IMAGE_HOST}/photos/rocket-copy.jpg", "the same rocket photo under another name"),
        (f"http://{IMAGE_HOST}/photos/hubble-noai.jpg", "galaxies, but the site forbids AI use"),
        (f"http://{IMAGE_HOST}/photos/rocket.jpg", None),  # no alt attribute
        ("data:image/gif;base64,R0lGODlhAQABAAAAACw=", "a spacer image"),
    ]
    # Good photos whose alt-texts are no captions: the text stage drops them, nothing is fetched.
    junk_alts = ["IMG_2345.JPG", "Share on Facebook",
                 "rocket toys, rocket kits, buy rockets online, rocket shop, cheap rockets",
                 "Une fusée sur son pas de tir la nuit"]
    for i, alt in enumerate(junk_alts):
        routes[f"/photos/upload-{i}.jpg"] = routes["/photos/rocket.jpg"]
        extras.insert(4 * (i % 2), (f"http://{IMAGE_HOST}/photos/upload-{i}.jpg", alt))
    pages = [
        (f"http://{PAGE_HOST}/index.html", gallery[:7] + extras[:4]),
        (f"http://{PAGE_HOST}/more.html", gallery[7:] + extras[4:] +
         [(gallery[0][0], "the astronaut again, on another page")]),
    ]
    return routes, pages


def gallery_html(title: str, images: list[tuple[str | None, str | None]]) -> bytes:
    tags = []
    for src, alt in images:
        alt_attr = "" if alt is None else f' alt="{html.escape(alt)}"'
        tags.append(f'  <figure><img src="{html.escape(src)}"{alt_attr}></figure>')
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title></head>\n"
            f"<body>\n<h1>{title}</h1>\n" + "\n".join(tags) + "\n</body></html>\n").encode()


def warc_response(url: str, body: bytes, date: str = "2026-11-01T00:00:00Z") -> bytes:
    """One gzip member holding a WARC/1.1 response record for ``url``."""
    http = (b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    record_id = uuid.uuid5(uuid.NAMESPACE_URL, url)
    head = (f"WARC/1.1\r\nWARC-Type: response\r\nWARC-Record-ID: <urn:uuid:{record_id}>\r\n"
            f"WARC-Date: {date}\r\nWARC-Target-URI: {url}\r\n"
            f"Content-Type: application/http; msgtype=response\r\n"
            f"Content-Length: {len(http)}\r\n\r\n").encode()
    return gzip.compress(head + http + b"\r\n\r\n", mtime=0)


def write_demo_warc(path: str, pages) -> None:
    with open(path, "wb") as handle:
        for number, (url, images) in enumerate(pages, 1):
            handle.write(warc_response(url, gallery_html(f"Gallery page {number}", images)))


def run_demo(out_dir: str, *, beam_args: list[str] = ()) -> dict:
    """Build the demo crawl, serve its images on 127.0.0.1 and run the pipeline on it."""
    from tokens.random_vq import save_random_vq

    routes, pages = demo_site()
    input_dir = os.path.join(out_dir, "input")
    os.makedirs(input_dir, exist_ok=True)
    warc_path = os.path.join(input_dir, "gallery.warc.gz")
    write_demo_warc(warc_path, pages)
    vq_model = save_random_vq(os.path.join(input_dir, "vq-f8"))  # 32x32 codes of 16384 at 256 px
    with LocalServer(routes) as server:
        log.info("serving %d demo images on 127.0.0.1:%d as http://%s/", len(routes), server.port,
                 IMAGE_HOST)
        config = load_config(None, [
            "download.allow_private_addresses=true",  # the demo's images are on 127.0.0.1
            f"download.connect_to=[\"{IMAGE_HOST}:80:127.0.0.1:{server.port}\"]",
            "download.retries=0",
            "shards.samples_per_shard=8",
            # LAION's ViT-B-32 cut, then DataComp's top 30%; offline the weights are missing:
            # scores, and neither cut drops anything
            "clip.enabled=true",
            "clip.top_fraction=0.3",
            # Conceptual Captions' rewrite with the offline sources (GeoNames, WordNet)
            "hypernymize.enabled=true",
            # image codes and text ids for the trainer
            "tokens.enabled=true",
            f"tokens.image_model={vq_model}",
        ])
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the demo runs offline: no ~1 min of retries
        stats = run([warc_path], out_dir, config, beam_args=list(beam_args), overwrite=True)
    log.info("demo crawl: %s", fileio.join(input_dir, "gallery.warc.gz"))
    return stats
