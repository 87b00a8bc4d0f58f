"""Run configuration: one YAML file whose every key can be overridden with ``--set key=value``.

Defaults live in the dataclasses below (the single source of truth); ``altcap config`` prints them
as YAML. Text rules come from a preset (``text.preset``, default cc3m, see
``filters.text_presets``); every rule setting under ``text`` overrides the preset's value unless it
is null. Image rules default to Conceptual Captions' published ones (JPEG only, both sides > 400 px,
aspect ratio <= 2); resize and encode options keep img2dataset's names and meaning.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from filters.text_presets import DEFAULT_PRESET, PRESETS, preset
from filters.text_settings import TextRuleSettings


class ConfigError(ValueError):
    """A configuration the user wrote is wrong; the message says what and where."""


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
class InputConfig:
    format: str = "auto"  # auto|warc|wat|pages|tsv|csv|jsonl|parquet|img2dataset
    url_column: str = "auto"  # auto tries url, URL, image_url, link
    caption_column: str = "auto"  # auto tries caption, TEXT, text, alt, title
    header: str = "auto"  # tsv/csv: auto|yes|no
    headerless_columns: list = field(default_factory=lambda: ["caption", "url"])  # CC3M TSV order


@dataclass
class ExtractConfig:
    lazy_attributes: list = field(default_factory=lambda: [
        "data-srcset", "data-src", "data-lazy-srcset", "data-lazy-src", "data-original"])
    max_page_bytes: int = 8 * 1024 * 1024


@dataclass
class CrawlConfig:
    respect_robots_txt: bool = True


@dataclass
class DedupConfig:
    url: str = "url"  # url: one record per image URL; pair: per (URL, alt-text); none
    image: bool = True  # drop exact duplicate images (sha256 of the original bytes)


@dataclass
class TextConfig:
    preset: str = DEFAULT_PRESET  # cc3m|cc12m|laion|datacomp-basic
    lang_model: str = "auto"  # path to fastText's lid.176.ftz; auto: installed copy, cache, download
    max_repeats: int = 10  # a caption used for more distinct image URLs than this is dropped (COYO); 0: off
    batch_size: int = 4096  # captions per text-filter call; fastText runs once per batch (4096: ~6% faster than 1024)
    # Rule settings: null keeps the preset's value (see filters/text_rules.py for each one).
    min_chars: int | None = None
    max_chars: int | None = None
    min_words: int | None = None
    max_words: int | None = None
    file_names: bool | None = None
    max_hashtags: int | None = None
    seo: bool | None = None
    max_word_repetition: float | None = None
    min_unique_words: float | None = None
    all_caps: bool | None = None
    max_capitalized: float | None = None
    first_word_capitalized: bool | None = None
    profanity: bool | None = None
    profanity_lists: list | None = None
    profanity_allow: list | None = None
    required_words: list | None = None
    max_noun_ratio: float | None = None
    min_word_zipf: float | None = None
    rare_words_per_8: int | None = None
    languages: list | None = None
    min_lang_score: float | None = None


RULE_FIELDS = tuple(f.name for f in dataclasses.fields(TextRuleSettings))


def text_rule_settings(text: TextConfig) -> TextRuleSettings:
    """The preset's rules with the config's non-null settings applied."""
    changes = {}
    for name in RULE_FIELDS:
        value = getattr(text, name)
        if value is not None:
            changes[name] = tuple(value) if isinstance(value, list) else value
    return preset(text.preset).replace(**changes)


@dataclass
class DownloadConfig:
    threads: int = 64
    per_host: int = 16
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


@dataclass
class ImageConfig:
    formats: list = field(default_factory=lambda: ["jpeg"])
    min_side: int = 401  # smallest allowed side in px (CC: both sides > 400)
    max_aspect_ratio: float = 2.0
    max_pixels: int = 89_478_485  # refused before decoding (pixel bombs)
    allow_animated: bool = False


@dataclass
class ResizeConfig:
    image_size: int = 256
    resize_mode: str = "center_crop"  # no|keep_ratio|center_crop|border|keep_ratio_largest
    resize_only_if_bigger: bool = False
    upscale_interpolation: str = "lanczos"
    downscale_interpolation: str = "area"
    encode_format: str = "jpg"  # jpg|webp|png
    encode_quality: int = 95


@dataclass
class ShardConfig:
    samples_per_shard: int = 10000


@dataclass
class ClipConfig:
    enabled: bool = False
    model: str = "ViT-B-32"  # open_clip name, hf-hub:org/repo or local-dir:/folder
    pretrained: str | None = "openai"  # tag or checkpoint file, for plain open_clip names
    device: str = "auto"  # auto: cuda when present
    precision: str = "auto"  # auto|fp32|bf16|fp16|int8 (see filters/clip_model.py)
    batch_size: int = 64
    decoder: str = "auto"  # auto|pil|torch: auto is torch (nvjpeg) on CUDA (filters/clip_images.py)
    # Pairs scoring below this are dropped. None: LAION-5B's cut for the model when it has one
    # (ViT-B-32 with OpenAI weights 0.28, multilingual 0.26), else none; -1 keeps everything.
    min_score: float | None = None
    # Keep only this best fraction of the run's scored pairs (DataComp's CLIP filter keeps 0.3),
    # after the min_score cut. None: no such cut.
    top_fraction: float | None = None
    # Conceptual Captions' image-label grounding: keep a pair only when a caption word is one of
    # the image's top-k zero-shot labels from a noun vocabulary (a file, one label per line, or
    # None: the most frequent WordNet nouns a photo can show). See filters/clip_grounding.py.
    grounding: bool = False
    grounding_top_k: int = 10
    grounding_vocabulary: str | None = None
    grounding_vocabulary_size: int = 1000


@dataclass
class HypernymizeConfig:
    # Conceptual Captions' rewrite after CLIP: named entities -> hypernyms (hypernymize/rewriter.py).
    # The shard's .txt and caption_hypernymized hold the result; caption keeps the cleaned text.
    enabled: bool = False
    kb: str | None = None  # a Wikidata KB folder (altcap kb build); None: GeoNames + WordNet only
    mode: str = "hypernym"  # hypernym | person-mask (CC12M: names -> <PERSON>)
    style: str = "plain"  # plain | cc3m (lower case, " ." tokenised)
    min_words: int = 3  # fewer words left: rejected (too_few_words)
    reject_unresolved: bool = True  # an unknown proper noun left: rejected (unresolved_proper_noun)
    min_population: int = 15000  # GeoNames cities from this many people
    # spaCy NER that helps find entities (hypernymize/spacy_tagger.py): auto (en_core_web_sm when
    # installed), off, a model name or a folder that nlp.to_disk wrote
    spacy_model: str = "auto"
    # The concept-frequency cut over the whole run: a caption whose rewrite mentions a hypernym
    # fewer times than this in the run is rejected (rare_concept). 0: off; CC kept > 100: 101.
    min_concept_mentions: int = 0


@dataclass
class Config:
    input: InputConfig = field(default_factory=InputConfig)
    extract: ExtractConfig = field(default_factory=ExtractConfig)
    crawl: CrawlConfig = field(default_factory=CrawlConfig)
    text: TextConfig = field(default_factory=TextConfig)
    dedup: DedupConfig = field(default_factory=DedupConfig)
    download: DownloadConfig = field(default_factory=DownloadConfig)
    image: ImageConfig = field(default_factory=ImageConfig)
    clip: ClipConfig = field(default_factory=ClipConfig)
    hypernymize: HypernymizeConfig = field(default_factory=HypernymizeConfig)
    resize: ResizeConfig = field(default_factory=ResizeConfig)
    shards: ShardConfig = field(default_factory=ShardConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


CHOICES = {
    ("input", "format"): {"auto", "warc", "wat", "pages", "tsv", "csv", "jsonl", "parquet",
                          "img2dataset"},
    ("input", "header"): {"auto", "yes", "no"},
    ("text", "preset"): set(PRESETS),
    ("dedup", "url"): {"url", "pair", "none"},
    ("clip", "precision"): {"auto", "fp32", "bf16", "fp16", "int8"},
    ("clip", "decoder"): {"auto", "pil", "torch"},
    ("hypernymize", "mode"): {"hypernym", "person-mask"},
    ("hypernymize", "style"): {"plain", "cc3m"},
    ("resize", "resize_mode"): {"no", "keep_ratio", "center_crop", "border", "keep_ratio_largest"},
    ("resize", "encode_format"): {"jpg", "webp", "png"},
    ("resize", "upscale_interpolation"): {"nearest", "bilinear", "bicubic", "lanczos", "area"},
    ("resize", "downscale_interpolation"): {"nearest", "bilinear", "bicubic", "lanczos", "area"},
}


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
    if not hasattr(config, section):
        known = ", ".join(f.name for f in dataclasses.fields(Config))
        raise ConfigError(f"{origin}: unknown section {section!r} (known: {known})")
    part = getattr(config, section)
    hints = {f.name: f.type for f in dataclasses.fields(part)}
    if key not in hints:
        raise ConfigError(f"{origin}: unknown key {section}.{key} (known: {', '.join(hints)})")
    value = _coerce(value, hints[key], where)
    allowed = CHOICES.get((section, key))
    if allowed and value not in allowed:
        raise ConfigError(f"{where}: {value!r} is not one of {', '.join(sorted(allowed))}")
    setattr(part, key, value)


def _check(config: Config) -> None:
    positive = [("download", "threads"), ("download", "per_host"), ("download", "max_bytes"),
                ("resize", "image_size"), ("shards", "samples_per_shard"), ("image", "max_pixels")]
    for section, key in positive:
        if getattr(getattr(config, section), key) <= 0:
            raise ConfigError(f"{section}.{key} must be > 0")
    if config.download.timeout <= 0:
        raise ConfigError("download.timeout must be > 0")
    if config.text.max_repeats < 0 or config.text.batch_size <= 0:
        raise ConfigError("text.max_repeats must be >= 0 and text.batch_size > 0")
    rules = text_rule_settings(config.text)
    if rules.problems():
        raise ConfigError("; ".join(f"text.{problem}" for problem in rules.problems()))
    for name in ("min_chars", "max_chars", "min_words", "max_words", "max_hashtags"):
        if (getattr(rules, name) or 0) < 0:
            raise ConfigError(f"text.{name} must be >= 0")
    for name in ("max_word_repetition", "min_unique_words", "max_capitalized", "max_noun_ratio",
                 "min_lang_score"):
        if not 0 <= (getattr(rules, name) or 0) <= 1:
            raise ConfigError(f"text.{name} is a share: 0..1")
    if config.clip.batch_size <= 0:
        raise ConfigError("clip.batch_size must be > 0")
    if config.clip.min_score is not None and not -1 <= config.clip.min_score <= 1:
        raise ConfigError("clip.min_score is a cosine similarity: -1..1")
    if config.clip.top_fraction is not None:
        if not 0 < config.clip.top_fraction <= 1:
            raise ConfigError("clip.top_fraction is the share of pairs to keep: 0 < f <= 1")
        if not config.clip.enabled:
            raise ConfigError("clip.top_fraction needs clip.enabled=true")
    if config.hypernymize.min_words < 1:
        raise ConfigError("hypernymize.min_words must be >= 1")
    if config.hypernymize.min_concept_mentions < 0:
        raise ConfigError("hypernymize.min_concept_mentions must be >= 0 (0: no concept cut)")
    if config.hypernymize.min_concept_mentions and not config.hypernymize.enabled:
        raise ConfigError("hypernymize.min_concept_mentions needs hypernymize.enabled=true")
    if config.clip.grounding and not config.clip.enabled:
        raise ConfigError("clip.grounding needs clip.enabled=true")
    if config.clip.grounding_top_k <= 0 or config.clip.grounding_vocabulary_size <= 0:
        raise ConfigError("clip.grounding_top_k and clip.grounding_vocabulary_size must be > 0")
    if config.image.max_aspect_ratio < 1:
        raise ConfigError("image.max_aspect_ratio must be >= 1")
    fmt, quality = config.resize.encode_format, config.resize.encode_quality
    if fmt == "png" and not 0 <= quality <= 9:
        raise ConfigError("resize.encode_quality is the PNG compression level for png: 0..9")
    if fmt != "png" and not 1 <= quality <= 100:
        raise ConfigError("resize.encode_quality must be 1..100")


def load_config(path: str | None = None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Defaults, then the YAML file at ``path``, then each ``key=value`` override."""
    config = Config()
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

