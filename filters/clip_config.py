"""Settings of CLIP matching (``clip``): the open_clip model, where and how it runs, and the three
filters (LAION's absolute cut, DataComp's top fraction, Conceptual Captions' label grounding)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from filters.settings import require

# auto: measured once per machine and model (filters/precision.py, cached): the fastest of fp32, bf16
# (fp16 on CUDA without bf16) and, on CPU, int8 whose scores stay within 0.01 of fp32's; CPU flags do
# not tell (a 2-core Xeon with AVX512-BF16 once ran ViT-B-32 at 14.6 pairs/s in fp32, 9.6 in bf16).
# int8: Linear layers quantized dynamically (CPU). All stay within 0.01 of fp32 scores.
PRECISIONS = ("auto", "fp32", "bf16", "fp16", "int8")


@dataclass
class ClipConfig:
    CHOICES: ClassVar[dict] = {"precision": set(PRECISIONS), "decoder": {"auto", "pil", "torch"}}

    enabled: bool = False
    model: str = "ViT-B-32"  # open_clip name, hf-hub:org/repo or local-dir:/folder
    pretrained: str | None = "openai"  # tag or checkpoint file, for plain open_clip names
    device: str = "auto"  # auto: cuda when present
    precision: str = "auto"  # one of PRECISIONS
    batch_size: int = 64
    decoder: str = "auto"  # auto|pil|torch: auto is torch (nvjpeg) on CUDA (filters/clip_images.py)
    # Pairs scoring below this are dropped. None: LAION-5B's cut for the model when it has one
    # (ViT-B-32 with OpenAI weights 0.28, multilingual 0.26), else none; -1 keeps everything.
    min_score: float | None = None
    # Keep only this best fraction of the run's scored pairs (DataComp's CLIP filter keeps 0.3),
    # after the min_score cut. None: no such cut.
    top_fraction: float | None = None
    # Conceptual Captions' image-label grounding: keep a pair only when a caption word is one of
    # the image's top-k zero-shot labels from a noun vocabulary (a file, one label per line, or
    # None: the most frequent WordNet nouns a photo can show). See filters/clip_grounding.py.
    grounding: bool = False
    grounding_top_k: int = 10
    grounding_vocabulary: str | None = None
    grounding_vocabulary_size: int = 1000

    def check(self) -> None:
        require(self.batch_size > 0, "clip.batch_size must be > 0")
        require(self.min_score is None or -1 <= self.min_score <= 1, "clip.min_score is a cosine similarity: -1..1")
        if self.top_fraction is not None:
            require(0 < self.top_fraction <= 1, "clip.top_fraction is the share of pairs to keep: 0 < f <= 1")
            require(self.enabled, "clip.top_fraction needs clip.enabled=true")
        require(self.enabled or not self.grounding, "clip.grounding needs clip.enabled=true")
        require(self.grounding_top_k > 0 and self.grounding_vocabulary_size > 0,
                "clip.grounding_top_k and clip.grounding_vocabulary_size must be > 0")
