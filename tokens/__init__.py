"""Images as VQ codes and captions as BPE ids for a DALL-E-style trainer (Beam-free)."""


class TokenizerError(ValueError):
    """A tokenizer that cannot be used: missing, pickled weights, or a geometry that does not fit."""
