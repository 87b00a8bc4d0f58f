"""The in-shard steps, in the order a shard runs them (the contract: ``pipeline.shard_step``).

Adding a step: its module with the step class and its config section, and one line here (plus
schema columns in ``dataset.schema`` when it adds fields)."""

from __future__ import annotations

from pipeline.clip_step import ClipStep
from pipeline.decontaminate_step import DecontaminateStep
from pipeline.download_step import DownloadStep
from pipeline.generate_step import GenerateStep
from pipeline.hypernymize_step import HypernymizeStep
from pipeline.image_step import ImageStep
from pipeline.safety_step import SafetyStep
from pipeline.tokens_step import TokensStep

SHARD_STEPS = (
    GenerateStep,
    DownloadStep,
    ImageStep,
    DecontaminateStep,
    ClipStep,
    SafetyStep,
    HypernymizeStep,
    TokensStep,
)


def enabled_steps(config) -> list[type]:
    return [step for step in SHARD_STEPS if step.enabled(config)]
