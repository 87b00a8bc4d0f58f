"""Where the downloader may connect, and where it actually connects. Pure functions, no I/O.

``refusal_reason`` says why an IP address is off limits (anything but public unicast: loopback,
private, link-local, multicast, reserved, CGNAT, and IPv6 forms that embed such an IPv4 address);
``name_refusal_reason`` refuses ``localhost`` names before any lookup.
``parse_connect_to`` and ``connect_target`` implement curl's ``--connect-to HOST:PORT:TO_HOST:TO_PORT``.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass

_SHARED = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT (RFC 6598)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # well-known NAT64 prefix: the last 32 bits are IPv4
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")  # local-use NAT64 (RFC 8215)

_PROPERTIES = (  # checked in this order, so the reason names the most specific class
    ("is_unspecified", "unspecified"),
    ("is_loopback", "loopback"),
    ("is_link_local", "link-local"),
    ("is_multicast", "multicast"),
    ("is_reserved", "reserved"),
    ("is_site_local", "site-local"),
    ("is_private", "private"),
)


def _translated_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (IPv4-mapped, NAT64), if any."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _tunnelled_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 endpoint a tunnelling IPv6 address carries (6to4, Teredo client), if any."""
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    return None


def refusal_reason(address: str) -> str | None:
    """Why ``address`` (an IP literal, IPv6 zone allowed) must not be contacted; None if public."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return "not an IP address"
    if ip.version == 6:
        translated = _translated_ipv4(ip)
        if translated is not None:
            return refusal_reason(str(translated))
        tunnelled = _tunnelled_ipv4(ip)
        inner = refusal_reason(str(tunnelled)) if tunnelled is not None else None
        if inner is not None:
            return f"{inner} (IPv4 in IPv6 tunnel)"
        if ip in _NAT64_LOCAL:
            return "private"
    for attribute, reason in _PROPERTIES:
        if getattr(ip, attribute, False):
            return reason
    if ip.version == 4 and ip in _SHARED:
        return "shared (CGNAT)"
    if not ip.is_global:
        return "not globally routable"
    return None


def name_refusal_reason(host: str) -> str | None:
    """Why a host *name* must not even be looked up; None: resolve it, then check every address.

    ``localhost`` and every name under it are loopback (RFC 6761, 6.3): systemd-resolved and
    nss-myhostname answer them with 127.0.0.1 and ::1, a bare /etc/hosts only ``localhost``, DNS
    nothing. A trailing dot names the same host; an all-number name ending in one (``127.0.0.1.``)
    is an IPv4 address to browsers (WHATWG URL) but a name to ``getaddrinfo``. Refused by name,
    these get the same answer on every machine (issue 18); the address check still keeps them out.
    """
    name = host.lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return "loopback (a localhost name, RFC 6761)"
    if name != host.lower():
        try:
            address = socket.inet_ntoa(socket.inet_aton(name))  # the reading getaddrinfo gives numbers
        except OSError:
            return None
        return refusal_reason(address)
    return None


@dataclass(frozen=True)
class ConnectTo:
    """One ``--connect-to`` rule; empty ``host``/``port`` match any, empty targets keep the original."""

    host: str
    port: int | None
    to_host: str
    to_port: int | None


def _split_fields(entry: str) -> list[str]:
    """Split on ':' outside brackets, so IPv6 literals may be written as ``[::1]``."""
    fields, current, depth = [], [], 0
    for char in entry:
        if char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
        if char == ":" and depth == 0:
            fields.append("".join(current))
            current = []
        else:
            current.append(char)
    fields.append("".join(current))
    return fields


def _port(text: str, entry: str) -> int | None:
    if not text:
        return None
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(f"connect_to entry {entry!r}: bad port {text!r}")
    return int(text)


def parse_connect_to(entries: list[str] | tuple[str, ...]) -> tuple[ConnectTo, ...]:
    """Parse ``HOST:PORT:CONNECT_HOST:CONNECT_PORT`` entries; ValueError names a malformed one."""
    rules = []
    for entry in entries:
        fields = _split_fields(entry.strip())
        if len(fields) != 4:
            raise ValueError(f"connect_to entry {entry!r}: expected HOST:PORT:CONNECT_HOST:CONNECT_PORT")
        host, port, to_host, to_port = fields
        rules.append(ConnectTo(host.strip("[]").lower(), _port(port, entry),
                               to_host.strip("[]"), _port(to_port, entry)))
    return tuple(rules)


def connect_target(host: str, port: int, rules: tuple[ConnectTo, ...]) -> tuple[str, int]:
    """Where a request for ``host:port`` connects: the first matching rule's target, else itself."""
    for rule in rules:
        if (not rule.host or rule.host == host) and (rule.port is None or rule.port == port):
            return rule.to_host or host, rule.to_port or port
    return host, port
