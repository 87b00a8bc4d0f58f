"""Issue 18: with the default address rules (``download.allow_private_addresses`` false) no request
reaches a loopback, private, link-local, multicast, unspecified or reserved address, however the
URL spells it: decimal, octal, hex, short and mixed IPv4 forms, IPv6 and the IPv6 forms that carry
an IPv4 address, zone ids, ``localhost`` names, userinfo, percent-encoding, fullwidth digits, a
name that /etc/hosts maps to 127.0.0.1, and each of these behind a redirect.

Real servers on 127.0.0.1 and ::1 count what they receive; the fetcher with the default
``DownloadConfig`` and a real pipeline run (settings from ``load_config``, private addresses not
allowed) are pointed at them. A control run with private addresses allowed shows that each
reachable spelling does reach a server, so a refusal is not an accident of an unreachable address.
"""

from __future__ import annotations

import ipaddress
import json
import socket
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

import pytest

from crawl.download_config import DownloadConfig
from crawl.fetch import Fetcher
from crawl.netguard import name_refusal_reason, refusal_reason
from crawl.serve import LocalServer, Route
from filters.record import Dropped
from pipeline.config import load_config
from pipeline.run import run

from pipeline_helpers import IN_MEMORY, TEXT_RULES_OFF, jpeg, reject_rows, shard_rows

pytestmark = pytest.mark.timeout(120)

V4, V6 = "v4", "v6"  # the loopback server a spelling reaches when let through; None: no server of ours
PRIVATE, BAD = {"private_address"}, {"bad_url"}
# Names that resolve to loopback on some machines only (systemd-resolved, nss-myhostname; not a bare
# /etc/hosts, not DNS): crawl.netguard.name_refusal_reason refuses them by name before any lookup,
# so the answer is the same everywhere.
LOOKUP = PRIVATE

# (host as the URL writes it, the server it reaches if let through, the reasons the fetcher may give)
SPELLINGS = [
    ("127.0.0.1", V4, PRIVATE),
    ("2130706433", V4, PRIVATE),  # decimal
    ("0177.0.0.1", V4, PRIVATE),  # octal
    ("0x7f.0.0.1", V4, PRIVATE),  # hex
    ("0X7F.0.0.1", V4, PRIVATE),
    ("0x7f000001", V4, PRIVATE),
    ("017700000001", V4, PRIVATE),
    ("127.1", V4, PRIVATE),  # short forms
    ("127.0.1", V4, PRIVATE),
    ("0x7f.1", V4, PRIVATE),
    ("0177.1", V4, PRIVATE),
    ("0x7f.0x0.0x0.0x1", V4, PRIVATE),  # mixed
    ("0177.0.0x0.1", V4, PRIVATE),
    ("127.0.0.0x1", V4, PRIVATE),
    ("127.000.000.001", V4, PRIVATE),  # leading zeros
    ("0x0000007f.1", V4, PRIVATE),
    ("0.0.0.0", V4, PRIVATE),  # unspecified: Linux connects it to the local host
    ("0", V4, PRIVATE),
    ("localhost", V4, PRIVATE),  # /etc/hosts
    ("LOCALHOST", V4, PRIVATE),
    ("LocalHost", V4, PRIVATE),
    ("example.com@127.0.0.1", V4, PRIVATE),  # userinfo
    ("user:pass@localhost", V4, PRIVATE),
    ("１２７.０.０.１", V4, PRIVATE),  # fullwidth digits: IDNA maps them to ASCII
    ("127。0。0。1", V4, PRIVATE),  # ideographic full stops
    ("ｌｏｃａｌｈｏｓｔ", V4, PRIVATE),
    ("[::ffff:127.0.0.1]", V4, PRIVATE),  # IPv4-mapped
    ("[::ffff:7f00:1]", V4, PRIVATE),
    ("[0:0:0:0:0:ffff:7f00:1]", V4, PRIVATE),
    ("[::1]", V6, PRIVATE),
    ("[0:0:0:0:0:0:0:1]", V6, PRIVATE),
    ("[0000::0001]", V6, PRIVATE),
    ("[::]", V6, PRIVATE),  # unspecified
    ("[::127.0.0.1]", None, PRIVATE),  # IPv4-compatible
    ("[::7f00:1]", None, PRIVATE),
    ("[::ffff:0:127.0.0.1]", None, PRIVATE),  # IPv4-translated (RFC 2765)
    ("[64:ff9b::7f00:1]", None, PRIVATE),  # NAT64
    ("[64:ff9b::127.0.0.1]", None, PRIVATE),
    ("[2002:7f00:1::]", None, PRIVATE),  # 6to4
    ("[2001:0:4136:e378:8000:63bf:80ff:fffe]", None, PRIVATE),  # Teredo, client 127.0.0.1
    ("10.0.0.1", None, PRIVATE),
    ("172.16.0.1", None, PRIVATE),
    ("192.168.0.1", None, PRIVATE),
    ("169.254.169.254", None, PRIVATE),  # cloud metadata
    ("2852039166", None, PRIVATE),  # the same, decimal
    ("100.64.0.1", None, PRIVATE),
    ("224.0.0.1", None, PRIVATE),
    ("240.0.0.1", None, PRIVATE),
    ("255.255.255.255", None, PRIVATE),
    ("[fe80::1]", None, PRIVATE),
    ("[fec0::1]", None, PRIVATE),
    ("[fc00::1]", None, PRIVATE),
    ("[ff02::1]", None, PRIVATE),
    ("[fe80::1%25lo]", None, BAD),  # zone ids
    ("[::1%25lo]", None, BAD),
    ("[::1%lo]", None, BAD),
    ("%31%32%37.0.0.1", None, BAD),  # percent-encoded
    ("%6c%6fcalhost", None, BAD),
    ("127.0.0.1%09", None, BAD),
    ("[127.0.0.1]", None, BAD),
    ("localhost.", None, LOOKUP),  # trailing dot (no server: this machine's resolver has no such name)
    ("LOCALHOST.", None, LOOKUP),
    ("127.0.0.1.", None, LOOKUP),
    ("images.localhost", None, LOOKUP),
    ("a.b.localhost.", None, LOOKUP),
]
# Location headers are Latin-1 on the wire (crawl/serve.py writes them so, http.client reads them
# so): the non-Latin-1 spellings cannot be sent as a redirect target.
REDIRECTED = [(n, s) for n, s in enumerate(SPELLINGS) if all(ord(c) < 256 for c in s[0])]
SPELLINGS_BY_HOST = {host: reasons for host, _, reasons in SPELLINGS}
HOP_HOST = "public.altcap.test"  # a public-looking first hop, on our server through connect_to
JPEG = jpeg(8, 8)


@pytest.fixture(scope="module")
def servers():
    """The loopback servers on 127.0.0.1 and ::1 (None where the machine has no IPv6 loopback)."""
    routes = {f"/s/{n}.jpg": Route(JPEG, content_type="image/jpeg") for n in range(len(SPELLINGS))}
    routes["/x.jpg"] = routes["/s/0.jpg"]
    with ExitStack() as stack:
        v4 = stack.enter_context(LocalServer(routes))
        try:
            v6 = stack.enter_context(LocalServer(routes, host="::1"))
        except OSError:
            v6 = None
        for n, (host, where, _) in REDIRECTED:
            v4.routes[f"/hop/{n}"] = Route(redirect_to=target(host, where, v4, v6, n))
        yield v4, v6


def target(host: str, where: str | None, v4: LocalServer, v6: LocalServer | None, n: int) -> str:
    port = v6.port if where == V6 and v6 is not None else v4.port
    return f"http://{host}:{port}/s/{n}.jpg"


def hop(n: int) -> str:
    return f"http://{HOP_HOST}/hop/{n}"


def outcome(fetcher: Fetcher, url: str) -> str:
    try:
        fetcher.fetch(url)
    except Dropped as drop:
        return drop.reason
    return "fetched"


def outcomes(fetcher: Fetcher, urls: dict[str, str]) -> dict[str, str]:
    """{name: outcome} of fetching {name: url} all at once: a spelling let through to an address
    that never answers costs the default timeout and retries (30 s) once, not once per spelling."""
    with ThreadPoolExecutor(len(urls)) as pool:
        return dict(zip(urls, pool.map(lambda url: outcome(fetcher, url), urls.values())))


def requests_but_hops(server: LocalServer | None) -> dict:
    requests = server.requests.items() if server is not None else ()
    return {path: count for path, count in requests if not path.startswith("/hop/")}


def connections(*servers: LocalServer | None) -> list[int]:
    return [server.connections for server in servers if server is not None]


def reset(*servers: LocalServer | None) -> None:
    for server in servers:
        if server is not None:
            server.requests.clear()


def test_no_spelling_reaches_a_server_with_the_default_config(servers):
    v4, v6 = servers
    reset(v4, v6)
    before = connections(v4, v6)
    with Fetcher(DownloadConfig()) as fetcher:
        found = outcomes(fetcher, {host: target(host, where, v4, v6, n)
                                   for n, (host, where, _) in enumerate(SPELLINGS)})
    assert {host: reason for host, reason in found.items() if reason not in SPELLINGS_BY_HOST[host]} == {}
    assert (requests_but_hops(v4), requests_but_hops(v6)) == ({}, {})
    assert connections(v4, v6) == before  # not even a connection


def test_no_redirect_reaches_a_server_with_the_default_config(servers):
    v4, v6 = servers
    reset(v4, v6)
    with Fetcher(DownloadConfig(connect_to=[f"{HOP_HOST}:80:127.0.0.1:{v4.port}"])) as fetcher:
        found = outcomes(fetcher, {host: hop(n) for n, (host, _, _) in REDIRECTED})
    assert {host: reason for host, reason in found.items() if reason not in SPELLINGS_BY_HOST[host]} == {}
    assert v4.requests == {f"/hop/{n}": 1 for n, _ in REDIRECTED}  # the first hop alone, once each
    assert requests_but_hops(v6) == {}


def test_each_reachable_spelling_reaches_its_server_when_private_addresses_are_allowed(servers):
    # The control: what the tests above refuse would have been served.
    v4, v6 = servers
    reset(v4, v6)
    reachable = [(n, host, where) for n, (host, where, reasons) in enumerate(SPELLINGS)
                 if (where == V4 or where == V6 and v6 is not None) and reasons == PRIVATE]
    config = DownloadConfig(allow_private_addresses=True, retries=0, timeout=5, host_rps=0,
                            connect_to=[f"{HOP_HOST}:80:127.0.0.1:{v4.port}"])
    with Fetcher(config) as fetcher:
        direct = {host: outcome(fetcher, target(host, where, v4, v6, n)) for n, host, where in reachable}
        redirected = {host: outcome(fetcher, hop(n)) for n, host, _ in reachable if (n, SPELLINGS[n]) in REDIRECTED}
    assert set(direct.values()) == set(redirected.values()) == {"fetched"}
    served = {**requests_but_hops(v4), **requests_but_hops(v6)}
    assert served == {f"/s/{n}.jpg": 1 + ((n, SPELLINGS[n]) in REDIRECTED) for n, _, _ in reachable}


ODD_IPV4 = ["2130706433", "0177.0.0.1", "0x7f.0.0.1", "0x7f000001", "017700000001", "127.1", "0x7f.1",
            "127.0.0.0x1", "127.000.000.001"]


@pytest.mark.parametrize("spelling", ODD_IPV4)
def test_the_check_is_on_the_address_getaddrinfo_gives(servers, spelling):
    # Python's ipaddress reads none of these spellings; inet_aton, and so getaddrinfo and connect(),
    # read them all as 127.0.0.1. The fetcher checks what getaddrinfo gave, the address it connects to.
    with pytest.raises(ValueError):
        ipaddress.ip_address(spelling)
    resolved = {info[4][0] for info in socket.getaddrinfo(spelling, 80, type=socket.SOCK_STREAM)}
    assert resolved == {"127.0.0.1"} and refusal_reason("127.0.0.1") == "loopback"
    v4, _ = servers
    reset(v4)
    with Fetcher(DownloadConfig()) as fetcher, pytest.raises(Dropped) as drop:
        fetcher.fetch(f"http://{spelling}:{v4.port}/x.jpg")
    assert drop.value.reason == "private_address"
    assert f"{spelling} is 127.0.0.1 (loopback)" in drop.value.detail
    assert v4.requests["/x.jpg"] == 0


@pytest.mark.parametrize(("host", "reason"), [
    ("localhost", "loopback (a localhost name, RFC 6761)"),
    ("localhost.", "loopback (a localhost name, RFC 6761)"),
    ("LOCALHOST..", "loopback (a localhost name, RFC 6761)"),
    ("images.localhost", "loopback (a localhost name, RFC 6761)"),
    ("a.b.localhost.", "loopback (a localhost name, RFC 6761)"),
    ("127.0.0.1.", "loopback"),
    ("0x7f.1.", "loopback"),
    ("2130706433.", "loopback"),
    ("10.0.0.1.", "private"),
    ("8.8.8.8.", None),  # public: resolve it as any name
    ("127.0.0.1", None),  # no dot to drop: getaddrinfo reads the number, the address check refuses it
    ("localhost.example.com", None),
    ("mylocalhost", None),
    ("example.com.", None),
    ("1.2.3.4.5.", None),
])
def test_names_refused_before_any_lookup(host, reason):
    assert name_refusal_reason(host) == reason


def test_a_pipeline_run_with_the_default_address_rules_refuses_every_spelling(servers, tmp_path):
    v4, v6 = servers
    reset(v4, v6)
    rows = [(f"direct {n}", target(host, where, v4, v6, n), reasons)
            for n, (host, where, reasons) in enumerate(SPELLINGS)]
    rows += [(f"redirect {n}", hop(n), reasons) for n, (_, _, reasons) in REDIRECTED]
    (tmp_path / "urls.tsv").write_text("".join(f"{caption}\t{url}\n" for caption, url, _ in rows), encoding="utf-8")
    config = load_config(None, [*TEXT_RULES_OFF, "download.retries=0", "download.host_rps=0",
                                f"download.connect_to={json.dumps([f'{HOP_HOST}:80:127.0.0.1:{v4.port}'])}"])
    assert config.download.allow_private_addresses is False
    stats = run([str(tmp_path / "urls.tsv")], str(tmp_path / "out"), config, beam_args=IN_MEMORY)

    assert requests_but_hops(v4) == {} and requests_but_hops(v6) == {}
    assert v4.requests == {f"/hop/{n}": 1 for n, _ in REDIRECTED}
    rejects = {row["caption"]: (row["stage"], row["reason"]) for row in reject_rows(tmp_path / "out")}
    assert stats["samples"] == 0 and shard_rows(tmp_path / "out") == []
    assert len(rejects) == len(rows)  # records in = rejects: none lost, none kept
    wrong = {caption: (rejects[caption], url) for caption, url, reasons in rows
             if rejects[caption][1] not in reasons or (rejects[caption][1] == "private_address"
                                                       and rejects[caption][0] != "download")}
    assert wrong == {}
