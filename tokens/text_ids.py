"""Captions as fixed-length token ids for a trainer: CLIP's BPE that open_clip ships (works
offline, 49,408 ids; it lower-cases and spells numbers digit by digit), or a lossless byte-level BPE
trained with Hugging Face ``tokenizers`` on the run's own captions (DALL-E used 16,384 ids). Every
caption becomes exactly ``length`` ids, padded with ``PAD_ID``; a caption cut to fit is counted,
never silently shortened.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from tokens import TokenizerError

CLIP = "clip"  # the name that selects open_clip's BPE
PAD_ID = 0
TOKENIZER_FILE = "tokenizer.json"
SPECIAL_TOKENS = ["<pad>", "<unk>"]  # trained vocabularies start with these: <pad> is id 0


@dataclass(frozen=True)
class Encoded:
    ids: np.ndarray  # (n, length): uint16 when the vocabulary fits, else int32; PAD_ID after the text
    lengths: np.ndarray  # (n,) uint16: how many of a row's ids are the caption's
    truncated: np.ndarray  # (n,) bool: the caption had more ids than fit


class TextTokenizer:
    """``encode(captions, length)`` and ``decode(ids)`` for ``clip`` or a folder holding a
    ``tokenizer.json`` that ``train_bpe`` (or any ``tokenizers`` user) wrote. ``sha256`` identifies
    the vocabulary file."""

    def __init__(self, name_or_path: str = CLIP):
        self.name = name_or_path
        if name_or_path == CLIP:
            from open_clip.tokenizer import SimpleTokenizer, default_bpe

            self._clip = SimpleTokenizer()
            self.vocab_size = len(self._clip.encoder)
            self.library, vocabulary = "open_clip", default_bpe()
        else:
            from tokenizers import Tokenizer

            vocabulary = os.path.join(name_or_path, TOKENIZER_FILE)
            if not os.path.isfile(vocabulary):
                raise TokenizerError(f"no {TOKENIZER_FILE} in {name_or_path!r}: give 'clip' or a folder "
                                 "`altcap tokenizer train` wrote")
            self._bpe = Tokenizer.from_file(vocabulary)
            self.vocab_size = self._bpe.get_vocab_size()
            self.library = "tokenizers"
        with open(vocabulary, "rb") as handle:
            self.sha256 = hashlib.sha256(handle.read()).hexdigest()
        self.dtype = np.dtype(np.uint16 if self.vocab_size <= 2 ** 16 else np.int32)

    def ids(self, caption: str) -> list[int]:
        """The caption's ids, as long as they are (CLIP's with its start and end tokens)."""
        if self.name == CLIP:
            return [self._clip.sot_token_id, *self._clip.encode(caption), self._clip.eot_token_id]
        return self._bpe.encode(caption).ids

    def encode(self, captions: Iterable[str], length: int) -> Encoded:
        """Each caption as exactly ``length`` ids; one cut to fit keeps CLIP's end token last, as
        open_clip's own ``tokenize`` does."""
        rows = [self.ids(caption) for caption in captions]
        ids = np.full((len(rows), length), PAD_ID, dtype=self.dtype)
        for row, tokens in zip(ids, rows):
            row[:min(len(tokens), length)] = tokens[:length]
            if len(tokens) > length and self.name == CLIP:
                row[-1] = self._clip.eot_token_id
        lengths = np.array([min(len(tokens), length) for tokens in rows], dtype=np.uint16)
        return Encoded(ids, lengths, np.array([len(tokens) > length for tokens in rows], dtype=bool))

    def decode(self, ids: Iterable[int]) -> str:
        """The caption a row of ids stands for: CLIP's up to its end token, a trained BPE's without
        padding (CLIP's id 0 is "!", not padding)."""
        row = [int(i) for i in ids]
        if self.name == CLIP:
            end = row.index(self._clip.eot_token_id) if self._clip.eot_token_id in row else len(row)
            return self._clip.decode([i for i in row[:end] if i != self._clip.sot_token_id]).strip()
        return self._bpe.decode([i for i in row if i != PAD_ID])


def train_bpe(captions: Iterable[str], out_dir: str, vocab_size: int = 16384) -> str:
    """Trains a byte-level BPE of up to ``vocab_size`` ids on ``captions`` (fewer when the captions
    hold fewer pairs worth merging) and writes ``tokenizer.json`` into ``out_dir``; returns its path."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(captions, trainer=trainer)
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, TOKENIZER_FILE)
    tokenizer.save(path)
    return path
