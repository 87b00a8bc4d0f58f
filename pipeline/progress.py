"""Live progress of a run, the workers' side: how many records each funnel stage has taken in so far.

``tick`` adds to this process's counts, only while the launcher asks for them (``ALTCAP_PROGRESS`` holds
the address of its UDP socket; without it a tick costs one check). A daemon thread sends what was added
as one small JSON datagram about once a second; ``flush`` sends at once (a bundle, an input, a shard
ends), and so does exit. Fire and forget: a lost datagram only makes the display lag; the funnel comes
from Beam's metrics at the end. The counts are those of ``pipeline.metrics`` (``STAGE|in``,
``STAGE|passed``), which ticks them as it counts. A shard counts its steps when it is done, so
``tick_ahead`` shows each record as it leaves the shard's steps and the count that comes later adds
only what was not shown. The launcher's side is ``pipeline.progress_monitor``.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import socket
import threading
from collections import Counter

ENV = "ALTCAP_PROGRESS"  # host:port of the launcher's UDP socket
SEND_EVERY_S = 1.0
INPUTS_DONE = "inputs|done"  # input items read to their end
IN, PASSED = "|in", "|passed"


def shows(name: str) -> bool:
    """Whether progress shows a counter: a stage's records in and passed."""
    return name.endswith((IN, PASSED)) and name.count("|") == 1


class _Sender:
    """This process's counts not sent yet, and the daemon thread that sends them."""

    def __init__(self, address: tuple[str, int]):
        self.address = address
        self.lock = threading.Lock()
        self.pending: Counter = Counter()
        self.ahead: Counter = Counter()  # shown by ``tick_ahead``, not counted yet
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.stopped = threading.Event()
        threading.Thread(target=self._send_every, name="altcap-progress", daemon=True).start()

    def add(self, name: str, n: int, ahead: bool) -> None:
        with self.lock:
            if ahead:
                self.ahead[name] += n
            elif taken := min(n, self.ahead[name]):
                self.ahead[name] -= taken
                n -= taken
            if n:
                self.pending[name] += n

    def flush(self) -> None:
        with self.lock:
            deltas, self.pending = self.pending, Counter()
        if deltas:
            with contextlib.suppress(OSError):  # a full buffer or a launcher gone: the display lags
                self.socket.sendto(json.dumps(deltas).encode(), self.address)

    def _send_every(self) -> None:
        while not self.stopped.wait(SEND_EVERY_S):
            self.flush()

    def close(self) -> None:
        self.stopped.set()
        self.flush()
        self.socket.close()


_sender: _Sender | None = None
_resolved = False
_resolving = threading.Lock()


def _current() -> _Sender | None:
    global _sender, _resolved
    with _resolving:
        if not _resolved:
            host, _, port = os.environ.get(ENV, "").rpartition(":")
            if host and port.isdigit():
                _sender = _Sender((host, int(port)))
                atexit.register(_sender.close)  # a worker process's last counts
            _resolved = True
    return _sender


def reset() -> None:
    """Send what this process counted and read ``ALTCAP_PROGRESS`` again at the next tick."""
    global _sender, _resolved
    with _resolving:
        if _sender is not None:
            atexit.unregister(_sender.close)
            _sender.close()
        _sender, _resolved = None, False


def tick(name: str, n: int = 1) -> None:
    """``n`` more counted under ``name`` (less what ``tick_ahead`` showed of it already)."""
    sender = _sender if _resolved else _current()
    if sender is not None:
        sender.add(name, n, ahead=False)


def tick_ahead(names: tuple[str, ...]) -> None:
    """One more under each of ``names`` shown now, before the count that will come for it."""
    sender = _sender if _resolved else _current()
    if sender is not None:
        for name in names:
            sender.add(name, 1, ahead=True)


def flush() -> None:
    """Send this process's counts now rather than within the second."""
    if _sender is not None:
        _sender.flush()
