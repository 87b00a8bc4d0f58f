"""WordNet 3.0 instance hypernyms: "Shakespeare" is an instance of poet, "Paris" of national
capital (said "city", see ``hypernym_word``).

Sense choice: among the synsets that list the name as a lemma and are instances (named entities),
prefer the one whose first lemma is the name (the entity the name is primarily the name of:
"Madonna" the singer, not Mary, whose synset lists Madonna among other names), then the most
frequent in SemCor (Paris the capital, not Paris of Troy), then WordNet's own sense order.
"""

from __future__ import annotations

import hashlib
import json
import os

from wordfreq import zipf_frequency

from filters.lexicons import synset_entries
from hypernymize.knowledge import ORGANIZATION, PERSON, PLACE, THING, Hypernym
from hypernymize.wordnet_files import cache_root, wordnet

# Where the rules below choose a worse word for a frequent instance hypernym (180 capitals).
PREFERRED_WORDS = {"national_capital.n.01": "city"}
TYPE_ROOTS = (("person.n.01", PERSON), ("location.n.01", PLACE), ("body_of_water.n.01", PLACE), ("land.n.04", PLACE),
              ("geological_formation.n.01", PLACE), ("organization.n.01", ORGANIZATION),
              ("social_group.n.01", ORGANIZATION))  # rivers, islands and mountains are places too


def _spoken(lemma: str) -> str:
    return lemma.replace("_", " ")


def hypernym_word(synset) -> str:
    """A short everyday word for a hypernym synset: its first lemma when that is one word (poet),
    or that lemma written closed (film maker -> filmmaker), else the head of "X of Y" (president of
    the United States -> president), else a one-word lemma that heads one of its compounds (dance
    band -> band), else the nearest ancestor's (state capital -> city, European country -> country)."""
    current = synset
    for _ in range(8):
        if current.name() in PREFERRED_WORDS:
            return PREFERRED_WORDS[current.name()]
        names = current.lemma_names()
        first = names[0]
        if "_" not in first and "-" not in first:
            return first.lower()
        if first.replace("_", "") in names:
            return first.replace("_", "").lower()
        head, of, _rest = first.partition("_of_")
        if of and "_" not in head:
            return head.lower()
        heads = {name.rsplit("_", 1)[-1] for name in names if "_" in name}
        single = [name for name in names if "_" not in name and name in heads]
        if single:
            return single[0].lower()
        parents = current.hypernyms() or current.instance_hypernyms()
        if not parents:
            break
        current = min(parents, key=lambda parent: parent.name())  # NLTK's order is a set's
    return _spoken(synset.lemma_names()[0]).lower()


def entity_type(synset) -> str:
    ancestors = {s.name() for path in synset.hypernym_paths() for s in path}
    for root, kind in TYPE_ROOTS:
        if root in ancestors:
            return kind
    return THING


def _candidates(reader, name: str) -> list:
    lemma = name.replace(" ", "_")
    found = []
    for order, synset in enumerate(reader.synsets(lemma, "n")):
        if not synset.instance_hypernyms():
            continue
        names = synset.lemma_names()
        if lemma not in names:
            continue  # "apple" the fruit does not make "Apple" an entity, nor the reverse
        count = sum(entry.count() for entry in synset.lemmas() if entry.name() == lemma)
        found.append(((names[0] != lemma, -count, order), synset))
    return [synset for _, synset in sorted(found, key=lambda item: item[0])]


def choose(reader, name: str) -> Hypernym | None:
    """The hypernym of ``name`` by NLTK's reader, with the sense choice above."""
    candidates = _candidates(reader, name)
    if not candidates:
        return None
    chosen = candidates[0]
    # NLTK keeps pointers in a set, whose order changes between processes: choose by the
    # word's frequency in English (Bristol: city, not port), then by name
    words = sorted(((-zipf_frequency(hypernym_word(p), "en"), p.name(), p) for p in chosen.instance_hypernyms()),
                   key=lambda item: item[:2])
    parent = words[0][2]
    return Hypernym(hypernym_word(parent), entity_type(parent), WordNetSource.name, chosen.name())


def instance_names() -> set[str]:
    """Every lemma of an instance synset, as written ("Shakespeare", "Harrison Ford" is not one)."""
    return {_spoken(lemma) for entry in synset_entries("noun") if entry.instance for lemma in entry.words}


def _table_path(root: str | None) -> str:
    """The compiled table, named after this module's code: a change of the rules makes a new one."""
    with open(__file__, "rb") as handle:
        version = hashlib.blake2b(handle.read(), digest_size=6).hexdigest()
    return os.path.join(root or cache_root(), f"altcap-wordnet-instances-{version}.json")


def instance_table(root: str | None = None) -> dict[str, Hypernym]:
    """name -> hypernym for every WordNet instance name, compiled once with NLTK's reader (~10 s)
    into a JSON file beside the normalised database; loading it takes milliseconds."""
    path = _table_path(root)
    if not os.path.exists(path):
        reader = wordnet(root)
        rows = {}
        for name in sorted(instance_names()):
            found = choose(reader, name)
            if found is not None:
                rows[name] = [found.hypernym, found.type, found.id]
        staging = f"{path}.{os.getpid()}.tmp"
        with open(staging, "w", encoding="utf-8") as handle:
            json.dump(rows, handle, ensure_ascii=False, separators=(",", ":"))
        os.replace(staging, path)
    with open(path, encoding="utf-8") as handle:
        rows = json.load(handle)
    return {name: Hypernym(hypernym, kind, WordNetSource.name, synset)
            for name, (hypernym, kind, synset) in rows.items()}


class WordNetSource:
    """Lookups in the compiled instance table: NLTK is loaded only to compile it."""

    name = "wordnet"

    def __init__(self, root: str | None = None):
        self._table = instance_table(root)

    def lookup(self, name: str) -> Hypernym | None:
        return self._table.get(name)

    def names(self):
        """Capitalised instance names ("Harrison Ford" is not in WordNet 3.0; "Shakespeare" is)."""
        return [name for name in self._table if name[:1].isupper()]
