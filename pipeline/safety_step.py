"""NSFW and watermark scores inside a shard, after the clip step, and the cuts on them: LAION-5B's
punsafe and pwatermark (Schuhmann et al. 2022). A score comes from a small head on the CLIP image
embedding the clip step computed (no second image model), or from an image-classification model of
transformers run on the image. Conceptual Captions dropped pairs whose image or caption was
pornographic or profane (Sharma et al. 2018); ``safety.nsfw_rule`` says how the two combine.
Beam-free; transformers loads only when the step is built with a model.
"""

from __future__ import annotations

import io
import logging

import numpy as np
from PIL import Image

from dataset.layout import EMBEDDINGS
from filters.record import is_rejected, reject
from filters.safety_config import SafetyConfig
from filters.safety_heads import ImageClassifierScorer, SafetyHead, SafetyHeadError, load_head
from filters.settings import ConfigError
from filters.text_rules import TextRules
from filters.text_settings import TextRuleSettings
from pipeline.clip_step import RANDOM_WEIGHTS, ClipStep
from pipeline.shard_step import ShardStep

log = logging.getLogger("altcap")

NSFW, WATERMARK = "nsfw", "watermark"
COLUMNS = {NSFW: "nsfw_score", WATERMARK: "watermark_score"}


def load_scorer(kind: str, how: str, source: str, label: str | None, device: str):
    """The head or model of one score; a file or model that cannot be read is a ``ConfigError``."""
    try:
        if how == "head":
            return load_head(source)
        return ImageClassifierScorer(source, label, device)
    except SafetyHeadError as err:
        raise ConfigError(f"safety.{kind}_{how}: {err}") from None


def resolve_device(setting: str) -> str:
    import torch

    return ("cuda" if torch.cuda.is_available() else "cpu") if setting == "auto" else setting


def caption_rules(config) -> TextRules:
    """The text stage's profanity rule alone, with its lists: how ``nsfw_rule=both`` judges a caption."""
    rules = config.text.rules()
    return TextRules(TextRuleSettings(profanity=True, profanity_lists=rules.profanity_lists,
                                      profanity_allow=rules.profanity_allow))


class SafetyStep(ShardStep):
    stage = "safety"
    reasons = (NSFW, WATERMARK)
    settings = {"safety": SafetyConfig}

    @classmethod
    def enabled(cls, config) -> bool:
        return bool(config.safety.scorers())

    @classmethod
    def unused(cls, config) -> str:
        return ("no NSFW or watermark scores (no safety.nsfw_head, nsfw_model, watermark_head or watermark_model "
                "given): nothing is dropped for them")

    @classmethod
    def preflight(cls, config) -> None:
        safety = config.safety
        for kind, (how, source, label) in safety.scorers().items():
            if how == "head" and not ClipStep.enabled(config):
                raise ConfigError(f"safety.{kind}_head scores CLIP image embeddings: it needs clip.enabled=true")
            scorer = load_scorer(kind, how, source, label, "cpu")
            plain_name = not config.clip.model.startswith(("local-dir:", "hf-hub:"))
            if isinstance(scorer, SafetyHead) and plain_name and scorer.embedding != config.clip.model:
                raise ConfigError(f"safety.{kind}_head {source} scores {scorer.embedding} embeddings, "
                                  f"the run's CLIP is {config.clip.model}")
        if safety.nsfw_rule == "both" and config.text.rules().profanity:
            raise ConfigError("safety.nsfw_rule=both judges the caption's bad words in the safety step: set "
                              "text.profanity=false, or the text stage drops those captions first")

    @classmethod
    def build(cls, config) -> SafetyStep:
        return cls(config.safety, caption_rules(config) if config.safety.nsfw_rule == "both" else None)

    def __init__(self, safety: SafetyConfig, captions: TextRules | None):
        device = resolve_device(safety.device)
        self.scorers = {kind: load_scorer(kind, how, source, label, device)
                        for kind, (how, source, label) in safety.scorers().items()}
        self.limits = {NSFW: safety.max_nsfw, WATERMARK: safety.max_watermark}
        self.captions = captions
        self.batch_size = safety.batch_size
        if any(not isinstance(scorer, SafetyHead) for scorer in self.scorers.values()):
            self.prepare = self._images
        self.info = {kind: {"source": source, "max": self.limits[kind]}
                     for kind, (_, source, _) in safety.scorers().items()}
        self.info.update(nsfw_rule=safety.nsfw_rule, filtering=True)

    @staticmethod
    def _images(batch: list[dict]) -> list[Image.Image]:
        return [Image.open(io.BytesIO(outcome["image_bytes"])).convert("RGB")
                for outcome in batch if not is_rejected(outcome)]

    def __call__(self, batch: list[dict], prepared=None) -> list[dict]:
        """``batch`` with every sample scored; those at or over a cut become rejects."""
        at = [i for i, outcome in enumerate(batch) if not is_rejected(outcome)]
        if not at:
            return batch
        scores = {}
        for kind, scorer in self.scorers.items():
            if isinstance(scorer, SafetyHead):
                scores[kind] = scorer.scores(np.stack([batch[i][EMBEDDINGS.field][0] for i in at]).astype(np.float32))
            else:
                scores[kind] = scorer.scores(prepared)
        meaningless = any(batch[i].get(RANDOM_WEIGHTS) for i in at) and any(
            isinstance(scorer, SafetyHead) for scorer in self.scorers.values())
        if meaningless and self.info["filtering"]:
            self.info["filtering"] = False
            log.warning("safety: CLIP has no weights, so the heads' scores mean nothing: no pair is dropped for them")
        for n, i in enumerate(at):
            record = batch[i]
            for kind, values in scores.items():
                record[COLUMNS[kind]] = float(values[n])
            failure = None if meaningless else self.verdict(record)
            if failure:
                batch[i] = reject(record, self.stage, *failure)
        return batch

    def verdict(self, record: dict) -> tuple[str, str] | None:
        nsfw, mark = record.get(COLUMNS[NSFW]), record.get(COLUMNS[WATERMARK])
        if nsfw is not None and nsfw >= self.limits[NSFW]:
            detail = f"nsfw_score {nsfw:.3f} >= {self.limits[NSFW]}"
            if self.captions is None:
                return NSFW, detail
            if found := self.captions.check(record.get("caption") or ""):
                return NSFW, f"{detail} and the caption has {found[1]!r}"
        if mark is not None and mark >= self.limits[WATERMARK]:
            return WATERMARK, f"watermark_score {mark:.3f} >= {self.limits[WATERMARK]}"
        return None
