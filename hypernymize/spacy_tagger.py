"""Optional spaCy NER for the hypernymizer: the named entities a trained pipeline finds in captions.

Users who want it install spaCy and a model themselves (``pip install spacy`` and
``python -m spacy download en_core_web_sm``, or a folder that ``nlp.to_disk`` wrote); this module
imports without spaCy. Spans keep spaCy's OntoNotes labels; ``HYPERNYMS``, ``DATE_LABELS`` and
``AMOUNT_LABELS`` say what the rewriter does with each.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hypernymize.knowledge import ORGANIZATION, PERSON, PLACE, THING

if TYPE_CHECKING:
    from spacy.language import Language

AUTO_MODEL = "en_core_web_sm"
NONE_INSTALLED = "none installed"  # what "auto" stands for without spaCy or en_core_web_sm
# Components that put spans in doc.ents; everything else (tagger, parser, lemmatizer, ...) is disabled
ENTITY_FACTORIES = frozenset({"ner", "beam_ner", "entity_ruler"})

# label -> (hypernym, entity type): the entity is replaced with the hypernym. None: a modifier
# ("French" in "French chef") that is dropped, keeping the noun it modifies. Labels in neither this
# table nor the labels below (WORK_OF_ART, LAW, LANGUAGE) are kept as written.
HYPERNYMS: dict[str, tuple[str, str] | None] = {
    "PERSON": ("person", PERSON),
    "GPE": ("place", PLACE),  # countries, cities, states
    "LOC": ("place", PLACE),  # mountains, rivers, regions
    "FAC": ("place", PLACE),  # buildings, bridges, airports, roads
    "ORG": ("organization", ORGANIZATION),
    "EVENT": ("event", THING),
    "PRODUCT": ("product", THING),
    "NORP": None,  # nationalities, religious and political groups
}
# Dates and times: dropped from the caption wherever they stand
DATE_LABELS = frozenset({"DATE", "TIME"})
# Amounts: dropped only where they modify an entity the rewrite removes ("the 29th American Film
# Festival"); "a dozen people", "£ 6,000" and "the 86th floor" stay
AMOUNT_LABELS = frozenset({"CARDINAL", "ORDINAL", "QUANTITY", "PERCENT", "MONEY"})


class SpacyModelError(RuntimeError):
    """The spaCy pipeline cannot be loaded: spaCy missing, unknown model, bad folder, no NER."""


@dataclass(frozen=True)
class TaggedSpan:
    start: int  # character offsets in the caption
    end: int
    text: str
    label: str  # spaCy's label: PERSON, GPE, ORG, DATE, ...


class SpacyTagger:
    """A spaCy pipeline by package name or saved folder, running only what named entities need."""

    def __init__(self, name_or_path: str | os.PathLike[str]):
        self.name = os.fspath(name_or_path)
        self.nlp = _load(self.name)
        entity_pipes = [name for name in self.nlp.pipe_names
                        if self.nlp.get_pipe_meta(name).factory in ENTITY_FACTORIES]
        if not entity_pipes:
            raise SpacyModelError(f"spaCy pipeline {self.name!r} has no ner component "
                                  f"(it has: {', '.join(self.nlp.component_names) or 'none'})")
        # Shared embedding layers (tok2vec, transformer) stay when an entity component listens to them
        embedders = [name for name, pipe in self.nlp.pipeline
                     if set(getattr(pipe, "listening_components", ())) & set(entity_pipes)]
        self.nlp.select_pipes(enable=embedders + entity_pipes)

    @property
    def description(self) -> str:
        """The loaded pipeline's name and version, as ``resolve_spacy_model`` gives them."""
        return _described(self.nlp.meta)

    def tag(self, caption: str) -> list[TaggedSpan]:
        return _spans(self.nlp(caption))

    def tag_many(self, captions: list[str], batch_size: int = 256) -> list[list[TaggedSpan]]:
        return [_spans(doc) for doc in self.nlp.pipe(captions, batch_size=batch_size)]


def load_spacy_tagger(setting: str | None) -> SpacyTagger | None:
    """None or "off": no tagger. "auto": en_core_web_sm when spaCy and that package are installed,
    else None. Anything else is a model name or a folder, and SpacyModelError says why it failed."""
    if setting is None or setting == "off":
        return None
    if setting == "auto":
        return SpacyTagger(AUTO_MODEL) if _auto_model_installed() else None
    return SpacyTagger(setting)


def resolve_spacy_model(setting: str | None) -> str:
    """What ``setting`` stands for on this machine, without loading spaCy: "off", NONE_INSTALLED,
    or the pipeline's name and version ("en_core_web_sm 3.8.0"), as ``SpacyTagger.description``."""
    if setting is None or setting == "off":
        return "off"
    if setting == "auto":
        return _package_description(AUTO_MODEL) if _auto_model_installed() else NONE_INSTALLED
    if _package_version(setting):  # spacy.load prefers an installed package to a folder
        return _package_description(setting)
    return _folder_description(setting)


def _auto_model_installed() -> bool:
    return importlib.util.find_spec("spacy") is not None and _package_version(AUTO_MODEL) is not None


def _package_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _package_description(name: str) -> str:
    return f"{name} {_package_version(name)}"


def _folder_description(path: str) -> str:
    try:
        with open(os.path.join(path, "meta.json"), encoding="utf-8") as stream:
            return _described(json.load(stream))
    except (OSError, ValueError, KeyError) as e:
        raise SpacyModelError(f"spaCy model {path!r} is neither an installed package nor a folder "
                              f"that nlp.to_disk wrote ({e})") from e


def _described(meta: dict) -> str:
    """A pipeline's package name (its language and name) and version: en_core_web_sm 3.8.0."""
    return f"{meta['lang']}_{meta['name']} {meta['version']}"


def _load(name_or_path: str) -> Language:
    try:
        import spacy
    except ImportError as e:
        raise SpacyModelError(f"spaCy model {name_or_path!r} needs spaCy: pip install spacy") from e
    is_path = os.sep in name_or_path or name_or_path.startswith(".") or os.path.exists(name_or_path)
    if is_path and not os.path.isdir(name_or_path):
        raise SpacyModelError(f"spaCy pipeline folder {name_or_path!r} does not exist")
    try:
        return spacy.load(name_or_path)
    except (OSError, ValueError) as e:  # E050: unknown name; E053: no config.cfg; E002: unknown factory
        if is_path:
            hint = "give a folder that nlp.to_disk wrote (with config.cfg and meta.json)"
        else:
            hint = f"install it with python -m spacy download {name_or_path}, or give the path to a pipeline folder"
        raise SpacyModelError(f"cannot load spaCy model {name_or_path!r}: {hint} ({e})") from e


def _spans(doc) -> list[TaggedSpan]:
    return [TaggedSpan(ent.start_char, ent.end_char, ent.text, ent.label_) for ent in doc.ents]
