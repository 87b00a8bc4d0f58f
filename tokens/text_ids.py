"""Captions as fixed-length token ids for a trainer: CLIP's BPE that open_clip ships (works
offline, 49,408 ids; it lower-cases and spells numbers digit by digit), or a lossless byte-level BPE
trained with Hugging Face ``tokenizers`` on the run's own captions (DALL-E used 16,384 ids). Every
caption becomes exactly ``length`` ids, padded with ``PAD_ID``; a caption cut to fit is counted,
never silently shortened.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import numpy as np

CLIP = "clip"  # the name that selects open_clip's BPE
PAD_ID = 0
TOKENIZER_FILE = "tokenizer.json"
SPECIAL_TOKENS = ["<pad>", "<unk>"]  # trained vocabularies start with these: <pad> is id 0


class TextTokenizer:
    """``encode(captions) -> (ids, truncated)`` and ``decode(ids) -> caption`` for ``clip`` or a
    folder holding a ``tokenizer.json`` that ``train_bpe`` (or any ``tokenizers`` user) wrote."""

    def __init__(self, name_or_path: str = CLIP):
        self.name = name_or_path
        if name_or_path == CLIP:
            from open_clip.tokenizer import SimpleTokenizer

            self._clip = SimpleTokenizer()
            self.vocab_size = len(self._clip.encoder)
        else:
            from tokenizers import Tokenizer

            path = os.path.join(name_or_path, TOKENIZER_FILE)
            if not os.path.isfile(path):
                raise ValueError(f"no {TOKENIZER_FILE} in {name_or_path!r}: give 'clip' or a folder "
                                 "`altcap tokenizer train` wrote")
            self._bpe = Tokenizer.from_file(path)
            self.vocab_size = self._bpe.get_vocab_size()

    def ids(self, caption: str) -> list[int]:
        """The caption's ids, as long as they are (CLIP's with its start and end tokens)."""
        if self.name == CLIP:
            return [self._clip.sot_token_id, *self._clip.encode(caption), self._clip.eot_token_id]
        return self._bpe.encode(caption).ids

    def encode(self, captions: Iterable[str], length: int) -> tuple[np.ndarray, np.ndarray]:
        """(ids: (n, length) padded with PAD_ID, truncated: (n,) whether a caption was cut to fit).
        uint16 when the vocabulary fits it."""
        rows = [self.ids(caption) for caption in captions]
        dtype = np.uint16 if self.vocab_size <= 2 ** 16 else np.int32
        ids = np.full((len(rows), length), PAD_ID, dtype=dtype)
        for row, tokens in zip(ids, rows):
            row[:min(len(tokens), length)] = tokens[:length]
        return ids, np.array([len(tokens) > length for tokens in rows], dtype=bool)

    def decode(self, ids: Iterable[int]) -> str:
        """The caption a row of ids stands for, padding and special tokens left out."""
        kept = [int(i) for i in ids if int(i) != PAD_ID]
        if self.name == CLIP:
            special = {self._clip.sot_token_id, self._clip.eot_token_id}
            return self._clip.decode([i for i in kept if i not in special]).strip()
        return self._bpe.decode(kept)


def train_bpe(captions: Iterable[str], out_dir: str, vocab_size: int = 16384) -> str:
    """Trains a byte-level BPE of ``vocab_size`` ids on ``captions`` and writes ``tokenizer.json``
    into ``out_dir``; returns its path."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(captions, trainer=trainer)
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, TOKENIZER_FILE)
    tokenizer.save(path)
    return path
