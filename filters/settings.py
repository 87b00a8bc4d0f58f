"""What every settings section shares.

A section is a dataclass beside the code it drives (``crawl/download_config.py``,
``filters/image_config.py``, ...); ``pipeline/config.py`` assembles them into the run's config.
A section may name the values a setting can take in ``CHOICES`` and check itself in ``check``.
"""

from __future__ import annotations


class ConfigError(ValueError):
    """A configuration the user wrote is wrong; the message says what and where."""


def require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)
