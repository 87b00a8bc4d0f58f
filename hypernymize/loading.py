"""The hypernymizer with its knowledge sources, as a worker or the CLI loads it."""

from __future__ import annotations

from hypernymize.config import HypernymizeConfig
from hypernymize.gazetteer import Gazetteer, merged
from hypernymize.geonames_source import GeoNamesSource
from hypernymize.rewriter import Hypernymizer
from hypernymize.spacy_tagger import load_spacy_tagger
from hypernymize.wikidata_kb import WikidataKb
from hypernymize.wordnet_source import WordNetSource


def load_hypernymizer(*, kb: str | None = None, min_population: int = HypernymizeConfig.min_population,
                      wordnet_root: str | None = None, spacy_model: str | None = None, **options) -> Hypernymizer:
    """Sources in priority order: a Wikidata KB folder when given, GeoNames, WordNet. The names
    GeoNames and WordNet know are merged into one in-memory gazetteer; the KB is looked up in
    place (memory-mapped). ``spacy_model``: "auto" (en_core_web_sm when installed), a model name
    or folder, or None/"off"."""
    geonames, wordnet = GeoNamesSource(min_population), WordNetSource(wordnet_root)
    sources = ([WikidataKb(kb)] if kb else []) + [geonames, wordnet]
    return Hypernymizer(sources, Gazetteer(merged([geonames, wordnet])), tagger=load_spacy_tagger(spacy_model),
                        **options)
