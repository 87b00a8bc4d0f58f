"""A small, fast static HTTP/1.1 server for tests, the demo and benchmarks.

``LocalServer(routes)`` listens on 127.0.0.1 (an ephemeral port by default) with asyncio in a
background thread and serves bytes from memory: keep-alive, Content-Length or chunked, HEAD, 404 for
unknown paths. A route is a ``Route`` (body, status, headers, delays, redirects, trickling, byte
ranges, a transfer cut mid-body with a close or a reset, a declared length that lies), a list of
Routes served in turn (the last one repeats: "503, then 200", "cut at byte N, then whole"), or a
``Directory`` mounted at a prefix (its files answer ranges). ``ServerProcess`` runs one in a
separate process so it does not share the GIL with what is measured; ``python -m crawl.serve --dir
DIR --port N`` does the same from a shell.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import mimetypes
import os
import pickle
import re
import select
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from functools import cached_property
from http import HTTPStatus
from typing import NamedTuple
from urllib.parse import unquote

WRITE_PIECE = 256 * 1024  # large bodies go out in pieces, waiting for the client between them


@dataclass
class Route:
    body: bytes = b""
    status: int = 200
    headers: dict = field(default_factory=dict)  # {"X-Robots-Tag": "noai"}; a list value repeats the header
    content_type: str = "application/octet-stream"
    delay: float = 0.0  # seconds before the status line
    redirect_to: str | None = None  # sets Location; the status becomes 302 unless given
    chunked: bool = False  # Transfer-Encoding: chunked instead of Content-Length
    trickle: float = 0.0  # seconds to wait before each ``trickle_bytes`` of the body
    trickle_bytes: int = 1
    ranges: bool = False  # answer "Range: bytes=N-" / "bytes=N-M" with 206 (416 when out of the body)
    cut_after: int | None = None  # send this many body bytes, then close: a connection cut mid-file
    reset: bool = False  # end a cut with a TCP reset (RST) rather than a close (FIN)
    content_length: int | None = None  # declared instead of the body's true length; the connection then closes

    def __post_init__(self):
        if self.redirect_to is not None and self.status == 200:
            self.status = 302


@dataclass
class Directory:
    """The files under ``path``, served at the route's prefix with ``headers`` added."""

    path: str
    headers: dict = field(default_factory=dict)

    @cached_property
    def root(self) -> str:
        return os.path.realpath(self.path)

    def route(self, relative: str) -> Route | None:
        """The file at ``relative`` (URL-encoded, below the prefix); None if there is none."""
        full = os.path.realpath(os.path.join(self.root, unquote(relative).lstrip("/")))
        if not full.startswith(self.root + os.sep) or not os.path.isfile(full):
            return None
        with open(full, "rb") as handle:
            body = handle.read()
        content_type = mimetypes.guess_type(full)[0] or "application/octet-stream"
        return Route(body, headers=self.headers, content_type=content_type, ranges=True)


NOT_FOUND = Route(b"not found\n", status=404, content_type="text/plain")
BAD_REQUEST = Route(b"bad request\n", status=400, content_type="text/plain")
MAX_HEAD = 64 * 1024  # request line and headers
_BYTE_RANGE = re.compile(r"bytes=(\d+)-(\d*)\Z")


def _status_line(status: int) -> str:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Status"
    return f"HTTP/1.1 {status} {phrase}"


def _head(route: Route, keep_alive: bool) -> bytes:
    lines = [_status_line(route.status), f"Content-Type: {route.content_type}"]
    if route.ranges:
        lines.append("Accept-Ranges: bytes")
    if route.redirect_to is not None:
        lines.append(f"Location: {route.redirect_to}")
    for name, value in route.headers.items():
        lines.extend(f"{name}: {item}" for item in (value if isinstance(value, list) else [value]))
    length = len(route.body) if route.content_length is None else route.content_length
    lines.append("Transfer-Encoding: chunked" if route.chunked else f"Content-Length: {length}")
    lines.append("Connection: keep-alive" if keep_alive else "Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class _Request(NamedTuple):
    method: str
    path: str
    headers: dict  # names in lower case
    keep_alive: bool
    body_length: int


def _parse_request(head: bytes) -> _Request | None:
    lines = head.decode("latin-1").split("\r\n")
    request_line = lines[0].split(" ")
    if len(request_line) != 3:
        return None
    method, target, version = request_line
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = headers.get("content-length", "0")
    if not length.isdigit():
        return None
    connection = headers.get("connection", "").lower()
    keep_alive = connection == "keep-alive" if version == "HTTP/1.0" else connection != "close"
    return _Request(method, target.split("?", 1)[0], headers, keep_alive, int(length))


def _ranged(route: Route, header: str) -> Route:
    """The part of ``route`` that a Range header asks for (one range, as resumed downloads send)."""
    found = _BYTE_RANGE.match(header.strip())
    if not found:
        return route  # a form we do not serve: the whole body, as RFC 9110 allows
    size = len(route.body)
    start, end = int(found[1]), min(int(found[2] or size - 1), size - 1)
    if start > end:
        return replace(route, body=b"", status=416, headers={**route.headers, "Content-Range": f"bytes */{size}"})
    return replace(route, body=route.body[start:end + 1], status=206,
                   headers={**route.headers, "Content-Range": f"bytes {start}-{end}/{size}"})


def _is_quick(route: Route) -> bool:
    """Answered at once from data_received, without a task."""
    return not (route.delay or route.trickle or route.chunked or route.cut_after is not None
                or route.content_length is not None or len(route.body) > WRITE_PIECE)


class _Connection(asyncio.Protocol):
    """One client connection: requests are parsed from the buffer and answered in order; quick
    routes straight away, slow ones (delay, trickle, chunked, large) in a task."""

    def __init__(self, server: LocalServer):
        self.server = server
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.busy = False  # a slow answer is being written; later requests wait in the buffer
        self.closed = False
        self.paused = False  # the transport's write buffer is full
        self.writable: asyncio.Future | None = None  # awaited while paused

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.server.connections += 1
        self.server._open.add(self)

    def connection_lost(self, exc) -> None:
        self.closed = True
        self.server._open.discard(self)
        if self.writable is not None and not self.writable.done():
            self.writable.set_exception(ConnectionResetError("client closed the connection"))

    def pause_writing(self) -> None:
        self.paused = True
        self.transport.pause_reading()

    def resume_writing(self) -> None:
        self.paused = False
        self.transport.resume_reading()
        if self.writable is not None and not self.writable.done():
            self.writable.set_result(None)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.busy:
            self._answer_buffered()

    def _answer_buffered(self) -> None:
        while not self.closed:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buffer) > MAX_HEAD:
                    self._answer_quickly(BAD_REQUEST, False, False)
                return
            request = _parse_request(bytes(self.buffer[:end]))
            if request is None:
                self._answer_quickly(BAD_REQUEST, False, False)
                return
            size = end + 4 + request.body_length
            if len(self.buffer) < size:
                return  # the request body is still on its way
            del self.buffer[:size]
            route = self.server._accept(request)
            head_only = request.method == "HEAD"
            if not _is_quick(route):
                self.busy = True
                answer = self._answer_slowly(route, head_only, request.keep_alive)
                asyncio.get_running_loop().create_task(answer)
                return
            self._answer_quickly(route, head_only, request.keep_alive)
            self.server.in_flight -= 1

    def _answer_quickly(self, route: Route, head_only: bool, keep_alive: bool) -> None:
        head = _head(route, keep_alive)
        self.transport.write(head if head_only else head + route.body)
        if not keep_alive:
            self.closed = True
            self.transport.close()

    async def _answer_slowly(self, route: Route, head_only: bool, keep_alive: bool) -> None:
        try:
            await self._write_slowly(route, head_only, keep_alive)
        except ConnectionError:
            self.server.aborted += 1
            keep_alive = False
        finally:
            self.server.in_flight -= 1
        keep_alive = keep_alive and route.cut_after is None and route.content_length is None
        self.busy = False
        if keep_alive:
            self._answer_buffered()
        elif route.reset and not self.closed:
            await self._reset()
        else:
            self.closed = True
            self.transport.close()

    async def _reset(self) -> None:
        """Send what is buffered, then abort with SO_LINGER 0: the kernel answers with a RST."""
        while self.transport.get_write_buffer_size() and not self.transport.is_closing():
            await asyncio.sleep(0.001)
        self.closed = True
        self.transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                                           struct.pack("ii", 1, 0))
        self.transport.abort()

    async def _write_slowly(self, route: Route, head_only: bool, keep_alive: bool) -> None:
        if route.delay:
            await asyncio.sleep(route.delay)
        if self.closed:
            raise ConnectionResetError("client closed the connection")
        self.transport.write(_head(route, keep_alive))
        if head_only:
            return
        body = route.body if route.cut_after is None else route.body[:route.cut_after]
        size = route.trickle_bytes if route.trickle else WRITE_PIECE
        for start in range(0, len(body), size):
            piece = body[start:start + size]
            if route.trickle:
                await asyncio.sleep(route.trickle)
            self.transport.write(b"%x\r\n%b\r\n" % (len(piece), piece) if route.chunked else piece)
            await self._drain()
        if route.chunked:
            self.transport.write(b"0\r\n\r\n")
        await self._drain()

    async def _drain(self) -> None:
        if self.paused and not self.closed:
            self.writable = asyncio.get_running_loop().create_future()
            try:
                await self.writable
            finally:
                self.writable = None
        if self.closed or self.transport.is_closing():  # is_closing: a send failed just now
            raise ConnectionResetError("client closed the connection")


class LocalServer:
    """HTTP server on ``host`` (127.0.0.1) in a background thread; a context manager.

    Counters, written only by the server's thread (read or reset them from any other):
    ``requests`` (a Counter by path), ``connections`` (accepted), ``in_flight``/``max_in_flight``
    (requests being answered at once), ``aborted`` (responses the client hung up on),
    ``last_headers`` (path -> the latest request's headers, names in lower case), and ``arrivals``
    (when each request came, ``time.monotonic()``; ``busiest_second`` counts from them). ``routes`` may be
    changed while running.
    """

    def __init__(self, routes: dict | None = None, *, host: str = "127.0.0.1", port: int = 0,
                 tls: ssl.SSLContext | None = None):
        self.routes = dict(routes or {})
        self.host = host
        self.port = port
        self.tls = tls
        self.connections = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.aborted = 0
        self.requests: Counter = Counter()
        self.last_headers: dict[str, dict] = {}
        self.arrivals: list[float] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._open: set[_Connection] = set()
        self._startup_error: BaseException | None = None

    def url(self, path: str = "/") -> str:
        scheme = "https" if self.tls else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}{path}"

    def busiest_second(self) -> int:
        """The most requests that came within any one second."""
        arrivals = sorted(self.arrivals)
        return max((bisect.bisect_left(arrivals, start + 1.0) - i for i, start in enumerate(arrivals)), default=0)

    def __enter__(self) -> LocalServer:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def start(self) -> None:
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), name="LocalServer", daemon=True)
        self._thread.start()
        ready.wait()
        if self._startup_error is not None:
            raise self._startup_error

    def close(self) -> None:
        if self._thread is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join()
            self._thread = None

    def _run(self, ready: threading.Event) -> None:
        asyncio.run(self._serve(ready))  # cancels the slow answers still running when _serve returns

    async def _serve(self, ready: threading.Event) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        try:
            server = await self._loop.create_server(lambda: _Connection(self), self.host, self.port,
                                                    ssl=self.tls, backlog=1024)
        except BaseException as err:  # reported to start() in the caller's thread
            self._startup_error = err
            ready.set()
            return
        self.port = server.sockets[0].getsockname()[1]
        ready.set()
        await self._stop.wait()
        server.close()
        for connection in list(self._open):
            connection.transport.abort()
        await server.wait_closed()

    def _accept(self, request: _Request) -> Route:
        """Count a request and pick its route."""
        path = request.path
        self.arrivals.append(time.monotonic())
        served = self.requests[path] = self.requests[path] + 1
        self.last_headers[path] = request.headers
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        route = self._route(path, served)
        asked = request.headers.get("range")
        return _ranged(route, asked) if asked and route.ranges and route.status == 200 else route

    def _route(self, path: str, served: int) -> Route:
        found = self.routes.get(path)
        if isinstance(found, list):
            return found[min(served, len(found)) - 1]
        if found is not None and not isinstance(found, Directory):
            return found
        mounts = [(prefix, d) for prefix, d in self.routes.items() if isinstance(d, Directory)]
        for prefix, directory in sorted(mounts, key=lambda item: -len(item[0])):
            base = prefix.rstrip("/")
            if path.startswith(base + "/"):
                return directory.route(path[len(base):]) or NOT_FOUND
        return NOT_FOUND


def _serve_from_stdin() -> None:
    """The child side of ServerProcess: (routes, port) arrive pickled on stdin, the port leaves on
    stdout, and the server runs until stdin closes (the parent is done, or gone)."""
    routes, port = pickle.load(sys.stdin.buffer)
    with LocalServer(routes, port=port) as server:
        print(server.port, flush=True)
        sys.stdin.buffer.read()


class ServerProcess:
    """A LocalServer in a child process, so it does not share the GIL with what is measured; a
    context manager with ``port`` and ``url(path)``. Routes must pickle (Route and Directory do)."""

    def __init__(self, routes: dict, *, port: int = 0, start_timeout: float = 30.0):
        self.routes = routes
        self.port = port
        self.start_timeout = start_timeout
        self._process: subprocess.Popen | None = None

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def __enter__(self) -> ServerProcess:
        package_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        python_path = os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))
        env = dict(os.environ, PYTHONPATH=python_path)
        self._process = subprocess.Popen(
            [sys.executable, "-c", "from crawl.serve import _serve_from_stdin; _serve_from_stdin()"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        pickle.dump((self.routes, self.port), self._process.stdin)
        self._process.stdin.flush()
        ready, _, _ = select.select([self._process.stdout], [], [], self.start_timeout)
        line = self._process.stdout.readline() if ready else b""
        if not line.strip().isdigit():
            self.__exit__()
            raise RuntimeError("the server process did not start")
        self.port = int(line)
        return self

    def __exit__(self, *exc) -> None:
        self._process.stdin.close()
        try:
            self._process.wait(5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process.stdout.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m crawl.serve",
                                     description="Serve a directory over HTTP on 127.0.0.1.")
    parser.add_argument("--dir", required=True, help="directory to serve")
    parser.add_argument("--prefix", default="/", help="URL path the directory is mounted at")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--header", action="append", default=[], metavar="'NAME: VALUE'",
                        help="add a response header (repeatable)")
    args = parser.parse_args(argv)
    if not os.path.isdir(args.dir):
        parser.error(f"not a directory: {args.dir}")
    headers = {}
    for item in args.header:
        name, colon, value = item.partition(":")
        if not colon or not name.strip():
            parser.error(f"--header {item!r}: expected 'NAME: VALUE'")
        headers[name.strip()] = value.strip()
    with LocalServer({args.prefix: Directory(args.dir, headers)}, port=args.port) as server:
        print(f"serving {args.dir} at {server.url(args.prefix)}", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
