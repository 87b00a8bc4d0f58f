"""A compact, memory-mapped name -> hypernym lookup compiled from a Wikidata JSON dump
(``altcap kb build --wikidata DUMP.json[.bz2|.gz] --output KB``).

Every item's label and aliases (in the chosen languages) name it. Its hypernym is the label of
its first occupation (P106) when it is a human (P31 = Q5), else of its first class (P31);
preferred statements come first and deprecated ones never count. Its type is person (Q5), place
(it has coordinates, P625) or thing. A name shared by several items goes to the one with the most
sitelinks (the best known). Two passes read the dump: the first collects names and hypernym ids,
the second the labels of those ids (they may come later in the dump than the items using them).

The KB is a folder of flat arrays that workers map into memory (``np.load(mmap_mode="r")``):
name hashes sorted for binary search, the names themselves to confirm a hit, and per name the
hypernym, type and Q-id. Loading costs nothing until a lookup touches a page.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import json
import os
from typing import Iterator

import numpy as np

from hypernymize.knowledge import PERSON, PLACE, THING, Hypernym

FORMAT = "altcap-wikidata-kb/1"
KINDS = (PERSON, PLACE, THING)
HUMAN = "Q5"


class KbError(ValueError):
    """The dump or the KB folder is unusable."""


def name_hash(name: str) -> int:
    return int.from_bytes(hashlib.blake2b(name.encode("utf-8"), digest_size=8).digest(), "little")


def _open_dump(path: str):
    if path.endswith(".bz2"):
        return bz2.open(path, "rt", encoding="utf-8")
    if path.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")


def dump_entities(path: str, problems: list[str]) -> Iterator[dict]:
    """The entities of a dump (a JSON array with one entity per line); bad lines are noted."""
    try:
        with _open_dump(path) as lines:
            for number, line in enumerate(lines, 1):
                line = line.strip().rstrip(",")
                if line in ("", "[", "]"):
                    continue
                try:
                    entity = json.loads(line)
                except ValueError as err:
                    problems.append(f"line {number}: not JSON ({err})")
                    continue
                if isinstance(entity, dict) and entity.get("type") == "item" and "id" in entity:
                    yield entity
    except (OSError, EOFError) as err:
        raise KbError(f"cannot read the Wikidata dump {path}: {err}") from err


def _statement_ids(entity: dict, prop: str) -> list[str]:
    """Item ids a property points to, preferred statements first, deprecated ones left out."""
    found = []
    for statement in entity.get("claims", {}).get(prop, ()):
        rank = statement.get("rank", "normal")
        value = statement.get("mainsnak", {}).get("datavalue", {}).get("value")
        if rank != "deprecated" and isinstance(value, dict) and value.get("id"):
            found.append((rank != "preferred", value["id"]))
    return [qid for _, qid in sorted(found, key=lambda item: item[0])]


def _label(entity: dict, languages: tuple[str, ...]) -> str | None:
    for language in languages:
        label = entity.get("labels", {}).get(language, {}).get("value")
        if label:
            return label
    return None


def _names(entity: dict, languages: tuple[str, ...]) -> set[str]:
    names = set()
    for language in languages:
        label = entity.get("labels", {}).get(language, {}).get("value")
        if label:
            names.add(label)
        names.update(alias["value"] for alias in entity.get("aliases", {}).get(language, ()) if alias.get("value"))
    return {" ".join(name.split()) for name in names if name.strip()}


def build_kb(dump: str, out_dir: str, *, languages: tuple[str, ...] = ("en",), min_sitelinks: int = 0) -> dict:
    """Compile ``dump`` into the KB folder ``out_dir``; returns its manifest."""
    problems: list[str] = []
    best: dict[str, tuple[tuple[int, int], int, str, int]] = {}  # name -> (rank, qid, hypernym id, kind)
    wanted: set[str] = set()
    items = 0
    for entity in dump_entities(dump, problems):
        items += 1
        sitelinks = len(entity.get("sitelinks", {}))
        if sitelinks < min_sitelinks:
            continue
        classes = _statement_ids(entity, "P31")
        human = HUMAN in classes
        parents = (_statement_ids(entity, "P106") if human else []) or [c for c in classes if c != HUMAN]
        if not parents:
            continue
        kind = KINDS.index(PERSON if human else PLACE if "P625" in entity.get("claims", {}) else THING)
        qid = int(entity["id"][1:])
        for name in _names(entity, languages):
            rank = (-sitelinks, qid)
            if name not in best or rank < best[name][0]:
                best[name] = (rank, qid, parents[0], kind)
        wanted.add(parents[0])
    labels: dict[str, str] = {}
    for entity in dump_entities(dump, []):
        if entity["id"] in wanted:
            label = _label(entity, languages)
            if label:
                labels[entity["id"]] = label
    rows = [(name, qid, labels[parent], kind) for name, (_, qid, parent, kind) in best.items() if parent in labels]
    unlabelled = len(best) - len(rows)
    return _write(out_dir, rows, {"format": FORMAT, "dump": os.path.abspath(dump), "items": items,
                                  "languages": list(languages), "min_sitelinks": min_sitelinks,
                                  "names_without_hypernym_label": unlabelled, "problems": problems[:20],
                                  "bad_lines": len(problems)})


def _write(out_dir: str, rows: list[tuple[str, int, str, int]], manifest: dict) -> dict:
    os.makedirs(out_dir, exist_ok=True)
    rows.sort(key=lambda row: (name_hash(row[0]), row[0]))
    hypernyms = sorted({row[2] for row in rows})
    index = {h: i for i, h in enumerate(hypernyms)}
    encoded = [row[0].encode("utf-8") for row in rows]
    offsets = np.zeros(len(rows) + 1, np.uint64)
    if rows:
        np.cumsum([len(b) for b in encoded], out=offsets[1:])
    arrays = {
        "hashes": np.array([name_hash(row[0]) for row in rows], np.uint64),
        "offsets": offsets,
        "hypernyms": np.array([index[row[2]] for row in rows], np.uint32),
        "kinds": np.array([row[3] for row in rows], np.uint8),
        "qids": np.array([row[1] for row in rows], np.uint64),
    }
    for name, array in arrays.items():
        np.save(os.path.join(out_dir, f"{name}.npy"), array)
    with open(os.path.join(out_dir, "names.bin"), "wb") as handle:
        handle.write(b"".join(encoded))
    manifest = dict(manifest, names=len(rows), hypernym_labels=len(hypernyms),
                    max_tokens=max((len(row[0].split()) for row in rows), default=0))
    with open(os.path.join(out_dir, "hypernym_labels.json"), "w", encoding="utf-8") as handle:
        json.dump(hypernyms, handle, ensure_ascii=False)
    with open(os.path.join(out_dir, "manifest.json"), "w", encoding="utf-8") as handle:
        json.dump(manifest, handle, indent=1, ensure_ascii=False)
    return manifest


class WikidataKb:
    """The knowledge source over a built KB folder, memory-mapped."""

    name = "wikidata"

    def __init__(self, folder: str):
        try:
            with open(os.path.join(folder, "manifest.json"), encoding="utf-8") as handle:
                self.manifest = json.load(handle)
            if self.manifest.get("format") != FORMAT:
                raise KbError(f"{folder} is not an altcap Wikidata KB ({self.manifest.get('format')!r})")
            with open(os.path.join(folder, "hypernym_labels.json"), encoding="utf-8") as handle:
                self.labels = json.load(handle)
            self.hashes, self.offsets, self.hypernyms, self.kinds, self.qids = (
                np.load(os.path.join(folder, f"{name}.npy"), mmap_mode="r")
                for name in ("hashes", "offsets", "hypernyms", "kinds", "qids"))
            self.blob = np.memmap(os.path.join(folder, "names.bin"), np.uint8, "r") \
                if self.manifest["names"] else np.zeros(0, np.uint8)
        except (OSError, ValueError, KeyError) as err:
            raise KbError(f"cannot load the Wikidata KB {folder}: {err}") from err

    def _name(self, i: int) -> str:
        return bytes(self.blob[int(self.offsets[i]):int(self.offsets[i + 1])]).decode("utf-8")

    def lookup(self, name: str) -> Hypernym | None:
        wanted = name_hash(name)
        i = int(np.searchsorted(self.hashes, np.uint64(wanted)))
        while i < len(self.hashes) and int(self.hashes[i]) == wanted:
            if self._name(i) == name:
                return Hypernym(self.labels[int(self.hypernyms[i])], KINDS[int(self.kinds[i])],
                                self.name, f"Q{int(self.qids[i])}")
            i += 1
        return None

    def names(self):
        return (self._name(i) for i in range(len(self.hashes)))
