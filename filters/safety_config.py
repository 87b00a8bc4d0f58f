"""Settings of the safety scores (``safety``): NSFW and watermark probabilities per sample, and the
cuts on them. LAION-5B published both for every pair and recommends keeping punsafe < 0.5 and
pwatermark < 0.8 (Schuhmann et al. 2022, section 3.3)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from filters.settings import require


@dataclass
class SafetyConfig:
    CHOICES: ClassVar[dict] = {"nsfw_rule": {"either", "both"}}

    # A head on the CLIP image embeddings the clip step computes (no second image model): a
    # .safetensors file (filters/safety_heads.py; README: converting LAION's NSFW detector).
    nsfw_head: str | None = None
    watermark_head: str | None = None
    # Or an image-classification model of Hugging Face transformers (a hub id or a save_pretrained
    # folder, safetensors weights) run on the images, and the label whose probability is the score.
    nsfw_model: str | None = None
    nsfw_label: str = "nsfw"
    watermark_model: str | None = None
    watermark_label: str = "watermark"
    max_nsfw: float = 0.5  # a pair scoring at or above is dropped (nsfw)
    max_watermark: float = 0.8  # (watermark)
    # either: a pair is NSFW when its image scores max_nsfw or more, or its caption fails the text
    # stage's profanity rule (Conceptual Captions dropped both); both: only when the image scores so
    # and the caption has a bad word (set text.profanity=false: the safety step judges the caption).
    nsfw_rule: str = "either"
    device: str = "auto"  # for the image-classification models; auto: cuda when present
    batch_size: int = 32  # images per call of an image-classification model

    def check(self) -> None:
        require(not (self.nsfw_head and self.nsfw_model), "give safety.nsfw_head or safety.nsfw_model, not both")
        require(not (self.watermark_head and self.watermark_model),
                "give safety.watermark_head or safety.watermark_model, not both")
        require(0 <= self.max_nsfw <= 1 and 0 <= self.max_watermark <= 1,
                "safety.max_nsfw and safety.max_watermark are probabilities: 0..1")
        require(self.batch_size > 0, "safety.batch_size must be > 0")
        require(self.nsfw_rule == "either" or bool(self.nsfw_head or self.nsfw_model),
                "safety.nsfw_rule=both needs an NSFW score: safety.nsfw_head or safety.nsfw_model")

    def scorers(self) -> dict[str, tuple[str, str, str | None]]:
        """kind -> (how: head or model, file or model name, label) of the scores asked for."""
        found = {}
        asked = (("nsfw", self.nsfw_head, self.nsfw_model, self.nsfw_label),
                 ("watermark", self.watermark_head, self.watermark_model, self.watermark_label))
        for kind, head, model, label in asked:
            if head:
                found[kind] = ("head", head, None)
            elif model:
                found[kind] = ("model", model, label)
        return found
