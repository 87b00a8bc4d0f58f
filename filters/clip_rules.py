"""Which CLIP scores pass: LAION-5B's absolute cuts (Schuhmann et al. 2022, section 3.2: cosine
similarity with OpenAI's ViT-B/32 >= 0.28 for English, >= 0.26 with multilingual CLIP)."""

from __future__ import annotations

REASON = "low_clip_score"


def default_min_score(model: str, pretrained: str | None) -> float | None:
    """LAION-5B's cut where it was measured for this model, else None (no cut)."""
    if model == "ViT-B-32" and pretrained == "openai":
        return 0.28
    if "xlm-roberta" in model or "multilingual" in model.lower():
        return 0.26
    return None


def check_clip_score(score: float, min_score: float | None) -> tuple[str, str] | None:
    """``None`` when the pair passes, else (reason, detail)."""
    if min_score is not None and score < min_score:
        return REASON, f"{score:.4f} < {min_score}"
    return None
