"""Read a large remote file (a WARC or WAT over HTTP(S)) as a stream that survives broken connections.

``ResumableHTTPStream(url, policy)`` is a binary read-only stream for FastWARC: it never holds the
file, only what the caller reads. When a connection breaks mid-file it asks again with
``Range: bytes=N-`` from the byte reached; a server that ignores the range answers 200 with the
whole file and the bytes already read are skipped. Failures are retried with exponential backoff;
a read gives up (``HTTPStreamError``) after ``policy.retries`` failures in a row without a byte of
progress, so a long file on a flaky link still finishes while a dead one ends.

The waits follow Common Crawl's published advice for data.commoncrawl.org (status.commoncrawl.org,
"Access Details & Workarounds"; the Oct/Nov 2023 post on 503 "Slow Down"): the bucket answers an
overloaded moment with 503 to everyone; politely retrying whole-file downloads "no more than once
per second" gets through, and once a request is through the whole file follows without further
rate checks; clients must not ignore 4xx/5xx answers but slow down. Hence the first wait of
``backoff_s`` (1 s by default), doubled after each failure up to ``MAX_BACKOFF_S``, a
``Retry-After`` honoured, and one request per file (plus resumes), never per record.
"""

from __future__ import annotations

import http.client
import io
import random
import re
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

TIMEOUT_S = 60.0  # connect and each read: a stalled transfer is cut and resumed after this long
MAX_BACKOFF_S = 60.0
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
SKIP_PIECE = 1 << 20
USER_AGENT = "altcap/0.1 (+https://github.com/altcap/altcap; Common Crawl reader)"
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


class HTTPStreamError(Exception):
    """The file cannot be read to its end: a refusal (``status`` 404, 403, ...) or too many failures."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class _Retry(Exception):
    """One attempt failed in a way worth retrying; ``wait`` is the server's Retry-After, if any."""

    def __init__(self, message: str, wait: float | None = None):
        super().__init__(message)
        self.wait = wait


@dataclass(frozen=True)
class RetryPolicy:
    retries: int = 10  # failures in a row (without progress) before the file is given up
    backoff_s: float = 1.0  # the first wait; doubled after each further failure
    user_agent: str = USER_AGENT


def is_http(path: str) -> bool:
    return path.startswith(("http://", "https://"))


def backoff_wait(policy: RetryPolicy, failures: int, retry_after: float | None) -> float:
    """Seconds to wait before attempt ``failures + 1``: exponential with up to 25% jitter (so the
    workers that failed together do not come back together), at least the server's Retry-After."""
    wait = min(MAX_BACKOFF_S, policy.backoff_s * 2 ** (failures - 1)) * random.uniform(1.0, 1.25)
    return min(MAX_BACKOFF_S, max(wait, retry_after or 0.0))


def _retry_after(response: http.client.HTTPResponse) -> float | None:
    value = (response.getheader("Retry-After") or "").strip()
    return float(value) if value.isdigit() else None


class ResumableHTTPStream(io.RawIOBase):
    """The bytes at ``url``, read in order; ``position`` bytes so far, ``resumes`` ranged restarts."""

    def __init__(self, url: str, policy: RetryPolicy = RetryPolicy()):
        super().__init__()
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise HTTPStreamError(f"{url}: not an http(s) URL")
        self.url = url
        self.policy = policy
        self.position = 0
        self.size: int | None = None
        self.resumes = 0
        self._parts = parts
        self._connection: http.client.HTTPConnection | None = None
        self._response: http.client.HTTPResponse | None = None

    def readable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def readinto(self, buffer) -> int:
        failures = 0
        while True:
            try:
                if self._response is None:
                    self._open()
                count = self._response.readinto(buffer)
                if not count and buffer and self._response.length:  # http.client leaves this to us
                    raise http.client.IncompleteRead(b"", self._response.length)
            except HTTPStreamError:
                self._disconnect()
                raise
            except (OSError, http.client.HTTPException, _Retry) as error:
                self._disconnect()
                failures += 1
                if failures > self.policy.retries:
                    cause = error if isinstance(error, _Retry) else f"{type(error).__name__}: {error}"
                    raise HTTPStreamError(f"{self.url}: gave up after {failures} failed attempts at byte "
                                          f"{self.position}: {cause}") from None
                time.sleep(backoff_wait(self.policy, failures, getattr(error, "wait", None)))
                continue
            self.position += count
            return count

    def close(self) -> None:
        self._disconnect()
        super().close()

    def _disconnect(self) -> None:
        if self._connection is not None:
            self._connection.close()
        self._connection = self._response = None

    def _open(self) -> None:
        """Request the rest of the file, from ``position``."""
        parts = self._parts
        connection_type = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        self._connection = connection_type(parts.hostname, parts.port, timeout=TIMEOUT_S)
        headers = {"User-Agent": self.policy.user_agent, "Accept-Encoding": "identity"}
        if self.position:
            headers["Range"] = f"bytes={self.position}-"
            self.resumes += 1
        target = parts.path or "/"
        self._connection.request("GET", f"{target}?{parts.query}" if parts.query else target, headers=headers)
        response = self._connection.getresponse()
        if response.status in RETRY_STATUSES:
            raise _Retry(f"HTTP {response.status}", _retry_after(response))
        if response.status == 206 and self.position:
            self._check_range(response)
        elif response.status == 200:
            length = response.getheader("Content-Length")
            self.size = int(length) if length and length.isdigit() else self.size
            self._skip(response, self.position)
        else:
            raise HTTPStreamError(f"{self.url}: HTTP {response.status} {response.reason}".rstrip(), response.status)
        self._response = response

    def _check_range(self, response: http.client.HTTPResponse) -> None:
        found = _CONTENT_RANGE.fullmatch(response.getheader("Content-Range") or "")
        if not found or int(found[1]) != self.position:
            raise HTTPStreamError(f"{self.url}: asked for bytes from {self.position}, got Content-Range "
                                  f"{response.getheader('Content-Range')!r}")
        if found[3] != "*" and self.size is not None and int(found[3]) != self.size:
            raise HTTPStreamError(f"{self.url}: the file changed size while read ({self.size} bytes, now {found[3]})")

    @staticmethod
    def _skip(response: http.client.HTTPResponse, count: int) -> None:
        """Read past ``count`` bytes (a server that ignored the Range header sent the whole file)."""
        while count:
            piece = response.read(min(count, SKIP_PIECE))
            if not piece:
                raise http.client.IncompleteRead(b"", count)
            count -= len(piece)

