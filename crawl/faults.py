"""A hostile web on 127.0.0.1, for tests and benchmarks: one named fault per URL.

``FAULTS`` is the one list of them: each names what the server does and the outcome a download
under ``SETTINGS`` must end in, a sample or a reject with its stage and reason (issue 18). Every
fault is served by ``FaultServer`` at ``http://faults.altcap.test/<name>`` (the connect stall at
``http://stall.altcap.test/<name>``), host names that ``download.connect_to`` maps to the server,
so the URLs, and the keys made from them, never depend on its port. ``markdown_table()`` renders
the list for README.md (``python -m crawl.faults`` prints it), and a test keeps the two alike.

The settings keep private addresses refused, as by default: the server is reached only through
the addresses ``connect_to`` names, so a redirect to 127.0.0.1 or localhost is refused like any
other private address (``crawl.fetch``).
"""

from __future__ import annotations

import gzip
import io
import random
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

from PIL import Image

from crawl.serve import LocalServer, Route

FAULT_HOST = "faults.altcap.test"
STALL_HOST = "stall.altcap.test"

# The settings the outcomes below assume: short timeouts, one retry, a 1 MB cap, the default
# redirect limit and address rules, every fault in flight at once, and image formats that let the
# GIF bomb reach the rule that stops it (the other image rules at their defaults).
SETTINGS = {
    "download.timeout": "1",
    "download.retries": "1",
    "download.backoff": "0.05",
    "download.max_bytes": "1000000",
    "download.max_redirects": "5",
    "download.allow_private_addresses": "false",
    "download.per_host": "64",
    "image.formats": "jpeg,png,gif,webp",
}
REDIRECT_CHAIN = 7  # hops, past max_redirects
DRIP_SECONDS = 0.4  # between body bytes: each read is in time, the whole is not


# --- payloads -----------------------------------------------------------------------------------

@cache
def photo(name: str) -> bytes:
    """A JPEG the default image rules keep (both sides > 400 px, aspect ratio <= 2): blocks of
    colour drawn from ``name``, so that each fault's photo is another image (image dedup)."""
    blocks = Image.frombytes("RGB", (12, 11), random.Random(name).randbytes(12 * 11 * 3))
    buffer = io.BytesIO()
    blocks.resize((480, 440), Image.Resampling.NEAREST).save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


def pixel_bomb(image: bytes) -> bytes:
    """``image`` (a JPEG) with 60000x60000 written in its frame header: 3.6 gigapixels declared."""
    data = bytearray(image)
    frame = data.index(b"\xff\xc0")  # SOF0: marker, length (2), precision (1), height, width
    data[frame + 5:frame + 9] = struct.pack(">HH", 60000, 60000)
    return bytes(data)


def animated_bomb(frames: int = 20000) -> bytes:
    """A 480x440 GIF of ``frames`` 1x1 frames (15 bytes each), written by hand: Pillow would
    merge identical frames."""
    screen = b"GIF89a" + struct.pack("<HHBBB", 480, 440, 0x80, 0, 0) + b"\x00\x00\x00\xff\xff\xff"
    one_pixel = b"\x2c" + struct.pack("<HHHHB", 0, 0, 1, 1, 0) + b"\x02\x02\x44\x01\x00"
    return screen + one_pixel * frames + b"\x3b"


def gzip_bomb() -> bytes:
    """16 MiB of zeros, gzipped to about 16 KB."""
    return gzip.compress(bytes(16 << 20), compresslevel=9, mtime=0)


HTML_PAGE = b"<!doctype html><html><head><title>Not found</title></head><body>Sorry</body></html>"


# --- the faults ---------------------------------------------------------------------------------

Routes = Callable[[str, int], dict]  # (the fault's path, the server's port) -> {path: route}


def no_routes(path: str, port: int) -> dict:
    """For a fault that is no HTTP answer at all."""
    return {}


def serving(make: Callable[[bytes], Route | list[Route]]) -> Routes:
    """The fault's own path answers ``make(its photo)``; each fault has a photo of its own."""
    return lambda path, port: {path: make(photo(path))}


def redirect_to(template: str, hops: int = 1) -> Routes:
    """``hops`` redirects, path, path/1, path/2, ..., the last to ``template`` (filled with
    ``path`` and ``port``); ``path/target`` serves the photo."""
    def routes(path: str, port: int) -> dict:
        chain = [path] + [f"{path}/{hop}" for hop in range(1, hops)]
        final = template.format(path=path, port=port)
        found = {here: Route(redirect_to=there) for here, there in zip(chain, chain[1:] + [final])}
        return found | {f"{path}/target": Route(photo(path), content_type="image/jpeg")}
    return routes


def jpeg(**kwargs) -> Callable[[bytes], Route]:
    """The image as image/jpeg, with ``kwargs`` for the Route."""
    return lambda image: Route(image, content_type="image/jpeg", **kwargs)


def declaring(length: int, image: bytes) -> Route:
    """``image`` sent whole under a Content-Length of ``length``, then the connection closes."""
    return Route(image, content_type="image/jpeg", content_length=length)


@dataclass(frozen=True)
class Fault:
    what: str  # what the server does
    stage: str  # the stage that decides: download or image ("" for a sample)
    reason: str  # the reject reason ("" for a sample)
    routes: Routes
    host: str = FAULT_HOST

    @property
    def outcome(self) -> str:
        return f"reject at {self.stage}" if self.reason else "sample"


FAULTS: dict[str, Fault] = {
    "healthy": Fault("a JPEG, as it should be", "", "", serving(jpeg())),
    "connect_stall": Fault("accepts the connection (kernel backlog), never reads or answers",
                           "download", "timeout", no_routes, host=STALL_HOST),
    "header_stall": Fault("reads the request, sends nothing for 60 s", "download", "timeout",
                          serving(jpeg(delay=60))),
    "slow_drip": Fault(f"sends the body one byte every {DRIP_SECONDS} s: each read in time, the whole not",
                       "download", "timeout", serving(jpeg(trickle=DRIP_SECONDS))),
    "reset_mid_body": Fault("sends 1000 body bytes, then a TCP reset, every time", "download",
                            "connection_error", serving(jpeg(cut_after=1000, reset=True))),
    "reset_then_ok": Fault("a TCP reset mid-body, then the JPEG", "", "",
                           serving(lambda image: [jpeg(cut_after=1000, reset=True)(image), jpeg()(image)])),
    "http_500": Fault("500 every time", "download", "http_500", serving(lambda _: Route(b"oops", status=500))),
    "http_502": Fault("502 every time", "download", "http_502", serving(lambda _: Route(b"bad", status=502))),
    "http_503_then_ok": Fault("503, then the JPEG", "", "",
                              serving(lambda image: [Route(status=503), jpeg()(image)])),
    "http_429_retry_after_then_ok": Fault(
        "429 with Retry-After: 1, then the JPEG", "", "",
        serving(lambda image: [Route(status=429, headers={"Retry-After": "1"}), jpeg()(image)])),
    "redirect_within_limit": Fault("2 redirects, then the JPEG", "", "", redirect_to("{path}/target", 2)),
    "redirect_loop": Fault("redirects to itself", "download", "too_many_redirects",
                           lambda path, port: {path: Route(redirect_to=path)}),
    "redirect_chain": Fault(f"{REDIRECT_CHAIN} redirects, then the JPEG", "download", "too_many_redirects",
                            redirect_to("{path}/target", REDIRECT_CHAIN)),
    "redirect_to_loopback": Fault("redirects to itself as http://127.0.0.1:PORT/", "download",
                                  "private_address", redirect_to("http://127.0.0.1:{port}{path}/target")),
    "redirect_to_localhost": Fault("redirects to itself as http://localhost:PORT/", "download",
                                   "private_address", redirect_to("http://localhost:{port}{path}/target")),
    "redirect_malformed": Fault("redirects to `http://[::1` (an unclosed IPv6 bracket)", "download", "bad_url",
                                serving(lambda _: Route(redirect_to="http://[::1"))),
    "body_over_cap": Fault("1.5 MB, over the 1 MB cap (Content-Length)", "download", "too_large",
                           serving(lambda _: Route(bytes(1_500_000), content_type="image/jpeg"))),
    "body_over_cap_chunked": Fault("1.5 MB chunked, no length given", "download", "too_large",
                                   serving(lambda _: Route(bytes(1_500_000), content_type="image/jpeg",
                                                           chunked=True))),
    "gzip_bomb": Fault("16 KB of gzip that inflates to 16 MiB (Content-Encoding: gzip)", "download", "too_large",
                       serving(lambda _: Route(gzip_bomb(), content_type="image/jpeg",
                                               headers={"Content-Encoding": "gzip"}))),
    "length_longer_than_body": Fault("declares 5000 bytes more than it sends, then closes", "download",
                                     "connection_error", serving(lambda image: declaring(len(image) + 5000, image))),
    "length_shorter_than_body": Fault("declares 300 bytes fewer than it sends (the JPEG is cut)", "image",
                                      "decode_error", serving(lambda image: declaring(len(image) - 300, image))),
    "x_robots_tag_noai": Fault("the JPEG with X-Robots-Tag: noai", "download", "x_robots_tag",
                               serving(jpeg(headers={"X-Robots-Tag": "noai"}))),
    "zero_bytes": Fault("an empty 200 image/jpeg", "download", "empty_body", serving(lambda _: jpeg()(b""))),
    "html_as_image": Fault("an HTML page as image/jpeg", "image", "unreadable", serving(lambda _: jpeg()(HTML_PAGE))),
    "jpeg_as_html": Fault("a good JPEG as text/html (the bytes decide)", "", "",
                          serving(lambda image: Route(image, content_type="text/html; charset=utf-8"))),
    "truncated_jpeg": Fault("the first half of the JPEG, with an honest length", "image", "decode_error",
                            serving(lambda image: jpeg()(image[:len(image) // 2]))),
    "pixel_bomb": Fault("an 11 KB JPEG declaring 60000x60000 px (3.6 gigapixels)", "image", "too_many_pixels",
                        serving(lambda image: jpeg()(pixel_bomb(image)))),
    "animated_bomb": Fault("a 300 KB GIF of 20000 1x1 frames on a 480x440 canvas", "image", "animated",
                           serving(lambda _: Route(animated_bomb(), content_type="image/gif"))),
}


def markdown_table(faults: dict[str, Fault] = FAULTS) -> str:
    """The faults, and the settings their outcomes hold under, as README.md shows them."""
    settings = ", ".join(f"`{name}={value}`" for name, value in SETTINGS.items())
    rows = [f"Settings: {settings}.", "", "| fault | the server | outcome | reason |", "| --- | --- | --- | --- |"]
    rows += [f"| `{name}` | {f.what} | {f.outcome} | {f'`{f.reason}`' if f.reason else ''} |"
             for name, f in faults.items()]
    return "\n".join(rows) + "\n"


class FaultServer:
    """Every fault of ``faults`` at ``url(name)``: a LocalServer on 127.0.0.1, and for the connect
    stall a listening socket that never accepts. ``connect_to`` maps both hosts; ``server`` is the
    LocalServer, with its request counts. A context manager."""

    def __init__(self, faults: dict[str, Fault] = FAULTS):
        self.faults = faults
        self.server = LocalServer()
        self._stall = socket.socket()

    def url(self, name: str) -> str:
        return f"http://{self.faults[name].host}/{name}"

    @property
    def connect_to(self) -> list[str]:
        stall_port = self._stall.getsockname()[1]
        return [f"{FAULT_HOST}:80:127.0.0.1:{self.server.port}", f"{STALL_HOST}:80:127.0.0.1:{stall_port}"]

    def __enter__(self) -> FaultServer:
        self._stall.bind(("127.0.0.1", 0))
        self._stall.listen(64)
        self.server.start()
        for name, fault in self.faults.items():
            self.server.routes.update(fault.routes(f"/{name}", self.server.port))
        return self

    def __exit__(self, *exc) -> None:
        self.server.close()
        self._stall.close()


if __name__ == "__main__":
    print(markdown_table(), end="")
