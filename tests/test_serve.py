"""crawl.serve: the local HTTP server that tests, the demo and benchmarks fetch from."""

from __future__ import annotations

import http.client
import socket
import subprocess
import sys
import threading
import time

import pytest

from crawl.serve import Directory, LocalServer, Route, ServerProcess


def _get(server: LocalServer, path: str, method: str = "GET", headers: dict | None = None):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request(method, path, headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def _raw_exchange(port: int, data: bytes, expect_end: bytes) -> bytes:
    """Send raw bytes, read until ``expect_end`` appears (or the server closes)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        received = b""
        while expect_end not in received:
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
        return received


def test_routes_status_headers_and_404():
    routes = {
        "/img.jpg": Route(b"JPEGDATA", content_type="image/jpeg", headers={"X-Robots-Tag": "noai"}),
        "/gone": Route(b"gone", status=410),
    }
    with LocalServer(routes) as server:
        assert server.url("/img.jpg") == f"http://127.0.0.1:{server.port}/img.jpg"
        status, headers, body = _get(server, "/img.jpg?size=large")
        assert (status, body) == (200, b"JPEGDATA")
        assert headers["Content-Type"] == "image/jpeg"
        assert headers["Content-Length"] == "8"
        assert headers["X-Robots-Tag"] == "noai"
        assert _get(server, "/gone")[0] == 410
        assert _get(server, "/missing")[0] == 404
        assert server.requests == {"/img.jpg": 1, "/gone": 1, "/missing": 1}


def test_head_sends_length_but_no_body():
    with LocalServer({"/a": Route(b"x" * 1000)}) as server:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        conn.request("HEAD", "/a")
        response = conn.getresponse()
        assert response.getheader("Content-Length") == "1000"
        assert response.read() == b""
        conn.request("GET", "/a")  # the connection is still in step after the HEAD
        assert conn.getresponse().read() == b"x" * 1000
        conn.close()


def test_keep_alive_and_connection_close():
    with LocalServer({"/a": Route(b"hello")}) as server:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        for _ in range(5):
            conn.request("GET", "/a")
            assert conn.getresponse().read() == b"hello"
        conn.close()
        assert server.connections == 1
        reply = _raw_exchange(server.port, b"GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", b"\0")
        assert reply.startswith(b"HTTP/1.1 200 OK\r\n") and b"Connection: close" in reply
        reply = _raw_exchange(server.port, b"GET /a HTTP/1.0\r\n\r\n", b"\0")  # 1.0: closed after
        assert reply.endswith(b"hello")


def test_pipelined_requests_are_answered_in_order():
    routes = {"/slow": Route(b"first", delay=0.2), "/fast": Route(b"second")}
    with LocalServer(routes) as server:
        request = b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\nGET /fast HTTP/1.1\r\nHost: x\r\n\r\n"
        reply = _raw_exchange(server.port, request, b"second")
        assert reply.index(b"first") < reply.index(b"second")


def test_redirect_sequence_and_chunked_routes():
    routes = {
        "/old": Route(redirect_to="/new"),
        "/moved": Route(redirect_to="https://example.org/", status=301),
        "/flaky": [Route(status=503), Route(status=503), Route(b"ok")],
        "/chunked": Route(b"abc" * 50_000, chunked=True),
    }
    with LocalServer(routes) as server:
        status, headers, _ = _get(server, "/old")
        assert (status, headers["Location"]) == (302, "/new")
        assert _get(server, "/moved")[0] == 301
        assert [_get(server, "/flaky")[0] for _ in range(4)] == [503, 503, 200, 200]
        status, headers, body = _get(server, "/chunked")
        assert headers["Transfer-Encoding"] == "chunked" and "Content-Length" not in headers
        assert body == b"abc" * 50_000


def test_delay_and_trickle_take_time():
    routes = {"/delay": Route(b"d", delay=0.3), "/trickle": Route(b"abcdef", trickle=0.05, trickle_bytes=2)}
    with LocalServer(routes) as server:
        started = time.monotonic()
        assert _get(server, "/delay")[2] == b"d"
        assert time.monotonic() - started >= 0.3
        started = time.monotonic()
        assert _get(server, "/trickle")[2] == b"abcdef"
        assert time.monotonic() - started >= 0.15


def test_directory_mounted_twice_with_extra_header(tmp_path):
    (tmp_path / "a.jpg").write_bytes(b"JPEG")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.png").write_bytes(b"PNG")
    (tmp_path.parent / "secret.txt").write_bytes(b"secret")
    routes = {"/allowed": Directory(str(tmp_path)),
              "/disallowed": Directory(str(tmp_path), headers={"X-Robots-Tag": "noai"})}
    with LocalServer(routes) as server:
        status, headers, body = _get(server, "/allowed/a.jpg")
        assert (status, body, headers["Content-Type"]) == (200, b"JPEG", "image/jpeg")
        assert "X-Robots-Tag" not in headers
        status, headers, body = _get(server, "/disallowed/sub/b.png")
        assert (status, body, headers["X-Robots-Tag"]) == (200, b"PNG", "noai")
        assert _get(server, "/allowed/nope.jpg")[0] == 404
        assert _get(server, "/allowed/sub")[0] == 404  # a directory is not a file
        request = b"GET /allowed/../secret.txt HTTP/1.1\r\nHost: x\r\n\r\n"
        reply = _raw_exchange(server.port, request, b"\r\n\r\n")
        assert reply.startswith(b"HTTP/1.1 404")
        assert _get(server, "/allowed/%2e%2e/secret.txt")[0] == 404


def test_bad_request_is_refused():
    with LocalServer({}) as server:
        reply = _raw_exchange(server.port, b"NONSENSE\r\n\r\n", b"bad request")
        assert reply.startswith(b"HTTP/1.1 400")


def test_counts_concurrency_and_request_headers():
    with LocalServer({"/slow": Route(b"s", delay=0.3)}) as server:
        threads = [threading.Thread(target=_get, args=(server, "/slow", "GET", {"User-Agent": f"t{i}"}))
                   for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert server.max_in_flight == 4
        # the server counts an answer done after its last write returns, which the client may see first
        deadline = time.monotonic() + 5
        while server.in_flight and time.monotonic() < deadline:
            time.sleep(0.01)
        assert server.in_flight == 0
        assert server.requests["/slow"] == 4
        assert server.last_headers["/slow"]["user-agent"].startswith("t")


def test_client_hanging_up_is_counted_as_aborted():
    with LocalServer({"/huge": Route(b"x" * (32 * 1024 * 1024))}) as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(b"GET /huge HTTP/1.1\r\nHost: x\r\n\r\n")
            assert sock.recv(100).startswith(b"HTTP/1.1 200")
        deadline = time.monotonic() + 5
        while server.aborted == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert server.aborted == 1


def test_routes_can_change_while_running():
    with LocalServer({}) as server:
        assert _get(server, "/late")[0] == 404
        server.routes["/late"] = Route(b"here now")
        assert _get(server, "/late")[2] == b"here now"


def test_close_with_open_connections_returns_promptly():
    server = LocalServer({"/slow": Route(b"s", delay=30)}).__enter__()
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    sock.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
    time.sleep(0.1)
    started = time.monotonic()
    server.close()
    assert time.monotonic() - started < 2
    sock.close()


def test_server_process_serves_from_another_process():
    with ServerProcess({"/a": Route(b"from the child", content_type="text/plain")}) as server:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        conn.request("GET", "/a")
        assert conn.getresponse().read() == b"from the child"
        conn.close()
        process = server._process
    assert process.poll() is not None  # stopped on exit


def test_command_line_serves_a_directory(tmp_path):
    (tmp_path / "x.txt").write_bytes(b"cli")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "crawl.serve", "--dir", str(tmp_path), "--port", str(port),
               "--prefix", "/files", "--header", "X-Robots-Tag: noai"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().strip().endswith(f"http://127.0.0.1:{port}/files")
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/files/x.txt")
        response = conn.getresponse()
        assert (response.read(), response.getheader("X-Robots-Tag")) == (b"cli", "noai")
        conn.close()
    finally:
        process.terminate()
        process.wait(10)
        process.stdout.close()


def test_port_in_use_is_reported():
    with LocalServer({}) as first:
        with pytest.raises(OSError):
            LocalServer({}, port=first.port).start()
