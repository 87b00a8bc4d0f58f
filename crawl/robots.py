"""Robots exclusion: the ``X-Robots-Tag`` header rule for images, and a robots.txt cache for pages.

robots.txt follows RFC 9309: groups of user-agent lines, the group matching our product token
(else ``*``), the longest matching Allow/Disallow pattern wins (Allow on a tie), ``*`` and ``$``
wildcards; a 4xx robots.txt allows everything, a 5xx or unreachable one disallows everything.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Iterable
from urllib.parse import quote, urlsplit

from filters.record import Dropped

# X-Robots-Tag directives that take a value after ':' (so the text before it is not a user agent).
_VALUED_DIRECTIVES = frozenset({"unavailable_after", "max-snippet", "max-image-preview",
                                "max-video-preview"})


def x_robots_tag_disallows(values: Iterable[str], user_agent_token: str,
                           disallowed_directives: frozenset[str]) -> bool:
    """True if any header value forbids us: ``noai`` applies to all agents, ``altcap: noai`` to us,
    ``otherbot: noai`` to someone else. Directives are comma-separated and case-insensitive;
    ``disallowed_directives`` must be lower case."""
    token = user_agent_token.lower()
    for value in values:
        agent, colon, rest = value.partition(":")
        agent = agent.strip().lower()
        if colon and agent not in _VALUED_DIRECTIVES and "," not in agent and " " not in agent:
            if agent != token:
                continue
            value = rest
        if any(part.strip().lower() in disallowed_directives for part in value.split(",")):
            return True
    return False


# ---------------------------------------------------------------------------------------------
# robots.txt parsing (RFC 9309)

_PERCENT_ESCAPE = re.compile(r"%[0-9a-fA-F]{2}")
_SAFE_IN_PATH = "!#$%&'()*+,-./:;=?@[]_~"  # kept as is; space, ", <, >, `, {, |, }, \, ^ get encoded
_PRODUCT_TOKEN = re.compile(r"[A-Za-z_*-]+")


def _normalize(path: str) -> str:
    """Percent-encode non-ASCII and unsafe characters and upper-case existing escapes, so that a
    pattern and a URL path that mean the same octets compare equal."""
    return _PERCENT_ESCAPE.sub(lambda m: m.group(0).upper(), quote(path, safe=_SAFE_IN_PATH))


@dataclass(frozen=True)
class _Rule:
    allow: bool
    priority: int  # pattern length in octets: the longest match wins
    regex: re.Pattern


def _compile(pattern: str) -> re.Pattern:
    anchored = pattern.endswith("$")
    body = pattern[:-1] if anchored else pattern
    regex = ".*".join(re.escape(piece) for piece in body.split("*"))
    return re.compile(regex + ("\\Z" if anchored else ""), re.DOTALL)


class RobotsRules:
    """The rules of one robots.txt that apply to one product token."""

    def __init__(self, rules: list[_Rule]):
        self._rules = sorted(rules, key=lambda rule: (-rule.priority, not rule.allow))

    def allows(self, path: str) -> bool:
        """``path`` is the URL's path and query (percent-encoded as sent)."""
        if path == "/robots.txt":
            return True
        path = _normalize(path)
        for rule in self._rules:  # longest first, Allow before Disallow at the same length
            if rule.regex.match(path):
                return rule.allow
        return True


def _product_token(value: str) -> str:
    match = _PRODUCT_TOKEN.match(value)
    return match.group(0).lower() if match else ""


def parse_robots_txt(text: str, user_agent_token: str) -> RobotsRules:
    """The rules in ``text`` for ``user_agent_token``: its own groups if any, else the ``*`` groups."""
    token = user_agent_token.lower()
    groups: list[tuple[set[str], list[_Rule]]] = []
    agents: set[str] = set()
    rules: list[_Rule] = []
    in_agent_lines = False
    for line in text.splitlines():
        key, colon, value = line.split("#", 1)[0].partition(":")
        if not colon:
            continue
        key, value = key.strip().lower(), value.strip()
        if key in ("user-agent", "useragent", "user agent"):
            if not in_agent_lines:
                agents, rules = set(), []
                groups.append((agents, rules))
                in_agent_lines = True
            agents.add(_product_token(value))
        elif key in ("allow", "disallow"):
            in_agent_lines = False
            if groups and value:  # rules before any user-agent line, and empty patterns, match nothing
                pattern = _normalize(value)
                rules.append(_Rule(key == "allow", len(pattern), _compile(pattern)))
        # sitemap, crawl-delay and unknown lines are ignored and do not end a group
    chosen = ([group_rules for group_agents, group_rules in groups if token in group_agents]
              or [group_rules for group_agents, group_rules in groups if "*" in group_agents])
    return RobotsRules([rule for group_rules in chosen for rule in group_rules])


# ---------------------------------------------------------------------------------------------
# The per-host cache


@dataclass(frozen=True)
class RobotsVerdict:
    """Whether a URL may be crawled, and why: ``reason`` is one of ``allowed``, ``no_robots_txt``
    (robots.txt answered 4xx), ``disallowed`` (a rule), ``robots_unreachable`` (5xx, network or
    safety failure: everything is disallowed); ``detail`` gives the specifics."""

    allowed: bool
    reason: str
    detail: str = ""


MAX_ROBOTS_BYTES = 512 * 1024  # RFC 9309 asks parsers to read at least 500 KiB
MAX_CACHED_HOSTS = 100_000


class RobotsPolicy:
    """robots.txt per scheme and host, fetched once through ``fetcher`` (so its safety rules and
    limits apply) and cached; safe to call from many threads: concurrent callers for the same host
    wait for the one fetch."""

    def __init__(self, fetcher, user_agent_token: str):
        self._fetcher = fetcher
        self._token = user_agent_token
        self._lock = threading.Lock()
        self._hosts: OrderedDict[str, Future] = OrderedDict()

    def allowed(self, url: str) -> bool:
        return self.verdict(url).allowed

    def verdict(self, url: str) -> RobotsVerdict:
        parts = urlsplit(url)
        origin = f"{parts.scheme.lower()}://{parts.netloc.rpartition('@')[2].lower()}"
        rules = self._rules(origin)
        if isinstance(rules, RobotsVerdict):
            return rules
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        if rules.allows(path):
            return RobotsVerdict(True, "allowed")
        return RobotsVerdict(False, "disallowed", f"{origin}/robots.txt disallows {path}")

    def _rules(self, origin: str) -> RobotsRules | RobotsVerdict:
        with self._lock:
            future = self._hosts.get(origin)
            owner = future is None
            if owner:
                future = self._hosts[origin] = Future()
                if len(self._hosts) > MAX_CACHED_HOSTS:
                    self._hosts.popitem(last=False)
        if owner:
            try:
                future.set_result(self._load(origin))
            except BaseException as err:  # a bug, not a robots.txt answer: let a later call retry
                with self._lock:
                    self._hosts.pop(origin, None)
                future.set_exception(err)
                raise
        return future.result()

    def _load(self, origin: str) -> RobotsRules | RobotsVerdict:
        url = f"{origin}/robots.txt"
        try:
            result = self._fetcher.fetch(url, accept_any=True, max_bytes=MAX_ROBOTS_BYTES)
        except Dropped as drop:
            status = drop.fields.get("http_status")
            if drop.reason == "empty_body":
                return RobotsRules([])
            if drop.reason == "too_many_redirects" or (status and 400 <= status < 500 and status != 429):
                return RobotsVerdict(True, "no_robots_txt", f"{url}: {drop}")
            return RobotsVerdict(False, "robots_unreachable", f"{url}: {drop}")
        text = result.body.decode("utf-8", errors="replace").lstrip("\ufeff")
        return parse_robots_txt(text, self._token)
