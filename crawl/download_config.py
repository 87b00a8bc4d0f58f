"""Settings of the downloader (``download``): threads, politeness, limits and safety."""

from __future__ import annotations

from dataclasses import dataclass, field

from crawl.netguard import parse_connect_to
from filters.settings import ConfigError, require


@dataclass
class DownloadConfig:
    threads: int = 64
    # Politeness, for the whole job: at most per_host requests in flight to one host and host_rps
    # requests a second (0: no rate limit). A host's records go to at most per_host shards, each
    # taking its share of both (pipeline.stages.host_spread).
    per_host: int = 16
    host_rps: float = 20.0
    timeout: float = 10.0  # seconds, for connect and for each read
    retries: int = 2
    backoff: float = 0.5  # seconds, doubled each retry
    max_bytes: int = 32 * 1024 * 1024
    max_redirects: int = 5
    user_agent: str = "Mozilla/5.0 (compatible; altcap/0.1; +https://github.com/altcap/altcap)"
    user_agent_token: str = "altcap"
    disallowed_header_directives: list = field(
        default_factory=lambda: ["noai", "noimageai", "noindex", "noimageindex"])
    allow_private_addresses: bool = False
    connect_to: list = field(default_factory=list)  # like curl: "HOST:PORT:CONNECT_HOST:CONNECT_PORT"

    def check(self) -> None:
        for name in ("threads", "per_host", "max_bytes"):
            require(getattr(self, name) > 0, f"download.{name} must be > 0")
        require(self.timeout > 0, "download.timeout must be > 0")
        require(self.host_rps >= 0, "download.host_rps must be >= 0 (0: no rate limit)")
        try:
            parse_connect_to(self.connect_to)
        except ValueError as err:
            raise ConfigError(f"download.{err}") from None
