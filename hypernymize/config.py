"""Settings of hypernymization (``hypernymize``): Conceptual Captions' rewrite after CLIP (named
entities -> hypernyms, ``hypernymize/rewriter.py``) and the concept-frequency cut over the run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from filters.settings import require


@dataclass
class HypernymizeConfig:
    CHOICES: ClassVar[dict] = {"mode": {"hypernym", "person-mask"}, "style": {"plain", "cc3m"}}

    # The shard's .txt and caption_hypernymized hold the result; caption keeps the cleaned text.
    enabled: bool = False
    kb: str | None = None  # a Wikidata KB folder (altcap kb build); None: GeoNames + WordNet only
    mode: str = "hypernym"  # hypernym | person-mask (CC12M: names -> <PERSON>)
    style: str = "plain"  # plain | cc3m (lower case, " ." tokenised)
    min_words: int = 3  # fewer words left: rejected (too_few_words)
    reject_unresolved: bool = True  # an unknown proper noun left: rejected (unresolved_proper_noun)
    # Conceptual Captions' object-count rule: a bare count before a plural noun is dropped too
    # ("Two sculptures" -> "sculptures"). Off: counts stay unless they modify a removed entity.
    drop_counts: bool = False
    min_population: int = 15000  # GeoNames cities from this many people
    # spaCy NER that helps find entities (hypernymize/spacy_tagger.py): auto (en_core_web_sm when
    # installed), off, a model name or a folder that nlp.to_disk wrote
    spacy_model: str = "auto"
    # The concept-frequency cut over the whole run: a caption whose rewrite mentions a hypernym
    # fewer times than this in the run is rejected (rare_concept). 0: off; CC kept > 100: 101.
    min_concept_mentions: int = 0

    def check(self) -> None:
        require(self.min_words >= 1, "hypernymize.min_words must be >= 1")
        require(self.min_concept_mentions >= 0, "hypernymize.min_concept_mentions must be >= 0 (0: no concept cut)")
        require(self.enabled or not self.min_concept_mentions,
                "hypernymize.min_concept_mentions needs hypernymize.enabled=true")
