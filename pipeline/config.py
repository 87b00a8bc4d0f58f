"""Run configuration: one YAML file whose every key can be overridden with ``--set key=value``.

Each section is a dataclass beside the code it drives, the single source of its defaults:
``input``, ``extract`` and ``crawl`` in ``crawl/source_config.py``, ``text`` in
``filters/text_config.py``, the in-shard steps' sections with their steps (``pipeline.steps``:
``download``, ``image``, ``resize``, ``clip``, ``hypernymize``), ``dedup`` in ``filters/dedup_config.py``,
``shards`` here, and
``pools`` (``pipeline/pools.py``: where the model steps run).
``altcap config`` prints them all as YAML. A section names the values a setting may take in
``CHOICES`` and checks itself in ``check``.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from dataclasses import dataclass
from typing import Any

import yaml

from crawl.source_config import CrawlConfig, ExtractConfig, InputConfig
from filters.dedup_config import DedupConfig
from filters.settings import ConfigError, require
from filters.text_config import TextConfig
from pipeline import steps
from pipeline.pools import PoolsConfig

__all__ = ["Config", "ConfigError", "config_from_dict", "load_config"]


class _Loader(yaml.SafeLoader):
    """YAML whose booleans are only true/false: ``resize_mode: no`` stays the text "no"."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_Loader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                              list("tTfF"))


def parse_yaml(text):
    return yaml.load(text, Loader=_Loader)


@dataclass
class ShardConfig:
    samples_per_shard: int = 10000

    def check(self) -> None:
        require(self.samples_per_shard > 0, "shards.samples_per_shard must be > 0")


def section_types() -> dict[str, type]:
    """Every section in the order ``altcap config`` prints them: the in-shard steps bring theirs."""
    found = {"input": InputConfig, "extract": ExtractConfig, "crawl": CrawlConfig, "text": TextConfig,
             "dedup": DedupConfig}
    for step in steps.SHARD_STEPS:
        found.update(step.settings)
    found["shards"] = ShardConfig
    found["pools"] = PoolsConfig
    return found


class Config:
    """The run's settings: one dataclass per section, as attributes (``config.download.threads``)."""

    def __init__(self) -> None:
        self.sections = {name: section() for name, section in section_types().items()}

    def __getattr__(self, name: str):
        try:
            return self.__dict__["sections"][name]
        except KeyError:
            raise AttributeError(name) from None

    def __eq__(self, other) -> bool:
        return isinstance(other, Config) and self.to_dict() == other.to_dict()

    def to_dict(self) -> dict:
        return {name: dataclasses.asdict(section) for name, section in self.sections.items()}

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


def _coerce(value: Any, annotation: str, where: str) -> Any:
    """Check ``value`` against a field's annotation; YAML already typed scalars."""
    if annotation.endswith(" | None"):
        return None if value is None else _coerce(value, annotation[:-len(" | None")], where)
    if annotation == "bool":
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    if annotation == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected a whole number, got {value!r}")
    if annotation == "float":
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    if annotation == "str":
        if isinstance(value, str):
            return value
        raise ConfigError(f"{where}: expected text, got {value!r}")
    if annotation == "list":
        if isinstance(value, list):
            return value
        if isinstance(value, str):  # --set a.b=x,y
            return [v.strip() for v in value.split(",") if v.strip()]
        raise ConfigError(f"{where}: expected a list, got {value!r}")
    raise AssertionError(annotation)


def _apply(config: Config, section: str, key: str, value: Any, origin: str) -> None:
    where = f"{origin}: {section}.{key}"
    if section not in config.sections:
        raise ConfigError(f"{origin}: unknown section {section!r}{_closest(config, section, key)} "
                          f"(known: {', '.join(config.sections)})")
    part = config.sections[section]
    hints = {f.name: f.type for f in dataclasses.fields(part)}
    if key not in hints:
        raise ConfigError(f"{origin}: unknown key {section}.{key}{_closest(config, section, key)} "
                          f"(known: {', '.join(hints)})")
    value = _coerce(value, hints[key], where)
    allowed = getattr(part, "CHOICES", {}).get(key)
    if allowed and value not in allowed:
        raise ConfigError(f"{where}: {value!r} is not one of {', '.join(sorted(allowed))}")
    setattr(part, key, value)


def _closest(config: Config, section: str, key: str) -> str:
    """"; did you mean S.K?" naming the valid setting closest to ``section.key``: the same key in
    another section first, else the nearest spelling (difflib); "" when none is near."""
    names = [f"{name}.{f.name}" for name, part in config.sections.items() for f in dataclasses.fields(part)]
    moved = [name for name in names if name.endswith(f".{key}")]
    found = moved or difflib.get_close_matches(f"{section}.{key}", names, n=1, cutoff=0.75)
    return f"; did you mean {found[0]}?" if found else ""


def _check(config: Config) -> None:
    for section in config.sections.values():
        if hasattr(section, "check"):
            section.check()
    require(config.dedup.semantic_eps is None or config.clip.enabled,
            "dedup.semantic_eps dedups CLIP image embeddings: it needs clip.enabled=true")


def load_config(path: str | None = None, overrides: list[str] | tuple[str, ...] = (), *,
                base: dict | None = None) -> Config:
    """Defaults (or ``base``, a ``to_dict()``), then the YAML file at ``path``, then each ``key=value`` override."""
    config = config_from_dict(base) if base else Config()
    if path:
        try:
            with open(path, encoding="utf-8") as handle:
                data = parse_yaml(handle) or {}
        except OSError as err:
            raise ConfigError(f"cannot read config file {path}: {err.strerror}") from None
        except yaml.YAMLError as err:
            raise ConfigError(f"config file {path} is not valid YAML: {err}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"config file {path}: expected a mapping of sections")
        for section, values in data.items():
            if not isinstance(values, dict):
                raise ConfigError(f"{path}: section {section!r} must be a mapping")
            for key, value in values.items():
                _apply(config, section, key, value, path)
    for item in overrides:
        name, sep, raw = item.partition("=")
        section, dot, key = name.strip().partition(".")
        if not sep or not dot:
            raise ConfigError(f"--set {item!r}: expected section.key=value")
        try:
            value = parse_yaml(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        _apply(config, section, key, value, "--set")
    _check(config)
    return config


def config_from_dict(data: dict) -> Config:
    """Rebuild a Config from ``to_dict()`` output (used to ship the config to Beam workers)."""
    config = Config()
    for section, values in data.items():
        for key, value in values.items():
            _apply(config, section, key, value, "config")
    return config
