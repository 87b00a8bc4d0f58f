"""The downloader's HTTP client: pooled keep-alive connections on ``http.client``, safe by default.

``Fetcher(config).fetch(url)`` returns a ``FetchResult`` or raises ``filters.record.Dropped`` with
one of ``REASONS`` (or ``http_<code>``, with ``http_status`` among the fields). One Fetcher is shared
by all the downloader's threads: connections are reused across threads, at most
``config.per_host`` requests are in flight per host, and each attempt has an overall deadline.

Safety: the host is resolved here and every address checked (``crawl.netguard``) before the
connection is made to that very address, so DNS rebinding cannot slip a private address in; TLS
still verifies the certificate for the URL's host name. Redirects are followed by hand and each hop
is checked again. The one exception is an address a ``download.connect_to`` rule names for a host:
the operator chose it, as with curl's ``--connect-to``, so a host can be served from a local or
internal address while every other private address stays refused, a redirect to ``localhost`` or
``127.0.0.1`` included (issue 18; ``allow_private_addresses`` would open them all to the web).
"""

from __future__ import annotations

import http.client
import math
import re
import socket
import ssl
import struct
import threading
import time
import zlib
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import NamedTuple
from urllib.parse import quote, urljoin, urlsplit

import brotli

from crawl.download_config import DownloadConfig
from crawl.netguard import connect_target, name_refusal_reason, parse_connect_to, refusal_reason
from crawl.robots import x_robots_tag_disallows
from filters.record import Dropped
from filters.settings import ConfigError

REASONS = ("bad_url", "unsupported_scheme", "dns_error", "private_address", "connection_error",
           "timeout", "tls_error", "too_many_redirects", "too_large", "x_robots_tag", "empty_body",
           "not_html", "bad_encoding")  # and http_<code>

DEFAULT_PORTS = {"http": 80, "https": 443}
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
DEADLINE_FACTOR = 3  # one attempt (connect, request, headers, body) may take at most 3x the timeout
MAX_RETRY_AFTER = 10.0  # seconds; a server asking for a longer wait gets no retry
READ_SIZE = 256 * 1024
DRAIN_LIMIT = 64 * 1024  # error and redirect bodies up to this size are read to keep the connection
IDLE_TTL = 20.0  # seconds an idle pooled connection is trusted
HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
ACCEPT = {
    "image": "image/avif,image/webp,image/apng,image/*,*/*;q=0.8",
    "html": "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8",
    "any": "*/*",
}
ACCEPT_ENCODING = "gzip, deflate, br"

_HOST = re.compile(r"[a-z0-9._:-]+\Z")
_BRACKETED = re.compile(r"\[[^\]]*\](?::\d*)?\Z")  # "[v6]" or "[v6]:port" ends the netloc
_NOT_PRINTABLE = re.compile(r"[^\x21-\x7e]")
_SAFE_IN_TARGET = "!#$%&'()*+,-./:;=?@[]_~"
# Errors that mean a reused keep-alive connection had been closed by the server meanwhile, or
# holds no reply but bytes an earlier response sent past its Content-Length (issue 18).
_STALE = (ConnectionResetError, BrokenPipeError, ConnectionAbortedError, ssl.SSLEOFError, http.client.HTTPException)


@dataclass(slots=True)
class FetchResult:
    url: str  # as asked
    final_url: str  # after redirects
    status: int
    body: bytes  # decoded (Content-Encoding removed)
    content_type: str
    headers: list  # [(name, value)] of the final response
    redirects: int
    elapsed: float  # seconds, all hops and retries


@dataclass(slots=True)
class _Target:
    url: str
    scheme: str
    host: str  # lower case, IDNA-encoded, no brackets
    port: int
    host_header: str
    path: str  # request target: path and query, percent-encoded
    connect_host: str  # where the connection goes (differs under connect_to)
    connect_port: int

    @property
    def pool_key(self) -> tuple:
        return self.scheme, self.host, self.port, self.connect_host, self.connect_port

    @property
    def named_by_operator(self) -> bool:
        """A ``download.connect_to`` rule named the address to connect to: the operator chose it."""
        return self.connect_host != self.host


def _parse_target(url: str, connect_to) -> _Target:
    try:
        parts = urlsplit(url)
        explicit_port = parts.port
    except ValueError as err:
        raise Dropped("bad_url", f"{url}: {err}") from None
    if "[" in parts.netloc and not _BRACKETED.search(parts.netloc):
        raise Dropped("bad_url", f"{url}: junk after the IPv6 address")  # urlsplit takes "[::1]x"
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise Dropped("unsupported_scheme", url)
    host = parts.hostname or ""
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise Dropped("bad_url", f"{url}: bad host name") from None
    if not _HOST.match(host):
        raise Dropped("bad_url", f"{url}: bad or missing host")
    port = explicit_port or DEFAULT_PORTS[scheme]
    host_header = f"[{host}]" if ":" in host else host
    if explicit_port is not None:
        host_header += f":{explicit_port}"
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    if _NOT_PRINTABLE.search(path):
        path = quote(path, safe=_SAFE_IN_TARGET)
    connect_host, connect_port = connect_target(host, port, connect_to)
    return _Target(url, scheme, host, port, host_header, path, connect_host, connect_port)


class _Deadline:
    """Socket mixin: each read waits at most the read timeout, and all reads of an attempt end by
    its deadline, so a server trickling bytes just faster than the timeout cannot hold a thread."""

    deadline = math.inf
    read_timeout = math.inf  # the per-read limit in force

    def arm(self, deadline: float, read_timeout: float) -> None:
        """Start an attempt."""
        self.deadline = deadline
        if read_timeout != self.read_timeout:
            self._limit_reads(read_timeout)

    def recv_into(self, *args, **kwargs):
        remaining = self.deadline - time.monotonic()
        if remaining < self.read_timeout:
            if remaining <= 0:
                raise TimeoutError("overall deadline passed")
            self._limit_reads(remaining)
        return super().recv_into(*args, **kwargs)


class _Socket(_Deadline, socket.socket):
    """Plain TCP, blocking, with kernel timeouts (SO_RCVTIMEO/SO_SNDTIMEO): one system call per
    read instead of Python's poll-then-read, which also saves a GIL hand-off under many threads."""

    def _limit_reads(self, seconds: float) -> None:
        self.read_timeout = seconds
        micros = max(1, round(seconds * 1_000_000))  # 0 would mean no limit at all
        timeval = struct.pack("ll", micros // 1_000_000, micros % 1_000_000)  # Linux/macOS timeval
        self.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeval)
        self.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, timeval)

    def recv_into(self, *args, **kwargs):
        try:
            return super().recv_into(*args, **kwargs)
        except BlockingIOError:  # the kernel timeout expired
            raise TimeoutError("read timed out") from None


class _TLSSocket(_Deadline, ssl.SSLSocket):
    """TLS keeps Python's socket timeout for each read."""

    def _limit_reads(self, seconds: float) -> None:
        self.read_timeout = seconds
        self.settimeout(seconds)


class _Pool:
    """Idle keep-alive connections by key, newest out first; bounded per key and in total
    (the oldest idle connection is closed to make room)."""

    def __init__(self, per_key: int, total: int):
        self._per_key = per_key
        self._total = total
        self._lock = threading.Lock()
        self._idle: dict[tuple, dict[http.client.HTTPConnection, float]] = {}
        self._order: OrderedDict[http.client.HTTPConnection, tuple] = OrderedDict()
        self._closed = False

    def take(self, key: tuple) -> http.client.HTTPConnection | None:
        with self._lock:
            idle = self._idle.get(key)
            if not idle:
                return None
            conn, since = idle.popitem()
            del self._order[conn]
            if not idle:
                del self._idle[key]
        if time.monotonic() - since > IDLE_TTL:
            conn.close()
            return None
        return conn

    def put(self, key: tuple, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            if self._closed:
                conn.close()
                return
            idle = self._idle.setdefault(key, {})
            idle[conn] = time.monotonic()
            self._order[conn] = key
            if len(idle) > self._per_key:
                self._discard(next(iter(idle)))
            if len(self._order) > self._total:
                self._discard(next(iter(self._order)))

    def _discard(self, conn: http.client.HTTPConnection) -> None:  # lock held
        key = self._order.pop(conn)
        idle = self._idle[key]
        del idle[conn]
        if not idle:
            del self._idle[key]
        conn.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            for conn in self._order:
                conn.close()
            self._order.clear()
            self._idle.clear()


class _Share(NamedTuple):
    """This fetch's share of its host's limits."""

    in_flight: int
    interval: float  # seconds between the starts of its requests to the host (0: no limit)


class _HostSlots:
    """At most ``limit`` holders per host at once (the limit of the host's first holder); a host's
    semaphore lives only while in use."""

    def __init__(self):
        self._lock = threading.Lock()
        self._slots: dict[str, list] = {}  # host -> [semaphore, holders and waiters]

    @contextmanager
    def hold(self, host: str, limit: int):
        with self._lock:
            slot = self._slots.get(host)
            if slot is None:
                slot = self._slots[host] = [threading.Semaphore(limit), 0]
            slot[1] += 1
        slot[0].acquire()
        try:
            yield
        finally:
            slot[0].release()
            with self._lock:
                slot[1] -= 1
                if slot[1] == 0:
                    del self._slots[host]


class _HostPace:
    """Requests to one host start ``interval`` seconds apart or more, and none while the host asked
    us to wait (``Retry-After`` on a 429 or 503): the wait holds for every thread, not just the one
    that was told."""

    def __init__(self):
        self._lock = threading.Lock()
        self._next: dict[str, float] = {}  # host -> when its next request may start

    def wait(self, host: str, interval: float) -> None:
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next.get(host, now))
            if interval or start > now:
                self._next[host] = start + interval
            if len(self._next) > 4096:  # forget the hosts whose time has passed
                self._next = {h: t for h, t in self._next.items() if t > now}
        if start > now:
            time.sleep(start - now)

    def pause(self, host: str, seconds: float) -> None:
        with self._lock:
            self._next[host] = max(self._next.get(host, 0.0), time.monotonic() + seconds)


def _deflate_wbits(head: bytes) -> int:
    """zlib-wrapped deflate (RFC 9110) or the raw deflate some servers send."""
    zlib_header = head[0] & 0x0F == 8 and ((head[0] << 8) | head[1]) % 31 == 0
    return zlib.MAX_WBITS if zlib_header else -zlib.MAX_WBITS


class _Decoder:
    """Streaming Content-Encoding decoder (gzip, deflate, br); never returns much more than
    ``max_length`` bytes per call, so a compression bomb is caught at the size limit."""

    def __init__(self, encoding: str):
        if encoding in ("gzip", "x-gzip"):
            self._engine = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif encoding == "br":
            self._engine = brotli.Decompressor()
        elif encoding == "deflate":
            self._engine = None  # chosen once the 2-byte header is in
        else:
            raise Dropped("bad_encoding", f"unsupported Content-Encoding {encoding!r}")
        self._head = b""

    def decode(self, data: bytes, max_length: int) -> bytes:
        try:
            if self._engine is None:
                self._head += data
                if len(self._head) < 2:
                    return b""
                data, self._head = self._head, b""
                self._engine = zlib.decompressobj(_deflate_wbits(data))
            if isinstance(self._engine, brotli.Decompressor):
                return self._engine.process(data, output_buffer_limit=max_length)
            return self._engine.decompress(data, max_length)
        except (zlib.error, brotli.error) as err:
            raise Dropped("bad_encoding", str(err)) from None

    def finish(self) -> None:
        """Raise if the encoded stream ended early."""
        engine = self._engine
        complete = engine.is_finished() if isinstance(engine, brotli.Decompressor) else (
            engine is not None and engine.eof)
        if not complete:
            raise Dropped("bad_encoding", "truncated compressed body")


def _retry_after(value: str | None) -> float:
    """Seconds from a Retry-After header (delta-seconds or HTTP date); 0 when absent or invalid."""
    if not value:
        return 0.0
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return 0.0


def retryable_status(status: int) -> bool:
    """An HTTP status worth asking again for later: a server error, a request timeout, throttling."""
    return status >= 500 or status in (408, 429)


def is_transient(reason: str) -> bool:
    """Whether a fetch that failed for ``reason`` may succeed later: a timeout, a reset or refused
    connection, or a status ``retryable_status`` names; a refusal, a 4xx or a bad body is final."""
    code = reason.removeprefix("http_")
    return reason in ("timeout", "connection_error") or (code.isdigit() and retryable_status(int(code)))


def _classify(err: Exception) -> tuple[str, bool]:
    """(reason, worth retrying) for a network-level failure."""
    if isinstance(err, socket.gaierror):
        return "dns_error", err.errno == socket.EAI_AGAIN
    if isinstance(err, ssl.SSLError) and not isinstance(err, (ssl.SSLEOFError, ssl.SSLZeroReturnError)):
        return "tls_error", False
    if isinstance(err, (TimeoutError, BlockingIOError)):  # BlockingIOError: a kernel send timeout
        return "timeout", True
    return "connection_error", True


class Fetcher:
    """Thread-safe HTTP(S) GET with pooling, per-host limits, retries, redirects and safety checks."""

    def __init__(self, config: DownloadConfig):
        self.config = config
        try:
            self._connect_to = parse_connect_to(config.connect_to)
        except ValueError as err:
            raise ConfigError(f"download.{err}") from None
        self._directives = frozenset(d.lower() for d in config.disallowed_header_directives)
        self._pool = _Pool(per_key=config.per_host, total=max(2 * config.threads, config.per_host))
        self._slots = _HostSlots()
        self._pace = _HostPace()
        self._tls = ssl.create_default_context()
        self._tls.sslsocket_class = _TLSSocket
        self._attempt_budget = DEADLINE_FACTOR * config.timeout

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Close the pooled idle connections; requests still in flight close theirs when done."""
        self._pool.close()

    def fetch(self, url: str, *, accept_html: bool = False, accept_any: bool = False,
              max_bytes: int | None = None, host_shards: int = 1) -> FetchResult:
        """GET ``url`` following redirects. By default the body is an image: an ``X-Robots-Tag``
        that forbids us drops it before the body is read. ``accept_html`` asks for an HTML page
        (``not_html`` otherwise, no X-Robots-Tag check); ``accept_any`` takes any content type
        (robots.txt). ``max_bytes`` overrides ``config.max_bytes`` for this call. ``host_shards``:
        how many shards fetch from this host (``pipeline.stages.host_spread``); this one takes its
        share of the host's limits, ``per_host // host_shards`` requests in flight (at least one)
        and ``host_rps / host_shards`` a second, so together they keep to them. A redirect to
        another host takes that host's share alike."""
        started = time.monotonic()
        kind = "any" if accept_any else "html" if accept_html else "image"
        limit = max_bytes or self.config.max_bytes
        share = _Share(max(1, self.config.per_host // host_shards),
                       host_shards / self.config.host_rps if self.config.host_rps else 0.0)
        current = url
        for redirects in range(self.config.max_redirects + 1):
            target = _parse_target(current, self._connect_to)
            status, response, body = self._request(target, kind, limit, share)
            location = response.getheader("Location") if status in REDIRECT_STATUSES else None
            if location:
                try:
                    current = urljoin(current, location.strip())
                except ValueError as err:  # an unclosed IPv6 bracket, say
                    raise Dropped("bad_url", f"{current}: redirect to malformed Location {location!r}: {err}") from None
                continue
            if not 200 <= status < 300:
                raise Dropped(f"http_{status}", current, http_status=status)
            return FetchResult(url, current, status, body, response.getheader("Content-Type", ""),
                               response.getheaders(), redirects, time.monotonic() - started)
        raise Dropped("too_many_redirects", f"{url}: more than {self.config.max_redirects}")

    def _request(self, target: _Target, kind: str, limit: int, share: _Share):
        """One hop with retries: (status, response, body); the body is read for 2xx only."""
        retries, backoff = self.config.retries, self.config.backoff
        for attempt in range(retries + 1):
            wait = backoff * 2 ** attempt
            try:
                status, response, body = self._attempt(target, kind, limit, share)
            except (OSError, http.client.HTTPException) as err:
                reason, worth_retrying = _classify(err)
                if not worth_retrying or attempt == retries:
                    raise Dropped(reason, f"{target.url}: {type(err).__name__}: {err}") from None
            else:
                asked = _retry_after(response.getheader("Retry-After"))
                if status in (429, 503):  # the host is throttling us or overloaded: all our requests wait
                    self._pace.pause(target.host, min(max(wait, asked), MAX_RETRY_AFTER))
                if not retryable_status(status) or attempt == retries or asked > MAX_RETRY_AFTER:
                    return status, response, body
                wait = max(wait, asked)
            time.sleep(wait)
        raise AssertionError("unreachable")

    def _attempt(self, target: _Target, kind: str, limit: int, share: _Share):
        """One request on a pooled or new connection, holding one of the host's slots, in its turn."""
        key = target.pool_key
        with self._slots.hold(target.host, share.in_flight):
            self._pace.wait(target.host, share.interval)
            deadline = time.monotonic() + self._attempt_budget
            conn = self._pool.take(key)
            response = None
            try:
                if conn is None:
                    conn = self._connect(target, deadline)
                    response = self._send(conn, target, kind, deadline)
                else:
                    try:
                        response = self._send(conn, target, kind, deadline)
                    except _STALE:
                        conn.close()
                        conn = self._connect(target, deadline)
                        response = self._send(conn, target, kind, deadline)
                if 200 <= response.status < 300:
                    self._check_headers(response, target, kind, limit)
                    body = self._read_body(response, target, limit)
                    reusable = True
                else:
                    body = b""
                    reusable = response.length is not None and response.length <= DRAIN_LIMIT
                    if reusable:
                        response.read()
            except BaseException:
                if conn is not None:
                    conn.close()
                if response is not None:
                    response.close()
                raise
            if reusable and conn.sock is not None:
                self._pool.put(key, conn)
            else:
                conn.close()
                response.close()
            return response.status, response, body

    def _connect(self, target: _Target, deadline: float) -> http.client.HTTPConnection:
        """Resolve, refuse unsafe addresses, connect to a checked address (TLS for https)."""
        host, port = target.connect_host, target.connect_port
        checked = not (self.config.allow_private_addresses or target.named_by_operator)
        if checked and (why := name_refusal_reason(host)) is not None:
            raise Dropped("private_address", f"{target.url}: {host} is {why}")
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except UnicodeError:  # an empty or over-long label, found by the IDNA codec
            raise Dropped("bad_url", f"{target.url}: bad host name {host!r}") from None
        if checked:
            for info in infos:
                why = refusal_reason(info[4][0])
                if why is not None:
                    raise Dropped("private_address", f"{target.url}: {host} is {info[4][0]} ({why})")
        error: OSError = OSError(f"no address for {host}")
        for family, kind, proto, _, address in infos:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("overall deadline passed while connecting")
            sock = _Socket(family, kind, proto)
            try:
                sock.settimeout(min(self.config.timeout, remaining))
                sock.connect(address)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                if target.scheme == "https":
                    sock = self._tls.wrap_socket(sock, server_hostname=target.host)
                else:
                    sock.settimeout(None)  # blocking from now on: arm() sets kernel timeouts
            except ssl.SSLError:
                sock.close()
                raise
            except OSError as err:
                sock.close()
                error = err
                continue
            conn = http.client.HTTPConnection(target.host, target.port)
            conn.auto_open = 0  # never let http.client reconnect by name, past our checks
            conn.sock = sock
            return conn
        raise error

    def _send(self, conn: http.client.HTTPConnection, target: _Target, kind: str,
              deadline: float) -> http.client.HTTPResponse:
        conn.sock.arm(deadline, self.config.timeout)
        conn.putrequest("GET", target.path, skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", target.host_header)
        conn.putheader("User-Agent", self.config.user_agent)
        conn.putheader("Accept", ACCEPT[kind])
        conn.putheader("Accept-Encoding", ACCEPT_ENCODING)
        conn.endheaders()
        return conn.getresponse()

    def _check_headers(self, response: http.client.HTTPResponse, target: _Target, kind: str,
                       limit: int) -> None:
        """Refusals decided from the headers alone, before any of the body is read."""
        if kind == "image" and self._directives:
            values = response.msg.get_all("X-Robots-Tag")
            if values and x_robots_tag_disallows(values, self.config.user_agent_token, self._directives):
                raise Dropped("x_robots_tag", "; ".join(values))
        if kind == "html":
            content_type = response.getheader("Content-Type", "")
            media_type = content_type.partition(";")[0].strip().lower()
            if media_type and media_type not in HTML_TYPES:
                raise Dropped("not_html", f"{target.url}: {content_type}")
        if response.length is not None and response.length > limit:
            raise Dropped("too_large", f"{target.url}: Content-Length {response.length} > {limit}")

    def _read_body(self, response: http.client.HTTPResponse, target: _Target, limit: int) -> bytes:
        encoding = response.getheader("Content-Encoding", "").strip().lower()
        decoder = _Decoder(encoding) if encoding and encoding != "identity" else None
        chunks, size, wire = [], 0, 0
        while response.length != 0:  # None: chunked or until close
            data = response.read1(READ_SIZE)
            if not data:
                break
            wire += len(data)
            if decoder is not None:
                data = decoder.decode(data, limit - size + 1)
            size += len(data)
            if size > limit or wire > limit:
                raise Dropped("too_large", f"{target.url}: body over {limit} bytes")
            chunks.append(data)
        if response.length:
            raise http.client.IncompleteRead(b"", response.length)
        if decoder is not None:
            decoder.finish()
        response.close()
        if not size:
            raise Dropped("empty_body", target.url)
        return b"".join(chunks)
