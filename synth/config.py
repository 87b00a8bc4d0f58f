"""Settings of a synthetic run (``synth``): which generator draws the images, how many per prompt,
how many of them CLIP keeps. ``altcap synth`` sets them; with ``synth.generator`` set, a run's
records are generated from prompts instead of downloaded."""

from __future__ import annotations

from dataclasses import dataclass

from filters.settings import require


@dataclass
class SynthConfig:
    # altcap:CHECKPOINT (the bundled trainer's model) or diffusers:MODEL_OR_FOLDER (a text-to-image
    # pipeline, safetensors weights); unset: no run is synthetic
    generator: str | None = None
    per_prompt: int = 4  # images drawn per prompt (N)
    keep: int = 0  # of them, the best K by CLIP score (0: every one that passes the cut)
    seed: int = 0  # each image's seed comes from it, the prompt and the image's number
    guidance: float | None = None  # classifier-free guidance; unset: the generator's default
    steps: int = 30  # denoising steps of a diffusers pipeline
    batch_size: int = 8  # images per call of the generator
    device: str = "auto"  # auto: cuda when present
    # variations (altcap synth --from-dataset): each image keeps this many rows of a real sample's code
    # grid and the bundled model draws the rest (DALL-E's image completion); 0: draw from prompts
    keep_rows: int = 0

    def check(self) -> None:
        require(self.generator is None or self.generator.partition(":")[0] in ("altcap", "diffusers"),
                "synth.generator is altcap:CHECKPOINT or diffusers:MODEL_OR_FOLDER")
        require(self.per_prompt > 0, "synth.per_prompt must be > 0")
        require(0 <= self.keep, "synth.keep must be >= 0")
        require(self.batch_size > 0 and self.steps > 0, "synth.batch_size and synth.steps must be > 0")
        require(self.keep_rows >= 0, "synth.keep_rows must be >= 0")
        require(not self.keep_rows or (self.generator or "").startswith("altcap:"),
                "synth.keep_rows (variations) completes code grids: it needs an altcap:CHECKPOINT generator")
