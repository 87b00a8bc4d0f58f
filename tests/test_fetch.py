"""crawl.fetch, crawl.netguard and crawl.robots against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import gzip
import shutil
import socket
import ssl
import subprocess
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor

import brotli
import pytest

from crawl import fetch as fetch_module
from crawl.download_config import DownloadConfig
from crawl.fetch import Fetcher
from crawl.netguard import connect_target, parse_connect_to, refusal_reason
from crawl.robots import RobotsPolicy, parse_robots_txt, x_robots_tag_disallows
from crawl.serve import LocalServer, Route
from filters.record import Dropped
from filters.settings import ConfigError

JPEG = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 40


def _config(**overrides) -> DownloadConfig:
    """Tests talk to 127.0.0.1, so they allow private addresses explicitly; small delays, and no
    rate limit (tests/test_politeness.py tests it): 2000 requests at 20 a second took 100 s."""
    values = dict(allow_private_addresses=True, timeout=2.0, retries=2, backoff=0.01, host_rps=0)
    values.update(overrides)
    return DownloadConfig(**values)


def _dropped(fetcher: Fetcher, url: str, **kwargs) -> Dropped:
    with pytest.raises(Dropped) as caught:
        fetcher.fetch(url, **kwargs)
    return caught.value


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def server():
    with LocalServer({"/img.jpg": Route(JPEG, content_type="image/jpeg")}) as running:
        yield running


# --------------------------------------------------------------------------------------------
# Success, keep-alive, status codes, retries


def test_fetch_returns_body_and_reuses_the_connection(server):
    with Fetcher(_config()) as fetcher:
        results = [fetcher.fetch(server.url("/img.jpg")) for _ in range(20)]
    first = results[0]
    assert first.body == JPEG and first.status == 200 and first.redirects == 0
    assert first.url == first.final_url == server.url("/img.jpg")
    assert first.content_type == "image/jpeg"
    assert ("Content-Length", str(len(JPEG))) in first.headers
    assert first.elapsed > 0
    assert server.requests["/img.jpg"] == 20
    assert server.connections == 1


def test_user_agent_and_accept_headers_are_sent(server):
    config = _config(user_agent="altcap-test/1.0")
    with Fetcher(config) as fetcher:
        fetcher.fetch(server.url("/img.jpg"))
    seen = server.last_headers["/img.jpg"]
    assert seen["user-agent"] == "altcap-test/1.0"
    assert seen["host"] == f"127.0.0.1:{server.port}"
    assert "image/" in seen["accept"]
    assert "gzip" in seen["accept-encoding"]


@pytest.mark.parametrize("status", [404, 403, 410])
def test_client_errors_are_dropped_without_retry(server, status):
    server.routes["/err"] = Route(b"nope", status=status)
    with Fetcher(_config()) as fetcher:
        drop = _dropped(fetcher, server.url("/err"))
    assert drop.reason == f"http_{status}"
    assert drop.fields == {"http_status": status}
    assert server.requests["/err"] == 1


def test_server_errors_are_retried_then_dropped(server):
    server.routes["/boom"] = Route(b"boom", status=500)
    with Fetcher(_config(retries=2)) as fetcher:
        drop = _dropped(fetcher, server.url("/boom"))
    assert (drop.reason, drop.fields["http_status"]) == ("http_500", 500)
    assert server.requests["/boom"] == 3
    assert server.connections == 1  # the small error bodies were read, the connection kept


def test_503_twice_then_success(server):
    server.routes["/flaky"] = [Route(status=503), Route(status=503), Route(b"finally")]
    with Fetcher(_config(retries=2)) as fetcher:
        assert fetcher.fetch(server.url("/flaky")).body == b"finally"
    assert server.requests["/flaky"] == 3


def test_429_honours_retry_after(server):
    server.routes["/busy"] = [Route(status=429, headers={"Retry-After": "1"}), Route(b"ok")]
    with Fetcher(_config(retries=1)) as fetcher:
        started = time.monotonic()
        assert fetcher.fetch(server.url("/busy")).body == b"ok"
    assert time.monotonic() - started >= 1.0
    assert server.requests["/busy"] == 2


def test_retry_after_beyond_the_cap_is_not_waited_for(server):
    server.routes["/later"] = Route(status=503, headers={"Retry-After": "3600"})
    with Fetcher(_config(retries=3)) as fetcher:
        started = time.monotonic()
        drop = _dropped(fetcher, server.url("/later"))
    assert drop.reason == "http_503"
    assert server.requests["/later"] == 1  # no retry
    assert time.monotonic() - started < fetch_module.MAX_RETRY_AFTER  # and no wait, not even the longest one allowed


def test_empty_body_and_html_checks(server):
    server.routes["/empty"] = Route(b"")
    server.routes["/page"] = Route(b"<html></html>", content_type="text/html; charset=utf-8")
    with Fetcher(_config()) as fetcher:
        assert _dropped(fetcher, server.url("/empty")).reason == "empty_body"
        assert _dropped(fetcher, server.url("/img.jpg"), accept_html=True).reason == "not_html"
        page = fetcher.fetch(server.url("/page"), accept_html=True)
        assert page.body == b"<html></html>"
        assert "text/html" in server.last_headers["/page"]["accept"]


# --------------------------------------------------------------------------------------------
# Time limits


# The server would answer after SLOW seconds; a fetch that gives up long before proves the limit
# fired, with a margin no loaded machine eats (the limits are 0.3 s a read, 3 x 0.3 s an attempt).
SLOW = 20


def test_slow_headers_time_out_within_bounds(server):
    server.routes["/slow"] = Route(b"late", delay=SLOW)
    with Fetcher(_config(timeout=0.3, retries=1)) as fetcher:
        started = time.monotonic()
        drop = _dropped(fetcher, server.url("/slow"))
    assert drop.reason == "timeout"
    assert time.monotonic() - started < SLOW / 2
    assert server.requests["/slow"] == 2


def test_trickling_body_hits_the_overall_deadline(server):
    # Each byte comes well within the read timeout, but the whole body would take SLOW seconds.
    server.routes["/trickle"] = Route(b"x" * round(SLOW / 0.1), trickle=0.1, trickle_bytes=1)
    with Fetcher(_config(timeout=0.3, retries=0)) as fetcher:
        started = time.monotonic()
        drop = _dropped(fetcher, server.url("/trickle"))
    assert drop.reason == "timeout"
    assert time.monotonic() - started < SLOW / 2


# --------------------------------------------------------------------------------------------
# Redirects


def test_redirects_relative_and_chained(server):
    server.routes.update({
        "/dir/a": Route(redirect_to="b"),  # relative to /dir/
        "/dir/b": Route(redirect_to="../c", status=301),
        "/c": Route(redirect_to=f"http://localhost:{server.port}/img.jpg", status=307),
    })
    with Fetcher(_config()) as fetcher:
        result = fetcher.fetch(server.url("/dir/a"))
    assert result.body == JPEG and result.redirects == 3
    assert result.final_url == f"http://localhost:{server.port}/img.jpg"
    assert result.url == server.url("/dir/a")


def test_redirect_loop_is_too_many(server):
    server.routes["/loop"] = Route(redirect_to="/loop")
    with Fetcher(_config(max_redirects=3)) as fetcher:
        assert _dropped(fetcher, server.url("/loop")).reason == "too_many_redirects"
    assert server.requests["/loop"] == 4


@pytest.mark.parametrize("location", ["http://[::1", "//[::1", "http://[::1]x/", "http://a b/", "http://x.test:99999/"],
                         ids=["unclosed-ipv6", "relative-unclosed-ipv6", "junk-after-ipv6", "space-in-host",
                              "port-out-of-range"])
def test_a_malformed_redirect_location_is_a_bad_url(server, location):
    # Issue 18: urljoin raises ValueError on an unclosed IPv6 bracket; it escaped the fetcher and
    # the pipeline filed the record as an internal_error. urlsplit takes "[::1]x" as host ::1.
    server.routes["/bad-location"] = Route(redirect_to=location)
    with Fetcher(_config()) as fetcher:
        drop = _dropped(fetcher, server.url("/bad-location"))
    assert drop.reason == "bad_url" and location in drop.detail
    assert server.requests["/bad-location"] == 1


def test_redirect_to_another_scheme_is_refused(server):
    server.routes["/ftp"] = Route(redirect_to="ftp://example.org/x.jpg")
    with Fetcher(_config()) as fetcher:
        assert _dropped(fetcher, server.url("/ftp")).reason == "unsupported_scheme"


def test_redirect_to_a_private_address_is_refused(server, monkeypatch):
    # This machine has no public address to serve from, so the test declares 127.0.0.1 public
    # (everything else keeps the real rules) and watches the redirect's hop get checked.
    def policy(address):
        return None if address == "127.0.0.1" else refusal_reason(address)

    monkeypatch.setattr(fetch_module, "refusal_reason", policy)
    server.routes["/to-private"] = Route(redirect_to=f"http://127.0.0.2:{server.port}/img.jpg")
    server.routes["/to-ipv6-loopback"] = Route(redirect_to=f"http://[::1]:{server.port}/img.jpg")
    with Fetcher(_config(allow_private_addresses=False)) as fetcher:
        assert fetcher.fetch(server.url("/img.jpg")).body == JPEG  # the first hop alone passes
        for path in ("/to-private", "/to-ipv6-loopback"):
            drop = _dropped(fetcher, server.url(path))
            assert drop.reason == "private_address", path
            assert "loopback" in drop.detail
    assert server.requests["/img.jpg"] == 1


# --------------------------------------------------------------------------------------------
# Size limits and content encodings


def test_content_length_over_the_limit(server):
    server.routes["/big"] = Route(b"x" * 5000)
    with Fetcher(_config(max_bytes=1000)) as fetcher:
        drop = _dropped(fetcher, server.url("/big"))
        assert drop.reason == "too_large" and "Content-Length 5000" in drop.detail
        assert fetcher.fetch(server.url("/big"), max_bytes=5000).body == b"x" * 5000


def test_chunked_body_over_the_limit_is_cut_off(server):
    server.routes["/stream"] = Route(b"y" * 3_000_000, chunked=True)
    with Fetcher(_config(max_bytes=100_000)) as fetcher:
        assert _dropped(fetcher, server.url("/stream")).reason == "too_large"
    with Fetcher(_config()) as fetcher:
        assert fetcher.fetch(server.url("/stream")).body == b"y" * 3_000_000


@pytest.mark.parametrize("encoding, encode", [
    ("gzip", gzip.compress),
    ("br", brotli.compress),
    ("deflate", zlib.compress),
    ("deflate", lambda data: zlib.compress(data)[2:-4]),  # raw deflate, as some servers send
])
def test_content_encodings_are_decoded(server, encoding, encode):
    text = b"an alt-text and an image " * 500
    server.routes["/enc"] = Route(encode(text), headers={"Content-Encoding": encoding})
    with Fetcher(_config()) as fetcher:
        assert fetcher.fetch(server.url("/enc")).body == text


@pytest.mark.parametrize("encoding, encode", [("gzip", gzip.compress),
                                              ("br", lambda data: brotli.compress(data, quality=4))])
def test_compression_bomb_is_capped_at_the_decoded_size(server, encoding, encode):
    server.routes["/bomb"] = Route(encode(bytes(50_000_000)), headers={"Content-Encoding": encoding})
    with Fetcher(_config(max_bytes=1_000_000)) as fetcher:
        assert _dropped(fetcher, server.url("/bomb")).reason == "too_large"


def test_corrupt_or_unknown_encoding(server):
    server.routes["/corrupt"] = Route(b"not gzip at all", headers={"Content-Encoding": "gzip"})
    server.routes["/cut"] = Route(gzip.compress(b"z" * 10_000)[:-20], headers={"Content-Encoding": "gzip"})
    server.routes["/zstd"] = Route(b"whatever", headers={"Content-Encoding": "zstd"})
    with Fetcher(_config()) as fetcher:
        for path in ("/corrupt", "/cut", "/zstd"):
            assert _dropped(fetcher, server.url(path)).reason == "bad_encoding", path


# --------------------------------------------------------------------------------------------
# X-Robots-Tag


@pytest.mark.parametrize("header, refused", [
    ("noai", True),
    ("noimageai", True),
    ("noindex, noimageindex", True),
    ("NoIndex", True),
    ("altcap: noai", True),
    ("ALTCAP: NOAI", True),
    ("otherbot: noai", False),
    ("nofollow", False),
    ("unavailable_after: 25 Jun 2010 15:00:00 PST", False),
    ("nosnippet, noindex, unavailable_after: 25 Jun 2010", True),
])
def test_x_robots_tag(server, header, refused):
    server.routes["/tagged"] = Route(JPEG, headers={"X-Robots-Tag": header})
    server.routes["/tagged-page"] = Route(b"<html/>", content_type="text/html",
                                          headers={"X-Robots-Tag": header})
    with Fetcher(_config()) as fetcher:
        if refused:
            drop = _dropped(fetcher, server.url("/tagged"))
            assert (drop.reason, drop.detail) == ("x_robots_tag", header)
        else:
            assert fetcher.fetch(server.url("/tagged")).body == JPEG
        # pages are governed by robots.txt, not by this header
        assert fetcher.fetch(server.url("/tagged-page"), accept_html=True).body == b"<html/>"


def test_x_robots_tag_in_several_headers(server):
    server.routes["/two"] = Route(JPEG, headers={"X-Robots-Tag": ["googlebot: noindex", "altcap: noimageai"]})
    server.routes["/others"] = Route(JPEG, headers={"X-Robots-Tag": ["googlebot: noai", "nofollow"]})
    with Fetcher(_config()) as fetcher:
        drop = _dropped(fetcher, server.url("/two"))
        assert (drop.reason, drop.detail) == ("x_robots_tag", "googlebot: noindex; altcap: noimageai")
        assert fetcher.fetch(server.url("/others")).body == JPEG


def test_x_robots_tag_rule_alone():
    directives = frozenset({"noai", "noimageai"})
    assert x_robots_tag_disallows(["otherbot: noindex", "altcap: noimageai"], "altcap", directives)
    assert not x_robots_tag_disallows(["otherbot: noai", "noindex"], "altcap", directives)
    assert not x_robots_tag_disallows([], "altcap", directives)


def test_x_robots_tag_refusal_does_not_read_the_body(server):
    server.routes["/huge-noai"] = Route(b"x" * 30_000_000, headers={"X-Robots-Tag": "noai"})
    with Fetcher(_config()) as fetcher:
        assert _dropped(fetcher, server.url("/huge-noai")).reason == "x_robots_tag"
    deadline = time.monotonic() + 5
    while server.aborted == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.aborted == 1  # the server saw the connection closed mid-body


def test_no_directives_configured_means_no_header_check(server):
    server.routes["/tagged"] = Route(JPEG, headers={"X-Robots-Tag": "noai"})
    with Fetcher(_config(disallowed_header_directives=[])) as fetcher:
        assert fetcher.fetch(server.url("/tagged")).body == JPEG


# --------------------------------------------------------------------------------------------
# Address safety and connect_to


@pytest.mark.parametrize("host", ["127.0.0.1", "10.1.2.3", "169.254.169.254", "[::1]", "localhost",
                                  "100.64.0.1", "[::ffff:127.0.0.1]", "0.0.0.0", "224.0.0.1"])
def test_private_addresses_are_refused_by_default(server, host):
    port = server.port if host in ("127.0.0.1", "localhost", "[::1]") else 80
    with Fetcher(DownloadConfig(retries=0)) as fetcher:
        drop = _dropped(fetcher, f"http://{host}:{port}/img.jpg")
    assert drop.reason == "private_address"
    assert server.requests["/img.jpg"] == 0


@pytest.mark.parametrize("address, reason", [
    ("8.8.8.8", None), ("2606:4700:4700::1111", None), ("::ffff:8.8.8.8", None),
    ("127.0.0.1", "loopback"), ("::1", "loopback"), ("10.0.0.1", "private"), ("192.168.1.1", "private"),
    ("172.16.0.1", "private"), ("169.254.169.254", "link-local"), ("fe80::1", "link-local"),
    ("100.64.0.1", "shared (CGNAT)"), ("224.0.0.1", "multicast"), ("ff02::1", "multicast"),
    ("0.0.0.0", "unspecified"), ("::", "unspecified"), ("fc00::1", "private"), ("240.0.0.1", "reserved"),
    ("::ffff:10.0.0.1", "private"), ("64:ff9b::a00:1", "private"),
    ("2002:7f00:1::1", "loopback (IPv4 in IPv6 tunnel)"), ("not-an-ip", "not an IP address"),
])
def test_address_classification(address, reason):
    assert refusal_reason(address) == reason


def test_connect_to_serves_a_real_host_name_locally(server):
    config = _config(connect_to=[f"books.toscrape.com:80:127.0.0.1:{server.port}"])
    with Fetcher(config) as fetcher:
        result = fetcher.fetch("http://books.toscrape.com/img.jpg")
    assert result.body == JPEG and result.final_url == "http://books.toscrape.com/img.jpg"
    assert server.last_headers["/img.jpg"]["host"] == "books.toscrape.com"


def test_a_connect_to_address_is_the_only_private_one_allowed(server):
    # Safe defaults (no allow_private_addresses): the address the operator named for one host is
    # used; a redirect from it to loopback by any other name is refused, and so is a rule that
    # keeps the host's own address (only its port changes).
    server.routes["/to-loopback"] = Route(redirect_to=f"http://127.0.0.1:{server.port}/img.jpg")
    server.routes["/to-localhost"] = Route(redirect_to=f"http://localhost:{server.port}/img.jpg")
    server.routes["/to-named"] = Route(redirect_to="http://books.toscrape.com/img.jpg")
    config = DownloadConfig(retries=0, connect_to=[f"books.toscrape.com:80:127.0.0.1:{server.port}",
                                                   f"localhost:81::{server.port}"])
    with Fetcher(config) as fetcher:
        assert fetcher.fetch("http://books.toscrape.com/to-named").body == JPEG
        for path in ("/to-loopback", "/to-localhost"):
            drop = _dropped(fetcher, f"http://books.toscrape.com{path}")
            assert drop.reason == "private_address" and "loopback" in drop.detail, path
        assert _dropped(fetcher, "http://localhost:81/img.jpg").reason == "private_address"
    assert server.requests["/img.jpg"] == 1


def test_connect_to_rules():
    rules = parse_connect_to(["a.example:443:b.example:8443", "::127.0.0.1:", "[::1]:80:[::2]:81"])
    assert connect_target("a.example", 443, rules) == ("b.example", 8443)
    assert connect_target("a.example", 80, rules) == ("127.0.0.1", 80)  # empty host and port match any
    assert connect_target("::1", 80, rules[2:]) == ("::2", 81)
    assert connect_target("c.example", 80, ()) == ("c.example", 80)
    with pytest.raises(ValueError):
        parse_connect_to(["only:three:fields"])
    with pytest.raises(ConfigError, match="connect_to"):
        Fetcher(DownloadConfig(connect_to=["a:99999:b:1"]))


def _make_certificate(directory, host: str):
    """A throwaway CA and a server certificate for ``host`` signed by it (openssl CLI)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl command not available")
    names = ("ca.key", "ca.pem", "server.key", "server.csr", "server.pem", "ext.cnf")
    ca_key, ca, key, csr, cert, ext = (str(directory / name) for name in names)
    (directory / "ext.cnf").write_text(f"subjectAltName=DNS:{host}\nbasicConstraints=CA:FALSE\n"
                                       "extendedKeyUsage=serverAuth\n")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    commands = [
        ["openssl", "req", "-x509", *ec, "-keyout", ca_key, "-out", ca, "-days", "2",
         "-subj", "/CN=altcap test CA",
         "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign"],
        ["openssl", "req", *ec, "-keyout", key, "-out", csr, "-subj", f"/CN={host}"],
        ["openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-out", cert,
         "-days", "2", "-extfile", ext],
    ]
    for command in commands:
        subprocess.run(command, check=True, capture_output=True)
    return ca, cert, key


def test_tls_verifies_the_url_host_name_while_connecting_elsewhere(tmp_path, monkeypatch):
    ca, cert, key = _make_certificate(tmp_path, "books.toscrape.com")
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    with LocalServer({"/img.jpg": Route(JPEG)}, tls=tls) as server:
        config = _config(retries=0, connect_to=[f":443:127.0.0.1:{server.port}"])
        with Fetcher(config) as fetcher:  # does not trust the throwaway CA
            assert _dropped(fetcher, "https://books.toscrape.com/img.jpg").reason == "tls_error"
        monkeypatch.setenv("SSL_CERT_FILE", ca)  # from here on, Fetchers trust it
        with Fetcher(config) as fetcher:
            assert fetcher.fetch("https://books.toscrape.com/img.jpg").body == JPEG
            drop = _dropped(fetcher, "https://other.example/img.jpg")  # same server, wrong name
            assert drop.reason == "tls_error"
        assert server.requests["/img.jpg"] == 1


def test_tls_reads_keep_the_timeout_and_deadline(tmp_path, monkeypatch):
    ca, cert, key = _make_certificate(tmp_path, "books.toscrape.com")
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    monkeypatch.setenv("SSL_CERT_FILE", ca)
    routes = {"/slow": Route(b"late", delay=SLOW), "/trickle": Route(b"x" * round(SLOW / 0.1), trickle=0.1)}
    with LocalServer(routes, tls=tls) as server:
        config = _config(timeout=0.3, retries=0, connect_to=[f":443:127.0.0.1:{server.port}"])
        with Fetcher(config) as fetcher:
            for path in ("/slow", "/trickle"):
                started = time.monotonic()
                assert _dropped(fetcher, f"https://books.toscrape.com{path}").reason == "timeout"
                assert time.monotonic() - started < SLOW / 2


# --------------------------------------------------------------------------------------------
# URL and network errors


@pytest.mark.parametrize("url, reason", [
    ("http://", "bad_url"),
    ("http://[::1/x", "bad_url"),
    ("http://example.org:notaport/", "bad_url"),
    ("http://a..b/x.jpg", "bad_url"),
    ("http://" + "a" * 64 + ".example/x.jpg", "bad_url"),
    ("http://exa mple.org/", "bad_url"),
    ("not a url", "unsupported_scheme"),
    ("ftp://example.org/a.jpg", "unsupported_scheme"),
    ("file:///etc/passwd", "unsupported_scheme"),
    ("data:image/png;base64,AAAA", "unsupported_scheme"),
    ("http://no-such-host.invalid/a.jpg", "dns_error"),
])
def test_url_and_dns_errors(url, reason):
    with Fetcher(_config(retries=0)) as fetcher:
        assert _dropped(fetcher, url).reason == reason


def test_connection_refused():
    with Fetcher(_config(retries=1)) as fetcher:
        assert _dropped(fetcher, f"http://127.0.0.1:{_free_port()}/x").reason == "connection_error"


def test_path_with_spaces_and_unicode_is_percent_encoded(server):
    server.routes["/a%20b/%C3%A9t%C3%A9.jpg"] = Route(JPEG)
    with Fetcher(_config()) as fetcher:
        assert fetcher.fetch(server.url("/a b/été.jpg")).body == JPEG


# --------------------------------------------------------------------------------------------
# Concurrency


def test_per_host_cap_holds_across_threads(server):
    server.routes["/slow"] = Route(b"s", delay=0.2)
    urls = [server.url("/slow")] * 8 + [f"http://localhost:{server.port}/slow"] * 8
    with Fetcher(_config(per_host=2)) as fetcher, ThreadPoolExecutor(16) as pool:
        started = time.monotonic()
        assert all(r.body == b"s" for r in pool.map(fetcher.fetch, urls))
    assert server.max_in_flight <= 4  # two hosts (127.0.0.1 and localhost), at most two each
    assert time.monotonic() - started >= 0.8  # 8 requests per host, 2 at a time, 0.2 s each


def test_32_threads_get_their_own_bodies(server):
    for i in range(64):
        server.routes[f"/img/{i}.jpg"] = Route(JPEG + str(i).encode(), content_type="image/jpeg")
    urls = [server.url(f"/img/{i % 64}.jpg") for i in range(2000)]
    with Fetcher(_config(per_host=32, threads=32)) as fetcher, ThreadPoolExecutor(32) as pool:
        results = list(pool.map(fetcher.fetch, urls))
    for url, result in zip(urls, results):
        assert result.body == JPEG + url.rsplit("/", 1)[1].split(".")[0].encode()
    assert sum(server.requests.values()) == 2000
    assert server.connections <= 64  # pooled, not one per request


def test_stale_pooled_connection_is_replaced_transparently(server):
    with Fetcher(_config(retries=0)) as fetcher:
        fetcher.fetch(server.url("/img.jpg"))
        server.close()  # drops the kept-alive connection
        with LocalServer(server.routes, port=server.port) as again:
            assert fetcher.fetch(again.url("/img.jpg")).body == JPEG
            assert again.connections == 1



@pytest.mark.parametrize("excess", [200, 70_000], ids=["some-bytes", "more-than-a-status-line"])
def test_bytes_past_a_short_content_length_do_not_poison_the_next_request(server, excess):
    # Issue 18: a server declares fewer bytes than it sends. The fetcher kept the connection, and
    # the next request on it read the excess as its status line (BadStatusLine): an innocent
    # image was dropped as a connection_error.
    body = JPEG * (1 + excess // len(JPEG))
    server.routes["/short"] = Route(body, content_length=len(body) - excess)
    with Fetcher(_config(retries=0, per_host=1)) as fetcher:
        assert fetcher.fetch(server.url("/short")).body == body[:-excess]
        time.sleep(0.05)  # the server has sent the rest and closed
        assert fetcher.fetch(server.url("/img.jpg")).body == JPEG


# --------------------------------------------------------------------------------------------
# robots.txt


ROBOTS = """\
# comments are ignored
User-agent: *
Disallow: /private/
Allow: /private/open/

User-agent: AltCap
User-agent: friendbot
Disallow: /no-altcap
Disallow: /*.gif$
Allow: /no-altcap/but-this
Disallow: /search?q=
Sitemap: https://example.org/sitemap.xml
"""


@pytest.mark.parametrize("path, allowed", [
    ("/", True),
    ("/private/x", True),  # our own group replaces the * group
    ("/no-altcap", False),
    ("/no-altcap/deeper", False),
    ("/no-altcap/but-this/one", True),  # longer Allow wins
    ("/pic.gif", False),
    ("/pic.gif?x=1", True),  # $ anchors the end
    ("/dir/pic.GIF", True),  # paths are case-sensitive
    ("/search?q=cats", False),
    ("/search", True),
    ("/robots.txt", True),
])
def test_robots_rules_for_our_token(path, allowed):
    assert parse_robots_txt(ROBOTS, "altcap").allows(path) is allowed


def test_robots_rules_fall_back_to_star_group():
    rules = parse_robots_txt(ROBOTS, "otherbot")
    assert not rules.allows("/private/x")
    assert rules.allows("/private/open/x")  # longest match: Allow
    assert rules.allows("/no-altcap")


def test_robots_details():
    text = ("Disallow: /before-any-group\nUser-agent: *\nDisallow:\n"
            "Allow: /a\nDisallow: /a\nDisallow: /%C3%A9\n")
    rules = parse_robots_txt(text, "altcap")
    assert rules.allows("/before-any-group")  # rules outside a group are ignored
    assert rules.allows("/a")  # equal length: Allow wins
    assert not rules.allows("/é") and not rules.allows("/%c3%a9")  # percent-encoding normalized
    assert parse_robots_txt("", "altcap").allows("/anything")
    assert not parse_robots_txt("User-agent: *\nDisallow: /\n", "altcap").allows("/x")


def _policy_server(robots_route):
    return LocalServer({"/robots.txt": robots_route, "/page": Route(b"<html/>", content_type="text/html")})


def test_robots_policy_fetches_once_per_host_and_applies_rules():
    with _policy_server(Route(ROBOTS.encode(), content_type="text/plain")) as server:
        with Fetcher(_config()) as fetcher:
            policy = RobotsPolicy(fetcher, "altcap")
            urls = [server.url("/no-altcap/x"), server.url("/page"), server.url("/pic.gif")] * 20
            with ThreadPoolExecutor(8) as pool:
                verdicts = list(pool.map(policy.allowed, urls))
            assert verdicts == [False, True, False] * 20
            verdict = policy.verdict(server.url("/no-altcap"))
            assert (verdict.allowed, verdict.reason) == (False, "disallowed")
            assert policy.verdict(server.url("/page")).reason == "allowed"
            assert policy.allowed(f"http://localhost:{server.port}/page")  # another host, another fetch
        assert server.requests["/robots.txt"] == 2


@pytest.mark.parametrize("robots_route, allowed, reason", [
    (Route(b"nope", status=404), True, "no_robots_txt"),
    (Route(b"nope", status=403), True, "no_robots_txt"),
    (Route(b"down", status=503), False, "robots_unreachable"),
    (Route(b"busy", status=429), False, "robots_unreachable"),
    (Route(b""), True, "allowed"),
    (Route(redirect_to="/real-robots.txt"), False, "disallowed"),
])
def test_robots_policy_status_cases(robots_route, allowed, reason):
    with _policy_server(robots_route) as server:
        server.routes["/real-robots.txt"] = Route(b"User-agent: *\nDisallow: /page\n")
        with Fetcher(_config(retries=0)) as fetcher:
            verdict = RobotsPolicy(fetcher, "altcap").verdict(server.url("/page"))
    assert (verdict.allowed, verdict.reason) == (allowed, reason)


def test_robots_policy_unreachable_host_disallows():
    with Fetcher(_config(retries=0)) as fetcher:
        verdict = RobotsPolicy(fetcher, "altcap").verdict(f"http://127.0.0.1:{_free_port()}/page")
    assert (verdict.allowed, verdict.reason) == (False, "robots_unreachable")
    assert "connection_error" in verdict.detail


def test_robots_policy_goes_through_the_safety_rules():
    with _policy_server(Route(b"")) as server:
        with Fetcher(DownloadConfig(retries=0)) as fetcher:
            verdict = RobotsPolicy(fetcher, "altcap").verdict(server.url("/page"))
        assert (verdict.allowed, verdict.reason) == (False, "robots_unreachable")
        assert "private_address" in verdict.detail
        assert server.requests["/robots.txt"] == 0


def test_robots_txt_is_not_subject_to_x_robots_tag():
    robots = Route(b"User-agent: *\nDisallow: /page\n", content_type="text/plain",
                   headers={"X-Robots-Tag": "noindex"})
    with _policy_server(robots) as server, Fetcher(_config()) as fetcher:
        assert RobotsPolicy(fetcher, "altcap").verdict(server.url("/page")).reason == "disallowed"


def test_fetcher_is_usable_from_threads_while_closing(server):
    fetcher = Fetcher(_config())
    errors = []

    def worker():
        try:
            for _ in range(50):
                fetcher.fetch(server.url("/img.jpg"))
        except Exception as err:  # noqa: BLE001 - collected for the assertion below
            errors.append(err)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    fetcher.close()  # closes idle connections; in-flight ones are closed when they finish
    for thread in threads:
        thread.join()
    assert errors == []
