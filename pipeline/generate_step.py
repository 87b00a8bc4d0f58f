"""The first in-shard step of a synthetic run (``altcap synth``): each record's image drawn by the
generator from its prompt and seed, in place of a download; for a variation, the bundled model
completes the real sample's code grid after its first ``synth.keep_rows`` rows. Batched; a record's
image depends on its prompt (and grid) and seed alone (``synth.generators``), so a resume or a
retry draws the same image. The provenance goes with the record: generator, checkpoint hash,
guidance. Beam-free; the generator loads when the step is built."""

from __future__ import annotations

import io
from typing import ClassVar

import numpy as np

from filters.record import is_rejected, reject
from pipeline.shard_step import ShardStep, internal_error
from synth.config import SynthConfig


def png_bytes(image) -> bytes:
    """The image as the image step takes it: lossless, compressed little (it is decoded a moment later)."""
    out = io.BytesIO()
    image.save(out, "PNG", compress_level=1)
    return out.getvalue()


class GenerateStep(ShardStep):
    stage = "generate"
    reasons = ("generation_error", "internal_error")
    settings: ClassVar[dict] = {"synth": SynthConfig}

    @classmethod
    def enabled(cls, config) -> bool:
        return bool(config.synth.generator)

    @classmethod
    def preflight(cls, config) -> None:
        from synth.generators import check_generator

        check_generator(config.synth.generator)

    @classmethod
    def resolved(cls, config) -> dict[str, str]:
        """The checkpoint the generator stands for: a resume with other weights is refused."""
        from synth.generators import weights_sha256

        return {"synth.generator": weights_sha256(config.synth.generator)}

    def __init__(self, synth: SynthConfig):
        from synth.generators import load_generator

        self.generator = load_generator(synth.generator, guidance=synth.guidance, steps=synth.steps,
                                        batch_size=synth.batch_size, device=synth.device)
        self.batch_size = synth.batch_size
        self.keep_rows = synth.keep_rows
        self.info = {"generator": synth.generator, "checkpoint_sha256": self.generator.checkpoint_sha256,
                     "guidance": self.generator.guidance}

    def __call__(self, outcomes: list[dict], prepared=None) -> list[dict]:
        at = [i for i, outcome in enumerate(outcomes) if not is_rejected(outcome)]
        if not at:
            return outcomes
        prompts, seeds = [outcomes[i]["caption"] for i in at], [outcomes[i]["seed"] for i in at]
        try:
            if self.keep_rows:
                codes = np.stack([outcomes[i].pop("image_codes") for i in at])
                images = self.generator.complete(codes, self.keep_rows, seeds, prompts=prompts)
            else:
                images = self.generator.generate(prompts, seeds)
        except (RuntimeError, ValueError) as err:  # out of memory, a prompt the tokenizer refuses: the batch fails
            for i in at:
                outcomes[i] = reject(outcomes[i], self.stage, "generation_error", f"{type(err).__name__}: {err}"[:500])
            return outcomes
        for i, image in zip(at, images):
            try:
                outcomes[i] = dict(outcomes[i], image_bytes=png_bytes(image), generator=self.info["generator"],
                                   checkpoint_sha256=self.info["checkpoint_sha256"], guidance=self.info["guidance"])
            except Exception as err:  # noqa: BLE001 - an image that does not encode costs its record
                outcomes[i] = internal_error(outcomes[i], self.stage, err)
        return outcomes
